//! Destinations: where a source's events are delivered. Each belongs to exactly one source and
//! has a catalog type whose options its settings are checked against.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller};
use super::catalog::{destination_catalog, normalise_settings, validate_settings};
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Path, Query};
use super::insert_functions::InsertFunctionInstance;
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Reply, catalog_entry, check_name};
use super::store::Kind;
use super::{AppState, Data, created, new_id, now, ok};
use crate::dataplane::deliver::{bury, trace};
use crate::dataplane::observe::{Count, Status};

pub use crate::workspace::Destination;

/// A destination in the envelope.
#[derive(Serialize, ToSchema)]
pub struct DestinationData {
    /// The destination.
    pub destination: Destination,
}

/// A page of destinations.
#[derive(Serialize, ToSchema)]
pub struct Destinations {
    /// Destinations, oldest first.
    pub destinations: Vec<Destination>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /destinations`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDestination {
    /// The source whose events it receives.
    pub source_id: String,
    /// A type from `GET /catalog/destinations` (`webhook`, `file`).
    pub metadata_id: String,
    /// Display name; defaults to the type's name.
    pub name: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// The type's settings (a `webhook` needs `url`).
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
}

/// `PATCH /destinations/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDestination {
    /// New name.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Replaces the settings (checked again).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// Filters of `GET /destinations`.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DestinationQuery {
    /// Only the destinations of this source.
    pub source_id: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// A destination the caller may read (or change), else 404/403.
pub fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
    write: bool,
) -> Result<Destination, ApiError> {
    let destination: Destination = state.store.find(Kind::Destination, id)?;
    caller.require_through_source(write, &destination.source_id, "destination", id)?;
    Ok(destination)
}

/// List destinations.
///
/// Destinations of the sources the token can see, oldest first; `sourceId` narrows to one source.
#[utoipa::path(get, path = "/destinations", operation_id = "listDestinations", tag = "Destinations", params(DestinationQuery, PageQuery),
    responses((status = 200, body = Data<Destinations>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DestinationQuery>,
) -> Reply<Destinations> {
    caller.require_some(Area::Sources, "destinations")?;
    let all: Vec<Destination> = state.store.list(Kind::Destination, "")?;
    let visible = all
        .into_iter()
        .filter(|d| caller.sees(Area::Sources, &d.source_id))
        .filter(|d| q.source_id.as_ref().is_none_or(|s| *s == d.source_id))
        .collect();
    let (destinations, pagination) = page(visible, &q.page)?;
    Ok(ok(Destinations {
        destinations,
        pagination,
    }))
}

/// Create a destination.
///
/// Connects a destination of a catalog type to an existing source. Settings are checked
/// against the type's options: a `webhook` needs an http(s) `url`, a `file` a `path` that is
/// relative, without `..`, and lands inside `<data dir>/files/` (else 422 naming the rule).
#[utoipa::path(post, path = "/destinations", operation_id = "createDestination", tag = "Destinations", request_body = CreateDestination,
    responses((status = 201, body = Data<DestinationData>), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateDestination>,
) -> Created<DestinationData> {
    let meta = catalog_entry(destination_catalog(&state.store)?, &input.metadata_id)?;
    validate_settings(&meta, &input.settings, "settings")?;
    let name = input.name.clone().unwrap_or_else(|| meta.name.to_string());
    check_name(&name, "name")?;
    let missing = || ApiError::missing("sourceId", format!("no source `{}`", input.source_id));
    match caller.require(Area::Sources, true, Some(&input.source_id), "source") {
        Err(ApiError::NotFound(_)) => return Err(missing()),
        other => other?,
    }
    let at = now();
    let destination = Destination {
        id: new_id(),
        name,
        enabled: input.enabled.unwrap_or(true),
        metadata: (&meta).into(),
        source_id: input.source_id.clone(),
        settings: normalise_settings(&meta, input.settings.clone()),
        created_at: at.clone(),
        updated_at: at,
    };
    state.store.transact(&caller.actor, |tx| {
        // Checked inside the transaction so a concurrent source delete cannot orphan it.
        if tx
            .get::<Value>(Kind::Source, &destination.source_id)?
            .is_none()
        {
            return Err(missing().into());
        }
        tx.put(Kind::Destination, &destination.id, &destination)?;
        tx.audit(
            "Integration Created",
            "destination",
            &destination.id,
            &destination.name,
        )
    })?;
    Ok(created(DestinationData { destination }))
}

/// Get a destination.
///
/// One destination with its settings.
#[utoipa::path(get, path = "/destinations/{id}", operation_id = "getDestination", tag = "Destinations", params(("id" = String, Path, description = "Destination id")),
    responses((status = 200, body = Data<DestinationData>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<DestinationData> {
    Ok(ok(DestinationData {
        destination: load(&state, &caller, &id, false)?,
    }))
}

/// Update a destination.
///
/// Changes name, enabled or settings (settings are checked against the type again).
#[utoipa::path(patch, path = "/destinations/{id}", operation_id = "updateDestination", tag = "Destinations", params(("id" = String, Path, description = "Destination id")),
    request_body = UpdateDestination, responses((status = 200, body = Data<DestinationData>), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateDestination>,
) -> Reply<DestinationData> {
    let current = load(&state, &caller, &id, true)?;
    let settings = match input.settings.clone() {
        Some(settings) => {
            let meta = catalog_entry(destination_catalog(&state.store)?, &current.metadata.id)?;
            validate_settings(&meta, &settings, "settings")?;
            Some(normalise_settings(&meta, settings))
        }
        None => None,
    };
    if let Some(name) = &input.name {
        check_name(name, "name")?;
    }
    let destination = state.store.transact(&caller.actor, |tx| {
        let mut d: Destination = tx.find(Kind::Destination, &id)?;
        if let Some(name) = &input.name {
            d.name = name.clone();
        }
        if let Some(enabled) = input.enabled {
            d.enabled = enabled;
        }
        if let Some(settings) = &settings {
            d.settings = settings.clone();
        }
        d.updated_at = now();
        tx.put(Kind::Destination, &id, &d)?;
        tx.audit("Integration Modified", "destination", &id, &d.name)?;
        Ok(d)
    })?;
    Ok(ok(DestinationData { destination }))
}

/// Options of `DELETE /destinations/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete even though events are queued for it: they are moved to its dead letters (still
    /// listed by `GET /destinations/{id}/failed-events`). Default false: 409 naming the count.
    pub force: Option<bool>,
}

/// What a deletion did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationDeleted {
    /// Always `SUCCESS`.
    pub status: &'static str,
    /// Queued events moved to the destination's dead letters (with `force=true`).
    pub dead_lettered: usize,
}

/// Delete a destination.
///
/// Stops delivery to it and removes it, with the insert function instances attached to it.
/// When events are queued for it (waiting for a retry), the deletion is refused (409 naming
/// how many) unless `force=true`, which moves them to its dead letters first (an audit event
/// `Destination Events Dead-Lettered`, its `failed` delivery count and
/// `sluice_events_failed_total` say how many); they stay
/// listed by `GET /destinations/{id}/failed-events`. Events still in flight in the delivery
/// log are counted as `dropped` in the delivery metrics.
#[utoipa::path(delete, path = "/destinations/{id}", operation_id = "deleteDestination", tag = "Destinations", params(("id" = String, Path, description = "Destination id"), DeleteQuery),
    responses((status = 200, body = Data<DestinationDeleted>), (status = 409, body = super::error::ErrorBody), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Reply<DestinationDeleted> {
    let current = load(&state, &caller, &id, true)?;
    let plane = state.data_plane.clone();
    let (parked, destination_id) = (plane.parked.clone(), id.clone());
    let queued = tokio::task::spawn_blocking(move || parked.retries_of(&destination_id))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !queued.is_empty() && q.force != Some(true) {
        return Err(ApiError::Conflict(format!(
            "destination `{id}` has {} events queued for delivery (waiting for a retry); \
             delete it with `?force=true` (`sluice destinations delete --force`) to move them \
             to its dead letters, or fix the destination and let them deliver",
            queued.len()
        )));
    }
    let reason = "the destination was deleted (forced) while this event was queued";
    for (seq, retry) in &queued {
        let delivery = retry.delivery();
        // The debugger's `deliver: failed` stage and `sluice_events_failed_total`.
        let one = std::slice::from_ref(&delivery);
        trace(&plane, one, retry.attempts, Status::Failed, Some(reason));
        bury(&plane, Some(*seq), &delivery, retry.attempts, reason)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    plane
        .observe
        .count_many(&id, Count::Failed, queued.len() as u64);
    if !queued.is_empty() {
        tracing::warn!(destination = %id, events = queued.len(),
            "destination deleted with queued events; they are dead letters now");
    }
    // Its insert function instances go with it (found first: sled transactions cannot scan).
    let attached: Vec<InsertFunctionInstance> = state.store.list(Kind::InsertFunction, "")?;
    let attached: Vec<InsertFunctionInstance> = attached
        .into_iter()
        .filter(|i| i.integration_id == id)
        .collect();
    state.store.transact(&caller.actor, |tx| {
        let d: Destination = tx.find(Kind::Destination, &id)?;
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
        if !queued.is_empty() {
            let what = format!(
                "{} ({} queued events moved to dead letters)",
                current.name,
                queued.len()
            );
            tx.audit(
                "Destination Events Dead-Lettered",
                "destination",
                &id,
                &what,
            )?;
        }
        tx.remove(Kind::Destination, &id)?;
        tx.audit("Integration Deleted", "destination", &id, &d.name)
    })?;
    Ok(ok(DestinationDeleted {
        status: "SUCCESS",
        dead_lettered: queued.len(),
    }))
}
