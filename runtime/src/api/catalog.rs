//! The catalog: the source, destination and warehouse types sluice really supports, with the
//! options each takes. `metadataId` on create refers to these ids.

use std::borrow::Cow;

use axum::extract::State;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, CommonErrors};
use super::extract::Query;
use super::pagination::{PageQuery, Pagination, page};
use super::store::Kind;
use super::{AppState, Data, ok};
use crate::dataplane::destinations::file;
use crate::dataplane::warehouse::tls::Mode;
use crate::workspace::{Function, FunctionType, SettingType, Store};

/// One setting a type takes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatalogOption {
    /// The setting's key.
    #[schema(value_type = String)]
    pub name: Cow<'static, str>,
    /// `string`, `boolean`, `number`, `array` or `object`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: Cow<'static, str>,
    /// Whether it must be given.
    pub required: bool,
    /// What it does.
    #[schema(value_type = String)]
    pub description: Cow<'static, str>,
}

/// A type in the catalog.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Metadata {
    /// The id to pass as `metadataId` (same as `slug`; a destination or source function's id).
    #[schema(value_type = String)]
    pub id: Cow<'static, str>,
    /// Display name.
    #[schema(value_type = String)]
    pub name: Cow<'static, str>,
    /// Slug.
    #[schema(value_type = String)]
    pub slug: Cow<'static, str>,
    /// What it is.
    #[schema(value_type = String)]
    pub description: Cow<'static, str>,
    /// Logos (sluice has none to serve: `default` is empty).
    pub logos: Logos,
    /// Settings it takes.
    pub options: Vec<CatalogOption>,
    /// Catalog categories.
    pub categories: Vec<&'static str>,
    /// Sources only: whether it pulls from a cloud app (never, in sluice).
    #[serde(rename = "isCloudEventSource", skip_serializing_if = "Option::is_none")]
    pub is_cloud_event_source: Option<bool>,
    /// Destinations only: what Segment's `DestinationMetadataV1` adds.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub destination: Option<DestinationFacts>,
}

/// A catalog type's logos, as Segment's `LogosBeta`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Logos {
    /// The logo's URL.
    pub default: &'static str,
}

/// What a destination type declares besides the common fields, as Segment's
/// `DestinationMetadataV1` has them; sluice's destinations are built in, in cloud mode.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationFacts {
    /// Release status: `PUBLIC` for every built-in destination.
    pub status: &'static str,
    /// Earlier names (none).
    pub previous_names: Vec<&'static str>,
    /// The vendor's website (empty: built into sluice).
    pub website: &'static str,
    /// Code components (none: built in).
    #[schema(value_type = Vec<Object>)]
    pub components: Vec<Value>,
    /// Features (`{}`: none of Segment's optional ones).
    #[schema(value_type = Object)]
    pub supported_features: Value,
    /// The event methods it receives.
    pub supported_methods: Methods,
    /// Where it runs (`server`: sluice delivers from the server).
    #[schema(value_type = Object)]
    pub supported_platforms: Value,
    /// Destination actions (none).
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<Value>,
    /// Subscription presets (none).
    #[schema(value_type = Vec<Object>)]
    pub presets: Vec<Value>,
}

/// The event methods a destination type receives.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Methods {
    /// Page calls.
    pub pageview: bool,
    /// Identify calls.
    pub identify: bool,
    /// Alias calls.
    pub alias: bool,
    /// Track calls.
    pub track: bool,
    /// Group calls.
    pub group: bool,
}

impl DestinationFacts {
    /// A built-in destination that receives every kind of call, server side.
    fn built_in() -> DestinationFacts {
        DestinationFacts {
            status: "PUBLIC",
            previous_names: vec![],
            website: "",
            components: vec![],
            supported_features: Value::Object(Map::new()),
            supported_methods: Methods {
                pageview: true,
                identify: true,
                alias: true,
                track: true,
                group: true,
            },
            supported_platforms: serde_json::json!({"server": true}),
            actions: vec![],
            presets: vec![],
        }
    }
}

const fn opt(
    name: &'static str,
    kind: &'static str,
    required: bool,
    description: &'static str,
) -> CatalogOption {
    CatalogOption {
        name: Cow::Borrowed(name),
        kind: Cow::Borrowed(kind),
        required,
        description: Cow::Borrowed(description),
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
        id: Cow::Borrowed(id),
        name: Cow::Borrowed(name),
        slug: Cow::Borrowed(id),
        description: Cow::Borrowed(description),
        logos: Logos::default(),
        options,
        categories: vec![category],
        is_cloud_event_source: None,
        destination: None,
    }
}

fn source(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    category: &'static str,
) -> Metadata {
    Metadata {
        is_cloud_event_source: Some(false),
        ..meta(id, name, description, category, vec![])
    }
}

fn destination(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    options: Vec<CatalogOption>,
) -> Metadata {
    Metadata {
        destination: Some(DestinationFacts::built_in()),
        ..meta(id, name, description, "Raw Data", options)
    }
}

/// Source types.
pub fn source_types() -> Vec<Metadata> {
    vec![
        source(
            "http",
            "HTTP API",
            "Events sent to the HTTP tracking API (`/v1/track`, ...).",
            "Server",
        ),
        source(
            "javascript",
            "JavaScript",
            "A website, through analytics.js.",
            "Website",
        ),
        source("ios", "iOS", "An iOS app.", "Mobile"),
        source("android", "Android", "An Android app.", "Mobile"),
        source(
            "server",
            "Server",
            "A back end using a server-side library.",
            "Server",
        ),
    ]
}

/// Destination types.
pub fn destination_types() -> Vec<Metadata> {
    vec![
        destination(
            "webhook",
            "Webhook",
            "POSTs each event as JSON to a URL.",
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
        destination(
            "file",
            "File",
            "Appends each event as a JSON line to a file on the server.",
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

/// The built-in destination types, then each deployed destination function as a type of its
/// own: its declared settings as options, plus `allowedHosts` (the hosts it may reach).
///
/// # Errors
/// The store cannot be read.
pub fn destination_catalog(store: &Store) -> Result<Vec<Metadata>, ApiError> {
    let mut types = destination_types();
    let functions: Vec<Function> = store.list(Kind::Function, "")?;
    types.extend(
        functions
            .into_iter()
            .filter(|f| {
                f.resource_type == FunctionType::Destination && f.deployed_version_id.is_some()
            })
            .map(function_destination),
    );
    Ok(types)
}

/// The built-in source types, then each deployed source function as a type of its own (its
/// declared settings and `allowedHosts` as options): a source created from it receives
/// webhooks at `POST /v1/functions/{sourceId}`.
///
/// # Errors
/// The store cannot be read.
pub fn source_catalog(store: &Store) -> Result<Vec<Metadata>, ApiError> {
    let mut types = source_types();
    let functions: Vec<Function> = store.list(Kind::Function, "")?;
    types.extend(
        functions
            .into_iter()
            .filter(|f| f.resource_type == FunctionType::Source && f.deployed_version_id.is_some())
            .map(|f| Metadata {
                is_cloud_event_source: Some(false),
                ..function_type(f)
            }),
    );
    Ok(types)
}

/// Whether a catalog type is a function (destination or source), whose settings are checked
/// against its declared ones.
pub fn is_function(meta: &Metadata) -> bool {
    meta.categories.contains(&FUNCTIONS)
}

/// The category of the types that are deployed functions.
const FUNCTIONS: &str = "Functions";

/// A deployed destination function as a catalog type, with `batchSize` (its `onBatch`).
fn function_destination(f: Function) -> Metadata {
    let mut meta = function_type(f);
    let options = &mut meta.options;
    if !options.iter().any(|o| o.name == "batchSize") {
        options.push(CatalogOption {
            name: Cow::Borrowed("batchSize"),
            kind: Cow::Borrowed("number"),
            required: false,
            description: Cow::Borrowed(
                "Events per invocation, 1 to 1000 (default 1: each event is one call of its \
                 handler). Above 1, up to this many events that are due together go to one \
                 `onBatch` call (`handle-batch` for a component); sluice never waits to fill a batch.",
            ),
        });
    }
    Metadata {
        destination: Some(DestinationFacts::built_in()),
        ..meta
    }
}

/// A deployed function as a catalog type: its declared settings, plus `allowedHosts`.
fn function_type(f: Function) -> Metadata {
    let mut options: Vec<CatalogOption> = f
        .settings
        .iter()
        .map(|s| CatalogOption {
            name: Cow::Owned(s.name.clone()),
            kind: Cow::Borrowed(match s.kind {
                SettingType::String => "string",
                SettingType::Boolean => "boolean",
                SettingType::Array => "array",
                SettingType::TextMap => "object",
            }),
            required: s.required,
            description: Cow::Owned(s.description.clone()),
        })
        .collect();
    if !options.iter().any(|o| o.name == "allowedHosts") {
        options.push(CatalogOption {
            name: Cow::Borrowed("allowedHosts"),
            kind: Cow::Borrowed("array"),
            required: false,
            description: Cow::Borrowed(
                "The hosts the function may reach (`host` or `host:port`); nothing by default. \
                 Private, loopback and link-local addresses only when listed themselves.",
            ),
        });
    }
    Metadata {
        id: Cow::Owned(f.id.clone()),
        name: Cow::Owned(f.display_name.clone()),
        slug: Cow::Owned(f.id),
        description: Cow::Owned(f.description.unwrap_or_default()),
        logos: Logos::default(),
        options,
        categories: vec![FUNCTIONS],
        is_cloud_event_source: None,
        destination: None,
    }
}

/// Warehouse types.
pub fn warehouse_types() -> Vec<Metadata> {
    let interval = || {
        opt(
            "syncIntervalSeconds",
            "number",
            false,
            "Seconds between syncs (default 3600: hourly).",
        )
    };
    vec![
        meta(
            "postgres",
            "Postgres",
            "Loads events into PostgreSQL: one schema per source, Segment's tables, by COPY.",
            "Warehouse",
            vec![
                opt("hostname", "string", true, "Database host."),
                opt("port", "number", false, "Port (default 5432)."),
                opt("database", "string", true, "Database name."),
                opt("username", "string", true, "User."),
                opt("password", "string", false, "Password (sensitive)."),
                opt(
                    "sslmode",
                    "string",
                    false,
                    "TLS, as libpq reads it: `disable`, `prefer` (default: TLS when the server \
                     offers it), `require` (TLS, the certificate unchecked), `verify-ca` (the \
                     chain checked) or `verify-full` (the chain and the host name).",
                ),
                opt(
                    "sslrootcert",
                    "string",
                    false,
                    "The CA certificates the server's chain must lead to, as PEM text (not a \
                     path); without it `verify-ca` and `verify-full` use the webpki (Mozilla) roots.",
                ),
                opt(
                    "schemaPrefix",
                    "string",
                    false,
                    "Prepended to each source's schema name (letters, digits, `_`).",
                ),
                interval(),
            ],
        ),
        meta(
            "duckdb",
            "DuckDB",
            "The embedded warehouse: a DuckDB file under the data directory \
             (`warehouses/<id>/warehouse.duckdb`); needs no server.",
            "Warehouse",
            vec![
                opt(
                    "schemaPrefix",
                    "string",
                    false,
                    "Prepended to each source's schema name (letters, digits, `_`).",
                ),
                interval(),
            ],
        ),
    ]
}

/// The warehouse settings' own rules (their types are checked with every option's).
fn check_warehouse_setting(name: &str, value: &Value, path: &str) -> Result<(), ApiError> {
    let bad = |message: &str| Err(ApiError::invalid(path.to_string(), message.to_string()));
    match name {
        "syncIntervalSeconds" if value.as_u64().is_none_or(|n| n < 1) => {
            bad("`syncIntervalSeconds` must be a whole number of seconds, at least 1")
        }
        "sslmode" if value.as_str().is_none_or(|m| Mode::parse(m).is_err()) => {
            bad("`sslmode` must be `disable`, `prefer`, `require`, `verify-ca` or `verify-full`")
        }
        "sslrootcert"
            if value
                .as_str()
                .is_none_or(|pem| !pem.contains("-----BEGIN CERTIFICATE-----")) =>
        {
            bad(
                "`sslrootcert` must hold the CA certificate's PEM text, from \
                 `-----BEGIN CERTIFICATE-----` to `-----END CERTIFICATE-----` (not a path)",
            )
        }
        "schemaPrefix"
            if value.as_str().is_none_or(|p| {
                p.len() > 20 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }) =>
        {
            bad("`schemaPrefix` must be at most 20 letters, digits or `_`")
        }
        "port" if value.as_u64().is_none_or(|p| !(1..=65535).contains(&p)) => {
            bad("`port` must be a port number from 1 to 65535")
        }
        _ => Ok(()),
    }
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
        match settings.get(option.name.as_ref()) {
            None | Some(Value::Null) if option.required => {
                return Err(ApiError::invalid(
                    path,
                    format!("`{}` is required for {}", option.name, meta.name),
                ));
            }
            None | Some(Value::Null) => {}
            Some(value) => {
                let fits = match option.kind.as_ref() {
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "number" => value.is_number(),
                    "array" => value.is_array(),
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
                if meta.categories.contains(&"Warehouse") {
                    check_warehouse_setting(&option.name, value, &path)?;
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

/// A page of source types (`sourcesCatalog`, as Segment's `GetSourcesCatalogV1Output` has it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcesCatalog {
    /// The types.
    pub sources_catalog: Vec<Metadata>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// A page of destination types (`destinationsCatalog`, as Segment's
/// `GetDestinationsCatalogV1Output` has it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationsCatalog {
    /// The types.
    pub destinations_catalog: Vec<Metadata>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// A page of warehouse types (`warehousesCatalog`, as Segment's `GetWarehousesCatalogV1Output`
/// has it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarehousesCatalog {
    /// The types.
    pub warehouses_catalog: Vec<Metadata>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// List source types.
///
/// The kinds of source sluice accepts events from, then every deployed source function (its
/// id is its `metadataId`; such a source receives webhooks at `POST /v1/functions/{sourceId}`);
/// pass an `id` as `metadataId` to `POST /sources`.
#[utoipa::path(get, path = "/catalog/sources", operation_id = "getSourcesCatalog", tag = "Catalog", params(PageQuery),
    responses((status = 200, body = Data<SourcesCatalog>), CommonErrors))]
pub async fn sources(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Data<SourcesCatalog>>, ApiError> {
    let (sources_catalog, pagination) = page(source_catalog(&state.store)?, &q)?;
    Ok(ok(SourcesCatalog {
        sources_catalog,
        pagination,
    }))
}

/// List destination types.
///
/// The destinations sluice can deliver to, with the settings each needs, then every deployed
/// destination function (its id is its `metadataId`); pass an `id` as `metadataId` to
/// `POST /destinations`.
#[utoipa::path(get, path = "/catalog/destinations", operation_id = "getDestinationsCatalog", tag = "Catalog", params(PageQuery),
    responses((status = 200, body = Data<DestinationsCatalog>), CommonErrors))]
pub async fn destinations(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Data<DestinationsCatalog>>, ApiError> {
    let (destinations_catalog, pagination) = page(destination_catalog(&state.store)?, &q)?;
    Ok(ok(DestinationsCatalog {
        destinations_catalog,
        pagination,
    }))
}

/// List warehouse types.
///
/// The warehouses sluice can load into; pass an `id` as `metadataId` to `POST /warehouses`.
#[utoipa::path(get, path = "/catalog/warehouses", operation_id = "getWarehousesCatalog", tag = "Catalog", params(PageQuery),
    responses((status = 200, body = Data<WarehousesCatalog>), CommonErrors))]
pub async fn warehouses(
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Data<WarehousesCatalog>>, ApiError> {
    let (warehouses_catalog, pagination) = page(warehouse_types(), &q)?;
    Ok(ok(WarehousesCatalog {
        warehouses_catalog,
        pagination,
    }))
}
