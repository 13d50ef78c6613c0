//! Pieces the resource modules share: catalog references, slugs, labels, delete results.

use serde::Serialize;
use utoipa::ToSchema;

use super::catalog::Metadata;
use super::error::ApiError;

pub use crate::workspace::resource::{Label, MetadataRef};

impl From<&Metadata> for MetadataRef {
    fn from(m: &Metadata) -> MetadataRef {
        MetadataRef {
            id: m.id.to_string(),
            name: m.name.to_string(),
            slug: m.slug.to_string(),
            description: m.description.to_string(),
            categories: m.categories.iter().map(|c| c.to_string()).collect(),
        }
    }
}

/// Finds `id` among `types`, else 404 naming `metadataId`.
///
/// # Errors
/// An id the catalog does not have.
pub fn catalog_entry(types: Vec<Metadata>, id: &str) -> Result<Metadata, ApiError> {
    let known = types
        .iter()
        .map(|m| m.id.as_ref())
        .collect::<Vec<_>>()
        .join(", ");
    types.into_iter().find(|m| m.id == id).ok_or_else(|| {
        ApiError::missing(
            "metadataId",
            format!("no catalog entry `{id}`; the catalog has {known}"),
        )
    })
}

/// Checks a slug: 1-100 of `a-z`, `0-9`, `-`, `_`.
///
/// # Errors
/// 422 naming `field`.
pub fn check_slug(slug: &str, field: &str) -> Result<(), ApiError> {
    let fits = !slug.is_empty()
        && slug.len() <= 100
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if fits {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("`{field}` must be 1-100 characters of a-z, 0-9, - and _"),
        ))
    }
}

/// Checks a display name: 1-200 characters, not blank.
///
/// # Errors
/// 422 naming `field`.
pub fn check_name(name: &str, field: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        Err(ApiError::invalid(
            field,
            format!("`{field}` must be 1-200 characters, not blank"),
        ))
    } else {
        Ok(())
    }
}

/// The body of a successful delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// Always `SUCCESS`.
    pub status: &'static str,
}

/// `{"status": "SUCCESS"}`.
pub fn deleted() -> axum::Json<super::Data<Deleted>> {
    super::ok(Deleted { status: "SUCCESS" })
}

/// 200 with the envelope around `T`.
pub type Reply<T> = Result<axum::Json<super::Data<T>>, ApiError>;

/// 201 with the envelope around `T`.
pub type Created<T> = Result<(axum::http::StatusCode, axum::Json<super::Data<T>>), ApiError>;
