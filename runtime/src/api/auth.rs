//! Bearer tokens, Segment's roles and their scopes: who the caller is and what it may do.
//! Tokens are stored only as blake3 hashes; the secret is shown once, at creation. A token may
//! expire (`expiresAt`); revocation deletes it for good (the bootstrap secret only ever
//! creates the first token of an empty workspace).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::store::Kind;

/// What part of the workspace a role governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Everything (owner and member roles only).
    All,
    /// Workspace administration: users, tokens, spaces, the audit trail.
    Workspace,
    /// Sources and what hangs off them (destinations, insert function instances).
    Sources,
    /// Functions.
    Functions,
    /// Tracking plans.
    TrackingPlans,
    /// Warehouses.
    Warehouses,
}

/// One of Segment's roles.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Role {
    /// Stable id, used in permissions (`source-admin`).
    pub id: &'static str,
    /// Segment's name (`Source Admin`).
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
    #[serde(skip)]
    area: Area,
    #[serde(skip)]
    write: bool,
}

const fn role(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    area: Area,
    write: bool,
) -> Role {
    Role {
        id,
        name,
        description,
        area,
        write,
    }
}

/// Every role sluice knows, with Segment's names.
pub const ROLES: [Role; 10] = [
    role(
        "workspace-owner",
        "Workspace Owner",
        "Full access to everything, including users and tokens.",
        Area::All,
        true,
    ),
    role(
        "workspace-member",
        "Workspace Member",
        "Read-only access to the whole workspace.",
        Area::All,
        false,
    ),
    role(
        "source-admin",
        "Source Admin",
        "Create, edit and delete sources and their destinations.",
        Area::Sources,
        true,
    ),
    role(
        "source-read-only",
        "Source Read-only",
        "Read sources and their destinations.",
        Area::Sources,
        false,
    ),
    role(
        "function-admin",
        "Function Admin",
        "Create, edit, deploy and test functions.",
        Area::Functions,
        true,
    ),
    role(
        "function-read-only",
        "Function Read-only",
        "Read functions and their versions.",
        Area::Functions,
        false,
    ),
    role(
        "tracking-plan-admin",
        "Tracking Plan Admin",
        "Edit tracking plans and connect them to sources.",
        Area::TrackingPlans,
        true,
    ),
    role(
        "tracking-plan-read-only",
        "Tracking Plan Read-only",
        "Read tracking plans.",
        Area::TrackingPlans,
        false,
    ),
    role(
        "warehouse-admin",
        "Warehouse Admin",
        "Create, edit and delete warehouses.",
        Area::Warehouses,
        true,
    ),
    role(
        "warehouse-read-only",
        "Warehouse Read-only",
        "Read warehouses.",
        Area::Warehouses,
        false,
    ),
];

/// The role with this id.
pub fn find_role(id: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.id == id || r.name == id)
}

/// A resource a permission is scoped to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ScopedResource {
    /// The resource's id (ignored for `WORKSPACE`).
    #[serde(default)]
    pub id: String,
    /// `WORKSPACE`, `SOURCE`, `FUNCTION`, `WAREHOUSE`, `TRACKING_PLAN` or `SPACE`.
    #[serde(rename = "type")]
    pub kind: ResourceType,
}

/// Kinds of resource a permission can be scoped to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceType {
    /// The whole workspace.
    Workspace,
    /// One source.
    Source,
    /// One function.
    Function,
    /// One warehouse.
    Warehouse,
    /// One tracking plan.
    TrackingPlan,
    /// One space.
    Space,
}

/// A role over some resources (the whole workspace when `resources` is empty or names it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// A role id from `GET /roles` (its name is accepted too).
    pub role_id: String,
    /// The role's name; filled in by the server.
    #[serde(default)]
    pub role_name: String,
    /// What the role applies to.
    #[serde(default)]
    pub resources: Vec<ScopedResource>,
}

/// Checks and normalises permissions from input (`field` is where they came from).
///
/// # Errors
/// An unknown role: 422 naming it.
pub fn normalise(permissions: Vec<Permission>, field: &str) -> Result<Vec<Permission>, ApiError> {
    permissions
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            let role = find_role(&p.role_id).ok_or_else(|| {
                ApiError::invalid(
                    format!("{field}[{i}].roleId"),
                    format!("unknown role `{}`; see GET /roles", p.role_id),
                )
            })?;
            p.role_id = role.id.to_string();
            p.role_name = role.name.to_string();
            Ok(p)
        })
        .collect()
}

/// A stored token: only the hash of its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredToken {
    pub id: String,
    pub description: String,
    pub hash: String,
    pub permissions: Vec<Permission>,
    pub created_at: String,
    /// When it stops working (RFC 3339); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl StoredToken {
    /// Whether `expires_at` has passed (an unreadable expiry counts as passed).
    pub fn expired(&self) -> bool {
        self.expires_at.as_deref().is_some_and(|at| {
            OffsetDateTime::parse(at, &Rfc3339).map_or(true, |at| at <= OffsetDateTime::now_utc())
        })
    }
}

/// Checks an `expiresAt` given at creation: RFC 3339 and in the future; returns it in the
/// normal form (UTC).
///
/// # Errors
/// 422 naming `field`.
pub fn parse_expiry(at: &str, field: &str) -> Result<String, ApiError> {
    let parsed = OffsetDateTime::parse(at, &Rfc3339).map_err(|e| {
        ApiError::invalid(
            field,
            format!("`{at}` is not an RFC 3339 time (like 2027-01-31T12:00:00Z): {e}"),
        )
    })?;
    if parsed <= OffsetDateTime::now_utc() {
        return Err(ApiError::invalid(field, format!("`{at}` is in the past")));
    }
    parsed
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// The shortest secret accepted as a bootstrap token.
pub const MIN_SECRET_LEN: usize = 16;

/// The hash a token's secret is stored and looked up under.
pub fn hash_secret(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

/// A new random token secret (256 bits).
///
/// # Errors
/// The operating system's random source failed.
pub fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("random source: {e}")))?;
    Ok(format!("sl_{}", blake3::Hash::from_bytes(bytes).to_hex()))
}

/// The authenticated caller, put into each request by [`guard`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id: the rate-limit key.
    pub token_id: String,
    /// Who the audit trail names (`token:<id> (<description>)`).
    pub actor: String,
    /// What it may do.
    pub permissions: Vec<Permission>,
}

impl Caller {
    fn grants(&self, area: Area, write: bool, id: Option<&str>) -> bool {
        self.permissions.iter().any(|p| {
            let Some(role) = find_role(&p.role_id) else {
                return false;
            };
            if !(role.area == Area::All || role.area == area) || (write && !role.write) {
                return false;
            }
            let everywhere = p.resources.is_empty()
                || p.resources
                    .iter()
                    .any(|r| r.kind == ResourceType::Workspace);
            everywhere || id.is_some_and(|id| p.resources.iter().any(|r| r.id == id))
        })
    }

    /// Requires some role over `area` (to list it; lists show only what [`Caller::sees`]).
    ///
    /// # Errors
    /// 403 when no role covers the area.
    pub fn require_some(&self, area: Area, what: &str) -> Result<(), ApiError> {
        if self
            .permissions
            .iter()
            .any(|p| find_role(&p.role_id).is_some_and(|r| r.area == area || r.area == Area::All))
        {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token's roles do not allow it to read {what}"
            )))
        }
    }

    /// Whether the caller may read resource `id` of `area`.
    pub fn sees(&self, area: Area, id: &str) -> bool {
        self.grants(area, false, Some(id))
    }

    /// Requires reading or changing `what` `id`, a record owned by source `source_id` (a
    /// destination, an insert function instance): it inherits the source's scope, and one the
    /// caller cannot see is a 404 under its own name, never the source's.
    ///
    /// # Errors
    /// 404 or 403 as for [`Caller::require`].
    pub fn require_through_source(
        &self,
        write: bool,
        source_id: &str,
        what: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        match self.require(Area::Sources, write, Some(source_id), what) {
            Err(ApiError::NotFound(_)) => Err(ApiError::not_found(what, id)),
            other => other,
        }
    }

    /// Requires reading (`write == false`) or changing `area`, or resource `id` of it (`what` names
    /// it in errors). A resource the caller cannot even see is a 404, so that scoped tokens learn
    /// nothing about other resources; otherwise a refusal is a 403.
    ///
    /// # Errors
    /// 404 or 403 as above.
    pub fn require(
        &self,
        area: Area,
        write: bool,
        id: Option<&str>,
        what: &str,
    ) -> Result<(), ApiError> {
        if self.grants(area, write, id) {
            return Ok(());
        }
        if let Some(id) = id
            && !self.grants(area, false, Some(id))
            && self
                .permissions
                .iter()
                .any(|p| find_role(&p.role_id).is_some_and(|r| r.area == area))
        {
            return Err(ApiError::not_found(what, id));
        }
        let verb = if write { "change" } else { "read" };
        Err(ApiError::Forbidden(format!(
            "this token's roles do not allow it to {verb} this {what}"
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Authenticates the bearer token (none for the OpenAPI document) and applies its rate limit;
/// every response gets the `X-RateLimit-*` headers.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == PUBLIC_DOCUMENT {
        // The document is public, but its readers share the unauthenticated budget.
        let (verdict, headers) = state.limiter.check("unauthenticated");
        let mut response = match verdict {
            Err(err) => err.into_response(),
            Ok(()) => next.run(req).await,
        };
        response.headers_mut().extend(headers);
        return response;
    }
    let caller = match authenticate(&state, req.headers()) {
        Ok(caller) => caller,
        Err(err) => {
            // Unauthenticated requests share one budget, so that guessing tokens is throttled too.
            let (_, headers) = state.limiter.check("unauthenticated");
            let mut response = err.into_response();
            response.headers_mut().extend(headers);
            return response;
        }
    };
    let (verdict, headers) = state.limiter.check(&caller.token_id);
    let mut response = match verdict {
        Err(err) => err.into_response(),
        Ok(()) => match precheck(&caller, req.method(), req.uri().path()) {
            Err(err) => err.into_response(),
            Ok(()) => {
                req.extensions_mut().insert(caller);
                next.run(req).await
            }
        },
    };
    response.headers_mut().extend(headers);
    response
}

/// The one path readable without a token: the OpenAPI document.
const PUBLIC_DOCUMENT: &str = "/openapi.json";

/// The area a path's changes belong to, by its first segment.
fn area_of(path: &str) -> Option<Area> {
    match path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
    {
        "sources" | "destinations" | "insert-function-instances" => Some(Area::Sources),
        "functions" => Some(Area::Functions),
        "tracking-plans" => Some(Area::TrackingPlans),
        "warehouses" => Some(Area::Warehouses),
        "spaces" | "users" | "tokens" | "invites" => Some(Area::Workspace),
        _ => None,
    }
}

/// Refuses a change (any method but GET, HEAD and testing a function) from a caller with no
/// writing role in the path's area at all, before the body is even read: a token that may not
/// change anything there learns nothing from validation errors. Handlers still check the
/// specific resource and scope.
fn precheck(caller: &Caller, method: &axum::http::Method, path: &str) -> Result<(), ApiError> {
    let reads = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD)
        || (path.starts_with("/functions/") && path.ends_with("/test"));
    let Some(area) = area_of(path) else {
        return Ok(());
    };
    let may_write = caller.permissions.iter().any(|p| {
        find_role(&p.role_id).is_some_and(|r| r.write && (r.area == area || r.area == Area::All))
    });
    if reads || may_write {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this token's roles do not allow it to change anything here".into(),
        ))
    }
}

fn authenticate(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized)?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let secret = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized)?
        .trim();
    if secret.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let id = state
        .store
        .index(&format!("token:{}", hash_secret(secret)))?
        .ok_or(ApiError::Unauthorized)?;
    let token: StoredToken = state
        .store
        .get(Kind::Token, &id)?
        .ok_or(ApiError::Unauthorized)?;
    if token.expired() {
        return Err(ApiError::TokenExpired(token.expires_at.unwrap_or_default()));
    }
    Ok(Caller {
        actor: format!("token:{} ({})", token.id, token.description),
        token_id: token.id,
        permissions: token.permissions,
    })
}

/// Refuses a bootstrap secret too short to grant everything with.
///
/// # Errors
/// A 422 naming `SLUICE_BOOTSTRAP_TOKEN`.
pub fn check_bootstrap(secret: &str) -> Result<(), ApiError> {
    if secret.trim().len() < MIN_SECRET_LEN {
        return Err(ApiError::invalid(
            "SLUICE_BOOTSTRAP_TOKEN",
            format!(
                "the bootstrap token must be at least {MIN_SECRET_LEN} characters: it grants everything"
            ),
        ));
    }
    Ok(())
}

/// Makes sure an owner token exists: when the store has no token, creates one (with `secret`
/// when given, else a random one, which is returned so the caller can print it once).
///
/// The bootstrap secret is honoured only to create the first token of an empty workspace:
/// once any token exists, an unknown `secret` is ignored (with a warning), so a bootstrap token
/// that was revoked (`DELETE /tokens/{id}`) stays revoked when the server restarts with the
/// same `--bootstrap-token`.
///
/// # Errors
/// A secret shorter than [`MIN_SECRET_LEN`], or a database failure.
pub fn bootstrap(
    store: &super::store::Store,
    secret: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if let Some(s) = secret {
        check_bootstrap(s)?;
    }
    if !store.is_empty(Kind::Token)? {
        if let Some(s) = secret
            && store.index(&format!("token:{}", hash_secret(s)))?.is_none()
        {
            tracing::warn!(
                "the bootstrap token is ignored: the workspace already has tokens (it only \
                 creates the first one), and a revoked bootstrap token stays revoked"
            );
        }
        return Ok(None);
    }
    let (secret, generated) = match secret {
        Some(s) => (s.to_string(), false),
        None => (new_secret()?, true),
    };
    let token = StoredToken {
        id: super::new_id(),
        description: "bootstrap owner token".into(),
        hash: hash_secret(&secret),
        permissions: vec![Permission {
            role_id: "workspace-owner".into(),
            role_name: "Workspace Owner".into(),
            resources: vec![ScopedResource {
                id: String::new(),
                kind: ResourceType::Workspace,
            }],
        }],
        created_at: super::now(),
        expires_at: None,
    };
    store.transact("sluice", |tx| {
        tx.put(Kind::Token, &token.id, &token)?;
        tx.set_index(&format!("token:{}", token.hash), &token.id)?;
        tx.audit(
            "Access Token Created",
            "token",
            &token.id,
            &token.description,
        )
    })?;
    Ok(generated.then_some(secret))
}
