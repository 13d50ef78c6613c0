//! What a function hands back is checked before it is delivered (issue 12): an output that is
//! not a valid event is an `invalid-output` error, counted and shown in the debugger, never
//! delivered; a missing `messageId` is restored from the input. Over real HTTP, with a real
//! JavaScript function and a real file destination.

mod api_support;

use api_support::{Server, lines};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CODE: &str = r#"
    function onTrack(event) {
        if (event.event === "Hijack") return { hijacked: true };
        if (event.event === "Nameless") { delete event.event; return event; }
        if (event.event === "Anonymous") { delete event.messageId; return event; }
        if (event.event === "Split") {
            const copy = JSON.parse(JSON.stringify(event));
            delete event.messageId; delete copy.messageId;
            return [event, copy];
        }
        return event;
    }
"#;

#[tokio::test]
async fn invalid_outputs_are_refused_and_missing_ids_restored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("checked").await;
    let key = server.write_key(&source).await;
    server.file_destination(&source, "File", "out.jsonl").await;
    let r = server
        .post(
            "/functions",
            json!({"displayName": "shapes", "resourceType": "INSERT_SOURCE", "code": CODE}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let function = r.data()["function"]["id"].as_str().unwrap().to_string();
    let r = server
        .post(&format!("/functions/{function}/deploy"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": function, "integrationId": source}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let batch: Vec<Value> = ["Hijack", "Nameless", "Anonymous", "Split", "Plain"]
        .iter()
        .map(|name| json!({"type": "track", "userId": "u", "event": name, "messageId": format!("id-{name}")}))
        .collect();
    server.send_batch(&key, batch).await;

    let lines = lines(&server.file("out.jsonl"), 4).await;
    let mut ids: Vec<&str> = lines
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["id-Anonymous", "id-Plain", "id-Split", "id-Split-1"],
        "valid outputs only, ids restored (a fan-out's later copies derived): {lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|e| e["type"] == "track" && e["event"].is_string()),
        "{lines:?}"
    );

    let r = server.get(&format!("/events?sourceId={source}")).await;
    assert_eq!(
        r.data()["discarded"],
        json!({"invalid-output": 2}),
        "{}",
        r.body
    );
    let events = r.data()["events"].as_array().unwrap();
    let hijack = events
        .iter()
        .find(|e| e["messageId"] == "id-Hijack")
        .unwrap();
    let stage = hijack["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "function")
        .unwrap();
    assert_eq!(stage["status"], "error");
    assert_eq!(stage["detail"]["result"]["kind"], "invalid-output");
    assert!(
        stage["detail"]["result"]["message"]
            .as_str()
            .unwrap()
            .contains("without `type`"),
        "{stage}"
    );
    server.stop().await;
}
