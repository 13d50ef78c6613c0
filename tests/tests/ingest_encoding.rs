//! `Content-Encoding` on the tracking API, through real HTTP: a gzip batch is accepted and
//! delivered, a deflate event too, a gzip bomb is refused by the decoded-size limit while the
//! server stays healthy, a plain body labelled gzip is a 400 naming the problem, and `br` is
//! a 415.

mod api_support;

use std::io::Write;

use api_support::{Server, lines};
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// POSTs `body` to `path` with the write key and `Content-Encoding: coding`; returns the
/// status and the JSON answer.
async fn post(
    server: &Server,
    path: &str,
    key: &str,
    coding: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .basic_auth(key, Some(""))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", coding)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn compressed_bodies_are_decoded_and_bombs_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("web").await;
    let key = server.write_key(&src).await;
    server.file_destination(&src, "out", "out.jsonl").await;

    // A gzip batch, as analytics-node and others send it.
    let batch: Vec<Value> = (0..50)
        .map(|i| json!({"type": "track", "event": "Compressed", "userId": "u", "messageId": format!("gz-{i}")}))
        .collect();
    let body = serde_json::to_vec(&json!({ "batch": batch })).unwrap();
    let (status, answer) = post(&server, "/v1/batch", &key, "gzip", gzip(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // One event, deflate (zlib) encoded.
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(br#"{"event":"Deflated","userId":"u","messageId":"df-1"}"#)
        .unwrap();
    let (status, answer) = post(
        &server,
        "/v1/track",
        &key,
        "deflate",
        zlib.finish().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let delivered = lines(&server.file("out.jsonl"), 51).await;
    assert!(delivered.iter().any(|e| e["messageId"] == "gz-49"));
    assert!(delivered.iter().any(|e| e["messageId"] == "df-1"));

    // A bomb under the compressed limit: 400 gzip members of 1 MiB of zeros each, about
    // 400 KB on the wire and 400 MiB decoded. Refused by the decoded limit, not by memory.
    let member = gzip(&vec![0u8; 1 << 20]);
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 400)
        .collect();
    assert!(bomb.len() < 500 << 10, "{} bytes", bomb.len());
    let (status, answer) = post(&server, "/v1/batch", &key, "gzip", bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("decoded"), "{message}");
    // A bomb in one member: 1 GiB of zeros, about 1 MB compressed (over the wire limit).
    let mut big = GzEncoder::new(Vec::new(), Compression::default());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        big.write_all(&zeros).unwrap();
    }
    let (status, answer) = post(&server, "/v1/batch", &key, "gzip", big.finish().unwrap()).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "{status} {answer}"
    );

    // A plain body labelled gzip, and an encoding sluice does not decode.
    let plain = br#"{"event":"Plain","userId":"u"}"#.to_vec();
    let (status, answer) = post(&server, "/v1/track", &key, "gzip", plain.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("not gzip data"), "{message}");
    let (status, answer) = post(&server, "/v1/track", &key, "br", plain).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    assert!(answer.to_string().contains("`br`"), "{answer}");

    // Still healthy, and still taking events.
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (status, _) = post(
        &server,
        "/v1/track",
        &key,
        "identity",
        br#"{"event":"After","userId":"u","messageId":"after-1"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let delivered = lines(&server.file("out.jsonl"), 52).await;
    assert!(delivered.iter().any(|e| e["messageId"] == "after-1"));
    server.stop().await;
}
