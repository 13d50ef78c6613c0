//! A destination: where a source's events are delivered.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::MetadataRef;

/// A destination.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether events are delivered.
    pub enabled: bool,
    /// Catalog type.
    pub metadata: MetadataRef,
    /// The source whose events it receives.
    pub source_id: String,
    /// Settings, checked against the type's options.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}
