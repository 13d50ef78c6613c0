//! A source: where events come from (its write keys, enforcement settings and labels).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{Label, MetadataRef};

/// A source.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Id.
    pub id: String,
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Catalog type.
    pub metadata: MetadataRef,
    /// Always `default`.
    pub workspace_id: String,
    /// Whether it accepts events.
    pub enabled: bool,
    /// Write keys the data plane accepts for it.
    pub write_keys: Vec<String>,
    /// Type-specific settings.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Labels.
    pub labels: Vec<Label>,
    /// Schema enforcement settings (also at `/sources/{id}/settings`).
    #[serde(default)]
    pub schema_settings: SchemaSettings,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// What a tracking plan violation does to a track event.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrackOnViolation {
    /// Let it through.
    #[default]
    Allow,
    /// Drop it.
    Block,
    /// Remove the offending properties.
    OmitProperties,
}

/// What a violation does to an identify or group event.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraitsOnViolation {
    /// Let it through.
    #[default]
    Allow,
    /// Drop it.
    Block,
    /// Remove the offending traits.
    OmitTraits,
}

fn yes() -> bool {
    true
}

/// Enforcement of track events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackSettings {
    /// Accept events the plan has no rule for.
    #[serde(default = "yes")]
    pub allow_unplanned_events: bool,
    /// Accept properties the plan does not name.
    #[serde(default = "yes")]
    pub allow_unplanned_event_properties: bool,
    /// Accept events that violate their rule.
    #[serde(default = "yes")]
    pub allow_event_on_violations: bool,
    /// Keep properties that violate their rule.
    #[serde(default = "yes")]
    pub allow_properties_on_violations: bool,
    /// What a COMMON rule violation does.
    #[serde(default)]
    pub common_event_on_violations: TrackOnViolation,
}

/// Enforcement of identify or group events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraitSettings {
    /// Accept traits the plan does not name.
    #[serde(default = "yes")]
    pub allow_unplanned_traits: bool,
    /// Keep traits that violate their rule.
    #[serde(default = "yes")]
    pub allow_traits_on_violations: bool,
    /// What a COMMON rule violation does.
    #[serde(default)]
    pub common_event_on_violations: TraitsOnViolation,
}

/// A source's schema enforcement settings (Segment's `/sources/{id}/settings`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaSettings {
    /// Track events.
    pub track: TrackSettings,
    /// Identify events.
    pub identify: TraitSettings,
    /// Group events.
    pub group: TraitSettings,
    /// A source that receives a `Violation Generated` event per violation.
    pub forwarding_violations_to: Option<String>,
    /// A source that receives blocked events.
    pub forwarding_blocked_events_to: Option<String>,
}

impl Default for SchemaSettings {
    fn default() -> SchemaSettings {
        // Parsing `{}` through the field defaults keeps one definition of the defaults.
        let traits = || TraitSettings {
            allow_unplanned_traits: true,
            allow_traits_on_violations: true,
            common_event_on_violations: TraitsOnViolation::Allow,
        };
        SchemaSettings {
            track: TrackSettings {
                allow_unplanned_events: true,
                allow_unplanned_event_properties: true,
                allow_event_on_violations: true,
                allow_properties_on_violations: true,
                common_event_on_violations: TrackOnViolation::Allow,
            },
            identify: traits(),
            group: traits(),
            forwarding_violations_to: None,
            forwarding_blocked_events_to: None,
        }
    }
}
