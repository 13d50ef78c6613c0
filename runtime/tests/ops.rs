//! The operator's view of a real `sluice serve`: `/healthz`, `/readyz` and `/metrics` without a
//! token, counts that match the traffic sent; and the operator's commands against it:
//! `sluice send` (batches, refused lines), `sluice events tail`, `sluice functions logs
//! [--follow]`, `sluice destinations failed-events` and `replay --wait`.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Cli, Server, forward_lines, get, start, stop};

const TOKEN: &str = "ops-test-owner-token-0123";

/// What only these tests ask of the client.
impl Cli {
    /// A long-running command, its stdout and stderr as line channels.
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice starts");
        let stdout = forward_lines(child.stdout.take().expect("piped"));
        let stderr = forward_lines(child.stderr.take().expect("piped"));
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

/// A command left running; killed when dropped.
struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Running {
    /// Waits for a line of `channel` containing `needle`.
    fn wait_for(channel: &Receiver<String>, needle: &str, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = channel.recv_timeout(Duration::from_millis(200)) {
                if line.contains(needle) {
                    return line;
                }
                seen.push(line);
            }
        }
        panic!("no line with {needle:?} from {what} within a minute; saw {seen:?}");
    }

    /// Stdout lines until `done` says the collection is complete.
    fn collect_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        while !done(&lines) {
            assert!(Instant::now() < deadline, "timed out; got {lines:?}");
            if let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(200)) {
                lines.push(line);
            }
        }
        lines
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics`, parsed: series (name with labels, as printed) to value.
fn scrape(server: &Server) -> HashMap<String, f64> {
    let (status, body) = get(&server.address, "/metrics", None);
    assert!(status.contains("200"), "{status}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Waits until `metric` reaches `want`; returns the last scrape.
fn wait_metric(server: &Server, metric: &str, want: f64) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = scrape(server);
        if metrics.get(metric) == Some(&want) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{metric} never reached {want}: {:?}",
            metrics.get(metric)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn write_events(path: &Path, events: impl IntoIterator<Item = String>) {
    let mut text = String::new();
    for event in events {
        text.push_str(&event);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn component(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join(format!("wasm32-wasip2/wasm/{name}.wasm"))
}

#[test]
fn probes_and_metrics_need_no_token_and_count_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), Some(TOKEN));
    let cli = Cli::of(&server, TOKEN);

    let (status, body) = get(&server.address, "/healthz", None);
    assert!(
        status.contains("200") && body == "ok\n",
        "{status} {body:?}"
    );
    let (status, body) = get(&server.address, "/readyz", None);
    assert!(
        status.contains("200") && body == "ready\n",
        "{status} {body:?}"
    );
    let (status, _) = get(&server.address, "/sources", None);
    assert!(
        status.contains("401"),
        "everything else still needs a token: {status}"
    );

    let (source, key) = cli.source("web");
    let destination = cli.json(&[
        "destinations",
        "create",
        "--source",
        &source,
        "--type",
        "file",
        "--setting",
        "path=out.jsonl",
    ]);
    let destination = destination["id"].as_str().unwrap().to_string();
    let out = dir.path().join("data/files/out.jsonl");

    // The live debugger, followed from the command line while two events go through.
    let tail = cli.spawn(&["events", "tail", "--source", &source]);
    Running::wait_for(&tail.stderr, "watching source", "events tail");
    let two = dir.path().join("two.jsonl");
    write_events(
        &two,
        ["tail-1", "tail-2"].map(|id| {
            json!({"type": "track", "event": "Order Completed", "userId": "u-42", "messageId": id}).to_string()
        }),
    );
    let sent = cli.ok(&["send", "--write-key", &key, two.to_str().unwrap()]);
    assert!(sent.starts_with("sent 2 events in 1 requests"), "{sent}");
    let shown = tail.collect_until(|lines| {
        ["tail-1", "tail-2"].iter().all(|id| {
            lines
                .iter()
                .any(|l| l.contains(id) && l.contains("deliver") && l.contains("delivered"))
        })
    });
    for id in ["tail-1", "tail-2"] {
        let ingest = shown
            .iter()
            .find(|l| l.contains(id) && l.contains("ingest"))
            .unwrap_or_else(|| panic!("an ingest line for {id}: {shown:?}"));
        assert!(
            ingest.contains(r#"accepted    track "Order Completed" user u-42"#),
            "{ingest}"
        );
        assert!(
            shown
                .iter()
                .any(|l| l.contains(id) && l.contains(&format!("-> {destination}"))),
            "{shown:?}"
        );
    }
    drop(tail);
    // --json: the raw updates.
    let raw = cli.spawn(&["events", "tail", "--source", &source, "--json"]);
    Running::wait_for(&raw.stderr, "watching source", "events tail --json");
    let one = dir.path().join("one.jsonl");
    write_events(
        &one,
        [json!({"type": "identify", "userId": "u-7", "messageId": "raw-1"}).to_string()],
    );
    cli.ok(&["send", "--write-key", &key, one.to_str().unwrap()]);
    let update: Value =
        serde_json::from_str(&Running::wait_for(&raw.stdout, "raw-1", "tail --json")).unwrap();
    assert_eq!(update["sourceId"], source.as_str());
    assert_eq!(update["stage"]["stage"], "ingest");
    assert_eq!(update["event"]["userId"], "u-7");
    drop(raw);

    // 3,000 events: more than one batch may hold (2,500), so two requests, all delivered.
    let many = dir.path().join("many.jsonl");
    write_events(
        &many,
        (0..3000).map(|i| json!({"type": "track", "event": "Viewed", "userId": format!("u{i}"), "properties": {"i": i}}).to_string()),
    );
    let sent = cli.ok(&["send", "--write-key", &key, many.to_str().unwrap()]);
    assert!(sent.starts_with("sent 3000 events in 2 requests"), "{sent}");
    let total = 3003.0;
    let delivered = format!(
        r#"sluice_events_delivered_total{{source_id="{source}",destination_id="{destination}"}}"#
    );
    let metrics = wait_metric(&server, &delivered, total);
    assert_eq!(lines_of(&out), 3003, "every event is in the file");
    let series = |s: &str| metrics.get(s).copied();
    assert_eq!(
        series(&format!(
            r#"sluice_events_ingested_total{{source_id="{source}"}}"#
        )),
        Some(total)
    );
    assert_eq!(
        series(r#"sluice_http_requests_total{method="POST",route="/v1/batch",status="200"}"#),
        Some(4.0),
        "1 + 1 + 2 batch requests"
    );
    assert_eq!(
        series(r#"sluice_http_requests_total{method="GET",route="/sources",status="401"}"#),
        Some(1.0)
    );
    assert!(
        series(
            r#"sluice_http_requests_total{method="GET",route="/sources/{id}/events/live",status="200"}"#
        ) == Some(2.0),
        "routes are templates, not paths: {:?}",
        metrics
            .keys()
            .filter(|k| k.contains("live"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        series(r#"sluice_http_request_duration_seconds_count{method="POST",route="/v1/batch"}"#),
        Some(4.0)
    );
    assert_eq!(
        series(&format!(
            r#"sluice_queue_pending_events{{source_id="{source}"}}"#
        )),
        Some(0.0)
    );
    assert_eq!(series("sluice_queue_sources_waiting"), Some(0.0));

    // Lines the server refuses, or that are not events, are reported by line; the rest go.
    let mixed = dir.path().join("mixed.jsonl");
    std::fs::write(
        &mixed,
        "{\"type\":\"track\",\"event\":\"Ok\",\"userId\":\"u\"}\n{\"type\":\"nope\",\"userId\":\"u\"}\nnot json\n\n{\"type\":\"identify\",\"userId\":\"u\"}\n",
    )
    .unwrap();
    let refused = cli.run(&["send", "--write-key", &key, mixed.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused lines fail the command");
    assert!(
        String::from_utf8_lossy(&refused.stdout).starts_with("sent 2 events"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 2: ") && stderr.contains("line 3: not a JSON object"),
        "{stderr}"
    );
    wait_metric(&server, &delivered, total + 2.0);
    // A wrong write key stops at once with the server's message.
    let wrong = cli.run(&["send", "--write-key", "nope", one.to_str().unwrap()]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401: a valid write key is required"),
        "{wrong:?}"
    );

    stop(server);
}

/// A webhook receiver answering with `status` (changeable); counts the requests it answered 2xx.
fn receiver() -> (String, Arc<AtomicU16>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(400));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (s, a) = (status.clone(), accepted.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let code = s.load(Ordering::SeqCst);
            if code < 300 {
                a.fetch_add(1, Ordering::SeqCst);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, status, accepted)
}

/// The event id a `functions logs` line names: `... (event <id>, instance ...)`.
fn event_of(line: &str) -> String {
    let after = line.split("(event ").nth(1).unwrap_or_default();
    after.split(',').next().unwrap_or_default().to_string()
}

#[test]
fn function_logs_dead_letters_and_replay_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), Some(TOKEN));
    let cli = Cli::of(&server, TOKEN);
    let (source, key) = cli.source("shop");
    let (url, status, accepted) = receiver();
    let destination = cli.json(&[
        "destinations",
        "create",
        "--source",
        &source,
        "--type",
        "webhook",
        "--name",
        "hook",
        "--setting",
        &format!("url={url}"),
    ]);
    let destination = destination["id"].as_str().unwrap().to_string();
    let router = component("router");
    // Deployed and attached in one command.
    let instance_settings = json!({"routes": {"Order Completed": destination}}).to_string();
    let function = cli.json(&[
        "functions",
        "deploy",
        router.to_str().unwrap(),
        "--name",
        "router",
        "--setting",
        "routes:TEXT_MAP",
        "--attach",
        &source,
        "--instance-settings",
        &instance_settings,
    ]);
    let function = function["id"].as_str().unwrap().to_string();

    let events = |name: &str, ids: &[&str]| {
        let path = dir.path().join(format!("{name}.jsonl"));
        write_events(
            &path,
            ids.iter().map(|id| json!({"type": "track", "event": "Order Completed", "userId": "u", "messageId": id}).to_string()),
        );
        path
    };
    let first = events("first", &["o-1", "o-2", "o-3"]);
    cli.ok(&["send", "--write-key", &key, first.to_str().unwrap()]);

    // Every routed event logged a line; `logs` prints them, oldest first.
    let deadline = Instant::now() + Duration::from_secs(60);
    let logs = loop {
        let logs = cli.ok(&["functions", "logs", &function]);
        if logs.lines().count() >= 3 || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 3, "{logs}");
    let logged_first = event_of(lines[0]);
    // Lines are in the order they were logged; an event retried (say, after a deadline on a
    // loaded machine) logs after later ones, so the events are matched whatever their order.
    lines.sort_by_key(|line| event_of(line));
    for (line, id) in lines.iter().zip(["o-1", "o-2", "o-3"]) {
        assert!(
            line.contains(&format!("routing \"Order Completed\" to {destination}")),
            "{line}"
        );
        assert!(
            line.contains(&format!("(event {id}")) && line.contains("info"),
            "{line}"
        );
    }
    let as_json = cli.ok(&["functions", "logs", &function, "--json"]);
    let first_line: Value = serde_json::from_str(as_json.lines().next().unwrap()).unwrap();
    assert_eq!(first_line["messageId"], logged_first);

    // --follow prints what is there, then only the new lines as they come.
    let follow = cli.spawn(&["functions", "logs", &function, "--follow"]);
    let old = follow.collect_until(|l| l.len() >= 3);
    let mut printed: Vec<String> = old.iter().map(|l| event_of(l)).collect();
    printed.sort();
    assert_eq!(printed, ["o-1", "o-2", "o-3"], "{old:?}");
    let second = events("second", &["o-4", "o-5"]);
    cli.ok(&["send", "--write-key", &key, second.to_str().unwrap()]);
    let new = follow.collect_until(|l| l.len() >= 2);
    let mut printed: Vec<String> = new.iter().map(|l| event_of(l)).collect();
    printed.sort();
    assert_eq!(printed, ["o-4", "o-5"], "{new:?}");
    assert!(
        follow
            .stdout
            .recv_timeout(Duration::from_millis(1500))
            .is_err(),
        "nothing printed twice"
    );
    drop(follow);

    // The webhook refuses them (400): five dead letters, listed with their error.
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let failed = cli.json(&["destinations", "failed-events", &destination]);
        if failed.as_array().map(Vec::len) == Some(5) || Instant::now() > deadline {
            break failed;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let failed = failed.as_array().expect("a list");
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(
        failed[0]["lastError"].as_str().unwrap().contains("400"),
        "{:?}",
        failed[0]
    );
    let table = cli.ok(&["destinations", "failed-events", &destination]);
    assert!(
        table.starts_with("ID") && table.contains("o-1") && table.contains("400"),
        "{table}"
    );

    // Fixed; replayed and waited for: all five delivered.
    status.store(200, Ordering::SeqCst);
    let replayed = cli.ok(&["destinations", "replay", &destination, "--wait"]);
    assert!(
        replayed.contains("replayed 5 failed events")
            && replayed.contains("5 delivered, 0 failed again"),
        "{replayed}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
    assert_eq!(
        cli.json(&["destinations", "failed-events", &destination]),
        json!([])
    );
    let nothing = cli.ok(&["destinations", "replay", &destination]);
    assert!(nothing.contains("replayed 0"), "{nothing}");

    let metrics = scrape(&server);
    let series = |s: String| metrics.get(&s).copied();
    assert_eq!(
        series(format!(
            r#"sluice_function_invocations_total{{function_id="{function}",outcome="forward"}}"#
        )),
        Some(5.0)
    );
    assert_eq!(
        series(format!(
            r#"sluice_function_fuel_consumed_count{{function_id="{function}"}}"#
        )),
        Some(5.0)
    );
    assert_eq!(
        series(format!(
            r#"sluice_function_duration_seconds_count{{function_id="{function}"}}"#
        )),
        Some(5.0)
    );
    let pair = format!(r#"source_id="{source}",destination_id="{destination}""#);
    assert_eq!(
        series(format!("sluice_events_failed_total{{{pair}}}")),
        Some(5.0)
    );
    assert_eq!(
        series(format!("sluice_events_delivered_total{{{pair}}}")),
        Some(5.0)
    );
    stop(server);
}
