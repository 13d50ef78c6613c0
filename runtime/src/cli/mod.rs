//! The `sluice` command line: argument parsing and one module per command.

mod client;
mod functions;
mod logging;
mod new;
mod resources;
mod run;
mod serve;
mod table;

pub use logging::LogFormat;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// sluice: a self-hosted customer data pipeline with WebAssembly functions.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a function over a file of events on this machine and print what it makes of them.
    ///
    /// Output events go to stdout as JSON lines (drops and errors as `{"sluice": {...}}`
    /// lines); a summary with counts per outcome, fuel and time per event goes to stderr.
    Run(RunArgs),
    /// Create a new function project that builds and passes its own test as is.
    New(NewArgs),
    /// Manage sources on a running server.
    #[command(subcommand_required = true)]
    Sources {
        /// What to do.
        #[command(subcommand)]
        action: resources::SourcesCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Manage destinations on a running server.
    Destinations {
        /// What to do.
        #[command(subcommand)]
        action: resources::DestinationsCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Manage tracking plans on a running server.
    TrackingPlans {
        /// What to do.
        #[command(subcommand)]
        action: resources::TrackingPlansCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Deploy, list and test functions on a running server.
    Functions {
        /// What to do.
        #[command(subcommand)]
        action: functions::FunctionsCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Manage API tokens on a running server.
    Tokens {
        /// What to do.
        #[command(subcommand)]
        action: resources::TokensCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Serve the HTTP API (control plane) until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
}

/// Arguments of `sluice new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The function's name (letters, digits, `-`, `_`); also the directory created.
    pub name: String,
    /// The language: only `rust` for now (JavaScript functions come with `POST /functions`).
    #[arg(long, default_value = "rust", value_parser = ["rust"])]
    pub lang: String,
    /// Create the project here instead of `./<name>`.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// The guest SDK to depend on (default: the one in the sluice tree this binary came from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Arguments of `sluice run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A component (`.wasm`), or the name of an example built into the target directory
    /// (`pii-filter`, `router`, `enrich`).
    pub function: String,
    /// A file of events, one JSON object per line (`-` for stdin).
    #[arg(long)]
    pub events: PathBuf,
    /// The function instance's settings, a JSON object.
    #[arg(long, default_value = "{}")]
    pub settings: String,
    /// Run every event on a fresh instance instead of a warm one.
    #[arg(long)]
    pub fresh: bool,
    /// Send events to the function in batches of this many (1 = one call per event).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Fuel per invocation.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Deadline per invocation, in milliseconds.
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory cap per instance, in MiB.
    #[arg(long)]
    pub memory_mib: Option<usize>,
    /// Print no events, only the summary (for timing runs).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the parsed command; the process's exit code follows the result.
///
/// # Errors
/// Whatever stopped the command, worded for the person who ran it.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            logging::init("warn", LogFormat::Text);
            run::run(args)
        }
        Command::New(args) => {
            logging::init("warn", LogFormat::Text);
            new::new(args)
        }
        Command::Serve(args) => serve::serve(args),
        Command::Sources { action, client } => {
            client_command(|| resources::sources(action, &client))
        }
        Command::Destinations { action, client } => {
            client_command(|| resources::destinations(action, &client))
        }
        Command::TrackingPlans { action, client } => {
            client_command(|| resources::tracking_plans(action, &client))
        }
        Command::Functions { action, client } => {
            client_command(|| functions::functions(action, &client))
        }
        Command::Tokens { action, client } => client_command(|| resources::tokens(action, &client)),
    }
}

/// Client commands log only warnings: their output is the answer.
fn client_command(run: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    logging::init("warn", LogFormat::Text);
    run()
}
