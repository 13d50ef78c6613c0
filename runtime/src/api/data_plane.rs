//! The control plane's view of the data plane: the event debugger (recent events and a live
//! stream per source), delivery metrics and dead letters per destination (with replay), and
//! function logs from real runs.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, CommonErrors};
use super::extract::{Path, Query};
use super::resource::Reply;
use super::{AppState, Data, destinations, functions, ok, sources};
use crate::dataplane::observe::{DeliveryCounts, EventTrace, FunctionLog};
use crate::dataplane::parked::DeadLetter;

/// `GET /events` query.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The source.
    pub source_id: String,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

/// Recent events of a source.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Events {
    /// Newest first, each with what every stage did.
    pub events: Vec<EventTrace>,
    /// Events the source's insert functions discarded, by reason.
    pub discarded: BTreeMap<String, u64>,
}

/// List recent events.
///
/// The source debugger: the source's recent events (newest first, bounded) with what each
/// stage did to them: enforcement (validated, violations, blocked), insert functions (forward,
/// drop, fan-out, error), routing and delivery per destination.
#[utoipa::path(get, path = "/events", operation_id = "listEvents", tag = "Event Debugger", params(EventsQuery),
    responses((status = 200, body = Data<Events>), CommonErrors))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventsQuery>,
) -> Reply<Events> {
    let source = sources::load(&state, &caller, &q.source_id, false)?;
    let observe = &state.data_plane.observe;
    Ok(ok(Events {
        events: observe.recent(&source.id, q.limit.unwrap_or(100)),
        discarded: observe.discarded_counts(&source.id),
    }))
}

/// Stream a source's events live.
///
/// Server-Sent Events: one `stage` event (JSON: `sourceId`, `messageId`, `stage`, and the
/// event itself on its `ingest` stage) each time a stage handles one of the source's events.
#[utoipa::path(get, path = "/sources/{id}/events/live", operation_id = "streamLiveEventsFromSource", tag = "Event Debugger",
    params(("id" = String, Path, description = "Source id")),
    responses((status = 200, description = "A text/event-stream"), CommonErrors))]
pub async fn live(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let source = sources::load(&state, &caller, &id, false)?;
    let receiver = state.data_plane.observe.subscribe();
    let closing = state.data_plane.closing.subscribe();
    let stream = futures_util::stream::unfold(
        (receiver, closing, source.id),
        |(mut receiver, mut closing, source_id)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let received = tokio::select! {
                    r = receiver.recv() => r,
                    _ = closing.changed() => return None,
                };
                let event = match received {
                    Ok(update) if update.source_id == source_id => Event::default()
                        .event("stage")
                        .json_data(&update)
                        .unwrap_or_else(|_| Event::default().comment("unserializable")),
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        Event::default().event("lagged").data(n.to_string())
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(event), (receiver, closing, source_id)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /destinations/{id}/delivery-metrics` query.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// The window, in minutes back from now (default 60, at most 1440).
    pub minutes: Option<u64>,
}

/// Delivery counts of a destination.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMetrics {
    /// The window, in minutes.
    pub minutes: u64,
    /// The counts.
    pub counts: DeliveryCounts,
    /// Deliveries waiting for the destination's source (queued or being retried).
    pub pending: usize,
}

/// Get delivery metrics.
///
/// Delivered, retried, failed, dropped and filtered counts over the last `minutes` minutes
/// (kept in memory since the server started).
#[utoipa::path(get, path = "/destinations/{id}/delivery-metrics", operation_id = "listDeliveryMetricsSummaryFromDestination", tag = "Destinations",
    params(("id" = String, Path, description = "Destination id"), MetricsQuery),
    responses((status = 200, body = Data<DeliveryMetrics>), CommonErrors))]
pub async fn delivery_metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> Reply<DeliveryMetrics> {
    let destination = destinations::load(&state, &caller, &id, false)?;
    let minutes = q.minutes.unwrap_or(60).clamp(1, 1440);
    let plane = &state.data_plane;
    Ok(ok(DeliveryMetrics {
        minutes,
        counts: plane.observe.counts(&destination.id, minutes),
        pending: plane.backlog.pending(&destination.source_id),
    }))
}

/// Dead letters of a destination.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedEvents {
    /// Oldest first (at most 1000), each with its last error.
    pub failed_events: Vec<DeadLetter>,
}

/// List failed events.
///
/// Events the destination refused permanently (a 4xx other than 408 and 429) or that were
/// retried until the maximum age, with the last error. A destination deleted with
/// `force=true` keeps its dead letters here (the events queued when it was deleted).
#[utoipa::path(get, path = "/destinations/{id}/failed-events", operation_id = "listFailedEventsFromDestination", tag = "Destinations",
    params(("id" = String, Path, description = "Destination id")),
    responses((status = 200, body = Data<FailedEvents>), CommonErrors))]
pub async fn failed_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<FailedEvents> {
    let found = destinations::load(&state, &caller, &id, false);
    let parked = state.data_plane.parked.clone();
    let letters_of = id.clone();
    let failed_events = tokio::task::spawn_blocking(move || parked.dead_letters(&letters_of, 1000))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match found {
        Ok(_) => {}
        // A destination deleted with `force=true` keeps its dead letters: they stay readable
        // by whoever may read their source.
        Err(ApiError::NotFound(_)) if !failed_events.is_empty() => {
            let source_id = failed_events[0].source_id.clone();
            caller.require_through_source(false, &source_id, "destination", &id)?;
        }
        Err(e) => return Err(e),
    }
    Ok(ok(FailedEvents { failed_events }))
}

/// How many dead letters were queued again.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// The count.
    pub replayed: usize,
}

/// Replay failed events.
///
/// Puts every dead letter of the destination back on its delivery queue, with fresh retries.
#[utoipa::path(post, path = "/destinations/{id}/failed-events/replay", operation_id = "replayFailedEventsFromDestination", tag = "Destinations",
    params(("id" = String, Path, description = "Destination id")),
    responses((status = 200, body = Data<Replayed>), CommonErrors))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Replayed> {
    let destination = destinations::load(&state, &caller, &id, true)?;
    let plane = state.data_plane.clone();
    let parked = plane.parked.clone();
    let id = destination.id.clone();
    let sources = tokio::task::spawn_blocking(move || parked.replay(&id))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    for source_id in &sources {
        plane.backlog.adjust(source_id, 1, 0);
    }
    plane.retries_parked.notify_one();
    Ok(ok(Replayed {
        replayed: sources.len(),
    }))
}

/// A function's recent log lines.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionLogs {
    /// Oldest first; the newest lines are kept (a bounded number per function).
    pub logs: Vec<FunctionLog>,
}

/// Get function logs.
///
/// What the function logged while processing real events in the pipeline (not tests), newest
/// kept, bounded per function, since the server started.
#[utoipa::path(get, path = "/functions/{id}/logs", operation_id = "listFunctionLogs", tag = "Functions",
    params(("id" = String, Path, description = "Function id")),
    responses((status = 200, body = Data<FunctionLogs>), CommonErrors))]
pub async fn function_logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<FunctionLogs> {
    let function = functions::load(&state, &caller, &id, false)?;
    Ok(ok(FunctionLogs {
        logs: state.data_plane.observe.logs(&function.id),
    }))
}
