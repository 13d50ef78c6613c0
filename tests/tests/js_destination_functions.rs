//! JavaScript destination functions (issue 16) through the real server: Segment-style code
//! (`onTrack` with `fetch`, `onBatch`) uploaded as `resourceType: DESTINATION`, connected to
//! a source, sending to receivers on loopback (allow-listed). Every event arrives once; a 503
//! the function rethrows as a `RetryError` is retried and succeeds; a 400 is a dead letter with
//! the function's message; a host outside the allow-list and an endpoint slower than the
//! function's `AbortSignal.timeout` fail with their named errors; `onBatch` gets batches and
//! its per-event statuses settle each event on its own.

mod api_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::{Server, eventually};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_runtime::api::Config;
use sluice_runtime::dataplane::DataPlaneConfig;

const CODE: &str = r#"
async function onTrack(event, settings) {
  const response = await fetch(`${settings.url}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(event),
    signal: AbortSignal.timeout(Number(settings.timeoutMs ?? 3000)),
  });
  if (response.status === 503 || response.status === 429) {
    throw new RetryError(`status ${response.status} retry-after=${response.headers.get("retry-after") ?? ""}`);
  }
  if (!response.ok) throw new Error(`status ${response.status}: ${await response.text()}`);
}

async function onBatch(events, settings) {
  const response = await fetch(`${settings.url}/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ batch: events }),
  });
  const statuses = await response.json();
  return statuses.map((status) => ({ status, errormessage: status === 200 ? "" : "rejected by the API" }));
}
"#;

/// What the receiver answers next (a status per request, then 200s), and what it got.
#[derive(Default)]
struct Script {
    statuses: Vec<u16>,
    attempts: usize,
    received: Vec<Value>,
    batches: Vec<usize>,
}

type Shared = Arc<Mutex<Script>>;

async fn receive(State(script): State<Shared>, Json(event): Json<Value>) -> Response {
    if event["event"] == "Slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mut s = script.lock().unwrap();
    s.attempts += 1;
    let status = if s.statuses.is_empty() {
        200
    } else {
        s.statuses.remove(0)
    };
    if status == 200 {
        s.received.push(event);
    }
    let mut headers = HeaderMap::new();
    if status == 503 {
        headers.insert(header::RETRY_AFTER, "1".parse().unwrap());
    }
    let status = AxumStatus::from_u16(status).unwrap();
    (status, headers, "refused by the test").into_response()
}

/// Takes `{"batch": [...]}`; answers one status per event: 400 for user "bad", else 200.
async fn receive_batch(State(script): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let events = body["batch"].as_array().cloned().unwrap_or_default();
    let mut s = script.lock().unwrap();
    s.batches.push(events.len());
    let statuses: Vec<u16> = events
        .iter()
        .map(|e| if e["userId"] == "bad" { 400 } else { 200 })
        .collect();
    for event in events.into_iter().filter(|e| e["userId"] != "bad") {
        s.received.push(event);
    }
    Json(json!(statuses))
}

async fn receiver() -> (String, u16, Shared) {
    let script = Shared::default();
    let app = Router::new()
        .route("/events", post(receive))
        .route("/batch", post(receive_batch))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), addr.port(), script)
}

async fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_plane: DataPlaneConfig {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            ..DataPlaneConfig::default()
        },
        ..Config::default()
    };
    let server = Server::start_with(dir.path(), config).await;
    (dir, server)
}

/// Uploads and deploys `CODE` as a destination function: its id.
async fn deploy(server: &Server) -> String {
    let settings = json!([
        {"name": "url", "label": "API", "type": "STRING", "required": true},
        {"name": "timeoutMs", "label": "Timeout", "type": "STRING"},
    ]);
    server
        .deploy_function(
            json!({"displayName": "Shop API", "resourceType": "DESTINATION", "code": CODE, "settings": settings}),
        )
        .await
}

/// Connects the function to `source` with `settings`: the destination's id.
async fn connect(
    server: &Server,
    source: &str,
    function: &str,
    name: &str,
    settings: Value,
) -> String {
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": source, "metadataId": function, "name": name, "settings": settings}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.data()["destination"]["id"].as_str().unwrap().to_string()
}

fn track(user: &str, event: &str, id: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "messageId": id})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_destination_fetches_retries_and_dead_letters_by_name() {
    let (_dir, server) = server().await;
    let (url, port, script) = receiver().await;
    let function = deploy(&server).await;
    let src = server.source("shop").await;
    let key = server.write_key(&src).await;
    let allowed = json!([format!("127.0.0.1:{port}")]);
    let dest = connect(
        &server,
        &src,
        &function,
        "Shop API",
        json!({"url": url, "allowedHosts": allowed, "timeoutMs": "500"}),
    )
    .await;

    // Every event once.
    let events: Vec<Value> = (0..12)
        .map(|i| track(&format!("u{i}"), "Order Completed", &format!("m-{i}")))
        .collect();
    server.send_batch(&key, events).await;
    eventually("12 events", || script.lock().unwrap().received.len() == 12).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let s = script.lock().unwrap();
        let mut ids: Vec<&str> = s
            .received
            .iter()
            .map(|e| e["messageId"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 12, "each event once");
        assert_eq!(s.attempts, 12);
    }

    // A 503 rethrown as a RetryError (Retry-After passed on) is retried, then succeeds.
    script.lock().unwrap().statuses = vec![503];
    let started = std::time::Instant::now();
    server
        .send_batch(&key, vec![track("u", "Busy", "busy-1")])
        .await;
    eventually("the retried event", || {
        script.lock().unwrap().received.len() == 13
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was honoured: {:?}",
        started.elapsed()
    );
    let metrics = server
        .get(&format!("/destinations/{dest}/delivery-metrics"))
        .await;
    assert_eq!(metrics.data()["counts"]["retried"], 1, "{}", metrics.body);

    // A 400 is a dead letter with the function's message.
    script.lock().unwrap().statuses = vec![400];
    server
        .send_batch(&key, vec![track("u", "Bad", "bad-1")])
        .await;
    // An endpoint slower than the function's AbortSignal.timeout: the fetch is aborted.
    server
        .send_batch(&key, vec![track("u", "Slow", "slow-1")])
        .await;
    let failed = server.failed_events(&dest, 2).await;
    let error_of = |id: &str| -> String {
        let found = failed.iter().find(|f| f["event"]["messageId"] == id);
        found.unwrap_or_else(|| panic!("{id} in {failed:?}"))["lastError"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let bad = error_of("bad-1");
    assert!(
        bad.starts_with("unknown: Error: status 400: refused by the test"),
        "{bad}"
    );
    let slow = error_of("slow-1");
    assert!(
        slow.starts_with("unknown: TimeoutError: The operation timed out."),
        "{slow}"
    );

    // A destination whose allow-list does not name the receiver: the refusal by name.
    let locked = connect(&server, &src, &function, "Locked", json!({"url": url})).await;
    server
        .send_batch(&key, vec![track("u", "Out", "out-1")])
        .await;
    let failed = server.failed_events(&locked, 1).await;
    let error = failed[0]["lastError"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "unknown: TypeError: http-not-allowed: host 127.0.0.1:{port} is not in the allow-list"
        )),
        "{error}"
    );
    // The receiver is healthy after all that.
    script.lock().unwrap().statuses.clear();
    server
        .send_batch(&key, vec![track("u", "After", "after-1")])
        .await;
    eventually("the event after the failures", || {
        script
            .lock()
            .unwrap()
            .received
            .iter()
            .any(|e| e["messageId"] == "after-1")
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_batch_gets_batches_and_settles_each_event_by_its_status() {
    let (_dir, server) = server().await;
    let (url, port, script) = receiver().await;
    let function = deploy(&server).await;
    let src = server.source("shop").await;
    let key = server.write_key(&src).await;
    let dest = connect(
        &server,
        &src,
        &function,
        "Batched",
        json!({"url": url, "allowedHosts": [format!("127.0.0.1:{port}")], "batchSize": 5}),
    )
    .await;

    let mut events: Vec<Value> = (0..11)
        .map(|i| track(&format!("u{i}"), "Viewed", &format!("b-{i}")))
        .collect();
    events.push(track("bad", "Viewed", "b-bad"));
    server.send_batch(&key, events).await;
    let failed = server.failed_events(&dest, 1).await;
    eventually("11 events", || script.lock().unwrap().received.len() == 11).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["event"]["messageId"], "b-bad");
    assert_eq!(
        failed[0]["lastError"], "unknown: status 400: rejected by the API",
        "{failed:?}"
    );
    let batches = script.lock().unwrap().batches.clone();
    assert_eq!(batches.iter().sum::<usize>(), 12, "{batches:?}");
    assert!(batches.iter().all(|&n| n <= 5), "{batches:?}");
    assert!(batches.iter().any(|&n| n > 1), "batched: {batches:?}");
    let metrics = server
        .get(&format!("/destinations/{dest}/delivery-metrics"))
        .await;
    assert_eq!(
        metrics.data()["counts"]["delivered"],
        11,
        "{}",
        metrics.body
    );
    assert_eq!(metrics.data()["counts"]["failed"], 1, "{}", metrics.body);
    server.stop().await;
}
