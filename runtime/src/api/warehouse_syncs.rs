//! A warehouse's syncs and selective sync, Segment-shaped: the sync reports (per warehouse and
//! per connected source), running a sync now, and which tables and columns of a source load.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Area, Caller};
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Path, Query};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::Reply;
use super::store::Kind;
use super::warehouses::Warehouse;
use super::{AppState, Data, now, ok};
use crate::dataplane::warehouse::{self, report::SyncReport};
use crate::workspace::SyncOverride;

/// A page of sync reports.
#[derive(Serialize, ToSchema)]
pub struct Syncs {
    /// Reports, newest first (one per source per sync).
    pub reports: Vec<SyncReport>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// What a sync run now did.
#[derive(Serialize, ToSchema)]
pub struct SyncRun {
    /// One report per source that had events staged (none when nothing was staged).
    pub reports: Vec<SyncReport>,
}

/// One table's selective sync setting, as Segment's item.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSync {
    /// The source.
    pub source_id: String,
    /// The table.
    pub collection: String,
    /// The warehouse.
    pub warehouse_id: String,
    /// Whether it loads.
    pub enabled: bool,
    /// Its columns (loaded so far): column -> whether it loads.
    pub properties: BTreeMap<String, bool>,
}

/// A page of a source's tables.
#[derive(Serialize, ToSchema)]
pub struct SelectiveSyncs {
    /// Tables the source has loaded (and tables named by an override), by name.
    pub items: Vec<CollectionSync>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `PATCH /warehouses/{id}/selective-sync`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSelectiveSync {
    /// Settings to apply; each replaces the one of the same source, collection and property.
    pub sync_overrides: Vec<SyncOverride>,
}

/// What `PATCH /warehouses/{id}/selective-sync` did, as Segment's output, with the settings
/// now in force.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectiveSync {
    /// `UPDATED`, or `UNCHANGED` when every override was in force already.
    pub status: &'static str,
    /// Nothing to warn about (Segment's field; always empty).
    pub warnings: Vec<String>,
    /// Every override of the warehouse.
    pub sync_overrides: Vec<SyncOverride>,
}

fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
    write: bool,
) -> Result<Warehouse, ApiError> {
    caller.require(Area::Warehouses, write, Some(id), "warehouse")?;
    Ok(state.store.find(Kind::Warehouse, id)?)
}

fn connected(w: &Warehouse, sid: &str) -> Result<(), ApiError> {
    if w.source_ids.iter().any(|s| s == sid) {
        Ok(())
    } else {
        Err(ApiError::not_found("connected source", sid))
    }
}

/// List a warehouse's syncs.
///
/// Sync reports, newest first: start, end, status, duration, events taken, rows per table and
/// notices (values sent to `discards`, the error of a failed load).
#[utoipa::path(get, path = "/warehouses/{id}/syncs", operation_id = "listSyncsFromWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id"), PageQuery),
    responses((status = 200, body = Data<Syncs>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<Syncs> {
    visible(&state, &caller, &id, false)?;
    let (reports, pagination) = page(state.data_plane.warehouses.reports.list(&id, None)?, &q)?;
    Ok(ok(Syncs {
        reports,
        pagination,
    }))
}

/// List a connected source's syncs.
///
/// The warehouse's sync reports of one source, newest first.
#[utoipa::path(get, path = "/warehouses/{id}/connected-sources/{sourceId}/syncs", operation_id = "listSyncsFromWarehouseAndSource", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id"), ("sourceId" = String, Path, description = "Source id"), PageQuery),
    responses((status = 200, body = Data<Syncs>), CommonErrors))]
pub async fn list_for_source(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Reply<Syncs> {
    visible(&state, &caller, &id, false)?;
    let all = state.data_plane.warehouses.reports.list(&id, Some(&sid))?;
    let (reports, pagination) = page(all, &q)?;
    Ok(ok(Syncs {
        reports,
        pagination,
    }))
}

/// Run a sync now.
///
/// Loads what is staged now (after the sync in progress, if any) and answers with its
/// reports; a failed load is a `FAILED` report, retried later with backoff. sluice's own: the
/// Public API has no such operation. 409 when the warehouse is disabled.
#[utoipa::path(post, path = "/warehouses/{id}/syncs", operation_id = "createSyncForWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id")),
    responses((status = 200, body = Data<SyncRun>), CommonErrors))]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<SyncRun> {
    visible(&state, &caller, &id, true)?;
    let reports = warehouse::sync_now(&state.data_plane, &id).await?;
    Ok(ok(SyncRun { reports }))
}

/// List a connected source's selective sync settings.
///
/// The tables the source has loaded into the warehouse (and any an override names), each
/// with its columns and whether it loads.
#[utoipa::path(get, path = "/warehouses/{id}/connected-sources/{sourceId}/selective-syncs", operation_id = "listSelectiveSyncsFromWarehouseAndSource", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id"), ("sourceId" = String, Path, description = "Source id"), PageQuery),
    responses((status = 200, body = Data<SelectiveSyncs>), CommonErrors))]
pub async fn selective_syncs(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Reply<SelectiveSyncs> {
    let w = visible(&state, &caller, &id, false)?;
    connected(&w, &sid)?;
    let mut known = state.data_plane.warehouses.reports.collections(&id, &sid)?;
    for o in w.sync_overrides.iter().filter(|o| o.source_id == sid) {
        if let Some(c) = &o.collection {
            let columns = known.entry(c.clone()).or_default();
            if let Some(p) = o.property.as_ref().filter(|p| !columns.contains(p)) {
                columns.push(p.clone());
            }
        }
    }
    let items = known
        .into_iter()
        .map(|(collection, columns)| CollectionSync {
            enabled: w.syncs(&sid, Some(collection.as_str()), None),
            properties: columns
                .into_iter()
                .map(|name| {
                    let enabled = w.syncs(&sid, Some(collection.as_str()), Some(name.as_str()));
                    (name, enabled)
                })
                .collect(),
            source_id: sid.clone(),
            collection,
            warehouse_id: id.clone(),
        })
        .collect();
    let (items, pagination) = page(items, &q)?;
    Ok(ok(SelectiveSyncs { items, pagination }))
}

/// Update selective sync.
///
/// Turns a connected source, one of its tables, or one column of a table off or on for this
/// warehouse. Applies from the next sync on: what was left out is not backfilled.
#[utoipa::path(patch, path = "/warehouses/{id}/selective-sync", operation_id = "updateSelectiveSyncForWarehouse", tag = "Warehouses",
    params(("id" = String, Path, description = "Warehouse id")), request_body = UpdateSelectiveSync,
    responses((status = 200, body = Data<SelectiveSync>), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateSelectiveSync>,
) -> Reply<SelectiveSync> {
    let current = visible(&state, &caller, &id, true)?;
    for (i, o) in input.sync_overrides.iter().enumerate() {
        if !current.source_ids.contains(&o.source_id) {
            return Err(ApiError::invalid(
                format!("syncOverrides[{i}].sourceId"),
                format!(
                    "source `{}` is not connected to this warehouse: connect it first",
                    o.source_id
                ),
            ));
        }
        if o.property.is_some() && o.collection.is_none() {
            return Err(ApiError::invalid(
                format!("syncOverrides[{i}].collection"),
                "a `property` needs the `collection` it belongs to",
            ));
        }
    }
    let unchanged = input
        .sync_overrides
        .iter()
        .all(|o| current.sync_overrides.contains(o));
    let warehouse = state.store.transact(&caller.actor, |tx| {
        let mut w = tx.find::<Warehouse>(Kind::Warehouse, &id)?;
        for o in &input.sync_overrides {
            w.sync_overrides.retain(|k| {
                (&k.source_id, &k.collection, &k.property)
                    != (&o.source_id, &o.collection, &o.property)
            });
            w.sync_overrides.push(o.clone());
        }
        w.updated_at = now();
        tx.put(Kind::Warehouse, &id, &w)?;
        tx.audit("Selective Sync Updated", "warehouse", &id, &w.name)?;
        Ok(w)
    })?;
    Ok(ok(SelectiveSync {
        status: if unchanged { "UNCHANGED" } else { "UPDATED" },
        warnings: Vec::new(),
        sync_overrides: warehouse.sync_overrides,
    }))
}
