//! Destination functions (issue 16) through the real server: a Rust component
//! (`examples/http-post`, `wasi:http`) uploaded as `resourceType: DESTINATION`, deployed,
//! listed in the catalog, connected to a source like any destination, POSTing each event to
//! a receiver on loopback (allow-listed). Every event arrives once; a 503 is retried with the
//! receiver's Retry-After passed on and succeeds; a 400 is a dead letter with the function's
//! message; a host outside the allow-list is a dead letter naming the refusal.

mod api_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::{Server, eventually};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_runtime::api::Config;
use sluice_runtime::dataplane::DataPlaneConfig;

/// What the receiver answers next (a status per request, then 200s), and what it got.
#[derive(Default)]
struct Script {
    statuses: Vec<u16>,
    attempts: usize,
    received: Vec<Value>,
}

async fn receive(State(script): State<Arc<Mutex<Script>>>, body: Bytes) -> Response {
    let mut s = script.lock().unwrap();
    s.attempts += 1;
    let status = if s.statuses.is_empty() {
        200
    } else {
        s.statuses.remove(0)
    };
    if status == 200 {
        s.received
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    }
    let mut headers = HeaderMap::new();
    if status == 503 {
        headers.insert(header::RETRY_AFTER, "1".parse().unwrap());
    }
    (
        AxumStatus::from_u16(status).unwrap(),
        headers,
        "refused by the test",
    )
        .into_response()
}

async fn receiver() -> (String, u16, Arc<Mutex<Script>>) {
    let script = Arc::new(Mutex::new(Script::default()));
    let app = Router::new()
        .route("/events", post(receive))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/events"), addr.port(), script)
}

/// Uploads and deploys the http-post component as a destination function: its id.
async fn deploy(server: &Server) -> String {
    let wasm = STANDARD.encode(sluice_tests::component("http-post"));
    let settings = json!([
        {"name": "url", "label": "URL", "type": "STRING", "required": true},
    ]);
    server
        .deploy_function(
            json!({"displayName": "Post It", "resourceType": "DESTINATION", "wasm": wasm, "settings": settings}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_function_delivers_retries_and_dead_letters() {
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
    let (url, port, script) = receiver().await;
    let function_id = deploy(&server).await;

    // Deployed, it is in the catalog: its settings and allowedHosts as options.
    let catalog = server
        .get("/catalog/destinations?pagination.count=100")
        .await;
    let entry = catalog.data()["destinationsCatalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == function_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("the function is in the catalog: {}", catalog.body));
    assert_eq!(entry["name"], "Post It");
    let options: Vec<&str> = entry["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["url", "allowedHosts", "batchSize"]);

    let src = server.source("shop").await;
    let key = server.write_key(&src).await;
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": src, "metadataId": function_id, "name": "Shop API",
                   "settings": {"url": url, "allowedHosts": [format!("127.0.0.1:{port}")]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let dest = r.data()["destination"]["id"].as_str().unwrap().to_string();
    // Settings are checked against the function's declared ones.
    let bad = server
        .post(
            "/destinations",
            json!({"sourceId": src, "metadataId": function_id, "settings": {"allowedHosts": []}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);

    // Every event once.
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed", "messageId": format!("m-{i}")}))
        .collect();
    server.send_batch(&key, events).await;
    eventually("20 events", || script.lock().unwrap().received.len() == 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids: Vec<String> = script
        .lock()
        .unwrap()
        .received
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each event once");
    assert_eq!(script.lock().unwrap().attempts, 20);

    // A 503 (Retry-After: 1) is retried, then succeeds.
    script.lock().unwrap().statuses = vec![503];
    let started = std::time::Instant::now();
    server
        .send_batch(
            &key,
            vec![json!({"type": "track", "userId": "u", "event": "Busy", "messageId": "busy-1"})],
        )
        .await;
    eventually("the retried event", || {
        script.lock().unwrap().received.len() == 21
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(script.lock().unwrap().attempts, 22);
    let r = server
        .get(&format!("/destinations/{dest}/delivery-metrics"))
        .await;
    assert_eq!(r.data()["counts"]["retried"], 1, "{}", r.body);
    assert_eq!(r.data()["counts"]["delivered"], 21, "{}", r.body);

    // A 400 is a dead letter with the function's message.
    script.lock().unwrap().statuses = vec![400];
    server
        .send_batch(
            &key,
            vec![json!({"type": "track", "userId": "u", "event": "Bad", "messageId": "bad-1"})],
        )
        .await;
    let failed = server.failed_events(&dest, 1).await;
    assert_eq!(failed[0]["event"]["messageId"], "bad-1");
    assert_eq!(
        failed[0]["lastError"], "unknown: status 400: refused by the test",
        "{failed:?}"
    );

    // A destination whose allow-list does not name the receiver: dead letters naming why.
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": src, "metadataId": function_id, "name": "Locked",
                   "settings": {"url": url}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let locked = r.data()["destination"]["id"].as_str().unwrap().to_string();
    server
        .send_batch(
            &key,
            vec![json!({"type": "track", "userId": "u", "event": "Out", "messageId": "out-1"})],
        )
        .await;
    let failed = server.failed_events(&locked, 1).await;
    assert_eq!(
        failed[0]["lastError"],
        format!(
            "unknown: http-not-allowed: host 127.0.0.1:{port} is not in the allow-list (the setting allowedHosts)"
        )
    );
    server.stop().await;
}
