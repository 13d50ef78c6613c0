//! Spaces (Segment's Unify/Engage containers): named, with a unique slug. sluice only keeps them.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Area, Caller};
use super::error::{ApiError, CommonErrors, ErrorBody};
use super::extract::{Json, Path, Query};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, check_name, check_slug, deleted};
use super::store::Kind;
use super::{AppState, Data, created, new_id, ok};

/// A space.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Space {
    /// Id.
    pub id: String,
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// A space in the envelope.
#[derive(Serialize, ToSchema)]
pub struct SpaceData {
    /// The space.
    pub space: Space,
}

/// A page of spaces.
#[derive(Serialize, ToSchema)]
pub struct Spaces {
    /// Spaces, oldest first.
    pub spaces: Vec<Space>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /spaces` and `PATCH /spaces/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpaceInput {
    /// Unique slug (required on create).
    pub slug: Option<String>,
    /// Display name (required on create).
    pub name: Option<String>,
}

/// List spaces.
///
/// Every space, oldest first.
#[utoipa::path(get, path = "/spaces", operation_id = "listSpaces", tag = "Spaces", params(PageQuery), responses((status = 200, body = Data<Spaces>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Reply<Spaces> {
    caller.require(Area::Workspace, false, None, "spaces")?;
    let (spaces, pagination) = page(state.store.list(Kind::Space, "")?, &q)?;
    Ok(ok(Spaces { spaces, pagination }))
}

/// Create a space.
///
/// A space with a unique slug (409 when taken). Workspace Owner only.
#[utoipa::path(post, path = "/spaces", operation_id = "createSpace", tag = "Spaces", request_body = SpaceInput,
    responses((status = 201, body = Data<SpaceData>), (status = 409, body = ErrorBody), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<SpaceInput>,
) -> Created<SpaceData> {
    caller.require(Area::Workspace, true, None, "space")?;
    let slug = input
        .slug
        .clone()
        .ok_or_else(|| ApiError::invalid("slug", "`slug` is required"))?;
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "`name` is required"))?;
    check_slug(&slug, "slug")?;
    check_name(&name, "name")?;
    let space = Space {
        id: new_id(),
        slug,
        name,
    };
    state.store.transact(&caller.actor, |tx| {
        let key = format!("slug:space:{}", space.slug);
        if tx.index(&key)?.is_some() {
            return Err(ApiError::Conflict(format!(
                "a space with slug `{}` already exists",
                space.slug
            ))
            .into());
        }
        tx.set_index(&key, &space.id)?;
        tx.put(Kind::Space, &space.id, &space)?;
        tx.audit("Space Created", "space", &space.id, &space.name)
    })?;
    Ok(created(SpaceData { space }))
}

fn load(state: &AppState, id: &str) -> Result<Space, ApiError> {
    state.store.find(Kind::Space, id).map_err(ApiError::from)
}

/// Get a space.
///
/// One space.
#[utoipa::path(get, path = "/spaces/{id}", operation_id = "getSpace", tag = "Spaces", params(("id" = String, Path, description = "Space id")),
    responses((status = 200, body = Data<SpaceData>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<SpaceData> {
    caller.require(Area::Workspace, false, None, "space")?;
    Ok(ok(SpaceData {
        space: load(&state, &id)?,
    }))
}

/// Update a space.
///
/// Renames it or changes its slug (409 when taken).
#[utoipa::path(patch, path = "/spaces/{id}", operation_id = "updateSpace", tag = "Spaces", params(("id" = String, Path, description = "Space id")),
    request_body = SpaceInput, responses((status = 200, body = Data<SpaceData>), (status = 409, body = ErrorBody), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<SpaceInput>,
) -> Reply<SpaceData> {
    caller.require(Area::Workspace, true, None, "space")?;
    load(&state, &id)?;
    if let Some(slug) = &input.slug {
        check_slug(slug, "slug")?;
    }
    if let Some(name) = &input.name {
        check_name(name, "name")?;
    }
    let space = state.store.transact(&caller.actor, |tx| {
        let mut space: Space = tx.find(Kind::Space, &id)?;
        if let Some(slug) = &input.slug
            && *slug != space.slug
        {
            let key = format!("slug:space:{slug}");
            if tx.index(&key)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "a space with slug `{slug}` already exists"
                ))
                .into());
            }
            tx.unset_index(&format!("slug:space:{}", space.slug))?;
            tx.set_index(&key, &id)?;
            space.slug = slug.clone();
        }
        if let Some(name) = &input.name {
            space.name = name.clone();
        }
        tx.put(Kind::Space, &id, &space)?;
        tx.audit("Space Modified", "space", &id, &space.name)?;
        Ok(space)
    })?;
    Ok(ok(SpaceData { space }))
}

/// Delete a space.
///
/// Removes the space.
#[utoipa::path(delete, path = "/spaces/{id}", operation_id = "deleteSpace", tag = "Spaces", params(("id" = String, Path, description = "Space id")),
    responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    caller.require(Area::Workspace, true, None, "space")?;
    load(&state, &id)?;
    state.store.transact(&caller.actor, |tx| {
        let space: Space = tx.find(Kind::Space, &id)?;
        tx.unset_index(&format!("slug:space:{}", space.slug))?;
        tx.remove(Kind::Space, &id)?;
        tx.audit("Space Deleted", "space", &id, &space.name)
    })?;
    Ok(deleted())
}
