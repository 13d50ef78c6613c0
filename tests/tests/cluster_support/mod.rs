//! What the cluster tests share: real `sluice serve` processes joined to a real NATS server
//! (`127.0.0.1:4222`, or `SLUICE_TEST_NATS_URL`; `scripts/test` starts one when none runs),
//! each test on its own stream prefix; a throwaway `nats-server` for the tests that stop it;
//! plain HTTP/1.1 over `TcpStream`; and a webhook receiver that counts what it was sent.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The Workspace Owner token every node is started with.
pub const TOKEN: &str = "cluster-test-owner-token";

/// The NATS server the tests use.
pub fn nats_url() -> String {
    std::env::var("SLUICE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A stream prefix no other test (or earlier run) uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t{test}{}x{nanos:x}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Panics with how to get one unless a NATS server answers at `url`.
pub fn require_nats(url: &str) {
    let address = url.trim_start_matches("nats://");
    assert!(
        TcpStream::connect(address).is_ok(),
        "no NATS server at {url}: run the tests with scripts/test (it starts one), or start \
         `nats-server -js` yourself, or set SLUICE_TEST_NATS_URL"
    );
}

/// A running `sluice serve --cluster ...`.
pub struct Node {
    pub child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    pub name: String,
    pub logs: Receiver<String>,
    /// Kept so that a restart can reuse it.
    pub data_dir: PathBuf,
}

/// Starts node `name` on `data_dir`, in the cluster at `nats` with `prefix`; `ack_wait` is how
/// long its unacknowledged work waits before another node takes it.
pub fn start_node(name: &str, data_dir: &Path, nats: &str, prefix: &str, ack_wait: u64) -> Node {
    let ack_wait = ack_wait.to_string();
    let cluster = [
        "--cluster",
        nats,
        "--cluster-prefix",
        prefix,
        "--node",
        name,
    ];
    let flags = [&cluster[..], &["--cluster-ack-wait-secs", &ack_wait]].concat();
    launch(name, data_dir, &flags)
}

/// Starts node `name` alone, on its data directory's own log (no `--cluster`).
pub fn start_local(name: &str, data_dir: &Path) -> Node {
    launch(name, data_dir, &[])
}

/// Runs `sluice serve` with `flags` and waits for it to report its address.
fn launch(name: &str, data_dir: &Path, flags: &[&str]) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-node"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env("SLUICE_DATA_DIR", data_dir)
        .env("SLUICE_BOOTSTRAP_TOKEN", TOKEN)
        .env(
            "RUST_LOG",
            std::env::var("SLUICE_TEST_NODE_LOGS").unwrap_or_else(|_| "info".into()),
        )
        .env_remove("SLUICE_CLUSTER")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let (tx, logs) = channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    // With SLUICE_TEST_NODE_LOGS set (to a log filter), the node's log is also printed.
    let echo = std::env::var_os("SLUICE_TEST_NODE_LOGS").is_some();
    let label = name.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("[{label}] {line}");
            }
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let address = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = logs
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("node {name} did not report its address"));
        if let Some(rest) = line.split("address=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    Node {
        child,
        address,
        name: name.to_string(),
        logs,
        data_dir: data_dir.to_path_buf(),
    }
}

impl Node {
    /// SIGKILL, no goodbye.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its log so far (for a failure's message).
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.try_iter().collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// One HTTP/1.1 request with a JSON body; `None` on any I/O failure (a dead node).
pub fn call(
    address: &str,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<&Value>,
) -> Option<Reply> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

/// A control-plane request with the owner token; panics if the node does not answer.
pub fn api(node: &Node, method: &str, path: &str, body: Option<&Value>) -> Reply {
    call(
        &node.address,
        method,
        path,
        &format!("Bearer {TOKEN}"),
        body,
    )
    .unwrap_or_else(|| panic!("node {} answers {method} {path}", node.name))
}

/// `Authorization` for a write key (HTTP Basic, empty password).
pub fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// A batch of track events with these ids.
pub fn batch(ids: &[String]) -> Value {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "track", "event": "Tick", "userId": "u", "messageId": id}))
        .collect();
    json!({ "batch": events })
}

/// Creates a source and a webhook destination to `hook` on `node`: (source id, write key).
pub fn source_to(node: &Node, slug: &str, hook: &str) -> (String, String) {
    let r = api(
        node,
        "POST",
        "/sources",
        Some(&json!({"slug": slug, "enabled": true, "metadataId": "http"})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["data"]["source"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let key = r.body["data"]["source"]["writeKeys"][0]
        .as_str()
        .expect("a write key")
        .to_string();
    let r = api(
        node,
        "POST",
        "/destinations",
        Some(&json!({"sourceId": id, "metadataId": "webhook", "settings": {"url": hook}})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    (id, key)
}

/// Polls `check` every 50 ms until it holds or `within` passed; whether it held.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Events a webhook receiver was sent: how many times each `messageId`, and each event.
#[derive(Default)]
pub struct Received {
    pub times: HashMap<String, usize>,
    pub events: HashMap<String, Value>,
}

/// A webhook receiver on a free port: its URL and what it received.
pub fn receiver() -> (String, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Received::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let shared = shared.clone();
            std::thread::spawn(move || serve_connection(stream, &shared));
        }
    });
    (url, seen)
}

fn serve_connection(stream: TcpStream, seen: &Mutex<Received>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // One event per request, or a webhook's `batchSize` batch.
        let events = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut body)) if body.get("batch").is_some_and(Value::is_array) => {
                match body.remove("batch") {
                    Some(Value::Array(list)) => list,
                    _ => Vec::new(),
                }
            }
            Ok(event) => vec![event],
            Err(_) => Vec::new(),
        };
        {
            let mut seen = seen.lock().expect("lock");
            for event in events {
                if let Some(id) = event["messageId"].as_str() {
                    *seen.times.entry(id.to_string()).or_default() += 1;
                    seen.events.insert(id.to_string(), event.clone());
                }
            }
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Waits until every id of `ids` was received (up to `within`); the ids still missing.
pub fn missing_after(seen: &Mutex<Received>, ids: &[String], within: Duration) -> Vec<String> {
    let missing = || {
        let seen = seen.lock().expect("lock");
        ids.iter()
            .filter(|id| !seen.times.contains_key(*id))
            .cloned()
            .collect::<Vec<_>>()
    };
    eventually(within, || missing().is_empty());
    missing()
}

/// A `nats-server` of the test's own, with JetStream on a temporary store, that the test may
/// stop and start again on the same port and store.
pub struct OwnNats {
    pub port: u16,
    pub store: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnNats {
    /// Starts one on a free port; panics (saying how to install it) without `nats-server`.
    pub fn start() -> OwnNats {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut nats = OwnNats {
            port,
            store: tempfile::tempdir().expect("a store directory"),
            child: None,
        };
        nats.resume();
        nats
    }

    /// Its process id (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and store, and waits until it accepts connections.
    pub fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (Debian package `nats-server`; scripts/test installs it)");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        assert!(
            eventually(Duration::from_secs(20), || TcpStream::connect(&address)
                .is_ok()),
            "nats-server listens on {address}"
        );
    }

    /// Stops it with SIGTERM (JetStream writes its state out) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
