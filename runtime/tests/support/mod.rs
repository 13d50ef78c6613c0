//! Running the real `sluice` binary in tests: start `sluice serve` on a free port, talk to it,
//! stop it with SIGTERM.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// A running `sluice serve`.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// What it printed on stdout before listening (the bootstrap token, if any).
    pub stdout: Vec<String>,
    /// Its log lines.
    pub stderr: Receiver<String>,
}

/// Starts `sluice serve` on a free port and waits until it says where it listens.
pub fn start(data_dir: &Path, bootstrap: Option<&str>) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SLUICE_DATA_DIR", data_dir)
        .env_remove("SLUICE_BOOTSTRAP_TOKEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = bootstrap {
        command.env("SLUICE_BOOTSTRAP_TOKEN", token);
    }
    let mut child = command.spawn().expect("sluice starts");
    let stdout_lines = forward_lines(child.stdout.take().expect("stdout is piped"));
    let stderr = forward_lines(child.stderr.take().expect("stderr is piped"));
    let address = loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports its address within a minute");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    // A token, when one is printed, is written before the server starts listening; give the
    // reader thread a moment to pass it on.
    let stdout =
        std::iter::from_fn(|| stdout_lines.recv_timeout(Duration::from_millis(300)).ok()).collect();
    Server {
        child,
        address,
        stdout,
        stderr,
    }
}

/// Passes each line of a child's output through a channel, so reading never blocks the test.
pub fn forward_lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

impl Drop for Server {
    /// A test that fails before `stop` must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; returns the status line and the body.
pub fn get(address: &str, path: &str, token: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connects");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// Sends SIGTERM and waits for a clean exit, returning the rest of the log.
pub fn stop(mut server: Server) -> Vec<String> {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().expect("the server exits");
    assert!(status.success(), "a clean exit on SIGTERM, got {status}");
    server.stderr.try_iter().collect()
}

/// `sluice` as a client of a running server, with `token`.
pub struct Cli {
    /// The server's URL.
    pub url: String,
    /// The bearer token the commands send.
    pub token: String,
}

impl Cli {
    /// A client of `server` with `token`.
    pub fn of(server: &Server, token: &str) -> Cli {
        Cli {
            url: format!("http://{}", server.address),
            token: token.to_string(),
        }
    }

    /// The command, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(args)
            .env("SLUICE_URL", &self.url)
            .env("SLUICE_TOKEN", &self.token)
            .env_remove("SLUICE_WRITE_KEY");
        command
    }

    /// Runs a command to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("sluice runs")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sluice {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command with `--json`; returns the parsed output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("--json prints JSON")
    }

    /// Creates a source; returns its id and write key.
    pub fn source(&self, slug: &str) -> (String, String) {
        let source = self.json(&["sources", "create", slug]);
        (
            source["id"].as_str().unwrap().to_string(),
            source["writeKeys"][0].as_str().unwrap().to_string(),
        )
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "sluice {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Runs `sluice args` in `dir` to its end (a client command, `new`, `run`).
pub fn sluice_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sluice runs")
}

/// A command's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that each of `files` exists in `dir` (a new project's).
pub fn assert_files(dir: &Path, files: &[&str]) {
    for file in files {
        assert!(dir.join(file).is_file(), "{file} is created");
    }
}
