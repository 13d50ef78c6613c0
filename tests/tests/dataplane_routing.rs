//! The data plane's enforcement details, routing and what it shows, over real HTTP with `file`
//! destinations: omitted properties and violations in `context.protocols`, `Violation Generated`
//! events forwarded to another source, the `router` component choosing destinations through
//! `integrations`, its logs from real runs, delivery metrics and the live debugger stream.

mod api_support;

use std::time::Duration;

use api_support::{OWNER, Server, lines};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn source(server: &Server, slug: &str) -> (String, String) {
    let id = server.source(slug).await;
    let key = server.write_key(&id).await;
    (id, key)
}

async fn send(server: &Server, path: &str, key: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .basic_auth(key, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn deploy(server: &Server, example: &str, settings: Value) -> String {
    let wasm = STANDARD.encode(sluice_tests::component(example));
    let f = server
        .post(
            "/functions",
            json!({"displayName": example, "resourceType": "INSERT_SOURCE", "wasm": wasm, "settings": settings}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let id = f.data()["function"]["id"].as_str().unwrap().to_string();
    let version = f.data()["function"]["versionId"].as_str().unwrap();
    let r = server
        .post(
            &format!("/functions/{id}/deploy"),
            json!({"versionId": version}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}

#[tokio::test]
async fn enforcement_omits_fields_records_protocols_and_forwards_violations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (web, key) = source(&server, "web").await;
    let (audit, _) = source(&server, "violations").await;
    server.file_destination(&web, "Out", "web.jsonl").await;
    server
        .file_destination(&audit, "Audit", "violations.jsonl")
        .await;

    let plan = server
        .post("/tracking-plans", json!({"name": "Shop"}))
        .await
        .data()["trackingPlan"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rule = json!({"type": "TRACK", "key": "Order Completed", "version": 1,
        "jsonSchema": {"type": "object", "properties": {"properties": {"type": "object", "required": ["orderId"],
            "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}}}}}});
    let r = server
        .put(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [rule]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    server
        .post(
            &format!("/tracking-plans/{plan}/sources"),
            json!({"sourceId": web}),
        )
        .await;
    let r = server
        .patch(
            &format!("/sources/{web}/settings"),
            json!({"track": {"allowUnplannedEventProperties": false, "allowPropertiesOnViolations": false},
                   "forwardingViolationsTo": audit}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    send(
        &server,
        "/v1/track",
        &key,
        json!({"userId": "u", "event": "Order Completed", "messageId": "order-1",
               "properties": {"orderId": "o-1", "total": "ten", "coupon": "FREE"}}),
    )
    .await;
    let out = lines(&dir.path().join("files/web.jsonl"), 1).await;
    let event = &out[0];
    assert_eq!(event["properties"], json!({"orderId": "o-1"}), "{event}");
    let protocols = &event["context"]["protocols"];
    assert_eq!(
        protocols["omitted"],
        json!(["properties.coupon"]),
        "{protocols}"
    );
    assert_eq!(
        protocols["omitted_on_violation"],
        json!(["properties.total"])
    );
    assert_eq!(protocols["violations"][0]["type"], "Datatype");
    assert_eq!(protocols["violations"][0]["field"], "properties.total");

    let forwarded = lines(&dir.path().join("files/violations.jsonl"), 1).await;
    let v = &forwarded[0];
    assert_eq!(v["event"], "Violation Generated");
    assert_eq!(v["userId"], "schema-violations");
    assert_eq!(v["properties"]["violationField"], "properties.total");
    assert_eq!(v["properties"]["eventMessageID"], "order-1");
    assert_eq!(v["properties"]["sourceID"], web.as_str());
    assert_eq!(v["properties"]["trackingPlanID"], plan.as_str());
    server.stop().await;
}

#[tokio::test]
async fn router_picks_destinations_logs_and_the_debugger_streams_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (src, key) = source(&server, "app").await;
    let a = server.file_destination(&src, "A", "a.jsonl").await;
    let b = server.file_destination(&src, "B", "b.jsonl").await;
    let router = deploy(
        &server,
        "router",
        json!([{"name": "routes", "label": "Routes", "type": "TEXT_MAP"}]),
    )
    .await;
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": router, "integrationId": src, "settings": {"routes": {"Order Completed": "B"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Watch live before sending.
    let mut live = reqwest::Client::new()
        .get(format!("{}/sources/{src}/events/live", server.url))
        .bearer_auth(OWNER)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    send(
        &server,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "routed"},
            {"type": "page", "userId": "u", "name": "Home", "messageId": "everywhere"}
        ]}),
    )
    .await;
    let to_b = lines(&dir.path().join("files/b.jsonl"), 2).await;
    let to_a = lines(&dir.path().join("files/a.jsonl"), 1).await;
    let ids = |l: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = l
            .iter()
            .map(|e| e["messageId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&to_b), ["everywhere", "routed"]);
    assert_eq!(ids(&to_a), ["everywhere"]);

    // The router's log line from the real run.
    let r = server.get(&format!("/functions/{router}/logs")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let logs = r.data()["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str().unwrap().contains("to B") && l["messageId"] == "routed"),
        "{logs:?}"
    );
    let at_a = settled_counts(
        &server,
        &format!("/destinations/{a}/delivery-metrics?minutes=5"),
        1,
    )
    .await;
    assert_eq!(at_a["filtered"], 1, "{at_a}");
    assert_eq!(at_a["delivered"], 1, "{at_a}");
    let at_b = settled_counts(&server, &format!("/destinations/{b}/delivery-metrics"), 2).await;
    assert_eq!(at_b["delivered"], 2, "{at_b}");

    // The live stream saw both events through to delivery.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while text.matches("\"deliver\"").count() < 3 {
        let chunk = tokio::time::timeout_at(deadline, live.chunk())
            .await
            .expect("stream updates arrive")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: stage"), "{text}");
    assert!(text.contains("\"messageId\":\"routed\""));
    drop(live);

    // Unknown sources and missing parameters are the API's usual errors.
    let r = server.get("/sources/nope/events/live").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = server.get("/events").await;
    assert!(r.status.is_client_error(), "{}", r.body);
    server.stop().await;
}

/// A destination's delivery counts once `delivered` reaches `expected` (or after 10 s): a
/// delivery is counted when sluice has the receiver's answer, which can be just after the
/// receiver recorded the event.
async fn settled_counts(server: &Server, path: &str, expected: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts = server.get(path).await.data()["counts"].clone();
        if counts["delivered"] == expected || tokio::time::Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
