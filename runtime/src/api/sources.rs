//! Sources: where events come from. Each has write keys (the data plane's credentials), schema
//! enforcement settings, labels, and at most one tracking plan.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller};
use super::catalog::{is_function, normalise_settings, source_catalog, validate_settings};
use super::destinations::Destination;
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Path, Query};
use super::insert_functions::InsertFunctionInstance;
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{
    Created, Deleted, Label, Reply, catalog_entry, check_name, check_slug, deleted,
};
use super::store::Kind;
use super::tracking_plans::TrackingPlan;
use super::warehouses::Warehouse;
use super::{AppState, Data, created, new_id, now, ok};

pub use crate::workspace::source::{
    SchemaSettings, Source, TrackOnViolation, TrackSettings, TraitSettings, TraitsOnViolation,
};

/// `GET /sources/{id}`'s body.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceWithPlan {
    /// The source.
    pub source: Source,
    /// Its tracking plan, if one is connected.
    pub tracking_plan_id: Option<String>,
}

/// The source after a change.
#[derive(Serialize, ToSchema)]
pub struct SourceData {
    /// The source.
    pub source: Source,
}

/// A page of sources.
#[derive(Serialize, ToSchema)]
pub struct Sources {
    /// Sources, oldest first.
    pub sources: Vec<Source>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /sources`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSource {
    /// Unique slug (a-z, 0-9, `-`, `_`).
    pub slug: String,
    /// Whether it accepts events.
    pub enabled: bool,
    /// A source type from `GET /catalog/sources` (`http`, `javascript`, `ios`, `android`,
    /// `server`, or a deployed source function's id).
    pub metadata_id: String,
    /// Display name; defaults to the slug.
    pub name: Option<String>,
    /// Type-specific settings (a source function's: its declared settings, checked).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// `PATCH /sources/{id}`: only the fields given change.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSource {
    /// New slug.
    pub slug: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Replaces the settings.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// `POST /sources/{id}/labels` and `PUT`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Labels to add (POST) or the full set (PUT).
    pub labels: Vec<Label>,
}

fn write_key() -> Result<String, ApiError> {
    let secret = super::auth::new_secret()?;
    Ok(secret.trim_start_matches("sl_").chars().take(32).collect())
}

/// The sources among `ids` that still exist and that `caller` may see, in the order given:
/// what a tracking plan or a warehouse lists as its connected sources.
pub fn visible_sources(
    state: &AppState,
    caller: &Caller,
    ids: &[String],
) -> Result<Vec<Source>, ApiError> {
    let mut sources = Vec::new();
    for id in ids {
        if caller.sees(Area::Sources, id)
            && let Some(source) = state.store.get::<Source>(Kind::Source, id)?
        {
            sources.push(source);
        }
    }
    Ok(sources)
}

/// A source the caller may read, else 404 (or 403).
pub fn load(state: &AppState, caller: &Caller, id: &str, write: bool) -> Result<Source, ApiError> {
    caller.require(Area::Sources, write, Some(id), "source")?;
    state.store.find(Kind::Source, id).map_err(ApiError::from)
}

/// Filters of `GET /sources`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SourceFilter {
    /// Only the source with this slug: an agent or a script finds a source by the name it gave
    /// it without paging through every source (an empty list when there is none).
    #[param(example = "ios-app")]
    pub slug: Option<String>,
}

/// List sources.
///
/// Every source the token can see, oldest first, with write keys and settings; `slug` looks
/// one up by its slug.
#[utoipa::path(get, path = "/sources", operation_id = "listSources", tag = "Sources", params(SourceFilter, PageQuery),
    responses((status = 200, description = "A page of sources", body = Data<Sources>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<SourceFilter>,
    Query(q): Query<PageQuery>,
) -> Reply<Sources> {
    caller.require_some(Area::Sources, "sources")?;
    let all: Vec<Source> = match &filter.slug {
        // The slug index answers without reading every source.
        Some(slug) => match state.store.index(&format!("slug:source:{slug}"))? {
            Some(id) => state.store.get(Kind::Source, &id)?.into_iter().collect(),
            None => Vec::new(),
        },
        None => state.store.list(Kind::Source, "")?,
    };
    let visible = all
        .into_iter()
        .filter(|s| caller.sees(Area::Sources, &s.id))
        .collect();
    let (sources, pagination) = page(visible, &q)?;
    Ok(ok(Sources {
        sources,
        pagination,
    }))
}

/// Create a source.
///
/// Creates a source of a catalog type and generates its first write key, which clients send
/// events with. The slug must be unique (409 otherwise).
#[utoipa::path(post, path = "/sources", operation_id = "createSource", tag = "Sources", request_body = CreateSource,
    responses((status = 201, body = Data<SourceData>), (status = 409, body = super::error::ErrorBody), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateSource>,
) -> Created<SourceData> {
    caller.require(Area::Sources, true, None, "source")?;
    check_slug(&input.slug, "slug")?;
    let name = input.name.clone().unwrap_or_else(|| input.slug.clone());
    check_name(&name, "name")?;
    let meta = catalog_entry(source_catalog(&state.store)?, &input.metadata_id)?;
    let settings = input.settings.clone().unwrap_or_default();
    let settings = if is_function(&meta) {
        // A source function's instance: its settings are the function's declared ones.
        validate_settings(&meta, &settings, "settings")?;
        normalise_settings(&meta, settings)
    } else {
        settings
    };
    let at = now();
    let source = Source {
        id: new_id(),
        slug: input.slug.clone(),
        name,
        metadata: (&meta).into(),
        workspace_id: "default".into(),
        enabled: input.enabled,
        write_keys: vec![write_key()?],
        settings,
        labels: vec![],
        schema_settings: SchemaSettings::default(),
        created_at: at.clone(),
        updated_at: at,
    };
    state.store.transact(&caller.actor, |tx| {
        let slug_key = format!("slug:source:{}", source.slug);
        if tx.index(&slug_key)?.is_some() {
            return Err(ApiError::Conflict(format!(
                "a source with slug `{}` already exists",
                source.slug
            ))
            .into());
        }
        tx.set_index(&slug_key, &source.id)?;
        for key in &source.write_keys {
            tx.set_index(&format!("writekey:{key}"), &source.id)?;
        }
        tx.put(Kind::Source, &source.id, &source)?;
        tx.audit("Source Created", "source", &source.id, &source.name)
    })?;
    Ok(created(SourceData { source }))
}

/// Get a source.
///
/// The source and the id of the tracking plan connected to it, if any.
#[utoipa::path(get, path = "/sources/{id}", operation_id = "getSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = Data<SourceWithPlan>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<SourceWithPlan> {
    let source = load(&state, &caller, &id, false)?;
    let tracking_plan_id = state.store.index(&format!("plan:{id}"))?;
    Ok(ok(SourceWithPlan {
        source,
        tracking_plan_id,
    }))
}

/// Update a source.
///
/// Changes the fields given (slug, name, enabled, settings); others stay as they are.
#[utoipa::path(patch, path = "/sources/{id}", operation_id = "updateSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    request_body = UpdateSource,
    responses((status = 200, body = Data<SourceData>), (status = 409, body = super::error::ErrorBody), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateSource>,
) -> Reply<SourceData> {
    let current = load(&state, &caller, &id, true)?;
    if let Some(settings) = &input.settings {
        check_function_settings(&state, &current, settings)?;
    }
    if let Some(slug) = &input.slug {
        check_slug(slug, "slug")?;
    }
    if let Some(name) = &input.name {
        check_name(name, "name")?;
    }
    let source = state.store.transact(&caller.actor, |tx| {
        let mut source = tx.find::<Source>(Kind::Source, &id)?;
        if let Some(slug) = &input.slug
            && *slug != source.slug
        {
            let key = format!("slug:source:{slug}");
            if tx.index(&key)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "a source with slug `{slug}` already exists"
                ))
                .into());
            }
            tx.unset_index(&format!("slug:source:{}", source.slug))?;
            tx.set_index(&key, &id)?;
            source.slug = slug.clone();
        }
        if let Some(name) = &input.name {
            source.name = name.clone();
        }
        if let Some(enabled) = input.enabled {
            source.enabled = enabled;
        }
        if let Some(settings) = &input.settings {
            source.settings = settings.clone();
        }
        source.updated_at = now();
        tx.put(Kind::Source, &id, &source)?;
        tx.audit("Source Modified", "source", &id, &source.name)?;
        Ok(source)
    })?;
    Ok(ok(SourceData { source }))
}

/// Checks new `settings` of `source` when it is a source function's instance (against the
/// function's declared settings); other sources' settings are free-form.
fn check_function_settings(
    state: &AppState,
    source: &Source,
    settings: &Map<String, Value>,
) -> Result<(), ApiError> {
    let meta = source_catalog(&state.store)?
        .into_iter()
        .find(|m| m.id == source.metadata.id && is_function(m));
    match meta {
        Some(meta) => validate_settings(&meta, settings, "settings"),
        None => Ok(()),
    }
}

/// Delete a source.
///
/// Deletes the source with its destinations and the insert function instances attached to it,
/// revokes its write keys, and disconnects it from its tracking plan and warehouses.
#[utoipa::path(delete, path = "/sources/{id}", operation_id = "deleteSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    load(&state, &caller, &id, true)?;
    // sled transactions cannot scan, so the dependants are found first and removed inside.
    let destinations: Vec<Destination> = state
        .store
        .list::<Destination>(Kind::Destination, "")?
        .into_iter()
        .filter(|d| d.source_id == id)
        .collect();
    let attached: Vec<InsertFunctionInstance> = state
        .store
        .list::<InsertFunctionInstance>(Kind::InsertFunction, "")?
        .into_iter()
        .filter(|i| i.integration_id == id || destinations.iter().any(|d| d.id == i.integration_id))
        .collect();
    let warehouses: Vec<String> = state
        .store
        .list::<Warehouse>(Kind::Warehouse, "")?
        .into_iter()
        .filter(|w| w.source_ids.contains(&id))
        .map(|w| w.id)
        .collect();
    state.store.transact(&caller.actor, |tx| {
        let source = tx.find::<Source>(Kind::Source, &id)?;
        tx.unset_index(&format!("slug:source:{}", source.slug))?;
        for key in &source.write_keys {
            tx.unset_index(&format!("writekey:{key}"))?;
        }
        if let Some(plan_id) = tx.index(&format!("plan:{id}"))?
            && let Some(mut plan) = tx.get::<TrackingPlan>(Kind::TrackingPlan, &plan_id)?
        {
            plan.source_ids.retain(|s| *s != id);
            tx.put(Kind::TrackingPlan, &plan_id, &plan)?;
        }
        tx.unset_index(&format!("plan:{id}"))?;
        for destination in &destinations {
            if tx.remove(Kind::Destination, &destination.id)? {
                tx.audit(
                    "Integration Deleted",
                    "destination",
                    &destination.id,
                    &destination.name,
                )?;
            }
        }
        for instance in &attached {
            if tx.remove(Kind::InsertFunction, &instance.id)? {
                tx.audit(
                    "Insert Function Instance Deleted",
                    "insert_function_instance",
                    &instance.id,
                    &instance.name,
                )?;
            }
        }
        for wid in &warehouses {
            if let Some(mut warehouse) = tx.get::<Warehouse>(Kind::Warehouse, wid)? {
                warehouse.source_ids.retain(|s| *s != id);
                tx.put(Kind::Warehouse, wid, &warehouse)?;
            }
        }
        tx.remove(Kind::Source, &id)?;
        tx.audit("Source Deleted", "source", &id, &source.name)
    })?;
    Ok(deleted())
}

/// A page of destinations.
#[derive(Serialize, ToSchema)]
pub struct ConnectedDestinations {
    /// Destinations of the source.
    pub destinations: Vec<Destination>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// List a source's destinations.
///
/// The destinations that receive this source's events.
#[utoipa::path(get, path = "/sources/{id}/connected-destinations", operation_id = "listConnectedDestinationsFromSource", tag = "Sources",
    params(("id" = String, Path, description = "Source id"), PageQuery),
    responses((status = 200, body = Data<ConnectedDestinations>), CommonErrors))]
pub async fn connected_destinations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<ConnectedDestinations> {
    load(&state, &caller, &id, false)?;
    let all: Vec<Destination> = state.store.list(Kind::Destination, "")?;
    let (destinations, pagination) =
        page(all.into_iter().filter(|d| d.source_id == id).collect(), &q)?;
    Ok(ok(ConnectedDestinations {
        destinations,
        pagination,
    }))
}

/// A page of warehouses.
#[derive(Serialize, ToSchema)]
pub struct ConnectedWarehouses {
    /// Warehouses loading this source.
    pub warehouses: Vec<Warehouse>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// List a source's warehouses.
///
/// The warehouses this source's events are loaded into.
#[utoipa::path(get, path = "/sources/{id}/connected-warehouses", operation_id = "listConnectedWarehousesFromSource", tag = "Sources",
    params(("id" = String, Path, description = "Source id"), PageQuery),
    responses((status = 200, body = Data<ConnectedWarehouses>), CommonErrors))]
pub async fn connected_warehouses(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<ConnectedWarehouses> {
    load(&state, &caller, &id, false)?;
    let all: Vec<Warehouse> = state.store.list(Kind::Warehouse, "")?;
    let (warehouses, pagination) = page(
        all.into_iter()
            .filter(|w| w.source_ids.contains(&id))
            .map(super::warehouses::shown)
            .collect(),
        &q,
    )?;
    Ok(ok(ConnectedWarehouses {
        warehouses,
        pagination,
    }))
}

/// Get a source's schema settings.
///
/// How the source's tracking plan is enforced: unplanned events and properties, violations,
/// where violations and blocked events are forwarded.
#[utoipa::path(get, path = "/sources/{id}/settings", operation_id = "listSchemaSettingsInSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = Data<SchemaSettings>), CommonErrors))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<SchemaSettings> {
    Ok(ok(load(&state, &caller, &id, false)?.schema_settings))
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// Update a source's schema settings.
///
/// Merges the fields given into the current settings (JSON merge); forwarding targets must be
/// existing sources.
#[utoipa::path(patch, path = "/sources/{id}/settings", operation_id = "updateSchemaSettingsInSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    request_body = Object,
    responses((status = 200, body = Data<SchemaSettings>), CommonErrors))]
pub async fn patch_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(patch): Json<Value>,
) -> Reply<SchemaSettings> {
    let source = load(&state, &caller, &id, true)?;
    if !patch.is_object() {
        return Err(ApiError::invalid(".", "the body must be a JSON object"));
    }
    let mut merged = serde_json::to_value(&source.schema_settings)?;
    merge(&mut merged, patch);
    let settings: SchemaSettings = super::extract::parse(&serde_json::to_vec(&merged)?)?;
    for (field, target) in [
        ("forwardingViolationsTo", &settings.forwarding_violations_to),
        (
            "forwardingBlockedEventsTo",
            &settings.forwarding_blocked_events_to,
        ),
    ] {
        if let Some(target) = target
            && state.store.get::<Source>(Kind::Source, target)?.is_none()
        {
            return Err(ApiError::missing(
                field,
                format!("no source `{target}` to forward to"),
            ));
        }
    }
    let settings = state.store.transact(&caller.actor, |tx| {
        let mut source = tx.find::<Source>(Kind::Source, &id)?;
        source.schema_settings = settings.clone();
        source.updated_at = now();
        tx.put(Kind::Source, &id, &source)?;
        tx.audit("Source Settings Modified", "source", &id, &source.name)?;
        Ok(source.schema_settings)
    })?;
    Ok(ok(settings))
}

fn change_labels(
    state: &AppState,
    caller: &Caller,
    id: &str,
    labels: Vec<Label>,
    replace: bool,
) -> Reply<SourceData> {
    load(state, caller, id, true)?;
    for (i, label) in labels.iter().enumerate() {
        if label.key.trim().is_empty() {
            return Err(ApiError::invalid(
                format!("labels[{i}].key"),
                "a label needs a key",
            ));
        }
    }
    let source = state.store.transact(&caller.actor, |tx| {
        let mut source = tx.find::<Source>(Kind::Source, id)?;
        if replace {
            source.labels.clear();
        }
        for label in &labels {
            source.labels.retain(|l| l.key != label.key);
            source.labels.push(label.clone());
        }
        source.updated_at = now();
        tx.put(Kind::Source, id, &source)?;
        tx.audit("Source Modified", "source", id, &source.name)?;
        Ok(source)
    })?;
    Ok(ok(SourceData { source }))
}

/// Add labels to a source.
///
/// Adds labels (a label with an existing key replaces it).
#[utoipa::path(post, path = "/sources/{id}/labels", operation_id = "addLabelsToSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    request_body = Labels, responses((status = 200, body = Data<SourceData>), CommonErrors))]
pub async fn add_labels(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Labels>,
) -> Reply<SourceData> {
    change_labels(&state, &caller, &id, input.labels, false)
}

/// Replace a source's labels.
///
/// Sets the source's labels to exactly these.
#[utoipa::path(put, path = "/sources/{id}/labels", operation_id = "replaceLabelsInSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    request_body = Labels, responses((status = 200, body = Data<SourceData>), CommonErrors))]
pub async fn replace_labels(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Labels>,
) -> Reply<SourceData> {
    change_labels(&state, &caller, &id, input.labels, true)
}

/// Create a write key.
///
/// Adds a new write key to the source (to rotate keys: create, switch clients, revoke the old one).
#[utoipa::path(post, path = "/sources/{id}/writekey", operation_id = "createWriteKeyForSource", tag = "Sources", params(("id" = String, Path, description = "Source id")),
    responses((status = 200, body = Data<SourceData>), CommonErrors))]
pub async fn create_write_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<SourceData> {
    load(&state, &caller, &id, true)?;
    let key = write_key()?;
    let source = state.store.transact(&caller.actor, |tx| {
        let mut source = tx.find::<Source>(Kind::Source, &id)?;
        source.write_keys.push(key.clone());
        source.updated_at = now();
        tx.set_index(&format!("writekey:{key}"), &id)?;
        tx.put(Kind::Source, &id, &source)?;
        tx.audit("Source Write Key Created", "source", &id, &source.name)?;
        Ok(source)
    })?;
    Ok(ok(SourceData { source }))
}

/// Revoke a write key.
///
/// Removes the write key: events sent with it are refused from now on.
#[utoipa::path(delete, path = "/sources/{id}/writekey/{key}", operation_id = "removeWriteKeyFromSource", tag = "Sources",
    params(("id" = String, Path, description = "Source id"), ("key" = String, Path, description = "The write key")),
    responses((status = 200, body = Data<SourceData>), CommonErrors))]
pub async fn remove_write_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> Reply<SourceData> {
    load(&state, &caller, &id, true)?;
    let source = state.store.transact(&caller.actor, |tx| {
        let mut source = tx.find::<Source>(Kind::Source, &id)?;
        if !source.write_keys.contains(&key) {
            return Err(ApiError::not_found("write key", &key).into());
        }
        source.write_keys.retain(|k| *k != key);
        source.updated_at = now();
        tx.unset_index(&format!("writekey:{key}"))?;
        tx.put(Kind::Source, &id, &source)?;
        tx.audit("Source Write Key Revoked", "source", &id, &source.name)?;
        Ok(source)
    })?;
    Ok(ok(SourceData { source }))
}
