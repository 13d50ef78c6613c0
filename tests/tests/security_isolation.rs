//! Isolation between insert-function instances, through real HTTP: a function that keeps
//! `settings.apiKey` in a global and changes `Object.prototype` and `Array.prototype.push`,
//! attached to two sources with different secrets, and the byte-identical code deployed as a
//! second function on a third source. No secret, global or prototype change crosses an
//! instance, a source or a function, for JavaScript and for a Rust component (`hostile`'s
//! `remember` mode, which keeps the first `apiKey` it sees in a static).

mod api_support;

use api_support::{Server, lines};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Keeps the first secret it sees in a global, reports it with whether another event left
/// prototype changes behind, then leaves changes of its own.
const PROBE: &str = r#"
async function onTrack(event, settings) {
    if (globalThis.firstKey === undefined) globalThis.firstKey = settings.apiKey;
    globalThis.seen = (globalThis.seen || 0) + 1;
    event.properties.firstKey = globalThis.firstKey;
    event.properties.seen = globalThis.seen;
    event.properties.inherited = Object.prototype.leaked === undefined ? null : Object.prototype.leaked;
    event.properties.pushHijacked = Array.prototype.push.hijackedBy === undefined ? null : Array.prototype.push.hijackedBy;
    Object.defineProperty(Object.prototype, "leaked", { value: settings.apiKey, configurable: true });
    const push = Array.prototype.push;
    Array.prototype.push = function (...items) { return push.apply(this, items); };
    Array.prototype.push.hijackedBy = settings.apiKey;
    return event;
}
"#;

const SECRETS: [(&str, &str); 3] = [
    ("c", "C-SECRET-111"),
    ("d", "D-SECRET-222"),
    ("e", "E-SECRET-333"),
];

/// Creates a function (JavaScript `code`, or a component's `wasm`) declaring a sensitive
/// `apiKey`, and deploys it; returns its id.
async fn function(server: &Server, name: &str, body: Value) -> String {
    let mut body = body;
    body["displayName"] = json!(name);
    body["resourceType"] = json!("INSERT_SOURCE");
    body["settings"] = json!([{"name": "apiKey", "type": "STRING", "sensitive": true}]);
    let r = server.post("/functions", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.data()["function"]["id"].as_str().unwrap().to_string();
    let r = server
        .post(&format!("/functions/{id}/deploy"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}

async fn attach(server: &Server, function: &str, source: &str, secret: &str) {
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": function, "integrationId": source, "settings": {"apiKey": secret}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_ne!(
        r.data()["insertFunctionInstance"]["settings"]["apiKey"],
        secret,
        "the secret is masked"
    );
}

/// Three sources `c`, `d`, `e`, each with a file destination `<slug>.jsonl`; `first` attached
/// to `c` and `d`, `second` (the same code as another function) to `e`, each with its own
/// secret. Returns the source ids.
async fn wire(server: &Server, first: &str, second: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for (slug, secret) in SECRETS {
        let src = server.source(slug).await;
        server
            .file_destination(&src, slug, &format!("{slug}.jsonl"))
            .await;
        let function = if slug == "e" { second } else { first };
        attach(server, function, &src, secret).await;
        sources.push(src);
    }
    sources
}

/// Sends three `event`s to each source in turn, waiting for each source's deliveries before
/// the next, so that a shared warm instance would be reused; returns what each file received.
async fn probe(server: &Server, sources: &[String], event: &str) -> Vec<Vec<Value>> {
    let mut received = Vec::new();
    for (src, (slug, _)) in sources.iter().zip(SECRETS) {
        let key = server.write_key(src).await;
        let batch: Vec<Value> = (0..3)
            .map(|i| json!({"type": "track", "event": event, "userId": "u", "messageId": format!("{slug}-{i}"), "properties": {}}))
            .collect();
        server.send_batch(&key, batch).await;
        let mut events = lines(&server.file(&format!("{slug}.jsonl")), 3).await;
        events.sort_by_key(|e| e["messageId"].as_str().unwrap_or_default().to_string());
        received.push(events);
    }
    received
}

#[tokio::test]
async fn javascript_globals_secrets_and_prototypes_stay_in_their_instance() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let first = function(&server, "probe", json!({"code": PROBE})).await;
    let second = function(&server, "probe-copy", json!({"code": PROBE})).await;
    let sources = wire(&server, &first, &second).await;
    let received = probe(&server, &sources, "Probe").await;
    for (events, (slug, secret)) in received.iter().zip(SECRETS) {
        let text = serde_json::to_string(events).unwrap();
        for (_, other) in SECRETS.iter().filter(|(s, _)| *s != slug) {
            assert!(
                !text.contains(other),
                "{slug} saw another instance's secret {other}: {text}"
            );
        }
        let p = &events[0]["properties"];
        assert_eq!(p["firstKey"], secret, "{slug}: {p}");
        assert_eq!(
            p["seen"], 1,
            "{slug}'s first event ran on a fresh realm: {p}"
        );
        assert_eq!(p["inherited"], Value::Null, "{slug}: {p}");
        assert_eq!(p["pushHijacked"], Value::Null, "{slug}: {p}");
        // Within one instance, state persists between events, as on Segment.
        let last = &events[2]["properties"];
        assert_eq!(last["firstKey"], secret, "{slug}: {last}");
        assert_eq!(last["inherited"], secret, "{slug}: {last}");
    }
    server.stop().await;
}

#[tokio::test]
async fn component_globals_and_secrets_stay_in_their_instance() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let wasm = STANDARD.encode(sluice_tests::component("hostile"));
    let first = function(&server, "hostile", json!({"wasm": wasm})).await;
    let second = function(&server, "hostile-copy", json!({"wasm": wasm})).await;
    let sources = wire(&server, &first, &second).await;
    let received = probe(&server, &sources, "remember").await;
    for (events, (slug, secret)) in received.iter().zip(SECRETS) {
        let text = serde_json::to_string(events).unwrap();
        for (_, other) in SECRETS.iter().filter(|(s, _)| *s != slug) {
            assert!(
                !text.contains(other),
                "{slug} saw another instance's secret {other}: {text}"
            );
        }
        let p = &events[0]["properties"];
        assert_eq!(p["remembered"], secret, "{slug}: {p}");
        assert_eq!(
            p["seen"], 1,
            "{slug}'s first event ran on a new instance: {p}"
        );
        assert_eq!(events[2]["properties"]["remembered"], secret);
    }
    server.stop().await;
}

#[tokio::test]
async fn fresh_isolation_keeps_nothing_between_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let probe_fn = function(&server, "probe", json!({"code": PROBE})).await;
    let src = server.source("c").await;
    server.file_destination(&src, "c", "c.jsonl").await;
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": probe_fn, "integrationId": src,
                   "settings": {"apiKey": "C-SECRET-111"}, "isolation": "FRESH"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.data()["insertFunctionInstance"]["isolation"], "FRESH");
    let received = probe(&server, &[src], "Probe").await;
    for event in &received[0] {
        let p = &event["properties"];
        assert_eq!(p["seen"], 1, "every event on a new realm: {p}");
        assert_eq!(p["inherited"], Value::Null, "{p}");
        assert_eq!(p["pushHijacked"], Value::Null, "{p}");
    }
    server.stop().await;
}
