//! `sluice serve`: runs the HTTP control plane and the data plane (ingestion on the same
//! listener, the pipeline and deliveries) until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::logging::{self, LogFormat};
use crate::api::{self, AppState, Config};
use crate::topology::DataPlaneConfig;

/// Arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve the tracking API (`/v1/*`) on this address instead of on `--listen` (which then
    /// serves the control plane only).
    #[arg(long, env = "SLUICE_INGEST_LISTEN")]
    pub ingest_listen: Option<SocketAddr>,
    /// Where all state lives (created if missing).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    pub data_dir: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Requests per minute allowed to each token.
    #[arg(long, env = "SLUICE_RATE_LIMIT", default_value_t = 600)]
    pub rate_limit: u32,
    /// Use this secret as a Workspace Owner token (for scripts, CI and agents) instead of
    /// generating one.
    #[arg(long, env = "SLUICE_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Events pending per source (queued for the pipeline or for delivery) past which
    /// ingestion answers 429 with `Retry-After`.
    #[arg(long, env = "SLUICE_QUEUE_BOUND", default_value_t = 100_000)]
    pub queue_bound: usize,
    /// Seconds in which a repeated `messageId` from the same source is dropped.
    #[arg(long, env = "SLUICE_DEDUP_WINDOW_SECS", default_value_t = 24 * 3600)]
    pub dedup_window_secs: u64,
    /// First delay before retrying a failed delivery, in milliseconds (doubles per attempt, with
    /// jitter, up to 10 minutes).
    #[arg(long, env = "SLUICE_RETRY_BACKOFF_MS", default_value_t = 1000)]
    pub retry_backoff_ms: u64,
    /// Seconds a failing delivery is retried before it becomes a dead letter.
    #[arg(long, env = "SLUICE_RETRY_MAX_AGE_SECS", default_value_t = 4 * 3600)]
    pub retry_max_age_secs: u64,
    /// Timeout of one webhook request, in milliseconds.
    #[arg(long, env = "SLUICE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    logging::init("info", args.log_format);
    let config = Config {
        rate_limit_per_minute: args.rate_limit,
        data_plane: DataPlaneConfig {
            queue_bound: args.queue_bound,
            dedup_window: Duration::from_secs(args.dedup_window_secs),
            backoff_base: Duration::from_millis(args.retry_backoff_ms),
            max_age: Duration::from_secs(args.retry_max_age_secs),
            webhook_timeout: Duration::from_millis(args.webhook_timeout_ms),
            ..DataPlaneConfig::default()
        },
        ..Config::default()
    };
    let state = AppState::open(&args.data_dir, config)
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    if let Some(secret) = api::auth::bootstrap(&state.store, args.bootstrap_token.as_deref())? {
        println!(
            "No API token existed, so sluice created a Workspace Owner token. It is shown only this once:"
        );
        println!("{secret}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // The bound address, not the requested one: `--listen 127.0.0.1:0` picks a free port.
        let address = listener.local_addr().unwrap_or(args.listen);
        tracing::info!(%address, data_dir = %args.data_dir.display(), "sluice control plane listening");
        let ingest = match args.ingest_listen {
            Some(at) => {
                let ingest = tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot listen on {at}"))?;
                let address = ingest.local_addr().unwrap_or(at);
                tracing::info!(ingest_address = %address, "sluice tracking API listening");
                Some(ingest)
            }
            None => None,
        };
        api::run_split(listener, ingest, state, shutdown_signal()).await?;
        tracing::info!("stopped; database flushed");
        Ok(())
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
