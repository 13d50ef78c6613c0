//! The workspace: the domain records both planes share (sources, destinations, tracking plans
//! and rules, warehouses, functions and their versions, insert function instances, the audit
//! trail) and the [`store`] that keeps them. It imports nothing above it: the control plane
//! (`api`) edits these records over HTTP, the data plane reads them to wire each source's
//! pipeline.

pub mod audit;
pub mod destination;
pub mod function;
pub mod instance;
mod replica;
pub mod resource;
pub mod source;
pub mod store;
pub mod tracking_plan;
pub mod warehouse;
pub mod whole;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use audit::AuditEvent;
pub use destination::Destination;
pub use function::{Function, FunctionType, Runtime, SettingDecl, SettingType, Version};
pub use instance::{InsertFunctionInstance, InstanceIsolation};
pub use resource::{Label, MetadataRef};
pub use source::{
    SchemaSettings, Source, TrackOnViolation, TrackSettings, TraitSettings, TraitsOnViolation,
};
pub use store::{Kind, Store, StoreError};
pub use tracking_plan::{Rule, RuleType, TrackingPlan};
pub use warehouse::{SyncOverride, Warehouse};

/// A new time-ordered id (UUIDv7, hex), so that listing by key lists by creation.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}
