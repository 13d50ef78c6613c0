//! The data plane end to end over real HTTP: events sent to `/v1/*` with a write key go through
//! tracking plan enforcement, the `pii-filter` component and routing, and arrive at a real
//! webhook receiver on an ephemeral port; retries, dead letters, replay, deduplication and the
//! debugger are checked on the way.

mod api_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::{OWNER, Server};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_runtime::api::Config;
use sluice_runtime::dataplane::DataPlaneConfig;
use sluice_runtime::dataplane::destinations::webhook::sign;

/// What the receiver got, and how it answers.
#[derive(Default)]
struct Received {
    /// Bodies and their `X-Signature` headers, in arrival order.
    requests: Vec<(Value, Option<String>)>,
    /// Answer these statuses first (one per request), then 200.
    script: Vec<u16>,
    /// Requests seen, including refused ones.
    attempts: usize,
}

/// A webhook receiver on an ephemeral port; returns its URL and what it received.
async fn receiver(script: Vec<u16>) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received {
        script,
        ..Received::default()
    }));
    let shared = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let shared = shared.clone();
            async move {
                let mut r = shared.lock().unwrap();
                r.attempts += 1;
                if !r.script.is_empty() {
                    let status = r.script.remove(0);
                    if status != 200 {
                        return AxStatus::from_u16(status).unwrap();
                    }
                }
                let signature = headers
                    .get("x-signature")
                    .map(|v| v.to_str().unwrap().to_string());
                let ok_sig = signature
                    .as_deref()
                    .is_none_or(|s| s == sign(b"hook-secret", body.as_bytes()));
                assert!(ok_sig, "the signature matches the body");
                r.requests
                    .push((serde_json::from_str(&body).unwrap(), signature));
                AxStatus::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn fast() -> Config {
    Config {
        data_plane: DataPlaneConfig {
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            ..DataPlaneConfig::default()
        },
        ..Config::default()
    }
}

/// A source with its write key.
async fn source(server: &Server, slug: &str) -> (String, String) {
    let id = server.source(slug).await;
    let key = server.write_key(&id).await;
    (id, key)
}

async fn webhook(server: &Server, source: &str, url: &str) -> String {
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": source, "metadataId": "webhook", "name": "Hook",
                   "settings": {"url": url, "sharedSecret": "hook-secret", "headers": {"X-Team": "data"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.data()["destination"]["id"].as_str().unwrap().to_string()
}

/// POSTs to the tracking API with the write key as HTTP Basic user name.
async fn send(server: &Server, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{key}:"))),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until `check` holds, up to 20 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn events_are_enforced_redacted_routed_and_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), fast()).await;
    let (src, key) = source(&server, "web").await;
    let (url, received) = receiver(vec![]).await;
    let dest = webhook(&server, &src, &url).await;

    // A tracking plan: Order Completed needs an orderId; unplanned events are blocked.
    let plan = server
        .post("/tracking-plans", json!({"name": "Shop"}))
        .await
        .data()["trackingPlan"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let order = json!({"type": "TRACK", "key": "Order Completed", "version": 1,
        "jsonSchema": {"type": "object", "properties": {"properties": {"type": "object",
            "required": ["orderId"], "properties": {"orderId": {"type": "string"}, "email": {"type": "string"}}}}}});
    let r = server
        .put(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [order]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = server
        .post(
            &format!("/tracking-plans/{plan}/sources"),
            json!({"sourceId": src}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = server
        .patch(
            &format!("/sources/{src}/settings"),
            json!({"track": {"allowUnplannedEvents": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The pii-filter component, deployed and attached to the source.
    let wasm = STANDARD.encode(sluice_tests::component("pii-filter"));
    let f = server
        .post(
            "/functions",
            json!({"displayName": "PII", "resourceType": "INSERT_SOURCE", "wasm": wasm}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let fid = f.data()["function"]["id"].as_str().unwrap().to_string();
    let vid = f.data()["function"]["versionId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server
        .post(
            &format!("/functions/{fid}/deploy"),
            json!({"versionId": vid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": fid, "integrationId": src, "settings": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Refusals first: no key, an unknown key, a bad item (named), over-size.
    let (status, _) = send(
        &server,
        "/v1/track",
        "nope",
        json!({"userId": "u", "event": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(
        &server,
        "/v1/batch",
        &key,
        json!({"batch": [{"type": "track", "userId": "u", "event": "E"}, {"type": "track", "event": "E"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "batch[1]", "{body}");
    let big = json!({"userId": "u", "event": "E", "properties": {"x": "a".repeat(40_000)}});
    let (status, body) = send(&server, "/v1/track", &key, big).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("32768"),
        "{body}"
    );
    let item = json!({"type": "track", "userId": "u", "event": "E", "properties": {"x": "a".repeat(20_000)}});
    let (status, body) = send(&server, "/v1/batch", &key, json!({"batch": vec![item; 30]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("512000"),
        "{body}"
    );
    let (status, body) = send(
        &server,
        "/v1/batch",
        &key,
        json!({"batch": vec![json!({}); 2501]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2500"),
        "{body}"
    );

    // One planned event with PII, one unplanned (blocked), and the first again (a duplicate).
    let planned = json!({"type": "track", "messageId": "m-1", "userId": "u1", "event": "Order Completed",
                         "properties": {"orderId": "o-1", "email": "jane.doe@example.com"}});
    let blocked =
        json!({"type": "track", "messageId": "m-2", "userId": "u1", "event": "Secret Thing"});
    let (status, body) = send(
        &server,
        "/v1/batch",
        &key,
        json!({"batch": [planned, blocked], "context": {"library": {"name": "curl"}}}),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _) = send(
        &server,
        "/v1/track",
        &key,
        json!({"messageId": "m-1", "userId": "u1", "event": "Order Completed",
               "properties": {"orderId": "o-1", "email": "jane.doe@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    eventually("the planned event at the receiver", || {
        !received.lock().unwrap().requests.is_empty()
    })
    .await;
    // Let anything that should not arrive have its chance.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = received.lock().unwrap().requests.clone();
    assert_eq!(got.len(), 1, "exactly one delivery: {got:?}");
    let (event, signature) = &got[0];
    assert!(signature.is_some());
    assert_eq!(event["messageId"], "m-1");
    assert_eq!(event["properties"]["orderId"], "o-1");
    assert_eq!(event["properties"]["email"], "[EMAIL]", "{event}");
    assert_eq!(event["context"]["library"]["name"], "curl");
    assert!(event["receivedAt"].is_string());
    assert!(!event.to_string().contains("jane.doe"));

    // The debugger shows the blocked event and the delivered one.
    let r = server.get(&format!("/events?sourceId={src}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = r.data()["events"].as_array().unwrap().clone();
    let stages = |id: &str| -> Vec<String> {
        events
            .iter()
            .find(|e| e["messageId"] == id)
            .map(|e| {
                e["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        format!(
                            "{}:{}",
                            s["stage"].as_str().unwrap(),
                            s["status"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(stages("m-2"), ["ingest:accepted", "enforce:blocked"]);
    assert_eq!(
        stages("m-1"),
        [
            "ingest:accepted",
            "enforce:validated",
            "function:forward",
            "route:routed",
            "deliver:delivered"
        ]
    );
    // The function's stage lists what it changed, field by field.
    let m1 = events.iter().find(|e| e["messageId"] == "m-1").unwrap();
    let function = m1["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "function")
        .unwrap();
    let changes = function["detail"]["result"]["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["path"] == "properties.email"
            && c["op"] == "changed"
            && c["after"] == "[EMAIL]"
            && c["before"].as_str().unwrap().contains("jane.doe")),
        "{function}"
    );
    let r = server
        .get(&format!("/destinations/{dest}/delivery-metrics"))
        .await;
    assert_eq!(r.data()["counts"]["delivered"], 1, "{}", r.body);
    server.stop().await;
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), fast()).await;
    let (src, key) = source(&server, "app").await;
    // Two 503s, then success: the event arrives on the third attempt.
    let (url, received) = receiver(vec![503, 503]).await;
    let dest = webhook(&server, &src, &url).await;
    let (status, _) = send(
        &server,
        "/v1/identify",
        &key,
        json!({"userId": "u", "traits": {"plan": "pro"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    eventually("the retried event", || {
        received.lock().unwrap().requests.len() == 1
    })
    .await;
    assert_eq!(received.lock().unwrap().attempts, 3);
    let r = server
        .get(&format!("/destinations/{dest}/delivery-metrics"))
        .await;
    assert_eq!(r.data()["counts"]["retried"], 2, "{}", r.body);
    assert_eq!(r.data()["counts"]["delivered"], 1, "{}", r.body);

    // A 400 is permanent: straight to the dead letters, with the error.
    received.lock().unwrap().script = vec![400];
    let (status, _) = send(
        &server,
        "/v1/track",
        &key,
        json!({"userId": "u", "event": "Refused", "messageId": "r-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut failed = Value::Null;
    for _ in 0..200 {
        let r = server
            .get(&format!("/destinations/{dest}/failed-events"))
            .await;
        failed = r.data()["failedEvents"].clone();
        if failed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed[0]["event"]["messageId"], "r-1", "{failed}");
    assert!(failed[0]["lastError"].as_str().unwrap().contains("400"));
    assert_eq!(received.lock().unwrap().requests.len(), 1);

    // Replay: the receiver now accepts it.
    let r = server
        .post(
            &format!("/destinations/{dest}/failed-events/replay"),
            json!({}),
        )
        .await;
    assert_eq!(r.data()["replayed"], 1, "{}", r.body);
    eventually("the replayed event", || {
        received.lock().unwrap().requests.len() == 2
    })
    .await;
    let r = server
        .get(&format!("/destinations/{dest}/failed-events"))
        .await;
    assert_eq!(r.data()["failedEvents"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn disabled_sources_accept_nothing_and_full_queues_push_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast();
    config.data_plane.queue_bound = 2;
    let server = Server::start_with(dir.path(), config).await;
    let (src, key) = source(&server, "busy").await;
    // No destination and a receiver that never answers would be slow; instead a webhook that
    // refuses connections keeps deliveries pending.
    let _ = webhook(&server, &src, "http://127.0.0.1:9/hook").await;
    let batch = json!({"batch": [{"type": "track", "userId": "u", "event": "A"}, {"type": "track", "userId": "u", "event": "B"}]});
    assert_eq!(
        send(&server, "/v1/batch", &key, batch.clone()).await.0,
        StatusCode::OK
    );
    let response = reqwest::Client::new()
        .post(format!("{}/v1/batch", server.url))
        .basic_auth(&key, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");

    let r = server
        .patch(&format!("/sources/{src}"), json!({"enabled": false}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, _) = send(
        &server,
        "/v1/track",
        &key,
        json!({"userId": "u", "event": "A"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The write key in the body works too (and is refused the same way here).
    let response = reqwest::Client::new()
        .post(format!("{}/v1/track", server.url))
        .json(&json!({"writeKey": key, "userId": "u", "event": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let _ = OWNER;
    server.stop().await;
}

#[tokio::test]
async fn webhooks_with_a_batch_size_get_signed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), fast()).await;
    let (source, key) = source(&server, "batched").await;
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": source, "metadataId": "webhook", "name": "Hook",
                   "settings": {"url": "http://127.0.0.1:9/hook", "batchSize": 0}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.to_string().contains("batchSize"), "{}", r.body);

    // The first request is refused with a 503: the whole batch is retried, none is lost.
    let (url, received) = receiver(vec![503]).await;
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": source, "metadataId": "webhook", "name": "Hook",
                   "settings": {"url": url, "sharedSecret": "hook-secret", "batchSize": 10}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let batch: Vec<Value> = (0..25)
        .map(|i| json!({"type": "track", "event": "Batched", "userId": "u", "messageId": format!("b-{i}")}))
        .collect();
    let (status, _) = send(&server, "/v1/batch", &key, json!({"batch": batch})).await;
    assert_eq!(status, StatusCode::OK);

    let count = |r: &Received| {
        r.requests
            .iter()
            .map(|(body, _)| body["batch"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    eventually("25 events in batches", || {
        count(&received.lock().unwrap()) >= 25
    })
    .await;
    {
        let r = received.lock().unwrap();
        let mut ids: Vec<&str> = Vec::new();
        for (body, signature) in &r.requests {
            let events = body["batch"].as_array().expect("a batch body");
            assert!((1..=10).contains(&events.len()), "{} events", events.len());
            assert!(signature.is_some(), "batches are signed");
            ids.extend(events.iter().map(|e| e["messageId"].as_str().unwrap()));
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 25, "every event exactly once");
        assert!(
            r.attempts > r.requests.len(),
            "the refused batch was retried"
        );
    }
    server.stop().await;
}

/// The pipeline may be `pipeline_lead` requests behind before ingestion waits for it: counted
/// in requests (records of the ingest log), whatever their size. With nothing consuming the
/// log, a request finding `pipeline_lead` requests or fewer behind is stored without waiting;
/// the next one waits (up to a second) before it is stored.
#[tokio::test]
async fn ingestion_waits_for_the_pipeline_only_past_its_lead_in_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast();
    config.data_plane.pipeline_lead = 2;
    let server = Server::start_without_stages(dir.path(), config).await;
    let (_, key) = source(&server, "paced").await;
    // ~20 KB per request: a lead counted in bytes would make the second one wait already.
    let batch = json!({"batch": (0..20).map(|i| json!({"type": "track", "userId": "u",
        "event": "E", "messageId": format!("m-{i}"), "properties": {"pad": "x".repeat(1000)}}))
        .collect::<Vec<_>>()});
    let paced = || async {
        server
            .metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("sluice_ingest_paced_total "))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    for round in 0..4 {
        let mut batch = batch.clone();
        for event in batch["batch"].as_array_mut().unwrap() {
            event["messageId"] = json!(format!("{round}-{}", event["messageId"]));
        }
        let (status, body) = send(&server, "/v1/batch", &key, batch).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let expected = if round < 3 { 0 } else { 1 };
        assert_eq!(paced().await, expected, "after request {}", round + 1);
    }
    server.stop().await;
}
