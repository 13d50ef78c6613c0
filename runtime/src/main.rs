//! The `sluice` binary: parses the command line and runs the command.

use clap::Parser;
use sluice_runtime::cli::{Cli, execute};

/// mimalloc: per-thread free lists suit the data plane's many small, short-lived buffers.
#[global_allocator]
static ALLOCATOR: sluice_runtime::Allocator = sluice_runtime::Allocator;

fn main() -> std::process::ExitCode {
    quiet_on_closed_pipe();
    match execute(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `sluice events list | head -1` must end quietly when `head` closes the pipe, as other Unix
/// tools do, rather than panic in `println!`: restore the default SIGPIPE action that the Rust
/// runtime replaces with "ignore".
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
