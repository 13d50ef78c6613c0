//! The `sluice` binary, built again in this package so that the cluster tests
//! (`tests/cluster*.rs`) can start real `sluice serve` processes: an integration test sees
//! only its own package's binaries (`CARGO_BIN_EXE_sluice-node`). Same code as
//! `runtime/src/main.rs`: the command line of `sluice_runtime::cli`.

use clap::Parser;
use sluice_runtime::cli::{Cli, execute};

#[global_allocator]
static ALLOCATOR: sluice_runtime::Allocator = sluice_runtime::Allocator;

fn main() -> std::process::ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
