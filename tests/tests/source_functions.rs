//! Source functions (issue 16) through the real server: a Rust component
//! (`examples/webhook-source`) uploaded as `resourceType: SOURCE`, deployed, listed in the
//! source catalog, a source created from it, a file destination connected; webhooks POSTed to
//! `/v1/functions/{sourceId}` (write key as `?token=` or HTTP Basic) become normalised events
//! in the file. Refusals: the function's own 400, a wrong key's 401, an ordinary source's 404,
//! a GET's 405, an oversized body's 413, too many or invalid emitted events' 400; none of
//! them delivers anything. A JavaScript source function (`onRequest`, `Segment.*`) works the
//! same way.

mod api_support;

use std::time::Duration;

use api_support::{Server, lines};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Uploads and deploys the webhook-source component as a source function: its id.
async fn deploy(server: &Server) -> String {
    let wasm = STANDARD.encode(sluice_tests::component("webhook-source"));
    let settings = json!([
        {"name": "appName", "label": "App name", "type": "STRING", "required": false},
    ]);
    server
        .deploy_function(
            json!({"displayName": "Acme Webhooks", "resourceType": "SOURCE", "wasm": wasm, "settings": settings}),
        )
        .await
}

/// A webhook call: the status and the JSON answer.
async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// A source `slug` of source function `function` with `settings`, delivering to the file
/// `<slug>.jsonl`: (source id, write key).
async fn function_source(
    server: &Server,
    slug: &str,
    function: &str,
    settings: Value,
) -> (String, String) {
    let r = server
        .post(
            "/sources",
            json!({"slug": slug, "enabled": true, "metadataId": function, "settings": settings}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let src = r.data()["source"]["id"].as_str().unwrap().to_string();
    let key = r.data()["source"]["writeKeys"][0]
        .as_str()
        .unwrap()
        .to_string();
    server
        .file_destination(&src, "Out", &format!("{slug}.jsonl"))
        .await;
    (src, key)
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_function_turns_webhooks_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let function_id = deploy(&server).await;

    // Deployed, it is a source type: its settings and allowedHosts as options.
    let catalog = server.get("/catalog/sources?pagination.count=100").await;
    let entry = catalog.data()["sourcesCatalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == function_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("the function is in the catalog: {}", catalog.body));
    assert_eq!(entry["name"], "Acme Webhooks");
    let options: Vec<&str> = entry["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["appName", "allowedHosts"]);

    // A source of it, its settings checked against the function's.
    let bad = server
        .post(
            "/sources",
            json!({"slug": "acme-bad", "enabled": true, "metadataId": function_id, "settings": {"nope": 1}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let (src, key) =
        function_source(&server, "acme", &function_id, json!({"appName": "Acme"})).await;
    let hook = format!("{}/v1/functions/{src}", server.url);
    let client = reqwest::Client::new();

    // The write key as ?token=: a signup (identify + track) and a purchase.
    let body = json!({"events": [
        {"kind": "signup", "user": "u1", "email": "ada@example.com", "plan": "pro"},
        {"kind": "Order Completed", "user": "u1", "amount": 12.5, "at": "2026-11-30T12:00:00Z"}
    ]});
    let (status, answer, _) = call(client.post(format!("{hook}?token={key}")).json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"success": true, "events": 3}));

    // HTTP Basic, as the tracking API takes it.
    let body = json!({"events": [{"kind": "Logged In", "visitor": "v1"}]});
    let (status, answer, _) = call(client.post(&hook).basic_auth(&key, Some("")).json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["events"], 1);

    let events = lines(&server.file("acme.jsonl"), 4).await;
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["type"], "identify");
    assert_eq!(events[0]["userId"], "u1");
    assert_eq!(events[0]["traits"]["email"], "ada@example.com");
    assert_eq!(events[1]["type"], "track");
    assert_eq!(events[1]["event"], "Signed Up");
    assert_eq!(events[2]["event"], "Order Completed");
    assert_eq!(events[2]["properties"]["amount"], 12.5);
    assert!(
        events[2]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-11-30T12:00:00")),
        "{}",
        events[2]
    );
    assert_eq!(events[3]["anonymousId"], "v1");
    for event in &events {
        // Normalised as a /v1/batch item is.
        assert!(
            event["messageId"].as_str().is_some_and(|m| !m.is_empty()),
            "{event}"
        );
        assert!(event["receivedAt"].is_string(), "{event}");
        assert_eq!(
            event["context"]["app"]["name"], "Acme",
            "the source's settings reach the function"
        );
    }

    // Refusals, none of which delivers anything.
    let (status, answer, _) = call(
        client
            .post(format!("{hook}?token={key}"))
            .body("this is no JSON"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errors"][0]["type"], "validation-error");
    assert!(
        message(&answer).contains("expected {\"events\""),
        "{answer}"
    );

    let (status, answer, _) = call(client.post(format!("{hook}?token=wrong")).json(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, _, _) = call(client.post(&hook).json(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, answer, headers) = call(client.get(format!("{hook}?token={key}"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
    assert_eq!(headers["allow"], "POST");

    let big = "x".repeat(512 * 1024 + 1);
    let (status, answer, _) = call(client.post(format!("{hook}?token={key}")).body(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(message(&answer).contains("524288"), "{answer}");

    let anonymous = json!({"events": [{"kind": "Logged In", "user": "u2"}, {"kind": "Ping"}]});
    let (status, answer, _) =
        call(client.post(format!("{hook}?token={key}")).json(&anonymous)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errors"][0]["field"], "events[1]");
    assert!(message(&answer).contains("userId"), "{answer}");

    let flood: Vec<Value> = (0..1001)
        .map(|i| json!({"kind": "Tick", "user": format!("u{i}")}))
        .collect();
    let (status, answer, _) = call(
        client
            .post(format!("{hook}?token={key}"))
            .json(&json!({"events": flood})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(message(&answer).contains("1000"), "{answer}");

    // An ordinary source has no function.
    let plain = server.source("plain").await;
    let plain_key = server.write_key(&plain).await;
    let (status, answer, _) = call(
        client
            .post(format!(
                "{}/v1/functions/{plain}?token={plain_key}",
                server.url
            ))
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(message(&answer).contains("has no function"), "{answer}");
    // Another source's key does not open this one.
    let (status, _, _) = call(client.post(format!("{hook}?token={plain_key}")).json(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(server.file("acme.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 4, "nothing refused was delivered");
    server.stop().await;
}

/// A JavaScript source function (Segment's `onRequest` with `Segment.*` calls).
const JS_SOURCE: &str = r#"
async function onRequest(request, settings) {
  const body = await request.json();
  if (!Array.isArray(body.orders)) throw new ValidationError("expected {\"orders\": [...]}");
  const shop = request.url.searchParams.get("shop") ?? "unknown";
  for (const order of body.orders) {
    Segment.identify({ userId: order.customer, traits: { email: order.email } });
    Segment.track({
      event: "Order Completed",
      userId: order.customer,
      properties: {
        total: order.total, shop, source: settings.label, agent: request.headers.get("user-agent"),
        keySeen: request.url.searchParams.has("token"), host: request.url.hostname,
      },
    });
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_source_function_emits_its_segment_calls() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let settings = json!([{"name": "label", "label": "Label", "type": "STRING"}]);
    let id = server
        .deploy_function(
            json!({"displayName": "Shop Hooks", "resourceType": "SOURCE", "code": JS_SOURCE, "settings": settings}),
        )
        .await;
    let (src, key) = function_source(&server, "shop", &id, json!({"label": "web"})).await;
    let hook = format!("{}/v1/functions/{src}?shop=north&token={key}", server.url);
    let client = reqwest::Client::new();

    let body = json!({"orders": [
        {"customer": "c1", "email": "c1@example.com", "total": 30},
        {"customer": "c2", "email": "c2@example.com", "total": 12.5}
    ]});
    let request = client
        .post(&hook)
        .header("user-agent", "shop-hooks/1")
        .json(&body);
    let (status, answer, _) = call(request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"success": true, "events": 4}));
    let events = lines(&server.file("shop.jsonl"), 4).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["identify", "track", "identify", "track"]);
    assert_eq!(events[0]["traits"]["email"], "c1@example.com");
    assert_eq!(events[3]["userId"], "c2");
    assert_eq!(
        events[3]["properties"],
        json!({"total": 12.5, "shop": "north", "source": "web", "agent": "shop-hooks/1",
               "keySeen": false, "host": "127.0.0.1"})
    );
    assert!(events.iter().all(|e| e["messageId"].is_string()));

    // A thrown ValidationError is the webhook's 400 with its message; nothing is sent.
    let (status, answer, _) = call(client.post(&hook).json(&json!({"nope": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(message(&answer), "expected {\"orders\": [...]}");
    let (status, answer, _) = call(client.post(&hook).body("not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        message(&answer).starts_with("the request body is not JSON"),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&server.file("shop.jsonl"), 4).await.len(), 4);
    server.stop().await;
}
