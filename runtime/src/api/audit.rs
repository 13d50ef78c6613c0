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
    /// Only events about these kinds of resource, comma-separated: `source`, `destination`,
    /// `tracking_plan`, `warehouse`, `function`, `insert_function_instance`, `space`, `user`,
    /// `invite`, `token` (e.g. `source,destination`). Any other value is a 422.
    #[param(example = "source,destination")]
    pub resource_type: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// A page of audit events.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvents {
    /// Events, oldest first (`events`, as Segment's `ListAuditEventsV1Output` names them).
    pub events: Vec<AuditEvent>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// The kinds of resource the audit trail records: the `resourceType` of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Source,
    Destination,
    TrackingPlan,
    Warehouse,
    Function,
    InsertFunctionInstance,
    Space,
    User,
    Invite,
    Token,
}

impl ResourceType {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [ResourceType; 10] = [
        ResourceType::Source,
        ResourceType::Destination,
        ResourceType::TrackingPlan,
        ResourceType::Warehouse,
        ResourceType::Function,
        ResourceType::InsertFunctionInstance,
        ResourceType::Space,
        ResourceType::User,
        ResourceType::Invite,
        ResourceType::Token,
    ];

    /// The name events carry in `resourceType`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Source => "source",
            ResourceType::Destination => "destination",
            ResourceType::TrackingPlan => "tracking_plan",
            ResourceType::Warehouse => "warehouse",
            ResourceType::Function => "function",
            ResourceType::InsertFunctionInstance => "insert_function_instance",
            ResourceType::Space => "space",
            ResourceType::User => "user",
            ResourceType::Invite => "invite",
            ResourceType::Token => "token",
        }
    }

    /// The kind named `text` (any case).
    pub fn parse(text: &str) -> Option<ResourceType> {
        ResourceType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(text))
    }
}

/// The `resourceType` filter: comma-separated kinds, each known, or a 422 naming the first
/// unknown one (rather than a filter that silently matches nothing).
fn parse_types(text: &Option<String>) -> Result<Option<Vec<ResourceType>>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    text.split(',')
        .map(str::trim)
        .map(|name| {
            ResourceType::parse(name).ok_or_else(|| {
                let known: Vec<&str> = ResourceType::ALL.iter().map(|t| t.name()).collect();
                ApiError::invalid(
                    "resourceType",
                    format!(
                        "unknown resourceType `{name}`; known: {} (comma-separate several)",
                        known.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
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
/// window, resource id or resource types (comma-separated). Requires Workspace Owner or Workspace Member.
#[utoipa::path(get, path = "/audit-events", operation_id = "listAuditEvents", tag = "Audit Trail",
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
    let types = parse_types(&query.resource_type)?;
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
                && types
                    .as_ref()
                    .is_none_or(|ts| ts.iter().any(|t| t.name() == e.resource_type))
        })
        .collect();
    let (events, pagination) = page(events, &query.page)?;
    Ok(ok(AuditEvents { events, pagination }))
}
