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
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers' annotations;
//! - [`mcp`]: the Model Context Protocol endpoint (`/mcp`), its tools read from that document;
//! - [`console`]: the web console's embedded files at `/console` (no token), and the redirect
//!   of a browser from `/` to it.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod console;
pub mod data_plane;
pub mod destinations;
pub mod error;
pub mod extract;
pub mod function_test;
pub mod functions;
pub mod iam;
pub mod insert_functions;
pub mod invites;
pub mod mcp;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod rate_limit;
pub mod resource;
pub mod sources;
pub mod spaces;
pub mod store;
pub mod tracking_plans;
pub mod warehouse_syncs;
pub mod warehouses;
pub mod workspace;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::ToSchema;

use crate::dataplane::{DataPlane, DataPlaneConfig};
use crate::engine::{Engine, EngineConfig};
use crate::storage::{ComponentStore, open_db};
use error::ApiError;
use rate_limit::Limiter;
use store::Store;

/// The largest request body accepted (a base64 component upload is the biggest thing sent).
pub const BODY_LIMIT_BYTES: usize = 16 << 20;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests per minute per token. Default [`rate_limit::DEFAULT_PER_MINUTE`] (6,000: about
    /// 100 a second, Segment's default).
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
            rate_limit_per_minute: rate_limit::DEFAULT_PER_MINUTE,
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
        let store = Store::open(&db)?;
        let data_plane = Arc::new(DataPlane::open(
            &db,
            store.workspace().clone(),
            components.clone(),
            data_dir,
            config.data_plane.clone(),
        )?);
        Ok(AppState {
            store,
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

pub use crate::workspace::{new_id, now};

/// The control plane's routes with their layers: request ids, tracing, auth and rate
/// limits, content negotiation, the body limit, the fallbacks.
pub fn control(state: AppState) -> Router {
    // MCP tool calls go through the same routes and layers as any request (the tracking API
    // too, for `send_test_event`), so that they are authorised, limited and audited alike.
    let dispatch = crate::dataplane::ingest::router()
        .with_state(state.data_plane.clone())
        .merge(layered(routes(state.clone(), None), state.clone()));
    let mcp = Router::new().nest_service("/mcp", mcp::service(dispatch));
    console::mount(layered(routes(state.clone(), Some(mcp)), state))
}

/// The documented routes (and `extra`), with the fallbacks.
fn routes(state: AppState, extra: Option<Router>) -> Router {
    let (router, _) = openapi::router().split_for_parts();
    let router = router
        .fallback(|| async {
            ApiError::NotFound("no such path; GET /openapi.json lists them all".into())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    match extra {
        Some(extra) => router.merge(extra),
        None => router,
    }
}

/// `router` behind the control plane's layers.
fn layered(router: Router, state: AppState) -> Router {
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
