//! `sluice serve`: runs the HTTP control plane until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use super::logging::{self, LogFormat};
use crate::api::{self, AppState, Config};

/// Arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
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
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    logging::init("info", args.log_format);
    let config = Config {
        rate_limit_per_minute: args.rate_limit,
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
        api::run(listener, state, shutdown_signal()).await?;
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
