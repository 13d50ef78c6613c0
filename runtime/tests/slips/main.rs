//! Issue 14, "nothing lost to a slip, an honest CLI": each everyday slip of a new user, through
//! the real `sluice` binary and real HTTP, answered with what to do and without losing events.
//!
//! - `configuration`: deleting a destination with queued events, settings checked at
//!   creation, names where ids go, restore and rollback, the CLI's verbs, never-deployed
//!   functions (items 2, 3, 4, 5, 6, 13);
//! - `answers`: duplicates reported, replay's exit code, wrong paths and listeners, errors
//!   that say what to do (items 1, 7, 8, 9);
//! - `local`: deploying a JavaScript directory, the engine cache of `sluice run`, tables that
//!   show the reason, the output and the changes (items 10, 11, 12);
//! - `quickstart`: `docs/quickstart.md` run as written, its outputs checked (item 14).

#[path = "../support/mod.rs"]
mod support;

mod answers;
mod configuration;
mod http;
mod local;
mod quickstart;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Server, forward_lines};

/// The owner token of every server here.
pub const TOKEN: &str = "slips-test-owner-token-0001";

/// `sluice serve` on a free port with `args` added; waits until it listens.
pub fn serve(data_dir: &Path, args: &[&str]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("SLUICE_DATA_DIR", data_dir)
        .env("SLUICE_BOOTSTRAP_TOKEN", TOKEN);
    start(command)
}

/// Starts `command` (a `sluice serve`) and waits until it says where it listens.
pub fn start(mut command: Command) -> Server {
    command
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("sluice starts");
    let stdout = forward_lines(child.stdout.take().expect("stdout is piped"));
    let stderr = forward_lines(child.stderr.take().expect("stderr is piped"));
    let address = loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports its address within a minute");
        if let Some(rest) = line.split(" address=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    let stdout = stdout.try_iter().collect();
    Server {
        child,
        address,
        stdout,
        stderr,
    }
}

/// Writes `n` track events of user `u-<i>` with message ids `<prefix>-<i>`; returns the file.
pub fn events(dir: &Path, name: &str, prefix: &str, n: usize) -> PathBuf {
    let file = dir.join(name);
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"track","event":"Order Completed","userId":"u-{i}","messageId":"{prefix}-{i}","properties":{{"email":"a{i}@example.com","total":{i}}}}}"#
            )
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    file
}

/// Polls `check` every 100 ms for up to 20 s until it returns `Some`.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The JSON lines of `file` (none when it does not exist).
pub fn json_lines(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Text of a process's output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
