//! The server: wires the control plane (`api`) and the data plane (`dataplane`) to one
//! listener, or two (the tracking API on its own), runs the data plane's stages, and shuts
//! everything down in order; in a cluster it opens the node on the shared state first
//! ([`open_node`]).

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::Response;
use axum::routing::any;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};

use crate::api::error::ApiError;
use crate::api::rate_limit::Limiter;
use crate::api::{AppState, control, ops};
use crate::cluster::{Cluster, ClusterConfig};
use crate::dataplane::ingest::TRACKING_PATHS;
use crate::dataplane::{self, DataPlane, Logs};
use crate::engine::Engine;
use crate::log::JetStreamLog;
use crate::storage::{ComponentStore, SharedObjects, open_db};

/// The whole application: the ingestion routes (authenticated by write key), the operator's
/// endpoints (no token), then the control plane's routes, auth, limits, request ids, content
/// negotiation, fallbacks; every request counted in the metrics.
pub fn app(state: AppState) -> Router {
    let ingest = tracking_api().with_state(state.data_plane.clone());
    let routes = ingest
        .merge(ops::router(state.clone()))
        .merge(control(state.clone()));
    counted(routes, state)
}

/// The tracking API's routes (`/v1/*`), open to browsers on any origin: analytics.js on a
/// customer's site posts there, after a CORS preflight when it sends `Authorization` or a JSON
/// `Content-Type`. The write key authenticates, not the origin, and no cookies are involved, so
/// `Access-Control-Allow-Origin: *` is right. The control plane gets no CORS headers.
fn tracking_api() -> Router<Arc<DataPlane>> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // Browsers cache the preflight this long (capped by each browser), sparing a round trip.
        .max_age(Duration::from_secs(24 * 60 * 60));
    dataplane::ingest::router().layer(cors)
}

/// `router` with every request counted under its route template. Applied last, so that it
/// wraps each route after routing (the template is known) and sees every answer, the 401s
/// and 429s of the auth layer and the fallbacks' 404s included. In a cluster every answer
/// also says which node gave it (`X-Sluice-Node`): the debugger, dead letters and metrics
/// are per node.
fn counted(router: Router, state: AppState) -> Router {
    let node = state
        .store
        .node()
        .and_then(|n| HeaderValue::from_str(n).ok());
    let router = router.layer(from_fn_with_state(state, ops::count_requests));
    match node {
        Some(node) => router.layer(map_response(move |mut response: Response| {
            let node = node.clone();
            async move {
                response.headers_mut().insert(NODE_HEADER, node);
                response
            }
        })),
        None => router,
    }
}

/// The header naming the node that answered, in a cluster.
pub const NODE_HEADER: &str = "x-sluice-node";

/// Opens a node of a cluster: `data_dir` keeps what stays per node (deduplication, parked
/// retries and dead letters, warehouses' staging, the node's replica of the workspace and its
/// cache of components); the cluster holds the event logs, the workspace and the function
/// objects. Runs on the tokio runtime the server will run on (the NATS client lives there).
/// `docs/cluster.md` says what is shared and what is not.
///
/// # Errors
/// NATS cannot be reached, JetStream refuses a stream, or the data directory cannot open.
pub async fn open_node(
    data_dir: &Path,
    config: crate::api::Config,
    cluster: ClusterConfig,
) -> anyhow::Result<AppState> {
    let cluster = Cluster::connect(cluster).await?;
    let db = open_db(data_dir)?;
    let engine = Engine::new(&config.engine)?;
    let objects = SharedObjects::open(&cluster).await?;
    let components = Arc::new(ComponentStore::open(&db, engine)?.shared_through(objects));
    let workspace = crate::workspace::Store::open(&db)?.join(&cluster).await?;
    let logs = Logs {
        ingest: Arc::new(JetStreamLog::open(&cluster, "ingest", dataplane::PIPELINE).await?),
        deliveries: Arc::new(JetStreamLog::open(&cluster, "deliveries", dataplane::DELIVER).await?),
    };
    let mut plane_config = config.data_plane.clone();
    // A node's backlog counts what it accepted, but another node settles it: per-node counts
    // would only grow, so neither bound applies in a cluster (JetStream holds the backlog).
    plane_config.queue_bound = usize::MAX / 2;
    plane_config.pipeline_lead = 0;
    let data_plane = Arc::new(DataPlane::with_logs(
        &db,
        workspace.clone(),
        components.clone(),
        data_dir,
        plane_config,
        logs,
    )?);
    tracing::info!(node = %cluster.config.node, nats = %cluster.config.url, prefix = %cluster.config.prefix, "joined the cluster");
    Ok(AppState {
        store: crate::api::store::Store::from_workspace(workspace),
        components,
        limiter: Arc::new(Limiter::new(config.rate_limit_per_minute)),
        config: Arc::new(config),
        data_plane,
    })
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
    let running = dataplane::start(&state.data_plane);
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
            let hint = misdirected(ingest.local_addr().ok());
            let control = counted(
                ops::router(state.clone())
                    .merge(hint)
                    .merge(control(state.clone())),
                state.clone(),
            )
            .into_make_service_with_connect_info::<SocketAddr>();
            let tracking = tracking_api()
                .fallback(|| async {
                    ApiError::NotFound(format!(
                        "this listener serves the tracking API only: POST on {}",
                        TRACKING_PATHS.join(", ")
                    ))
                })
                .with_state(state.data_plane.clone())
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

/// On the control plane's listener when the tracking API has its own: a request to `/v1/*`
/// is answered 404 with the ingest listener's address instead of the control plane's 401, so
/// that a client pointed at the wrong port learns where to send.
fn misdirected(ingest: Option<SocketAddr>) -> Router {
    let at = ingest.map_or_else(|| "its own address".to_string(), |a| format!("http://{a}"));
    let message = format!(
        "the tracking API (/v1/*) is served by the ingest listener (`ingest_listen`) at {at}, \
         not by this control-plane listener; send tracking calls there"
    );
    Router::new().route(
        "/v1/{*rest}",
        any(move || {
            let message = message.clone();
            async move { ApiError::NotFound(message) }
        }),
    )
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
