//! `sluice serve`: reads the configuration (file, environment, flags), then runs the HTTP
//! control plane and the data plane (ingestion on the same listener, the pipeline and
//! deliveries) until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

use super::logging;
use crate::api::{self, AppState};
use crate::config::{self, ConfigFile, KEYS, Settings};

/// Arguments of `sluice serve`: `--config`, `--print-config`, and one flag per setting of
/// [`config::KEYS`] (built from that list, so a new setting gets its flag, its environment
/// variable and its file key at once).
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--print-config`.
    pub print_config: bool,
    /// The settings given as flags: `(key path, text)`.
    pub flags: Vec<(&'static str, String)>,
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<ServeArgs, clap::Error> {
        Ok(ServeArgs {
            config: matches.get_one::<PathBuf>("config").cloned(),
            print_config: matches.get_flag("print-config"),
            flags: KEYS
                .iter()
                .filter_map(|k| {
                    matches
                        .get_one::<String>(k.flag)
                        .map(|v| (k.path, v.clone()))
                })
                .collect(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ServeArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ServeArgs {
    fn augment_args(command: Command) -> Command {
        let defaults = toml::Table::try_from(Settings::default()).unwrap_or_default();
        let command = command
            .arg(
                Arg::new("config")
                    .long("config")
                    .env("SLUICE_CONFIG")
                    .value_name("PATH")
                    .value_parser(value_parser!(PathBuf))
                    .help(format!(
                        "Configuration file (TOML; default ./{} if it exists). Precedence: \
                         flags > environment > file > defaults; see docs/configuration.md",
                        config::DEFAULT_FILE
                    )),
            )
            .arg(
                Arg::new("print-config")
                    .long("print-config")
                    .action(ArgAction::SetTrue)
                    .help("Print the effective configuration (TOML, with where each value came from) and exit"),
            );
        KEYS.iter().fold(command, |command, key| {
            let (section, name) = key.parts();
            let default = defaults
                .get(section)
                .and_then(|s| s.get(name))
                .map_or_else(|| "none".to_string(), ToString::to_string);
            command.arg(
                Arg::new(key.flag)
                    .long(key.flag)
                    .value_name("VALUE")
                    .help(format!(
                        "{} [env: {}] [file: {}] [default: {default}]",
                        key.help, key.env, key.path
                    )),
            )
        })
    }

    fn augment_args_for_update(command: Command) -> Command {
        ServeArgs::augment_args(command)
    }
}

/// The effective configuration of `args`, with the process's environment.
fn load(args: &ServeArgs) -> anyhow::Result<config::Loaded> {
    let file = match &args.config {
        Some(path) => ConfigFile::Given(path.clone()),
        None => ConfigFile::IfPresent(PathBuf::from(config::DEFAULT_FILE)),
    };
    Ok(config::load(
        &file,
        |name| std::env::var(name).ok(),
        &args.flags,
    )?)
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let loaded = load(&args)?;
    if args.print_config {
        print!("{}", loaded.to_toml());
        return Ok(());
    }
    let settings = loaded.settings;
    let server = &settings.server;
    logging::init("info", server.log_format);
    if let Some(file) = &loaded.file {
        tracing::info!(file = %file.display(), "configuration file read");
    }
    // Refused before the data directory is created, so a typo leaves nothing behind.
    if let Some(secret) = &server.bootstrap_token {
        api::auth::check_bootstrap(secret)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let opened = match settings.cluster_config(server.listen) {
        None => AppState::open(&server.data_dir, settings.api_config()),
        // The NATS client runs on the server's runtime.
        Some(cluster) => runtime.block_on(crate::server::open_node(
            &server.data_dir,
            settings.api_config(),
            cluster,
        )),
    };
    let state = opened.with_context(|| {
        format!(
            "cannot open the data directory {}",
            server.data_dir.display()
        )
    })?;
    let token = server.bootstrap_token.as_deref();
    let created = match api::auth::bootstrap(&state.store, token) {
        // Another node of the cluster created the first token at the same moment: now the
        // workspace has one, and this asks again only to say so.
        Err(api::error::ApiError::Conflict(_)) => api::auth::bootstrap(&state.store, token)?,
        other => other?,
    };
    if let Some(secret) = created {
        println!(
            "No API token existed, so sluice created a Workspace Owner token. It is shown only this once:"
        );
        println!("{secret}");
    }
    let (listen, ingest_listen, data_dir) =
        (server.listen, server.ingest_listen, server.data_dir.clone());
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // The bound address, not the requested one: `--listen 127.0.0.1:0` picks a free port.
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!(%address, data_dir = %data_dir.display(), "sluice control plane listening");
        let ingest = match ingest_listen {
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
        crate::server::run_split(listener, ingest, state, shutdown_signal()).await?;
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
