//! The pipeline's wiring is built once per configuration version, and the order sluice keeps
//! (`docs/data-plane.md`): each batch a destination receives lists its events in the order
//! they were ingested. Over real HTTP, with a real webhook receiver and real files.

mod api_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::Server;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(server: &Server, key: &str, batch: Vec<Value>) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/batch", server.url))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{key}:"))),
        )
        .json(&json!({ "batch": batch }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `sluice_pipeline_wirings_built_total` for `source` in `/metrics`.
async fn builds(server: &Server, source: &str) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .find(|l| {
            l.starts_with("sluice_pipeline_wirings_built_total")
                && l.contains(&format!("source_id=\"{source}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn track(i: usize) -> Value {
    json!({"type": "track", "event": "Seen", "userId": "u", "messageId": format!("e-{i:05}"),
           "properties": {"n": i}})
}

#[tokio::test]
async fn the_wiring_is_rebuilt_after_a_configuration_change_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("wired").await;
    let key = server.write_key(&source).await;
    let destination = server.file_destination(&source, "File", "a.jsonl").await;

    for i in 0..20 {
        send(&server, &key, vec![track(i)]).await;
    }
    let a = dir.path().join("files/a.jsonl");
    eventually("20 events in a.jsonl", || lines(&a).len() == 20).await;
    assert_eq!(
        builds(&server, &source).await,
        1,
        "twenty requests, one configuration: one wiring"
    );

    let r = server
        .patch(
            &format!("/destinations/{destination}"),
            json!({"settings": {"path": "b.jsonl"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    send(&server, &key, vec![track(20)]).await;
    let b = dir.path().join("files/b.jsonl");
    eventually("the next event in b.jsonl", || lines(&b).len() == 1).await;
    assert_eq!(lines(&a).len(), 20, "nothing more went to the old path");
    assert_eq!(builds(&server, &source).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn each_delivered_batch_lists_its_events_in_ingestion_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("ordered").await;
    let key = server.write_key(&source).await;

    // A receiver that records each batch it gets.
    let batches: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let kept = batches.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                let ns = body["batch"]
                    .as_array()
                    .map(|events| {
                        events
                            .iter()
                            .map(|e| e["properties"]["n"].as_u64().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                kept.lock().unwrap().push(ns);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": source, "metadataId": "webhook", "name": "Hook",
                   "settings": {"url": url, "batchSize": 40}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    server
        .file_destination(&source, "File", "ordered.jsonl")
        .await;

    // Requests one after another: ingestion order is send order.
    for request in 0..30 {
        send(
            &server,
            &key,
            (0..25).map(|i| track(request * 25 + i)).collect(),
        )
        .await;
    }
    let total = 30 * 25;
    eventually("every event at the webhook", || {
        batches.lock().unwrap().iter().map(Vec::len).sum::<usize>() == total
    })
    .await;
    for batch in batches.lock().unwrap().iter() {
        assert!(batch.len() <= 40);
        assert!(
            batch.windows(2).all(|w| w[0] < w[1]),
            "a batch out of ingestion order: {batch:?}"
        );
    }
    let file = dir.path().join("files/ordered.jsonl");
    eventually("every event in the file", || lines(&file).len() == total).await;
    // A file takes a whole chunk as one batch: lines of one request stay together, in order.
    let ns: Vec<u64> = lines(&file)
        .iter()
        .map(|e| e["properties"]["n"].as_u64().unwrap())
        .collect();
    for request in ns.chunks(25) {
        assert!(request.windows(2).all(|w| w[0] + 1 == w[1]), "{request:?}");
    }
    server.stop().await;
}
