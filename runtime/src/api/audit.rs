//! The audit trail: one event per mutation, written by [`super::store::Tx::audit`] in the same
//! transaction as the change, and `GET /audit-events` to read it.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller};
use super::error::{ApiError, CommonErrors};
use super::extract::Query;
use super::pagination::{PageQuery, Pagination, page};
use super::store::Kind;
use super::{AppState, Data, ok};

pub use crate::workspace::AuditEvent;

/// Filters of `GET /audit-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events at or after this time (RFC 3339).
    pub start_time: Option<String>,
    /// Only events before this time (RFC 3339).
    pub end_time: Option<String>,
    /// Only events about this resource.
    pub resource_id: Option<String>,
    /// Only events about this kind of resource (`source`, `function`, ...).
    pub resource_type: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// A page of audit events.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvents {
    /// Events, oldest first.
    pub audit_events: Vec<AuditEvent>,
    /// Where this page sits.
    pub pagination: Pagination,
}

fn parse_time(field: &str, text: &Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    text.as_deref()
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                ApiError::invalid(
                    field,
                    format!("`{field}` must be an RFC 3339 time, like 2026-01-31T12:00:00Z"),
                )
            })
        })
        .transpose()
}

/// List audit events.
///
/// Every change made through this API, oldest first: who did it, to what, when. Filter by time
/// window, resource id or resource type. Requires Workspace Owner or Workspace Member.
#[utoipa::path(get, path = "/audit-events", tag = "Audit Trail",
    params(AuditQuery, PageQuery),
    responses((status = 200, body = Data<AuditEvents>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Data<AuditEvents>>, ApiError> {
    caller.require(Area::Workspace, false, None, "audit trail")?;
    let start = parse_time("startTime", &query.start_time)?;
    let end = parse_time("endTime", &query.end_time)?;
    let events: Vec<AuditEvent> = state.store.list(Kind::Audit, "")?;
    let events = events
        .into_iter()
        .filter(|e| {
            let at = OffsetDateTime::parse(&e.timestamp, &Rfc3339).ok();
            start.is_none_or(|s| at.is_some_and(|t| t >= s))
                && end.is_none_or(|s| at.is_some_and(|t| t < s))
                && query
                    .resource_id
                    .as_ref()
                    .is_none_or(|r| *r == e.resource_id)
                && query
                    .resource_type
                    .as_ref()
                    .is_none_or(|r| r.eq_ignore_ascii_case(&e.resource_type))
        })
        .collect();
    let (audit_events, pagination) = page(events, &query.page)?;
    Ok(ok(AuditEvents {
        audit_events,
        pagination,
    }))
}
