//! The `sluice` command line: argument parsing and one module per command.

mod cache;
mod client;
mod dead_letters;
mod deploy;
mod destinations;
mod events;
mod expect;
mod functions;
mod logging;
mod logs;
mod new;
mod plans;
mod receiver;
mod resolve;
mod resources;
mod run;
mod run_net;
mod send;
mod serve;
mod sse;
mod table;
mod warehouses;

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
        action: destinations::DestinationsCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Manage tracking plans on a running server.
    TrackingPlans {
        /// What to do.
        #[command(subcommand)]
        action: plans::TrackingPlansCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Deploy, list, test functions and read their logs on a running server.
    Functions {
        /// What to do.
        #[command(subcommand)]
        action: functions::FunctionsCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Watch a source's events in the debugger of a running server: recent ones, or live.
    Events {
        /// What to do.
        #[command(subcommand)]
        action: events::EventsCmd,
        /// The server.
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Send a file of events to a source through the tracking API (`POST /v1/batch`), in
    /// batches within Segment's limits; prints a summary.
    Send(send::SendArgs),
    /// Manage warehouses on a running server: connect sources, sync, read sync reports.
    Warehouses {
        /// What to do.
        #[command(subcommand)]
        action: warehouses::WarehousesCmd,
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
    /// Serve the control plane, the tracking API and the pipeline until SIGINT or SIGTERM;
    /// configured by `sluice.toml`, `SLUICE_*` variables and flags (see --print-config).
    Serve(serve::ServeArgs),
}

/// Arguments of `sluice new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The function's name (letters, digits, `-`, `_`); also the directory created.
    pub name: String,
    /// The language: `rust` (a crate built into a component) or `js` (an `index.js` in
    /// Segment's style, run by sluice's JavaScript engine).
    #[arg(long, default_value = "rust", value_parser = ["rust", "js"])]
    pub lang: String,
    /// What the function is: `insert` (changes events in flight), `destination` (sends each
    /// event to an HTTP API) or `source` (turns webhook requests into events).
    #[arg(long, default_value = "insert", value_parser = KINDS)]
    pub kind: String,
    /// Create the project here instead of `./<name>`.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// A local guest SDK to depend on (a sluice checkout's `guest-sdk`; Rust only). Without
    /// it the project depends on `sluice-guest` by version, from a registry.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// The kinds of function `sluice new` and `sluice run` know.
const KINDS: [&str; 3] = ["insert", "destination", "source"];

/// Arguments of `sluice run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A component (`.wasm`), JavaScript code (`.js`, Segment style: `async function
    /// onTrack(event, settings)` ...), or the name of an example built into the target
    /// directory (`pii-filter`, `router`, `enrich`).
    pub function: String,
    /// A file of events, one JSON object per line (`-` for stdin); or give it as --events.
    #[arg(value_name = "EVENTS", required_unless_present = "events")]
    pub events_file: Option<PathBuf>,
    /// A file of events, one JSON object per line (`-` for stdin).
    #[arg(long, conflicts_with = "events_file")]
    pub events: Option<PathBuf>,
    /// Check the output against this file instead of printing it: one JSON line per output
    /// line, each listing fields the output must have (others are not compared). Fails with
    /// the differences.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
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
    /// What the function is: `insert` (each input line an event, the events it makes
    /// printed), `destination` (each line an event it sends out; one line per event says
    /// whether it was delivered) or `source` (each line a webhook body, a JSON object, sent
    /// as a JSON POST; the events it makes printed). Destination and source functions run on
    /// the network engine, as on the server.
    #[arg(long, default_value = "insert", value_parser = KINDS)]
    pub kind: String,
    /// A host (`host` or `host:port`) the function may reach, added to the settings'
    /// `allowedHosts`; repeatable. Destination and source functions only.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// Start a local HTTP receiver (127.0.0.1, a free port) that answers 200 `{}` and records
    /// each request: it is allowed, `{{receiver}}` in --settings becomes its base URL, and
    /// each destination output line lists the requests its event caused.
    #[arg(long)]
    pub receiver: bool,
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
            client_command(|| destinations::destinations(action, &client))
        }
        Command::TrackingPlans { action, client } => {
            client_command(|| plans::tracking_plans(action, &client))
        }
        Command::Functions { action, client } => {
            client_command(|| functions::functions(action, &client))
        }
        Command::Tokens { action, client } => client_command(|| resources::tokens(action, &client)),
        Command::Events { action, client } => client_command(|| events::events(action, &client)),
        Command::Send(args) => client_command(|| send::send(args)),
        Command::Warehouses { action, client } => {
            client_command(|| warehouses::warehouses(action, &client))
        }
    }
}

/// Client commands log only warnings: their output is the answer.
fn client_command(run: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    logging::init("warn", LogFormat::Text);
    run()
}
