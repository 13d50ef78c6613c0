//! The MCP endpoint (`/mcp`) through a real MCP client: the official Python SDK (`mcp`, pinned
//! in tests/python/requirements.txt, installed by `scripts/test`) runs tests/mcp/agent_tasks.py,
//! which completes the five agent tasks end to end with tools and resources only.
//! Also: no token, no MCP; a read-only token's changes are refused through MCP as over HTTP;
//! and what an agent changes is in the audit trail under its token.

mod api_support;

use std::path::PathBuf;
use std::process::Command;

use api_support::{OWNER, Server};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn python() -> PathBuf {
    let venv = match std::env::var_os("SLUICE_PY_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/sluice/venv")
        }
    };
    venv.join("bin/python")
}

async fn run_agent(url: String, token: String) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp/agent_tasks.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .env("SLUICE_MCP_URL", url)
            .env("SLUICE_TOKEN", token)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_completes_the_five_agent_tasks() {
    assert!(
        python().is_file(),
        "the Python MCP client is not installed ({}): run scripts/test",
        python().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    // The agent works with a token of its own, so that the audit trail shows who did what.
    let token = server.token(json!([{"roleId": "workspace-owner"}])).await;
    let (ok, output) = run_agent(format!("{}/mcp", server.url), token.clone()).await;
    assert!(ok, "the agent's tasks failed:\n{output}");
    for task in [
        "ok tools ",
        "ok resources ",
        "ok task1-create-ios-source ",
        "ok task2-list-destinations 1",
        "ok task3-destination-config ",
        "ok task4-plan-blocks before=False after=True",
        "ok send-and-tail ",
        "ok task5-audit-last-7-days ",
        "ok errors",
    ] {
        assert!(output.contains(task), "`{task}` missing:\n{output}");
    }
    // What the agent did is really there, over plain HTTP, and audited under its token.
    let r = server.get("/sources?slug=ios-app").await;
    let source = &r.data()["sources"][0];
    assert_eq!(source["metadata"]["id"], "ios", "{}", r.body);
    let r = server.get("/audit-events?resourceType=source").await;
    let created = r.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "Source Created")
        .cloned()
        .unwrap_or_else(|| panic!("no Source Created in {}", r.body));
    let me = server.get("/tokens").await;
    let agent_token = me.data()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["description"] == "test")
        .expect("the agent's token")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        created["actor"].as_str().unwrap().contains(&agent_token),
        "{created} was made by the agent's token {agent_token}"
    );
    server.stop().await;
}

#[tokio::test]
async fn mcp_needs_a_token_and_keeps_its_roles() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"}}});
    let client = reqwest::Client::new();
    let post = |token: Option<&str>, body: serde_json::Value| {
        let mut request = client
            .post(format!("{}/mcp", server.url))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let r = post(None, initialize.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(Some("not-a-token"), initialize.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(Some(OWNER), initialize).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["serverInfo"]["name"], "sluice", "{body}");

    // A read-only token may list through MCP and may not create: the same 403 as over HTTP.
    let reader = server.token(json!([{"roleId": "source-read-only"}])).await;
    let call = |name: &str, arguments: serde_json::Value| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    };
    let r = post(Some(&reader), call("listSources", json!({})))
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["isError"], json!(false), "{body}");
    let r = post(
        Some(&reader),
        call(
            "createSource",
            json!({"body": {"slug": "nope", "enabled": true, "metadataId": "http"}}),
        ),
    )
    .await
    .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["isError"], json!(true), "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("HTTP 403"), "{text}");
    assert_eq!(server.count("/sources", "sources").await, 0);

    // An unknown tool or argument is named.
    let r = post(
        Some(OWNER),
        call("getSource", json!({"id": "x", "color": "red"})),
    )
    .await
    .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`color`"),
        "{body}"
    );
    let r = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    server.stop().await;
}
