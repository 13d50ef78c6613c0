//! The `sluice` binary: parses the command line and runs the command.

use clap::Parser;
use sluice_runtime::cli::{Cli, execute};

fn main() -> std::process::ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
