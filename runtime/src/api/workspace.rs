//! `GET /`: the workspace this server is.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::CommonErrors;
use super::{AppState, Data, ok};

/// The workspace: a sluice server is one workspace.
#[derive(Serialize, ToSchema)]
pub struct Workspace {
    /// Always `default`.
    pub id: String,
    /// Always `default`.
    pub slug: String,
    /// From the server's configuration.
    pub name: String,
}

/// The workspace body.
#[derive(Serialize, ToSchema)]
pub struct WorkspaceData {
    /// The workspace.
    pub workspace: Workspace,
}

/// Get the workspace.
///
/// Which workspace the token belongs to. Any valid token may call it: use it to check a token.
#[utoipa::path(get, path = "/", operation_id = "getWorkspace", tag = "Workspaces", responses((status = 200, body = Data<WorkspaceData>), CommonErrors))]
pub async fn get_workspace(
    State(state): State<AppState>,
    _caller: Caller,
) -> axum::Json<Data<WorkspaceData>> {
    ok(WorkspaceData {
        workspace: Workspace {
            id: "default".into(),
            slug: "default".into(),
            name: state.config.workspace_name.clone(),
        },
    })
}
