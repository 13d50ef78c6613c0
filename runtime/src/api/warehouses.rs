//! Warehouses: where sources' events are loaded for analysis. Warehouses and sources are
//! many-to-many.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::{Area, Caller};
use super::catalog::{validate_settings, warehouse_types};
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Path, Query};
use super::insert_functions::MASK;
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, catalog_entry, check_name, deleted};
use super::sources::{Source, visible_sources};
use super::store::Kind;
use super::{AppState, Data, created, new_id, now, ok};
use crate::dataplane::warehouse;

pub use crate::workspace::Warehouse;

/// A warehouse in the envelope.
#[derive(Serialize, ToSchema)]
pub struct WarehouseData {
    /// The warehouse.
    pub warehouse: Warehouse,
}

/// A page of warehouses.
#[derive(Serialize, ToSchema)]
pub struct Warehouses {
    /// Warehouses, oldest first.
    pub warehouses: Vec<Warehouse>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /warehouses`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWarehouse {
    /// A type from `GET /catalog/warehouses` (`postgres`, `duckdb`).
    pub metadata_id: String,
    /// Display name; defaults to the type's name.
    pub name: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Connection settings.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// `PATCH /warehouses/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWarehouse {
    /// New name.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Replaces the settings (checked again).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// Whether sluice can reach the warehouse (Segment's `connectionState`; sluice adds the
/// reason).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionState {
    /// `CONNECTED` or `FAILED`.
    pub connection_state: &'static str,
    /// Why, when it failed.
    pub reason: Option<String>,
}

/// A page of sources.
#[derive(Serialize, ToSchema)]
pub struct WarehouseSources {
    /// Connected sources.
    pub sources: Vec<Source>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// Settings no answer shows: their value reads as [`MASK`]; sent back unchanged in an update,
/// the mask keeps the stored value.
const SENSITIVE: &[&str] = &["password"];

/// `w` as answers show it: sensitive settings masked. Cost: a look-up per sensitive name.
pub(super) fn shown(mut w: Warehouse) -> Warehouse {
    for name in SENSITIVE {
        if let Some(v) = w.settings.get_mut(*name)
            && !v.is_null()
        {
            *v = Value::String(MASK.into());
        }
    }
    w
}

/// `settings` with every masked sensitive value replaced by the one `stored` has.
fn keep_secrets(
    mut settings: Map<String, Value>,
    stored: &Map<String, Value>,
) -> Map<String, Value> {
    for name in SENSITIVE {
        if settings.get(*name).and_then(Value::as_str) == Some(MASK)
            && let Some(secret) = stored.get(*name)
        {
            settings.insert((*name).to_string(), secret.clone());
        }
    }
    settings
}

fn load(state: &AppState, caller: &Caller, id: &str, write: bool) -> Result<Warehouse, ApiError> {
    caller.require(Area::Warehouses, write, Some(id), "warehouse")?;
    state
        .store
        .find(Kind::Warehouse, id)
        .map_err(ApiError::from)
}

/// List warehouses.
///
/// Every warehouse the token can see, oldest first.
#[utoipa::path(get, path = "/warehouses", operation_id = "listWarehouses", tag = "Warehouses", params(PageQuery),
    responses((status = 200, body = Data<Warehouses>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Reply<Warehouses> {
    caller.require_some(Area::Warehouses, "warehouses")?;
    let all: Vec<Warehouse> = state.store.list(Kind::Warehouse, "")?;
    let (warehouses, pagination) = page(
        all.into_iter()
            .filter(|w| caller.sees(Area::Warehouses, &w.id))
            .map(shown)
            .collect(),
        &q,
    )?;
    Ok(ok(Warehouses {
        warehouses,
        pagination,
    }))
}

/// Create a warehouse.
///
/// A warehouse of a catalog type; `postgres` needs `hostname`, `database` and `username`.
#[utoipa::path(post, path = "/warehouses", operation_id = "createWarehouse", tag = "Warehouses", request_body = CreateWarehouse,
    responses((status = 201, body = Data<WarehouseData>), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateWarehouse>,
) -> Created<WarehouseData> {
    caller.require(Area::Warehouses, true, None, "warehouse")?;
    let meta = catalog_entry(warehouse_types(), &input.metadata_id)?;
    let settings = input.settings.clone().unwrap_or_default();
    validate_settings(&meta, &settings, "settings")?;
    let name = input.name.clone().unwrap_or_else(|| meta.name.to_string());
    check_name(&name, "name")?;
    let at = now();
    let warehouse = Warehouse {
        id: new_id(),
        name,
        metadata: (&meta).into(),
        workspace_id: "default".into(),
        enabled: input.enabled.unwrap_or(true),
        settings,
        source_ids: vec![],
        sync_overrides: vec![],
        created_at: at.clone(),
        updated_at: at,
    };
    state.store.transact(&caller.actor, |tx| {
        tx.put(Kind::Warehouse, &warehouse.id, &warehouse)?;
        tx.audit(
            "Storage Destination Created",
            "warehouse",
            &warehouse.id,
            &warehouse.name,
        )
    })?;
    Ok(created(WarehouseData {
        warehouse: shown(warehouse),
    }))
}

/// Get a warehouse.
///
/// One warehouse with its settings and connected sources.
#[utoipa::path(get, path = "/warehouses/{id}", operation_id = "getWarehouse", tag = "Warehouses", params(("id" = String, Path, description = "Warehouse id")),
    responses((status = 200, body = Data<WarehouseData>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<WarehouseData> {
    Ok(ok(WarehouseData {
        warehouse: shown(load(&state, &caller, &id, false)?),
    }))
}

/// Update a warehouse.
///
/// Changes name, enabled or settings.
#[utoipa::path(patch, path = "/warehouses/{id}", operation_id = "updateWarehouse", tag = "Warehouses", params(("id" = String, Path, description = "Warehouse id")),
    request_body = UpdateWarehouse, responses((status = 200, body = Data<WarehouseData>), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateWarehouse>,
) -> Reply<WarehouseData> {
    let current = load(&state, &caller, &id, true)?;
    if let Some(settings) = &input.settings {
        validate_settings(
            &catalog_entry(warehouse_types(), &current.metadata.id)?,
            settings,
            "settings",
        )?;
    }
    if let Some(name) = &input.name {
        check_name(name, "name")?;
    }
    let warehouse = state.store.transact(&caller.actor, |tx| {
        let mut w = tx.find::<Warehouse>(Kind::Warehouse, &id)?;
        if let Some(name) = &input.name {
            w.name = name.clone();
        }
        if let Some(enabled) = input.enabled {
            w.enabled = enabled;
        }
        if let Some(settings) = &input.settings {
            w.settings = keep_secrets(settings.clone(), &w.settings);
        }
        w.updated_at = now();
        tx.put(Kind::Warehouse, &id, &w)?;
        tx.audit("Storage Destination Modified", "warehouse", &id, &w.name)?;
        Ok(w)
    })?;
    Ok(ok(WarehouseData {
        warehouse: shown(warehouse),
    }))
}

/// Delete a warehouse.
///
/// Disconnects its sources and deletes it.
#[utoipa::path(delete, path = "/warehouses/{id}", operation_id = "deleteWarehouse", tag = "Warehouses", params(("id" = String, Path, description = "Warehouse id")),
    responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    load(&state, &caller, &id, true)?;
    state.store.transact(&caller.actor, |tx| {
        let w = tx.find::<Warehouse>(Kind::Warehouse, &id)?;
        tx.remove(Kind::Warehouse, &id)?;
        tx.audit("Storage Destination Deleted", "warehouse", &id, &w.name)
    })?;
    Ok(deleted())
}

/// Get a warehouse's connection state.
///
/// Connects to the warehouse now (PostgreSQL: a connection and `SELECT 1`; DuckDB: opening
/// its file, between syncs): `CONNECTED`, or `FAILED` with the database's error.
#[utoipa::path(get, path = "/warehouses/{id}/connection-state", operation_id = "getConnectionStateFromWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id")),
    responses((status = 200, body = Data<ConnectionState>), CommonErrors))]
pub async fn connection_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<ConnectionState> {
    load(&state, &caller, &id, false)?;
    Ok(ok(match warehouse::check(&state.data_plane, &id).await? {
        Ok(()) => ConnectionState {
            connection_state: "CONNECTED",
            reason: None,
        },
        Err(e) => ConnectionState {
            connection_state: "FAILED",
            reason: Some(e.to_string()),
        },
    }))
}

/// List a warehouse's sources.
///
/// The sources whose events load into this warehouse.
#[utoipa::path(get, path = "/warehouses/{id}/connected-sources", operation_id = "listConnectedSourcesFromWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id"), PageQuery),
    responses((status = 200, body = Data<WarehouseSources>), CommonErrors))]
pub async fn connected_sources(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<WarehouseSources> {
    let w = load(&state, &caller, &id, false)?;
    let sources = visible_sources(&state, &caller, &w.source_ids)?;
    let (sources, pagination) = page(sources, &q)?;
    Ok(ok(WarehouseSources {
        sources,
        pagination,
    }))
}

/// Connect a source to a warehouse.
///
/// The source's events start loading into the warehouse. Connecting twice changes nothing.
#[utoipa::path(post, path = "/warehouses/{id}/connected-sources/{sourceId}", operation_id = "addConnectionFromSourceToWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id"), ("sourceId" = String, Path, description = "Source id")),
    responses((status = 200, body = Data<WarehouseData>), CommonErrors))]
pub async fn connect_source(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
) -> Reply<WarehouseData> {
    link(&state, &caller, &id, &sid, true)
}

/// Disconnect a source from a warehouse.
///
/// The source's events stop loading into the warehouse.
#[utoipa::path(delete, path = "/warehouses/{id}/connected-sources/{sourceId}", operation_id = "removeSourceConnectionFromWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id"), ("sourceId" = String, Path, description = "Source id")),
    responses((status = 200, body = Data<WarehouseData>), CommonErrors))]
pub async fn disconnect_source(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
) -> Reply<WarehouseData> {
    link(&state, &caller, &id, &sid, false)
}

fn link(
    state: &AppState,
    caller: &Caller,
    id: &str,
    sid: &str,
    connect: bool,
) -> Reply<WarehouseData> {
    load(state, caller, id, true)?;
    if !caller.sees(Area::Sources, sid) {
        return Err(ApiError::not_found("source", sid));
    }
    let warehouse = state.store.transact(&caller.actor, |tx| {
        let mut w = tx.find::<Warehouse>(Kind::Warehouse, id)?;
        let source: Source = tx.find(Kind::Source, sid)?;
        let connected = w.source_ids.iter().any(|s| s == sid);
        if connect == connected {
            if connect {
                return Ok(w);
            }
            return Err(ApiError::not_found("connected source", sid).into());
        }
        if connect {
            w.source_ids.push(sid.to_string());
        } else {
            w.source_ids.retain(|s| s != sid);
        }
        w.updated_at = now();
        tx.put(Kind::Warehouse, id, &w)?;
        let kind = if connect {
            "Source Connected to Warehouse"
        } else {
            "Source Disconnected from Warehouse"
        };
        tx.audit(
            kind,
            "warehouse",
            id,
            &format!("{} <- {}", w.name, source.name),
        )?;
        Ok(w)
    })?;
    Ok(ok(WarehouseData {
        warehouse: shown(warehouse),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_masked_password_keeps_the_stored_one_and_a_new_one_replaces_it() {
        let stored = json!({"hostname": "db", "password": "s3cret"});
        let stored = stored.as_object().cloned().unwrap_or_default();
        let masked = json!({"hostname": "db2", "password": MASK});
        let kept = keep_secrets(masked.as_object().cloned().unwrap_or_default(), &stored);
        assert_eq!(kept["password"], "s3cret");
        assert_eq!(kept["hostname"], "db2");
        let new = json!({"password": "n3w"});
        let replaced = keep_secrets(new.as_object().cloned().unwrap_or_default(), &stored);
        assert_eq!(replaced["password"], "n3w");
    }
}
