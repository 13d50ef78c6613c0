//! The catalog: the source, destination and warehouse types sluice really supports, with the
//! options each takes. `metadataId` on create refers to these ids.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, CommonErrors};
use super::extract::Query;
use super::pagination::{PageQuery, Pagination, page};
use super::{Data, ok};
use crate::dataplane::destinations::file;

/// One setting a type takes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatalogOption {
    /// The setting's key.
    pub name: &'static str,
    /// `string`, `boolean`, `number` or `object`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// What it does.
    pub description: &'static str,
}

/// A type in the catalog.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Metadata {
    /// The id to pass as `metadataId` (same as `slug`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Slug.
    pub slug: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Settings it takes.
    pub options: Vec<CatalogOption>,
    /// Catalog categories.
    pub categories: Vec<&'static str>,
}

const fn opt(
    name: &'static str,
    kind: &'static str,
    required: bool,
    description: &'static str,
) -> CatalogOption {
    CatalogOption {
        name,
        kind,
        required,
        description,
    }
}

fn meta(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    category: &'static str,
    options: Vec<CatalogOption>,
) -> Metadata {
    Metadata {
        id,
        name,
        slug: id,
        description,
        options,
        categories: vec![category],
    }
}

/// Source types.
pub fn source_types() -> Vec<Metadata> {
    vec![
        meta(
            "http",
            "HTTP API",
            "Events sent to the HTTP tracking API (`/v1/track`, ...).",
            "Server",
            vec![],
        ),
        meta(
            "javascript",
            "JavaScript",
            "A website, through analytics.js.",
            "Website",
            vec![],
        ),
        meta("ios", "iOS", "An iOS app.", "Mobile", vec![]),
        meta("android", "Android", "An Android app.", "Mobile", vec![]),
        meta(
            "server",
            "Server",
            "A back end using a server-side library.",
            "Server",
            vec![],
        ),
    ]
}

/// Destination types.
pub fn destination_types() -> Vec<Metadata> {
    vec![
        meta(
            "webhook",
            "Webhook",
            "POSTs each event as JSON to a URL.",
            "Raw Data",
            vec![
                opt(
                    "url",
                    "string",
                    true,
                    "The http(s) URL events are POSTed to.",
                ),
                opt(
                    "headers",
                    "object",
                    false,
                    "Extra HTTP headers, name to value.",
                ),
                opt(
                    "sharedSecret",
                    "string",
                    false,
                    "Signs each request (HMAC) so the receiver can verify it.",
                ),
                opt(
                    "batchSize",
                    "number",
                    false,
                    "Events per request, 1 to 1000 (default 1: the event itself is the body). Above 1, \
                     the body is `{\"batch\": [events]}` holding up to this many events that are due \
                     together; sluice never waits to fill a batch.",
                ),
            ],
        ),
        meta(
            "file",
            "File",
            "Appends each event as a JSON line to a file on the server.",
            "Raw Data",
            vec![opt(
                "path",
                "string",
                true,
                "The file, relative to `<data dir>/files/`: relative, without `..`, not absolute \
                 (so never the database's own files).",
            )],
        ),
    ]
}

/// Warehouse types.
pub fn warehouse_types() -> Vec<Metadata> {
    vec![
        meta(
            "postgres",
            "Postgres",
            "Loads events into PostgreSQL tables.",
            "Warehouse",
            vec![
                opt("hostname", "string", true, "Database host."),
                opt("port", "number", false, "Port (default 5432)."),
                opt("database", "string", true, "Database name."),
                opt("username", "string", true, "User."),
                opt("password", "string", false, "Password."),
            ],
        ),
        meta(
            "embedded",
            "Embedded",
            "sluice's own embedded store under the data directory.",
            "Warehouse",
            vec![],
        ),
    ]
}

/// The most events one webhook request may carry.
pub const MAX_BATCH_SIZE: u64 = 1000;

/// Checks `settings` against a type's options: required options present, types right, no
/// unknown keys; `url` options must be http(s) URLs, `batchSize` 1 to [`MAX_BATCH_SIZE`], a
/// file destination's `path` must pass [`file::normalise`] (relative, no `..`, inside
/// `<data dir>/files/`).
/// `field` is the input's path.
///
/// # Errors
/// 422 naming the setting.
pub fn validate_settings(
    meta: &Metadata,
    settings: &Map<String, Value>,
    field: &str,
) -> Result<(), ApiError> {
    for option in &meta.options {
        let path = format!("{field}.{}", option.name);
        match settings.get(option.name) {
            None | Some(Value::Null) if option.required => {
                return Err(ApiError::invalid(
                    path,
                    format!("`{}` is required for {}", option.name, meta.name),
                ));
            }
            None | Some(Value::Null) => {}
            Some(value) => {
                let fits = match option.kind {
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "number" => value.is_number(),
                    _ => value.is_object(),
                };
                if !fits {
                    return Err(ApiError::invalid(
                        path,
                        format!("`{}` must be a {}", option.name, option.kind),
                    ));
                }
                if option.name == "batchSize"
                    && !value
                        .as_u64()
                        .is_some_and(|n| (1..=MAX_BATCH_SIZE).contains(&n))
                {
                    return Err(ApiError::invalid(
                        path,
                        format!("`batchSize` must be a whole number from 1 to {MAX_BATCH_SIZE}"),
                    ));
                }
                if option.name == "url" && !is_http_url(value.as_str().unwrap_or_default()) {
                    return Err(ApiError::invalid(
                        path,
                        "`url` must be an http:// or https:// URL with a host",
                    ));
                }
                if meta.id == "file" && option.name == "path" {
                    file::normalise(value.as_str().unwrap_or_default())
                        .map_err(|e| ApiError::invalid(path, e.to_string()))?;
                }
            }
        }
    }
    if let Some(unknown) = settings
        .keys()
        .find(|k| !meta.options.iter().any(|o| o.name == k.as_str()))
    {
        return Err(ApiError::invalid(
            format!("{field}.{unknown}"),
            format!("{} has no setting `{unknown}`", meta.name),
        ));
    }
    Ok(())
}

/// `settings`, already checked by [`validate_settings`], in their normal form: a file
/// destination's `path` as [`file::normalise`] writes it (`./a//b` is stored as `a/b`).
pub fn normalise_settings(meta: &Metadata, mut settings: Map<String, Value>) -> Map<String, Value> {
    if meta.id == "file"
        && let Some(Value::String(path)) = settings.get_mut("path")
        && let Ok(normal) = file::normalise(path)
    {
        *path = normal;
    }
    settings
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// A page of catalog entries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPage {
    /// The types.
    pub metadata: Vec<Metadata>,
    /// Where this page sits.
    pub pagination: Pagination,
}

fn list(
    items: Vec<Metadata>,
    query: &PageQuery,
) -> Result<axum::Json<Data<CatalogPage>>, ApiError> {
    let (metadata, pagination) = page(items, query)?;
    Ok(ok(CatalogPage {
        metadata,
        pagination,
    }))
}

/// List source types.
///
/// The kinds of source sluice accepts events from; pass an `id` as `metadataId` to `POST /sources`.
#[utoipa::path(get, path = "/catalog/sources", tag = "Catalog", params(PageQuery),
    responses((status = 200, body = Data<CatalogPage>), CommonErrors))]
pub async fn sources(
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Data<CatalogPage>>, ApiError> {
    list(source_types(), &q)
}

/// List destination types.
///
/// The destinations sluice can deliver to, with the settings each needs; pass an `id` as
/// `metadataId` to `POST /destinations`.
#[utoipa::path(get, path = "/catalog/destinations", tag = "Catalog", params(PageQuery),
    responses((status = 200, body = Data<CatalogPage>), CommonErrors))]
pub async fn destinations(
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Data<CatalogPage>>, ApiError> {
    list(destination_types(), &q)
}

/// List warehouse types.
///
/// The warehouses sluice can load into; pass an `id` as `metadataId` to `POST /warehouses`.
#[utoipa::path(get, path = "/catalog/warehouses", tag = "Catalog", params(PageQuery),
    responses((status = 200, body = Data<CatalogPage>), CommonErrors))]
pub async fn warehouses(
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Data<CatalogPage>>, ApiError> {
    list(warehouse_types(), &q)
}
