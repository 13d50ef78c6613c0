//! Functions: code that transforms events in flight. A function is either a WebAssembly
//! component (`wasm`, base64: validated, compiled and stored content-addressed by the engine)
//! or JavaScript source (`code`: checked by the built-in JavaScript engine, stored
//! content-addressed, run on that engine). Every create or update makes a
//! version; one version is deployed; `POST /functions/{id}/test` runs any version on sample
//! events without touching a pipeline.

use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller};
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, OptionalJson, Path, Query};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, check_name, deleted};
use super::store::{Kind, Tx, TxResult};
use super::{AppState, Data, created, new_id, now, ok};
use crate::engine::JsCodeError;
use crate::storage::StorageError;

pub use crate::workspace::function::{
    Function, FunctionType, Runtime, SettingDecl, SettingType, Version,
};

/// A function in the envelope.
#[derive(Serialize, ToSchema)]
pub struct FunctionData {
    /// The function.
    pub function: Function,
}

/// A page of functions.
#[derive(Serialize, ToSchema)]
pub struct Functions {
    /// Functions, oldest first.
    pub functions: Vec<Function>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// A version in the envelope.
#[derive(Serialize, ToSchema)]
pub struct VersionData {
    /// The version.
    pub version: Version,
}

/// A page of versions.
#[derive(Serialize, ToSchema)]
pub struct Versions {
    /// Versions, oldest first.
    pub versions: Vec<Version>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /functions`: exactly one of `code` and `wasm`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateFunction {
    /// Display name.
    pub display_name: String,
    /// Kind.
    pub resource_type: FunctionType,
    /// What it does.
    pub description: Option<String>,
    /// Declared settings.
    #[serde(default)]
    pub settings: Vec<SettingDecl>,
    /// JavaScript source.
    pub code: Option<String>,
    /// A WebAssembly component built for wasm32-wasip2, base64.
    pub wasm: Option<String>,
}

/// `PATCH /functions/{id}`: makes a new version.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateFunction {
    /// New name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New declared settings.
    pub settings: Option<Vec<SettingDecl>>,
    /// New JavaScript source.
    pub code: Option<String>,
    /// New component, base64.
    pub wasm: Option<String>,
}

/// `POST /functions/{id}/versions`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreVersion {
    /// The version to restore as the new latest.
    pub version_id: String,
}

/// `POST /functions/{id}/deploy` (body optional).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deploy {
    /// The version to deploy; default the latest.
    pub version_id: Option<String>,
}

/// Filters of `GET /functions`.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct FunctionQuery {
    /// Only functions of this kind.
    pub resource_type: Option<FunctionType>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The code of a new version, checked and stored.
struct Code {
    runtime: Runtime,
    digest: String,
    code: Option<String>,
}

async fn store_code(
    state: &AppState,
    kind: FunctionType,
    code: Option<String>,
    wasm: Option<String>,
) -> Result<Option<Code>, ApiError> {
    match (code, wasm) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "wasm",
            "give exactly one of `code` (JavaScript) and `wasm` (a component)",
        )),
        (None, None) => Ok(None),
        (Some(code), None) => {
            if code.trim().is_empty() {
                return Err(ApiError::invalid("code", "`code` is empty"));
            }
            let components = state.components.clone();
            let checked = code.clone();
            // The check runs the code's top level in a fresh sandbox: CPU-bound, off the workers.
            match tokio::task::spawn_blocking(move || components.put_script(&checked)).await? {
                Ok(stored) => Ok(Some(Code {
                    runtime: Runtime::Javascript,
                    digest: stored.digest,
                    code: Some(code),
                })),
                Err(StorageError::Script(err @ JsCodeError::Syntax { .. })) => Err(
                    ApiError::invalid("code", format!("the code does not compile: {err}")),
                ),
                Err(StorageError::Script(err @ JsCodeError::Invoke(_))) => {
                    Err(ApiError::invalid("code", err.to_string()))
                }
                Err(err) => Err(ApiError::Internal(err.to_string())),
            }
        }
        (None, Some(wasm)) => {
            let bytes = STANDARD
                .decode(wasm.trim())
                .map_err(|e| ApiError::invalid("wasm", format!("`wasm` is not base64: {e}")))?;
            let components = state.components.clone();
            let plane = state.data_plane.clone();
            // Destination and source functions may use `wasi:http`: the network engine checks
            // them. Validation and Cranelift compilation are CPU-bound: off the async workers.
            let network = matches!(kind, FunctionType::Destination | FunctionType::Source);
            let stored = tokio::task::spawn_blocking(move || match network {
                true => components
                    .put_checked(&bytes, |digest, wasm| plane.functions.check(digest, wasm)),
                false => components.put(&bytes),
            });
            match stored.await? {
                Ok(stored) => Ok(Some(Code {
                    runtime: Runtime::Wasm,
                    digest: stored.digest,
                    code: None,
                })),
                Err(StorageError::Upload(err)) => Err(ApiError::invalid("wasm", err.to_string())),
                Err(err) => Err(ApiError::Internal(err.to_string())),
            }
        }
    }
}

fn check_settings(settings: &[SettingDecl]) -> Result<(), ApiError> {
    for (i, s) in settings.iter().enumerate() {
        if s.name.trim().is_empty() {
            return Err(ApiError::invalid(
                format!("settings[{i}].name"),
                "a setting needs a name",
            ));
        }
        if settings[..i].iter().any(|o| o.name == s.name) {
            return Err(ApiError::invalid(
                format!("settings[{i}].name"),
                format!("setting `{}` is declared twice", s.name),
            ));
        }
    }
    Ok(())
}

/// A function the caller may read (or change), else 404/403.
pub fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
    write: bool,
) -> Result<Function, ApiError> {
    caller.require(Area::Functions, write, Some(id), "function")?;
    state.store.find(Kind::Function, id).map_err(ApiError::from)
}

fn version_key(function_id: &str, version_id: &str) -> String {
    format!("{function_id}/{version_id}")
}

/// One version of a function, with its deployment marked.
pub fn version(
    state: &AppState,
    function: &Function,
    version_id: &str,
) -> Result<Version, ApiError> {
    let mut v: Version = state
        .store
        .get(
            Kind::FunctionVersion,
            &version_key(&function.id, version_id),
        )?
        .ok_or_else(|| ApiError::not_found("version", version_id))?;
    mark(function, &mut v);
    Ok(v)
}

fn mark(function: &Function, v: &mut Version) {
    v.is_deployed = function.deployed_version_id.as_deref() == Some(&v.id);
    v.deployed_at = if v.is_deployed {
        function.deployed_at.clone()
    } else {
        None
    };
}

/// Saves `code` and `settings` as a new latest version of `f` inside `tx`.
fn new_version(
    tx: &Tx<'_>,
    f: &mut Function,
    runtime: Runtime,
    digest: &str,
    code: Option<String>,
) -> TxResult<()> {
    let v = Version {
        id: new_id(),
        function_id: f.id.clone(),
        runtime,
        digest: digest.to_string(),
        code: code.clone(),
        settings: f.settings.clone(),
        is_deployed: false,
        created_at: now(),
        deployed_at: None,
    };
    f.runtime = runtime;
    f.digest = digest.to_string();
    f.code = code;
    f.runnable = true;
    f.version_id = v.id.clone();
    f.is_latest_version = f.deployed_version_id.as_deref() == Some(&v.id);
    tx.put(Kind::FunctionVersion, &version_key(&f.id, &v.id), &v)
}

/// List functions.
///
/// Every function the token can see, oldest first; `resourceType` narrows to one kind.
#[utoipa::path(get, path = "/functions", operation_id = "listFunctions", tag = "Functions", params(FunctionQuery, PageQuery),
    responses((status = 200, body = Data<Functions>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FunctionQuery>,
) -> Reply<Functions> {
    caller.require_some(Area::Functions, "functions")?;
    let all: Vec<Function> = state.store.list(Kind::Function, "")?;
    let visible = all
        .into_iter()
        .filter(|f| caller.sees(Area::Functions, &f.id))
        .filter(|f| q.resource_type.is_none_or(|t| t == f.resource_type))
        .collect();
    let (functions, pagination) = page(visible, &q.page)?;
    Ok(ok(Functions {
        functions,
        pagination,
    }))
}

/// Create a function.
///
/// Uploads a function with exactly one of `code` (Segment-style JavaScript: `onTrack(event,
/// settings)` and friends) or `wasm` (a base64 WebAssembly component for the `sluice:function`
/// world, built for wasm32-wasip2). Code is parsed and its top level run now, a component
/// validated and compiled now: a bad upload is a 422 naming the line and column of a syntax
/// error, or the engine's reason. Creates the first version; deploy it with `POST /functions/{id}/deploy`.
#[utoipa::path(post, path = "/functions", operation_id = "createFunction", tag = "Functions", request_body = CreateFunction,
    responses((status = 201, body = Data<FunctionData>), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateFunction>,
) -> Created<FunctionData> {
    caller.require(Area::Functions, true, None, "function")?;
    check_name(&input.display_name, "displayName")?;
    check_settings(&input.settings)?;
    let code = store_code(&state, input.resource_type, input.code, input.wasm)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "code",
                "give `code` (JavaScript) or `wasm` (a base64 component)",
            )
        })?;
    let function = Function {
        id: new_id(),
        resource_type: input.resource_type,
        display_name: input.display_name,
        description: input.description,
        settings: input.settings,
        runtime: code.runtime,
        code: None,
        digest: String::new(),
        runnable: true,
        version_id: String::new(),
        deployed_version_id: None,
        is_latest_version: false,
        created_at: now(),
        deployed_at: None,
    };
    let function = state.store.transact(&caller.actor, |tx| {
        let mut f = function.clone();
        new_version(tx, &mut f, code.runtime, &code.digest, code.code.clone())?;
        tx.put(Kind::Function, &f.id, &f)?;
        tx.audit("Function Created", "function", &f.id, &f.display_name)?;
        Ok(f)
    })?;
    Ok(created(FunctionData { function }))
}

/// Get a function.
///
/// The function, its latest version's code digest and which version is deployed.
#[utoipa::path(get, path = "/functions/{id}", operation_id = "getFunction", tag = "Functions", params(("id" = String, Path, description = "Function id")),
    responses((status = 200, body = Data<FunctionData>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<FunctionData> {
    Ok(ok(FunctionData {
        function: load(&state, &caller, &id, false)?,
    }))
}

/// Update a function.
///
/// Changes name, description, declared settings or code (`code` or `wasm`, checked as on
/// create). Every update saves a new version; the deployed version keeps running until you
/// deploy another.
#[utoipa::path(patch, path = "/functions/{id}", operation_id = "updateFunction", tag = "Functions", params(("id" = String, Path, description = "Function id")),
    request_body = UpdateFunction, responses((status = 200, body = Data<FunctionData>), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateFunction>,
) -> Reply<FunctionData> {
    let current = load(&state, &caller, &id, true)?;
    if let Some(name) = &input.display_name {
        check_name(name, "displayName")?;
    }
    if let Some(settings) = &input.settings {
        check_settings(settings)?;
    }
    let code = store_code(&state, current.resource_type, input.code, input.wasm).await?;
    let function = state.store.transact(&caller.actor, |tx| {
        let mut f = tx.find::<Function>(Kind::Function, &id)?;
        if let Some(name) = &input.display_name {
            f.display_name = name.clone();
        }
        if let Some(description) = &input.description {
            f.description = Some(description.clone());
        }
        if let Some(settings) = &input.settings {
            f.settings = settings.clone();
        }
        match &code {
            Some(c) => new_version(tx, &mut f, c.runtime, &c.digest, c.code.clone())?,
            None => {
                let (runtime, digest, js) = (f.runtime, f.digest.clone(), f.code.clone());
                new_version(tx, &mut f, runtime, &digest, js)?;
            }
        }
        tx.put(Kind::Function, &id, &f)?;
        tx.audit("Function Modified", "function", &id, &f.display_name)?;
        Ok(f)
    })?;
    Ok(ok(FunctionData { function }))
}

/// Delete a function.
///
/// Deletes the function and its versions. Refused (409) while insert function instances use it.
#[utoipa::path(delete, path = "/functions/{id}", operation_id = "deleteFunction", tag = "Functions", params(("id" = String, Path, description = "Function id")),
    responses((status = 200, body = Data<Deleted>), (status = 409, body = super::error::ErrorBody), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    load(&state, &caller, &id, true)?;
    let instances: Vec<super::insert_functions::InsertFunctionInstance> =
        state.store.list(Kind::InsertFunction, "")?;
    if let Some(used) = instances.iter().find(|i| i.function_id == id) {
        return Err(ApiError::Conflict(format!(
            "insert function instance `{}` uses this function; delete it first",
            used.id
        )));
    }
    let versions: Vec<Version> = state.store.list(Kind::FunctionVersion, &format!("{id}/"))?;
    state.store.transact(&caller.actor, |tx| {
        let f = tx.find::<Function>(Kind::Function, &id)?;
        for v in &versions {
            tx.remove(Kind::FunctionVersion, &version_key(&id, &v.id))?;
        }
        tx.remove(Kind::Function, &id)?;
        tx.audit("Function Deleted", "function", &id, &f.display_name)
    })?;
    Ok(deleted())
}

/// List a function's versions.
///
/// Every saved version, oldest first, with which one is deployed.
#[utoipa::path(get, path = "/functions/{id}/versions", operation_id = "listFunctionVersions", tag = "Functions",
    params(("id" = String, Path, description = "Function id"), PageQuery),
    responses((status = 200, body = Data<Versions>), CommonErrors))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<Versions> {
    let f = load(&state, &caller, &id, false)?;
    let mut all: Vec<Version> = state.store.list(Kind::FunctionVersion, &format!("{id}/"))?;
    all.iter_mut().for_each(|v| mark(&f, v));
    let (versions, pagination) = page(all, &q)?;
    Ok(ok(Versions {
        versions,
        pagination,
    }))
}

/// Get a version.
///
/// One saved version with its code (JavaScript) or digest (component).
#[utoipa::path(get, path = "/functions/{id}/versions/{versionId}", operation_id = "getFunctionVersion", tag = "Functions",
    params(("id" = String, Path, description = "Function id"), ("versionId" = String, Path, description = "Version id")),
    responses((status = 200, body = Data<VersionData>), CommonErrors))]
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, vid)): Path<(String, String)>,
) -> Reply<VersionData> {
    let f = load(&state, &caller, &id, false)?;
    Ok(ok(VersionData {
        version: version(&state, &f, &vid)?,
    }))
}

/// Options of `POST /functions/{id}/versions`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestoreQuery {
    /// Also deploy the restored version, in the same change (a rollback). Default false.
    pub deploy: Option<bool>,
}

/// Restore a version.
///
/// Saves an older version's code and settings as a new latest version (history is kept). It
/// does not run until deployed: the deployed version keeps running. With `deploy=true` the
/// new version is deployed in the same change, so pipelines run it from their next batch (a
/// rollback in one step; `sluice functions rollback`).
#[utoipa::path(post, path = "/functions/{id}/versions", operation_id = "restoreFunctionVersion", tag = "Functions", params(("id" = String, Path, description = "Function id"), RestoreQuery),
    request_body = RestoreVersion, responses((status = 200, body = Data<FunctionData>), CommonErrors))]
pub async fn restore_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RestoreQuery>,
    Json(input): Json<RestoreVersion>,
) -> Reply<FunctionData> {
    let f = load(&state, &caller, &id, true)?;
    let old = version(&state, &f, &input.version_id).map_err(|_| {
        ApiError::missing("versionId", format!("no version `{}`", input.version_id))
    })?;
    let deploy = q.deploy == Some(true);
    let function = state.store.transact(&caller.actor, |tx| {
        let mut f = tx.find::<Function>(Kind::Function, &id)?;
        f.settings = old.settings.clone();
        new_version(tx, &mut f, old.runtime, &old.digest, old.code.clone())?;
        tx.audit("Function Modified", "function", &id, &f.display_name)?;
        if deploy {
            f.deployed_version_id = Some(f.version_id.clone());
            f.deployed_at = Some(now());
            f.is_latest_version = true;
            tx.audit("Function Deployed", "function", &id, &f.display_name)?;
        }
        tx.put(Kind::Function, &id, &f)?;
        Ok(f)
    })?;
    Ok(ok(FunctionData { function }))
}

/// Deploy a version.
///
/// Makes a version (default: the latest) the one that runs in pipelines. JavaScript versions
/// cannot be deployed until the JavaScript runtime lands (422).
#[utoipa::path(post, path = "/functions/{id}/deploy", operation_id = "createFunctionDeployment", tag = "Functions", params(("id" = String, Path, description = "Function id")),
    request_body(content = Option<Deploy>, description = "Optional; `{}` or no body deploys the latest version"),
    responses((status = 200, body = Data<FunctionData>), CommonErrors))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<Deploy>,
) -> Reply<FunctionData> {
    let f = load(&state, &caller, &id, true)?;
    let vid = input
        .and_then(|d| d.version_id)
        .unwrap_or_else(|| f.version_id.clone());
    version(&state, &f, &vid)
        .map_err(|_| ApiError::missing("versionId", format!("no version `{vid}`")))?;
    let function = state.store.transact(&caller.actor, |tx| {
        let mut f = tx.find::<Function>(Kind::Function, &id)?;
        f.deployed_version_id = Some(vid.clone());
        f.deployed_at = Some(now());
        f.is_latest_version = f.version_id == vid;
        tx.put(Kind::Function, &id, &f)?;
        tx.audit("Function Deployed", "function", &id, &f.display_name)?;
        Ok(f)
    })?;
    Ok(ok(FunctionData { function }))
}
