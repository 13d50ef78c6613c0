//! Identity and access: roles (`GET /roles`), users and their permissions, and API tokens
//! (sluice's addition: Segment makes tokens in its UI, a self-hosted server needs an API).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{
    Area, Caller, Permission, ROLES, ResourceType, Role, StoredToken, hash_secret, new_secret,
    normalise, parse_expiry,
};
use super::error::{ApiError, CommonErrors, ErrorBody};
use super::extract::{Json, Path, Query};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, check_name, deleted};
use super::store::Kind;
use super::{AppState, Data, created, new_id, now, ok};

/// A page of roles.
#[derive(Serialize, ToSchema)]
pub struct Roles {
    /// Segment's roles.
    pub roles: Vec<Role>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// List roles.
///
/// The roles a permission can grant, with Segment's names; use `id` as `roleId`.
#[utoipa::path(get, path = "/roles", operation_id = "listRoles", tag = "IAM", params(PageQuery), responses((status = 200, body = Data<Roles>), CommonErrors))]
pub async fn list_roles(_caller: Caller, Query(q): Query<PageQuery>) -> Reply<Roles> {
    let (roles, pagination) = page(ROLES.to_vec(), &q)?;
    Ok(ok(Roles { roles, pagination }))
}

/// A user of the workspace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// E-mail, unique.
    pub email: String,
    /// What the user may do.
    pub permissions: Vec<Permission>,
    /// Creation time.
    pub created_at: String,
}

/// A user in the envelope.
#[derive(Serialize, ToSchema)]
pub struct UserData {
    /// The user.
    pub user: User,
}

/// A page of users.
#[derive(Serialize, ToSchema)]
pub struct Users {
    /// Users, oldest first.
    pub users: Vec<User>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Name.
    pub name: String,
    /// E-mail, unique (409 when taken).
    pub email: String,
    /// Initial permissions.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// `POST` (add) or `PUT` (replace) `/users/{id}/permissions`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Permissions.
    pub permissions: Vec<Permission>,
}

fn owner(caller: &Caller, write: bool) -> Result<(), ApiError> {
    caller.require(Area::Workspace, write, None, "users and tokens")
}

/// List users.
///
/// Every user with their permissions.
#[utoipa::path(get, path = "/users", operation_id = "listUsers", tag = "IAM", params(PageQuery), responses((status = 200, body = Data<Users>), CommonErrors))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Reply<Users> {
    owner(&caller, false)?;
    let (users, pagination) = page(state.store.list(Kind::User, "")?, &q)?;
    Ok(ok(Users { users, pagination }))
}

/// Create a user.
///
/// Adds a user with permissions. When the address was invited (`POST /invites`) and the request
/// gives no permissions, the invitation's are used; either way the invitation is consumed.
/// Workspace Owner only.
#[utoipa::path(post, path = "/users", operation_id = "createUser", tag = "IAM", request_body = CreateUser,
    responses((status = 201, body = Data<UserData>), (status = 409, body = ErrorBody), CommonErrors))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateUser>,
) -> Created<UserData> {
    owner(&caller, true)?;
    check_name(&input.name, "name")?;
    let email = super::invites::email(&input.email, "email")?;
    // An invitation supplies the permissions when the request gives none.
    let invite: Option<super::invites::Invite> = state.store.get(Kind::Invite, &email)?;
    let permissions = match invite {
        Some(invite) if input.permissions.is_empty() => invite.permissions,
        _ => normalise(input.permissions.clone(), "permissions")?,
    };
    let user = User {
        id: new_id(),
        name: input.name.clone(),
        email,
        permissions,
        created_at: now(),
    };
    state.store.transact(&caller.actor, |tx| {
        let key = format!("email:{}", user.email);
        if tx.index(&key)?.is_some() {
            return Err(ApiError::Conflict(format!(
                "a user with e-mail `{}` already exists",
                user.email
            ))
            .into());
        }
        tx.remove(Kind::Invite, &user.email)?;
        tx.set_index(&key, &user.id)?;
        tx.put(Kind::User, &user.id, &user)?;
        tx.audit("User Created", "user", &user.id, &user.email)
    })?;
    Ok(created(UserData { user }))
}

/// Get a user.
///
/// One user with their permissions.
#[utoipa::path(get, path = "/users/{id}", operation_id = "getUser", tag = "IAM", params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = Data<UserData>), CommonErrors))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<UserData> {
    owner(&caller, false)?;
    let user = state.store.find(Kind::User, &id)?;
    Ok(ok(UserData { user }))
}

/// Delete a user.
///
/// Removes the user.
#[utoipa::path(delete, path = "/users/{id}", operation_id = "deleteUser", tag = "IAM", params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    owner(&caller, true)?;
    state.store.transact(&caller.actor, |tx| {
        let user: User = tx.find(Kind::User, &id)?;
        tx.unset_index(&format!("email:{}", user.email))?;
        tx.remove(Kind::User, &id)?;
        tx.audit("User Deleted", "user", &id, &user.email)
    })?;
    Ok(deleted())
}

fn set_permissions(
    state: &AppState,
    caller: &Caller,
    id: &str,
    permissions: Vec<Permission>,
    replace: bool,
) -> Reply<UserData> {
    owner(caller, true)?;
    let permissions = normalise(permissions, "permissions")?;
    let user = state.store.transact(&caller.actor, |tx| {
        let mut user: User = tx.find(Kind::User, id)?;
        if replace {
            user.permissions.clear();
        }
        user.permissions.extend(permissions.iter().cloned());
        tx.put(Kind::User, id, &user)?;
        tx.audit("User Permissions Modified", "user", id, &user.email)?;
        Ok(user)
    })?;
    Ok(ok(UserData { user }))
}

/// Add permissions to a user.
///
/// Grants more roles (each over the workspace or some resources).
#[utoipa::path(post, path = "/users/{id}/permissions", operation_id = "addPermissionsToUser", tag = "IAM", params(("id" = String, Path, description = "User id")),
    request_body = Permissions, responses((status = 200, body = Data<UserData>), CommonErrors))]
pub async fn add_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Permissions>,
) -> Reply<UserData> {
    set_permissions(&state, &caller, &id, input.permissions, false)
}

/// Replace a user's permissions.
///
/// Sets the user's permissions to exactly these.
#[utoipa::path(put, path = "/users/{id}/permissions", operation_id = "replacePermissionsForUser", tag = "IAM", params(("id" = String, Path, description = "User id")),
    request_body = Permissions, responses((status = 200, body = Data<UserData>), CommonErrors))]
pub async fn replace_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Permissions>,
) -> Reply<UserData> {
    set_permissions(&state, &caller, &id, input.permissions, true)
}

/// A token as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// Id (for `DELETE /tokens/{id}`).
    pub id: String,
    /// What it is for.
    pub description: String,
    /// What it may do.
    pub permissions: Vec<Permission>,
    /// Creation time.
    pub created_at: String,
    /// When it stops working (RFC 3339, UTC); absent when it never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Whether `expiresAt` has passed: requests with it get 401.
    pub expired: bool,
    /// The secret: only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl From<StoredToken> for Token {
    fn from(t: StoredToken) -> Token {
        Token {
            expired: t.expired(),
            id: t.id,
            description: t.description,
            permissions: t.permissions,
            created_at: t.created_at,
            expires_at: t.expires_at,
            value: None,
        }
    }
}

/// A token in the envelope.
#[derive(Serialize, ToSchema)]
pub struct TokenData {
    /// The token.
    pub token: Token,
}

/// A page of tokens.
#[derive(Serialize, ToSchema)]
pub struct Tokens {
    /// Tokens, oldest first.
    pub tokens: Vec<Token>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    /// What it is for.
    pub description: String,
    /// What it may do (at least one permission).
    pub permissions: Vec<Permission>,
    /// When it stops working: an RFC 3339 time in the future (`2027-01-31T12:00:00Z`).
    /// Default: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// List tokens.
///
/// Every API token with its permissions; secrets are never shown again after creation.
#[utoipa::path(get, path = "/tokens", operation_id = "listTokens", tag = "IAM", params(PageQuery), responses((status = 200, body = Data<Tokens>), CommonErrors))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Reply<Tokens> {
    owner(&caller, true)?;
    let all: Vec<StoredToken> = state.store.list(Kind::Token, "")?;
    let (tokens, pagination) = page(all.into_iter().map(Token::from).collect(), &q)?;
    Ok(ok(Tokens { tokens, pagination }))
}

/// Create a token.
///
/// A new API token with roles, scoped to the workspace or to resources (a Source Admin over one
/// source, say), optionally expiring at `expiresAt`. The response's `value` is the secret: it
/// is shown only this once and stored only as a hash. Workspace Owner only.
#[utoipa::path(post, path = "/tokens", operation_id = "createToken", tag = "IAM", request_body = CreateToken,
    responses((status = 201, body = Data<TokenData>), CommonErrors))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateToken>,
) -> Created<TokenData> {
    owner(&caller, true)?;
    check_name(&input.description, "description")?;
    if input.permissions.is_empty() {
        return Err(ApiError::invalid(
            "permissions",
            "a token needs at least one permission",
        ));
    }
    let expires_at = match &input.expires_at {
        Some(at) => Some(parse_expiry(at, "expiresAt")?),
        None => None,
    };
    let secret = new_secret()?;
    let stored = StoredToken {
        id: new_id(),
        description: input.description.clone(),
        hash: hash_secret(&secret),
        permissions: normalise(input.permissions.clone(), "permissions")?,
        created_at: now(),
        expires_at,
    };
    state.store.transact(&caller.actor, |tx| {
        tx.put(Kind::Token, &stored.id, &stored)?;
        tx.set_index(&format!("token:{}", stored.hash), &stored.id)?;
        tx.audit(
            "Access Token Created",
            "token",
            &stored.id,
            &stored.description,
        )
    })?;
    let mut token = Token::from(stored);
    token.value = Some(secret);
    Ok(created(TokenData { token }))
}

/// Get a token.
///
/// One API token with its permissions and expiry; never its secret. Workspace Owner only.
#[utoipa::path(get, path = "/tokens/{id}", operation_id = "getToken", tag = "IAM", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Data<TokenData>), CommonErrors))]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<TokenData> {
    owner(&caller, true)?;
    let stored: StoredToken = state.store.find(Kind::Token, &id)?;
    Ok(ok(TokenData {
        token: Token::from(stored),
    }))
}

/// Get the current token.
///
/// The token this request is made with: its id, description, permissions (roles and the
/// resources they are scoped to) and expiry; never its secret. Any valid token may call it:
/// it is how a client (the web console) learns what it may do before offering to do it.
#[utoipa::path(get, path = "/tokens/current", operation_id = "getCurrentToken", tag = "IAM",
    responses((status = 200, body = Data<TokenData>), CommonErrors))]
pub async fn current_token(State(state): State<AppState>, caller: Caller) -> Reply<TokenData> {
    let stored: StoredToken = state.store.find(Kind::Token, &caller.token_id)?;
    Ok(ok(TokenData {
        token: Token::from(stored),
    }))
}

/// Delete a token.
///
/// Revokes the token for good: requests with it get 401 from now on, also after a restart with
/// the same `--bootstrap-token`. The last Workspace Owner token that has not expired cannot be
/// deleted (409).
#[utoipa::path(delete, path = "/tokens/{id}", operation_id = "deleteToken", tag = "IAM", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Data<Deleted>), (status = 409, body = ErrorBody), CommonErrors))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    owner(&caller, true)?;
    // Deleting the last workspace-wide owner token would lock everyone out for good.
    let tokens: Vec<StoredToken> = state.store.list(Kind::Token, "")?;
    let is_owner = |t: &StoredToken| {
        !t.expired()
            && t.permissions.iter().any(|p| {
                p.role_id == "workspace-owner"
                    && (p.resources.is_empty()
                        || p.resources
                            .iter()
                            .any(|r| r.kind == ResourceType::Workspace))
            })
    };
    if tokens.iter().any(|t| t.id == id && is_owner(t))
        && tokens.iter().filter(|t| is_owner(t)).count() == 1
    {
        return Err(ApiError::Conflict(
            "this is the last Workspace Owner token; create another one before deleting it".into(),
        ));
    }
    state.store.transact(&caller.actor, |tx| {
        let token: StoredToken = tx.find(Kind::Token, &id)?;
        tx.unset_index(&format!("token:{}", token.hash))?;
        tx.remove(Kind::Token, &id)?;
        tx.audit("Access Token Deleted", "token", &id, &token.description)
    })?;
    Ok(deleted())
}
