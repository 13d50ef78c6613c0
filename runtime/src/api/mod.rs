//! The control plane: Segment's Public API over HTTP, backed by sled.
//!
//! Module map:
//! - [`error`], [`extract`]: the one error type and Segment's envelope; extractors that use it;
//! - [`auth`], [`rate_limit`]: bearer tokens, roles and scopes; per-token limits and headers;
//! - [`store`], [`pagination`], [`audit`]: storage (one sled transaction per change, audit
//!   event included), cursor pagination, the audit trail;
//! - one module per resource: [`workspace`], [`catalog`], [`sources`], [`destinations`],
//!   [`tracking_plans`], [`warehouses`], [`functions`] (and [`function_test`]), [`insert_functions`], [`spaces`], [`iam`] (and [`invites`]);
//! - [`data_plane`]: the event debugger, delivery metrics, dead letters and function logs;
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics` (no token) and the per-request metrics layer;
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers' annotations.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod data_plane;
pub mod destinations;
pub mod error;
pub mod extract;
pub mod function_test;
pub mod functions;
pub mod iam;
pub mod insert_functions;
pub mod invites;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod rate_limit;
pub mod resource;
pub mod sources;
pub mod spaces;
pub mod store;
pub mod tracking_plans;
pub mod warehouses;
pub mod workspace;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::ToSchema;

use crate::engine::{Engine, EngineConfig};
use crate::storage::{ComponentStore, open_db};
use crate::topology::{DataPlane, DataPlaneConfig};
use error::ApiError;
use rate_limit::Limiter;
use store::Store;

/// The largest request body accepted (a base64 component upload is the biggest thing sent).
pub const BODY_LIMIT_BYTES: usize = 16 << 20;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests per minute per token. Default 600.
    pub rate_limit_per_minute: u32,
    /// The workspace's name, shown by `GET /`. Default `sluice`.
    pub workspace_name: String,
    /// The data plane's knobs (see [`DataPlaneConfig`] for their defaults).
    pub data_plane: DataPlaneConfig,
    /// The WebAssembly engine's settings (see [`EngineConfig`] for their defaults).
    pub engine: EngineConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rate_limit_per_minute: 600,
            workspace_name: "sluice".into(),
            data_plane: DataPlaneConfig::default(),
            engine: EngineConfig::default(),
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The control plane's records.
    pub store: Store,
    /// Function components and the engine that runs them.
    pub components: Arc<ComponentStore>,
    /// Per-token request budgets.
    pub limiter: Arc<Limiter>,
    /// Settings.
    pub config: Arc<Config>,
    /// The data plane's queues, compiled rules and what it observed.
    pub data_plane: Arc<DataPlane>,
}

impl AppState {
    /// Opens (creating) the data directory: the sled database, the engine and the stores.
    ///
    /// # Errors
    /// The directory or the database cannot be opened, or the engine cannot start.
    pub fn open(data_dir: &Path, config: Config) -> anyhow::Result<AppState> {
        let db = open_db(data_dir)?;
        let engine = Engine::new(&config.engine)?;
        let components = Arc::new(ComponentStore::open(&db, engine)?);
        let data_plane = Arc::new(DataPlane::open(&db, data_dir, config.data_plane.clone())?);
        Ok(AppState {
            store: Store::open(&db)?,
            components,
            limiter: Arc::new(Limiter::new(config.rate_limit_per_minute)),
            config: Arc::new(config),
            data_plane,
        })
    }
}

/// The success envelope: `{"data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    /// The result.
    pub data: T,
}

/// A 200 with `value` in the envelope.
pub fn ok<T>(value: T) -> axum::Json<Data<T>> {
    axum::Json(Data { data: value })
}

/// A 201 with `value` in the envelope.
pub fn created<T>(value: T) -> (StatusCode, axum::Json<Data<T>>) {
    (StatusCode::CREATED, ok(value))
}

/// A new time-ordered id (UUIDv7, hex), so that listing by key lists by creation.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The whole application: the ingestion routes (authenticated by write key), the operator's
/// endpoints (no token), then the control plane's routes, auth, limits, request ids, content
/// negotiation, fallbacks; every request counted in the metrics.
pub fn app(state: AppState) -> Router {
    let ingest = crate::ingest::router().with_state(state.clone());
    let routes = ingest
        .merge(ops::router(state.clone()))
        .merge(control(state.clone()));
    counted(routes, state)
}

/// `router` with every request counted under its route template. Applied last, so that it
/// wraps each route after routing (the template is known) and sees every answer, the 401s
/// and 429s of the auth layer and the fallbacks' 404s included.
fn counted(router: Router, state: AppState) -> Router {
    router.layer(from_fn_with_state(state, ops::count_requests))
}

fn control(state: AppState) -> Router {
    let (router, _) = openapi::router().split_for_parts();
    let router = router
        .fallback(|| async {
            ApiError::NotFound("no such path; GET /openapi.json lists them all".into())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    })
                    // One line per request at info: status and latency, inside the request's span.
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            // Authentication and rate limiting first, so that every response (a 406 too)
            // carries the `X-RateLimit-*` headers.
            .layer(from_fn_with_state(state, auth::guard))
            .layer(from_fn(negotiate))
            .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES)),
    )
}

/// Serves `app(state)` on `listener` and runs the data plane's pipeline and deliveries until
/// `shutdown` completes; in-flight requests finish, then the database is flushed (what the
/// pipeline had not finished stays queued for the next start).
///
/// # Errors
/// The listener fails, or the final flush does.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_split(listener, None, state, shutdown).await
}

/// Like [`run`], but with `ingest` given, the tracking API (`/v1/*`) is served there only and
/// `listener` serves the control plane only.
///
/// # Errors
/// A listener fails, or the final flush does.
pub async fn run_split(
    listener: TcpListener,
    ingest: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = state.store.clone();
    let running = crate::topology::start(&state);
    let upkeep = tokio::spawn(metrics_upkeep(state.data_plane.clone()));
    // The shutdown signal runs in its own task so that a panic in it (logging to a closed
    // stderr panics) still shuts down: its end, however it ends, closes everything.
    let trigger = tokio::spawn(shutdown);
    let plane = state.data_plane.clone();
    let fire = async move {
        let _ = trigger.await;
        // Live debugger streams never end on their own; this ends them so the server can stop.
        plane.closing.send_replace(true);
    };
    let closed = |mut closing: tokio::sync::watch::Receiver<bool>| async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let served = match ingest {
        None => {
            let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(fire)
                .await
        }
        Some(ingest) => {
            let control = counted(
                ops::router(state.clone()).merge(control(state.clone())),
                state.clone(),
            )
            .into_make_service_with_connect_info::<SocketAddr>();
            let tracking = crate::ingest::router()
                .fallback(|| async {
                    ApiError::NotFound("this listener serves the tracking API (/v1/*) only".into())
                })
                .with_state(state.clone())
                .merge(ops::probes(state.clone()));
            let tracking = counted(tracking, state.clone())
                .into_make_service_with_connect_info::<SocketAddr>();
            let control = axum::serve(listener, control).with_graceful_shutdown(fire);
            let tracking = axum::serve(ingest, tracking)
                .with_graceful_shutdown(closed(state.data_plane.closing.subscribe()));
            tokio::try_join!(control.into_future(), tracking.into_future()).map(|_| ())
        }
    };
    drop(state);
    running.stop().await;
    // Aborted and awaited, so that its hold on the database is gone when this returns (a
    // restart in the same process reopens the directory).
    upkeep.abort();
    let _ = upkeep.await;
    served?;
    store.flush()?;
    Ok(())
}

/// Drains histogram samples into their buckets every few seconds, so that memory stays flat
/// however long nobody scrapes `/metrics`.
async fn metrics_upkeep(plane: Arc<DataPlane>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        plane.observe.prometheus.upkeep();
    }
}

const VERSIONED: [&str; 3] = [
    "application/vnd.segment.v1+json",
    "application/vnd.segment.v1beta+json",
    "application/vnd.segment.v1alpha+json",
];

/// Segment's content negotiation: JSON, or one of its versioned JSON media types (echoed back
/// as the response's type); `text/event-stream` for the live debugger; anything else is a 406.
async fn negotiate(req: Request, next: Next) -> Response {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or("invalid").to_ascii_lowercase());
    // The live debugger answers Server-Sent Events, which clients (a browser's EventSource
    // included) ask for by name.
    let streams = req.uri().path().ends_with("/events/live");
    let mut versioned = None;
    if let Some(accept) = accept {
        let mut acceptable = false;
        for media in accept
            .split(',')
            .map(|p| p.split(';').next().unwrap_or_default().trim())
        {
            if let Some(v) = VERSIONED.iter().find(|v| **v == media) {
                versioned.get_or_insert(*v);
                acceptable = true;
            } else if matches!(media, "*/*" | "application/*" | "application/json" | "")
                || (streams && media == "text/event-stream")
            {
                acceptable = true;
            }
        }
        if !acceptable {
            return ApiError::NotAcceptable.into_response();
        }
    }
    let mut response = next.run(req).await;
    if let Some(media) = versioned {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    }
    response
}
