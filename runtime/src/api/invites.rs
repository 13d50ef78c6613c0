//! Invitations (Segment's `/invites`): an e-mail address with the permissions its user will get.
//! sluice sends no mail: `POST /users` with an invited address creates the user with the
//! invitation's permissions (when it gives none itself) and consumes the invitation.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller, Permission, normalise};
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Query};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, deleted};
use super::store::Kind;
use super::{AppState, Data, created, now, ok};

/// A pending invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    /// The invited address (lower case).
    pub email: String,
    /// What the user will be allowed to do.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// When it was made.
    #[serde(default)]
    pub created_at: String,
}

/// A page of invited addresses.
#[derive(Serialize, ToSchema)]
pub struct Invites {
    /// Invited addresses, oldest first (`invites`, as Segment's `ListInvitesV1Output` names them).
    pub invites: Vec<String>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// The addresses invited.
#[derive(Serialize, ToSchema)]
pub struct Invited {
    /// The addresses.
    pub emails: Vec<String>,
}

/// `POST /invites`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvites {
    /// One per address.
    pub invites: Vec<Invite>,
}

/// `DELETE /invites?emails=a@x.com,b@x.com`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailsParam {
    /// Comma-separated addresses.
    pub emails: Option<String>,
}

/// Normalises an e-mail address, else 422 naming `field`.
///
/// # Errors
/// Not an address.
pub fn email(address: &str, field: &str) -> Result<String, ApiError> {
    let email = address.trim().to_ascii_lowercase();
    let (user, domain) = email.split_once('@').unwrap_or_default();
    if user.is_empty() || domain.is_empty() || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must be an e-mail address"),
        ));
    }
    Ok(email)
}

/// List invitations.
///
/// The addresses invited and not yet added as users.
#[utoipa::path(get, path = "/invites", operation_id = "listInvites", tag = "IAM", params(PageQuery), responses((status = 200, body = Data<Invites>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Reply<Invites> {
    caller.require(Area::Workspace, false, None, "invites")?;
    let mut all: Vec<Invite> = state.store.list(Kind::Invite, "")?;
    all.sort_by(|a, b| (&a.created_at, &a.email).cmp(&(&b.created_at, &b.email)));
    let (page_items, pagination) = page(all, &q)?;
    Ok(ok(Invites {
        invites: page_items.into_iter().map(|i| i.email).collect(),
        pagination,
    }))
}

/// Invite users.
///
/// Records invitations with the permissions each user will get; `POST /users` with an invited
/// address then creates the user with them. Inviting an address twice replaces its
/// permissions; inviting an existing user's address is a 409. Workspace Owner only.
#[utoipa::path(post, path = "/invites", operation_id = "createInvites", tag = "IAM", request_body = CreateInvites,
    responses((status = 201, body = Data<Invited>), (status = 409, body = super::error::ErrorBody), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateInvites>,
) -> Created<Invited> {
    caller.require(Area::Workspace, true, None, "invites")?;
    if input.invites.is_empty() {
        return Err(ApiError::invalid("invites", "give at least one invitation"));
    }
    let mut invites = Vec::new();
    for (i, invite) in input.invites.into_iter().enumerate() {
        invites.push(Invite {
            email: email(&invite.email, &format!("invites[{i}].email"))?,
            permissions: normalise(invite.permissions, &format!("invites[{i}].permissions"))?,
            created_at: now(),
        });
    }
    state.store.transact(&caller.actor, |tx| {
        for invite in &invites {
            if tx.index(&format!("email:{}", invite.email))?.is_some() {
                return Err(
                    ApiError::Conflict(format!("`{}` is already a user", invite.email)).into(),
                );
            }
            tx.put(Kind::Invite, &invite.email, invite)?;
            tx.audit("User Invited", "invite", &invite.email, &invite.email)?;
        }
        Ok(())
    })?;
    Ok(created(Invited {
        emails: invites.into_iter().map(|i| i.email).collect(),
    }))
}

/// Delete invitations.
///
/// Withdraws the invitations of the addresses given (`?emails=a@x.com,b@x.com`); unknown
/// addresses are a 404.
#[utoipa::path(delete, path = "/invites", operation_id = "deleteInvites", tag = "IAM", params(EmailsParam), responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EmailsParam>,
) -> Reply<Deleted> {
    caller.require(Area::Workspace, true, None, "invites")?;
    let emails = q
        .emails
        .as_deref()
        .map(|e| {
            e.split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::invalid("emails", "`emails` is required"))?;
    state.store.transact(&caller.actor, |tx| {
        for address in &emails {
            if !tx.remove(Kind::Invite, address)? {
                return Err(ApiError::not_found("invite", address).into());
            }
            tx.audit("Invite Deleted", "invite", address, address)?;
        }
        Ok(())
    })?;
    Ok(deleted())
}
