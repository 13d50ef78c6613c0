//! A function and its versions (content-addressed code: a component digest or JavaScript).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds of function, as in Segment.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FunctionType {
    /// Turns webhooks into events.
    Source,
    /// Sends events to an external API.
    Destination,
    /// Transforms a source's events before all its destinations.
    InsertSource,
    /// Transforms events before one destination.
    InsertDestination,
}

/// The type of a declared setting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettingType {
    /// A string.
    String,
    /// true or false.
    Boolean,
    /// A list of strings.
    Array,
    /// An object of string values.
    TextMap,
}

/// A setting the function declares; instances give the values.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingDecl {
    /// Key the function reads (`apiKey`).
    pub name: String,
    /// Label for people.
    #[serde(default)]
    pub label: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// Whether instances must give it.
    #[serde(default)]
    pub required: bool,
    /// Stored but never shown back (masked).
    #[serde(default)]
    pub sensitive: bool,
}

/// How a version's code runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// A WebAssembly component.
    Wasm,
    /// JavaScript source, run by the built-in JavaScript engine component.
    Javascript,
}

/// A function.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// Id.
    pub id: String,
    /// Kind.
    pub resource_type: FunctionType,
    /// Display name.
    pub display_name: String,
    /// What it does.
    pub description: Option<String>,
    /// Declared settings.
    pub settings: Vec<SettingDecl>,
    /// The latest version's runtime.
    pub runtime: Runtime,
    /// The latest version's JavaScript source (absent for components).
    pub code: Option<String>,
    /// The latest version's code digest (blake3 hex): identical code has the same digest.
    pub digest: String,
    /// Whether the latest version can run (always, since both runtimes exist; kept for
    /// clients that check it).
    pub runnable: bool,
    /// The latest version.
    pub version_id: String,
    /// The deployed version, if any.
    pub deployed_version_id: Option<String>,
    /// Whether the deployed version is the latest.
    pub is_latest_version: bool,
    /// Creation time.
    pub created_at: String,
    /// Last deployment.
    pub deployed_at: Option<String>,
}

/// One saved version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// Id.
    pub id: String,
    /// Its function.
    pub function_id: String,
    /// Runtime.
    pub runtime: Runtime,
    /// Code digest (blake3 hex).
    pub digest: String,
    /// JavaScript source, for JavaScript versions.
    pub code: Option<String>,
    /// Declared settings at this version.
    pub settings: Vec<SettingDecl>,
    /// Whether this version is deployed.
    #[serde(default)]
    pub is_deployed: bool,
    /// Creation time.
    pub created_at: String,
    /// When it was deployed, if it is.
    pub deployed_at: Option<String>,
}
