//! JavaScript functions through the API, over real HTTP: code is checked at upload (a syntax
//! error is a 422 naming line and column), tested with `POST /functions/{id}/test`, attached to
//! a source, and in the pipeline it transforms, drops, fans out and routes real events.

mod api_support;

use api_support::{Server, lines};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_tests::example_js;

/// Uploads `code`, declaring a string setting for each of `settings` (and `routes`, a map).
async fn create(server: &Server, name: &str, code: &str, settings: &[&str]) -> api_support::Reply {
    let declared: Vec<Value> = settings
        .iter()
        .map(|s| {
            let kind = if *s == "routes" { "TEXT_MAP" } else { "STRING" };
            json!({"name": s, "type": kind})
        })
        .collect();
    server
        .post(
            "/functions",
            json!({"displayName": name, "resourceType": "INSERT_SOURCE", "code": code, "settings": declared}),
        )
        .await
}

/// Creates, deploys and attaches `code` to `source` with `settings`; returns the function id.
async fn attach(server: &Server, source: &str, name: &str, code: &str, settings: Value) -> String {
    let names: Vec<String> = settings.as_object().unwrap().keys().cloned().collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let r = create(server, name, code, &names).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.data()["function"]["id"].as_str().unwrap().to_string();
    let r = server
        .post(&format!("/functions/{id}/deploy"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": id, "integrationId": source, "settings": settings}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id
}

async fn send_batch(server: &Server, source: &str, batch: Vec<Value>) {
    let key = server.write_key(source).await;
    server.send_batch(&key, batch).await;
}

/// The JSON lines of `file` once it holds `n`, waiting up to 20 s.
#[tokio::test]
async fn code_is_checked_at_upload_and_tested_with_segment_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = create(
        &server,
        "broken",
        "function onTrack(event) {\n  return event +;\n}",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.field(), "code");
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("line 2, column"), "{message}");

    let code = r#"
        async function onTrack(event, settings) {
            console.log("saw", event.event);
            if (event.event === "Skip") return null;
            if (event.event === "Twice") return [event, event];
            if (event.event === "Later") throw new RetryError("try again");
            event.properties.tag = settings.tag;
            return event;
        }
    "#;
    let r = create(&server, "tagger", code, &["tag"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let f = &r.data()["function"];
    assert_eq!(
        (f["runtime"].as_str(), f["runnable"].as_bool()),
        (Some("javascript"), Some(true))
    );
    let id = f["id"].as_str().unwrap();
    let track =
        |name: &str| json!({"type": "track", "event": name, "userId": "u", "properties": {}});
    let r = server
        .post(
            &format!("/functions/{id}/test"),
            json!({"events": [track("Keep"), track("Skip"), track("Twice"), track("Later"), {"type": "page"}],
                   "settings": {"tag": "js"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let results = r.data()["results"].as_array().unwrap().clone();
    let outcomes: Vec<&str> = results
        .iter()
        .map(|x| x["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["forward", "drop", "fan-out", "error", "error"],
        "{results:?}"
    );
    assert_eq!(results[0]["event"]["properties"]["tag"], "js");
    assert_eq!(results[3]["error"]["kind"], "retry-error");
    assert_eq!(results[4]["error"]["kind"], "event-not-supported");
    assert!(
        r.body.to_string().contains("saw Keep"),
        "logs are returned: {}",
        r.body
    );
    server.stop().await;
}

#[tokio::test]
async fn javascript_functions_transform_drop_fan_out_and_route_in_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("web").await;
    server.file_destination(&src, "A", "A.jsonl").await;
    server.file_destination(&src, "B", "B.jsonl").await;
    let (a, b) = (
        dir.path().join("files/A.jsonl"),
        dir.path().join("files/B.jsonl"),
    );
    attach(
        &server,
        &src,
        "pii",
        &example_js("pii-filter-js"),
        json!({}),
    )
    .await;
    attach(
        &server,
        &src,
        "router",
        &example_js("router-js"),
        json!({"routes": {"Order Completed": "B"}}),
    )
    .await;
    let shaper = r#"
        function onTrack(event) {
            if (event.event === "Noise") return null;
            if (event.event === "Split") return [{ ...event, event: "Half 1" }, { ...event, event: "Half 2" }];
            return event;
        }
    "#;
    attach(&server, &src, "shaper", shaper, json!({})).await;

    let event = |name: &str, id: &str| {
        json!({"type": "track", "event": name, "userId": "u", "messageId": id,
               "properties": {"email": "ada@example.com"}})
    };
    send_batch(
        &server,
        &src,
        vec![
            event("Order Completed", "1"),
            event("Noise", "2"),
            event("Split", "3"),
            event("Viewed", "4"),
        ],
    )
    .await;
    // A gets everything that is not routed elsewhere: the two halves and "Viewed".
    let to_a = lines(&a, 3).await;
    let mut names: Vec<&str> = to_a.iter().map(|e| e["event"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Half 1", "Half 2", "Viewed"]);
    // B also gets the routed order.
    let to_b = lines(&b, 4).await;
    assert!(to_b.iter().any(|e| e["event"] == "Order Completed"));
    for e in to_a.iter().chain(&to_b) {
        assert_eq!(
            e["properties"]["email"], "[EMAIL]",
            "redacted by the JS PII filter: {e}"
        );
    }
    server.stop().await;
}
