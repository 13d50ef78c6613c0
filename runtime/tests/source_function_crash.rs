//! A source function's webhook acknowledges only what is durable: a real `sluice serve`
//! process runs the `webhook-source` example as a source function; webhooks are POSTed, the
//! process is killed with SIGKILL right after the last 200, restarted on the same data
//! directory, and every event of every acknowledged request reaches the file destination.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::start;

mod support;

const TOKEN: &str = "source-crash-owner-token";

fn webhook_source_wasm() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/wasm/webhook_source.wasm")
}

/// One HTTP/1.1 POST; the status code and the JSON body, or `None` on any I/O failure.
fn post(address: &str, path: &str, auth: Option<&str>, body: &Value) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let body = body.to_string();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Creates what the test needs over the control plane: `(source id, write key)`.
fn set_up(address: &str) -> (String, String) {
    let bearer = format!("Bearer {TOKEN}");
    let wasm = std::fs::read(webhook_source_wasm())
        .expect("the example components are built (scripts/build-components)");
    let wasm = base64::engine::general_purpose::STANDARD.encode(wasm);
    let (status, body) = post(
        address,
        "/functions",
        Some(&bearer),
        &json!({"displayName": "Acme Webhooks", "resourceType": "SOURCE", "wasm": wasm}),
    )
    .expect("the server answers");
    assert_eq!(status, 201, "{body}");
    let function = body["data"]["function"]["id"].as_str().expect("an id");
    let (status, body) = post(
        address,
        &format!("/functions/{function}/deploy"),
        Some(&bearer),
        &json!({}),
    )
    .expect("the server answers");
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        address,
        "/sources",
        Some(&bearer),
        &json!({"slug": "acme", "enabled": true, "metadataId": function}),
    )
    .expect("the server answers");
    assert_eq!(status, 201, "{body}");
    let source = body["data"]["source"]["id"].as_str().expect("an id");
    let key = body["data"]["source"]["writeKeys"][0]
        .as_str()
        .expect("a key");
    let (status, body) = post(
        address,
        "/destinations",
        Some(&bearer),
        &json!({"sourceId": source, "metadataId": "file", "settings": {"path": "acme.jsonl"}}),
    )
    .expect("the server answers");
    assert_eq!(status, 201, "{body}");
    (source.to_string(), key.to_string())
}

/// The `n` property of every event in the file destination's file.
fn delivered(data: &Path) -> BTreeSet<u64> {
    let text = std::fs::read_to_string(data.join("files/acme.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["properties"]["n"].as_u64())
        .collect()
}

#[test]
fn every_acknowledged_webhook_event_is_delivered_after_sigkill() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut server = start(dir.path(), Some(TOKEN));
    let (source, key) = set_up(&server.address);

    // Requests of 3 events each; SIGKILL the moment the last one is acknowledged.
    let mut acked = BTreeSet::new();
    for request in 0..5u64 {
        let items: Vec<Value> = (0..3)
            .map(|i| json!({"kind": "Tick", "user": "u1", "n": request * 3 + i}))
            .collect();
        let path = format!("/v1/functions/{source}?token={key}");
        let (status, body) = post(&server.address, &path, None, &json!({"events": items}))
            .expect("the server answers");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["events"], 3);
        acked.extend((0..3).map(|i| request * 3 + i));
    }
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();

    let mut server = start(dir.path(), Some(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = delivered(dir.path());
        let missing: Vec<&u64> = acked.iter().filter(|n| !seen.contains(n)).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let log: Vec<String> = server.stderr.try_iter().collect();
            let files: Vec<_> = std::fs::read_dir(dir.path().join("files"))
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            panic!(
                "acknowledged events never arrived: {missing:?}\nfiles: {files:?}\nlog:\n{}",
                log.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
}
