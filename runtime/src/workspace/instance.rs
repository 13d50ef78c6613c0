//! An insert function instance: a function attached to a source or destination, with settings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What survives between the events of one instance. Warm sandboxes always belong to one
/// instance alone; this chooses whether they are reused for its next events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceIsolation {
    /// Warm sandboxes are reused for this instance's events, so globals persist between them
    /// (as on Segment).
    #[default]
    Pooled,
    /// A fresh sandbox per event: nothing persists from one event to the next. Costs an
    /// instantiation per event (about 10 us for a component, about 4 ms for JavaScript).
    Fresh,
}

impl InstanceIsolation {
    /// The engine's isolation for this choice.
    pub fn engine(self) -> crate::engine::Isolation {
        match self {
            InstanceIsolation::Pooled => crate::engine::Isolation::default(),
            InstanceIsolation::Fresh => crate::engine::Isolation::Fresh,
        }
    }
}

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
    /// `POOLED` (default: state persists between this instance's events) or `FRESH` (a new
    /// sandbox per event).
    #[serde(default)]
    pub isolation: InstanceIsolation,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}
