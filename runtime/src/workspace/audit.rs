//! The audit trail's record: one event per change, written with the change.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One recorded change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Time-ordered id.
    pub id: String,
    /// When (RFC 3339, UTC).
    pub timestamp: String,
    /// Segment's type string: `Source Created`, `Integration Deleted`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Who: the token that made the change.
    pub actor: String,
    /// The changed resource's id.
    pub resource_id: String,
    /// `source`, `destination`, `tracking_plan`, `warehouse`, `function`, ...
    pub resource_type: String,
    /// The changed resource's name at the time.
    pub resource_name: String,
}
