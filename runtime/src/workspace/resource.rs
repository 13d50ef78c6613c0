//! Parts every record shares: its catalog type and labels.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The catalog type of a source, destination or warehouse, as stored with it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MetadataRef {
    /// Catalog id (`webhook`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// What it is.
    pub description: String,
    /// Catalog categories.
    pub categories: Vec<String>,
}

/// A key-value label on a source.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Label {
    /// Key (`environment`).
    pub key: String,
    /// Value (`prod`).
    pub value: String,
}
