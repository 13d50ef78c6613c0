//! Process-wide log set-up, chosen by each command: people get text, machines JSON.

use tracing_subscriber::EnvFilter;

pub use crate::config::LogFormat;

/// Installs the global subscriber, writing to stderr at `default_level` unless `RUST_LOG` says
/// otherwise. Called once, by the command that runs.
pub(super) fn init(default_level: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (the reader of stderr went away) is dropped; by
        // default tracing-subscriber reports it with `eprintln!`, which panics the server.
        .log_internal_errors(false)
        // Colours only for a terminal: a file or a log collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second call (tests running commands in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}
