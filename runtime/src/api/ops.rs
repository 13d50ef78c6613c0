//! The operator's endpoints, outside bearer auth so that probes and scrapers need no token:
//! `GET /healthz` (the process answers), `GET /readyz` (it can do its job), `GET /metrics`
//! (Prometheus), and the middleware that counts every HTTP request.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::sources::Source;
use super::store::Kind;

/// The content type of Prometheus's text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router(state: AppState) -> Router {
    probes(state.clone()).merge(
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(state),
    )
}

/// `/healthz` and `/readyz` only: what a load balancer in front of the tracking API's own
/// listener needs, without publishing the metrics (source ids and traffic) there too.
pub fn probes(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Liveness.
///
/// `200 ok` as long as the process serves HTTP; no token needed.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness.
///
/// `200 ready` when the database answers a read, the engine is up and the server is not
/// shutting down; otherwise `503` with the reason. No token needed.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match readiness(&state) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            )
                .into_response()
        }
    }
}

/// Why the server cannot take traffic, if it cannot.
fn readiness(state: &AppState) -> Result<(), String> {
    if *state.data_plane.closing.borrow() {
        return Err("shutting down".into());
    }
    // A real read through sled (a write key lookup, as ingestion does), not just "it opened".
    state
        .store
        .index("writekey:readyz-probe")
        .map_err(|e| format!("storage: {e:?}"))?;
    // The engine needs no check of its own: it is built with the state (`AppState::open`
    // fails without it), so a server that answers has one. An engine part that started in the
    // background would add its check here.
    Ok(())
}

/// Metrics.
///
/// Prometheus's text format: HTTP requests by route and status, events ingested, blocked,
/// discarded, delivered and failed per source and destination, queue depth per source,
/// function invocations by outcome with fuel and time histograms. No token needed: restrict
/// who reaches it at the network level.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let plane = &state.data_plane;
    // Queue depth is read now rather than tracked on every change: the backlog already keeps
    // the counts, and a scrape is rare next to an event.
    match state.store.list::<Source>(Kind::Source, "") {
        Ok(sources) => {
            let pending: Vec<(String, usize)> = sources
                .into_iter()
                .map(|s| {
                    let n = plane.backlog.pending(&s.id);
                    (s.id, n)
                })
                .collect();
            plane
                .observe
                .prometheus
                .queue(&pending, pending.iter().filter(|(_, n)| *n > 0).count());
        }
        Err(e) => tracing::warn!(error = ?e, "cannot list sources for the queue gauges"),
    }
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        plane.observe.prometheus.render(),
    )
        .into_response()
}

/// Counts every request under its route template (`/sources/{id}`, not the raw path, so the
/// label's values stay few), method and status, with its latency. Requests no route matched
/// count under `unmatched`.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    state.data_plane.observe.prometheus.http_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The standard methods by name; anything else (a client may send any token) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[tokio::test]
    async fn readiness_fails_with_the_reason_while_shutting_down() {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::open(dir.path(), super::super::Config::default()).unwrap();
        assert_eq!(readiness(&state), Ok(()));
        let response = readyz(State(state.clone())).await;
        assert_eq!(response.status(), StatusCode::OK);

        state.data_plane.closing.send_replace(true);
        let response = readyz(State(state)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"not ready: shutting down\n");
    }
}
