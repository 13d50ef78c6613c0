//! Insert function instances: a function attached to a source (runs before all its
//! destinations) or to one destination, with per-instance settings and an order. Settings the
//! function declares `sensitive` are stored but masked in every response.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller};
use super::destinations::Destination;
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Path, Query};
use super::function_test::check_values;
use super::functions::{Function, FunctionType};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, check_name, deleted};
use super::store::Kind;
use super::{AppState, Data, created, new_id, now, ok};

pub use crate::workspace::{InsertFunctionInstance, InstanceIsolation};

/// What a sensitive setting's value reads as.
pub const MASK: &str = "********";

/// An instance in the envelope.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceData {
    /// The instance.
    pub insert_function_instance: InsertFunctionInstance,
}

/// A page of instances.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instances {
    /// Instances, by integration then order.
    pub insert_function_instances: Vec<InsertFunctionInstance>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /insert-function-instances`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInstance {
    /// An `INSERT_SOURCE` or `INSERT_DESTINATION` function.
    pub function_id: String,
    /// A source id (for `INSERT_SOURCE`) or destination id (for `INSERT_DESTINATION`).
    pub integration_id: String,
    /// Display name; defaults to the function's.
    pub name: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Default: after the integration's other instances.
    #[serde(default, deserialize_with = "crate::workspace::whole::optional")]
    pub order: Option<u32>,
    /// Values of the function's declared settings.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// `POOLED` (default) or `FRESH` (a new sandbox per event).
    pub isolation: Option<InstanceIsolation>,
}

/// `PATCH /insert-function-instances/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInstance {
    /// New name.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New position.
    #[serde(default, deserialize_with = "crate::workspace::whole::optional")]
    pub order: Option<u32>,
    /// Settings to change (merged; a masked value keeps the stored secret).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// `POOLED` or `FRESH` (a new sandbox per event).
    pub isolation: Option<InstanceIsolation>,
}

/// Filters of the list.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// Only instances on this source or destination.
    pub integration_id: Option<String>,
    /// Only instances of this function.
    pub function_id: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

fn masked(
    state: &AppState,
    mut instance: InsertFunctionInstance,
) -> Result<InsertFunctionInstance, ApiError> {
    if let Some(f) = state
        .store
        .get::<Function>(Kind::Function, &instance.function_id)?
    {
        for d in f.settings.iter().filter(|d| d.sensitive) {
            if let Some(v) = instance.settings.get_mut(&d.name)
                && !v.is_null()
            {
                *v = Value::String(MASK.into());
            }
        }
    }
    Ok(instance)
}

fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
    write: bool,
) -> Result<InsertFunctionInstance, ApiError> {
    let instance: InsertFunctionInstance = state.store.find(Kind::InsertFunction, id)?;
    caller.require_through_source(write, &instance.source_id, "insert function instance", id)?;
    Ok(instance)
}

/// List insert function instances.
///
/// Instances on the sources the token can see, by integration and order; filter by
/// `integrationId` or `functionId`.
#[utoipa::path(get, path = "/insert-function-instances", operation_id = "listInsertFunctionInstances", tag = "Functions", params(InstanceQuery, PageQuery),
    responses((status = 200, body = Data<Instances>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InstanceQuery>,
) -> Reply<Instances> {
    caller.require_some(Area::Sources, "insert function instances")?;
    let mut all: Vec<InsertFunctionInstance> = state.store.list(Kind::InsertFunction, "")?;
    all.retain(|i| {
        caller.sees(Area::Sources, &i.source_id)
            && q.integration_id
                .as_ref()
                .is_none_or(|x| *x == i.integration_id)
            && q.function_id.as_ref().is_none_or(|x| *x == i.function_id)
    });
    all.sort_by(|a, b| {
        (&a.integration_id, a.order, &a.id).cmp(&(&b.integration_id, b.order, &b.id))
    });
    let (page_items, pagination) = page(all, &q.page)?;
    let insert_function_instances = page_items
        .into_iter()
        .map(|i| masked(&state, i))
        .collect::<Result<_, _>>()?;
    Ok(ok(Instances {
        insert_function_instances,
        pagination,
    }))
}

/// Attach a function.
///
/// Attaches an `INSERT_SOURCE` function to a source (it runs on the source's events before all
/// its destinations) or an `INSERT_DESTINATION` function to one destination, with values for
/// the function's settings (checked against its declarations; sensitive ones are masked in
/// responses). A function that was never deployed is refused (422 naming `functionId`): it
/// would discard every event.
#[utoipa::path(post, path = "/insert-function-instances", operation_id = "createInsertFunctionInstance", tag = "Functions", request_body = CreateInstance,
    responses((status = 201, body = Data<InstanceData>), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateInstance>,
) -> Created<InstanceData> {
    let function: Function = state
        .store
        .get(Kind::Function, &input.function_id)?
        .filter(|f: &Function| caller.sees(Area::Functions, &f.id))
        .ok_or_else(|| {
            ApiError::missing("functionId", format!("no function `{}`", input.function_id))
        })?;
    let (integration_type, source_id) = if let Some(source) = state
        .store
        .get::<Value>(Kind::Source, &input.integration_id)?
    {
        let _ = source;
        ("SOURCE", input.integration_id.clone())
    } else if let Some(d) = state
        .store
        .get::<Destination>(Kind::Destination, &input.integration_id)?
    {
        ("DESTINATION", d.source_id)
    } else {
        return Err(ApiError::missing(
            "integrationId",
            format!("no source or destination `{}`", input.integration_id),
        ));
    };
    match caller.require(Area::Sources, true, Some(&source_id), "source") {
        Err(ApiError::NotFound(_)) => {
            return Err(ApiError::missing(
                "integrationId",
                format!("no source or destination `{}`", input.integration_id),
            ));
        }
        other => other?,
    }
    let wanted = if integration_type == "SOURCE" {
        FunctionType::InsertSource
    } else {
        FunctionType::InsertDestination
    };
    if function.resource_type != wanted {
        return Err(ApiError::invalid(
            "functionId",
            format!(
                "a {integration_type} takes an {wanted:?} function; this one is {:?}",
                function.resource_type
            ),
        ));
    }
    if function.deployed_version_id.is_none() {
        return Err(ApiError::invalid(
            "functionId",
            format!(
                "function `{}` has never been deployed, so it would discard every event; deploy \
                 it first (`sluice functions deploy`, or `POST /functions/{}/deploy`)",
                function.id, function.id
            ),
        ));
    }
    check_values(&function.settings, &input.settings, "settings")?;
    let name = input
        .name
        .clone()
        .unwrap_or_else(|| function.display_name.clone());
    check_name(&name, "name")?;
    let existing: Vec<InsertFunctionInstance> = state.store.list(Kind::InsertFunction, "")?;
    let next = existing
        .iter()
        .filter(|i| i.integration_id == input.integration_id)
        .map(|i| i.order + 1)
        .max()
        .unwrap_or(0);
    let at = now();
    let instance = InsertFunctionInstance {
        id: new_id(),
        name,
        function_id: function.id.clone(),
        integration_id: input.integration_id.clone(),
        integration_type: integration_type.into(),
        source_id,
        enabled: input.enabled.unwrap_or(true),
        order: input.order.unwrap_or(next),
        settings: input.settings.clone(),
        isolation: input.isolation.unwrap_or_default(),
        created_at: at.clone(),
        updated_at: at,
    };
    state.store.transact(&caller.actor, |tx| {
        if tx
            .get::<Value>(Kind::Function, &instance.function_id)?
            .is_none()
        {
            return Err(
                ApiError::invalid("functionId", "the function was deleted meanwhile").into(),
            );
        }
        tx.put(Kind::InsertFunction, &instance.id, &instance)?;
        tx.audit(
            "Insert Function Instance Created",
            "insert_function_instance",
            &instance.id,
            &instance.name,
        )
    })?;
    Ok(created(InstanceData {
        insert_function_instance: masked(&state, instance)?,
    }))
}

/// Get an insert function instance.
///
/// One instance, sensitive settings masked.
#[utoipa::path(get, path = "/insert-function-instances/{id}", operation_id = "getInsertFunctionInstance", tag = "Functions", params(("id" = String, Path, description = "Instance id")),
    responses((status = 200, body = Data<InstanceData>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<InstanceData> {
    let instance = load(&state, &caller, &id, false)?;
    Ok(ok(InstanceData {
        insert_function_instance: masked(&state, instance)?,
    }))
}

/// Update an insert function instance.
///
/// Renames, enables or disables, reorders, or changes settings (merged into the current
/// ones; sending a masked value back keeps the stored secret).
#[utoipa::path(patch, path = "/insert-function-instances/{id}", operation_id = "updateInsertFunctionInstance", tag = "Functions", params(("id" = String, Path, description = "Instance id")),
    request_body = UpdateInstance, responses((status = 200, body = Data<InstanceData>), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateInstance>,
) -> Reply<InstanceData> {
    let current = load(&state, &caller, &id, true)?;
    if let Some(name) = &input.name {
        check_name(name, "name")?;
    }
    let mut settings = current.settings.clone();
    if let Some(patch) = &input.settings {
        for (key, value) in patch {
            if value.as_str() != Some(MASK) {
                settings.insert(key.clone(), value.clone());
            }
        }
        let decls = state
            .store
            .get::<Function>(Kind::Function, &current.function_id)?
            .map(|f| f.settings)
            .unwrap_or_default();
        check_values(&decls, &settings, "settings")?;
    }
    let instance = state.store.transact(&caller.actor, |tx| {
        let mut i: InsertFunctionInstance = tx.find(Kind::InsertFunction, &id)?;
        if let Some(name) = &input.name {
            i.name = name.clone();
        }
        if let Some(enabled) = input.enabled {
            i.enabled = enabled;
        }
        if let Some(order) = input.order {
            i.order = order;
        }
        if let Some(isolation) = input.isolation {
            i.isolation = isolation;
        }
        i.settings = settings.clone();
        i.updated_at = now();
        tx.put(Kind::InsertFunction, &id, &i)?;
        tx.audit(
            "Insert Function Instance Modified",
            "insert_function_instance",
            &id,
            &i.name,
        )?;
        Ok(i)
    })?;
    Ok(ok(InstanceData {
        insert_function_instance: masked(&state, instance)?,
    }))
}

/// Detach an insert function instance.
///
/// The function stops running on that source or destination.
#[utoipa::path(delete, path = "/insert-function-instances/{id}", operation_id = "deleteInsertFunctionInstance", tag = "Functions", params(("id" = String, Path, description = "Instance id")),
    responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    load(&state, &caller, &id, true)?;
    state.store.transact(&caller.actor, |tx| {
        let i: InsertFunctionInstance = tx.find(Kind::InsertFunction, &id)?;
        tx.remove(Kind::InsertFunction, &id)?;
        tx.audit(
            "Insert Function Instance Deleted",
            "insert_function_instance",
            &id,
            &i.name,
        )
    })?;
    Ok(deleted())
}
