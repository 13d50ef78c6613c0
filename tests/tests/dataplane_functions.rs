//! Insert functions in flight, with Segment's treatment of each outcome, over real HTTP: the
//! `hostile` component forwards, fans out, raises `retry-error` (retried, then discarded and
//! counted) and panics (discarded, counted as a trap); only what it forwards is delivered.

mod api_support;

use std::time::Duration;

use api_support::Server;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_runtime::api::Config;
use sluice_runtime::dataplane::DataPlaneConfig;

#[tokio::test]
async fn function_outcomes_are_forwarded_fanned_out_retried_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_plane: DataPlaneConfig {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            function_attempts: 3,
            ..DataPlaneConfig::default()
        },
        ..Config::default()
    };
    let server = Server::start_with(dir.path(), config).await;
    let src = server.source("hostile").await;
    let key = server.write_key(&src).await;
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": src, "metadataId": "file", "settings": {"path": "out.jsonl"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let wasm = STANDARD.encode(sluice_tests::component("hostile"));
    let f = server
        .post(
            "/functions",
            json!({"displayName": "hostile", "resourceType": "INSERT_SOURCE", "wasm": wasm}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let fid = f.data()["function"]["id"].as_str().unwrap().to_string();
    let vid = f.data()["function"]["versionId"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .post(
            &format!("/functions/{fid}/deploy"),
            json!({"versionId": vid}),
        )
        .await;
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": fid, "integrationId": src}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let track = |name: &str, id: &str| json!({"type": "track", "userId": "u", "event": name, "messageId": id, "properties": {"copies": 3}});
    let response = reqwest::Client::new()
        .post(format!("{}/v1/batch", server.url))
        .basic_auth(&key, Some(""))
        .json(&json!({"batch": [track("retry", "r"), track("panic", "p"), track("fanout", "f"), track("plain", "k")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Three copies of the fanned-out event and the plain one; nothing else.
    let file = dir.path().join("files/out.jsonl");
    let mut delivered: Vec<String> = Vec::new();
    for _ in 0..400 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        delivered = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["messageId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if delivered.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivered.sort();
    assert_eq!(delivered, ["f", "f", "f", "k"]);

    // The retried event is held and runs again after its backoff, without holding up the
    // others: it is discarded once its attempts are used up.
    let mut r = server.get(&format!("/events?sourceId={src}")).await;
    for _ in 0..100 {
        if r.data()["discarded"].get("retry-error").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = server.get(&format!("/events?sourceId={src}")).await;
    }
    assert_eq!(
        r.data()["discarded"],
        json!({"retry-error": 1, "trap": 1}),
        "{}",
        r.body
    );
    let events = r.data()["events"].as_array().unwrap();
    let retry = events.iter().find(|e| e["messageId"] == "r").unwrap();
    let errors = retry["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] == "function" && s["status"] == "error")
        .count();
    assert_eq!(errors, 1, "one error recorded after the attempts: {retry}");
    let retrying = retry["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] == "function" && s["status"] == "retrying")
        .count();
    assert_eq!(retrying, 2, "three attempts, two of them retried: {retry}");
    let fanout = events.iter().find(|e| e["messageId"] == "f").unwrap();
    assert!(
        fanout["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "fan-out"),
        "{fanout}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_source_retrying_its_function_does_not_hold_up_another() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_plane: DataPlaneConfig {
            // The retried function waits seconds between attempts.
            backoff_base: Duration::from_secs(10),
            function_attempts: 2,
            ..DataPlaneConfig::default()
        },
        ..Config::default()
    };
    let server = Server::start_with(dir.path(), config).await;
    let wasm = STANDARD.encode(sluice_tests::component("hostile"));
    let f = server
        .post(
            "/functions",
            json!({"displayName": "hostile", "resourceType": "INSERT_SOURCE", "wasm": wasm}),
        )
        .await;
    let fid = f.data()["function"]["id"].as_str().unwrap().to_string();
    let vid = f.data()["function"]["versionId"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .post(
            &format!("/functions/{fid}/deploy"),
            json!({"versionId": vid}),
        )
        .await;
    let mut keys = Vec::new();
    for slug in ["slow", "fast"] {
        let src = server.source(slug).await;
        keys.push(server.write_key(&src).await);
        server
            .post(
                "/destinations",
                json!({"sourceId": src, "metadataId": "file", "settings": {"path": format!("{slug}.jsonl")}}),
            )
            .await;
        let r = server
            .post(
                "/insert-function-instances",
                json!({"functionId": fid, "integrationId": src}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let client = reqwest::Client::new();
    for (key, name) in [(&keys[0], "retry"), (&keys[1], "plain")] {
        let response = client
            .post(format!("{}/v1/track", server.url))
            .basic_auth(key, Some(""))
            .json(&json!({"userId": "u", "event": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // The fast source's event arrives while the slow one's function waits to be retried.
    let fast = dir.path().join("files/fast.jsonl");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&fast)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the fast source was held up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!dir.path().join("files/slow.jsonl").exists());
    server.stop().await;
}
