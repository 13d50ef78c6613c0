//! A tracking plan and its rules (JSON Schemas per event type and name).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A tracking plan (its rules are under `/tracking-plans/{id}/rules`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingPlan {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// `LIVE` (the only kind sluice has).
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation time.
    pub created_at: String,
    /// Last change (rules included).
    pub updated_at: String,
    /// Sources it is connected to.
    pub source_ids: Vec<String>,
}

/// The event kinds a rule applies to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleType {
    /// Every event.
    Common,
    /// Track events named `key`.
    Track,
    /// Identify events.
    Identify,
    /// Group events.
    Group,
    /// Page events.
    Page,
    /// Screen events.
    Screen,
}

/// One rule: a draft-07 JSON Schema over the whole event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// What it applies to.
    #[serde(rename = "type")]
    pub kind: RuleType,
    /// The event name, for `TRACK` rules.
    pub key: Option<String>,
    /// The rule's version (`context.protocols.event_version` picks it); default 1.
    #[serde(default = "one", deserialize_with = "super::whole::whole")]
    pub version: u32,
    /// The JSON Schema; must compile.
    #[schema(value_type = Object)]
    pub json_schema: Value,
}

fn one() -> u32 {
    1
}
