//! An insert function instance: a function attached to a source or destination, with settings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An insert function instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InsertFunctionInstance {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The function it runs (its deployed version).
    pub function_id: String,
    /// The source or destination it is attached to.
    pub integration_id: String,
    /// `SOURCE` or `DESTINATION`.
    pub integration_type: String,
    /// The source whose events it sees (the integration itself, or the destination's source).
    pub source_id: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Position among the instances on the same integration (lower runs first).
    pub order: u32,
    /// Values of the function's settings (sensitive ones masked).
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}
