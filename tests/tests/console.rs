//! The web console in a real browser: a real server on an ephemeral port (the console built
//! into it), a webhook receiver, and `tests/console/console.mjs` driving Debian's Chromium
//! headless through Playwright (both installed by `scripts/test`). The script does what a
//! person would (sign in, create a source, a webhook destination with a missing setting and
//! then fixed, a function with a syntax error and then fixed, tested, deployed, attached;
//! events watched live in the debugger; a tracking plan, a warehouse, the audit trail; a
//! read-only token's view) and prints what it saw, which is asserted here, along with what the
//! server and the receiver say happened.
//!
//! Screenshots go to `$SLUICE_CONSOLE_SCREENSHOTS` when set (`scripts/console-screenshots`
//! sets it to `docs/console/`), else to a temporary directory.

mod api_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use api_support::{OWNER, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Where Debian's package puts Chromium (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// A webhook receiver on an ephemeral port: its URL and the bodies it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let shared = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let shared = shared.clone();
            async move {
                if let Ok(value) = serde_json::from_str(&body) {
                    shared.lock().unwrap().push(value);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// Runs the browser script against `server`; its observations.
async fn run_browser(server: &Server, readonly: &str, webhook: &str, shots: &Path) -> Value {
    let dir = script_dir();
    let mut command = Command::new("node");
    command
        .arg(dir.join("console.mjs"))
        .current_dir(&dir)
        .env("SLUICE_URL", &server.url)
        .env("OWNER_TOKEN", OWNER)
        .env("READONLY_TOKEN", readonly)
        .env("WEBHOOK_URL", webhook)
        .env("SCREENSHOTS", shots)
        .env("CHROMIUM", CHROMIUM);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed:\n{stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_does_what_a_person_needs_in_a_real_browser() {
    assert!(
        sluice_runtime::api::console::built(),
        "this build has no console: run scripts/build-components (scripts/test does), then test again"
    );
    assert!(
        Path::new(CHROMIUM).is_file(),
        "no Chromium at {CHROMIUM}: scripts/test installs it (apt-get install chromium)"
    );
    assert!(
        script_dir()
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run scripts/test (or `npm ci` in tests/console)"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (webhook, received) = receiver().await;
    let readonly = server
        .token(json!([{"roleId": "workspace-member", "resources": [{"type": "WORKSPACE"}]}]))
        .await;
    let shots = match std::env::var_os("SLUICE_CONSOLE_SCREENSHOTS") {
        Some(path) => PathBuf::from(path),
        None => dir.path().join("screenshots"),
    };

    let seen = run_browser(&server, &readonly, &webhook, &shots).await;

    // A browser opening `/` lands on the console.
    assert_eq!(seen["redirectedTo"], "/console", "{seen}");
    // The source exists, with the write key the page showed.
    let source_id = seen["source"]["id"].as_str().expect("a source id");
    assert_eq!(
        server.write_key(source_id).await,
        seen["source"]["writeKey"].as_str().unwrap()
    );
    // The webhook's missing url was named at its field, by the API's message.
    let error = seen["destinationFieldError"].as_str().unwrap();
    assert!(error.contains("url"), "{error}");
    // The syntax error: the engine's line and column, marked on line 3, at the second `=`.
    let syntax = &seen["syntaxError"];
    assert!(
        syntax["status"].as_str().unwrap().contains("line 3"),
        "{syntax}"
    );
    assert_eq!(syntax["markedLine"], 3, "{syntax}");
    assert_eq!(seen["markersAfterFix"], 0, "{seen}");
    // The test panel: forwarded, with the diff, the log line, fuel and time.
    let test = &seen["test"];
    assert_eq!(test["outcome"], "forward", "{test}");
    let changes: Vec<(String, String)> = test["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().into(),
                row[1].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("properties.reviewed".into(), "added".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("properties.email".into(), "removed".into())),
        "{changes:?}"
    );
    assert!(
        test["logs"]
            .as_str()
            .unwrap()
            .contains("reviewed Order Completed"),
        "{test}"
    );
    assert!(
        test["fuel"].as_str().unwrap().starts_with("fuel "),
        "{test}"
    );
    assert!(test["time"].as_str().unwrap().ends_with(" ms"), "{test}");
    // Deployed and attached, as the API says too.
    assert_eq!(seen["attachedTo"], 1);
    let instances = server
        .get(&format!(
            "/insert-function-instances?integrationId={source_id}"
        ))
        .await;
    assert_eq!(
        instances.data()["insertFunctionInstances"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The debugger showed each event with its function and delivery stages.
    let rows = seen["debugger"].as_array().unwrap();
    for name in ["Order Completed", "Checkout Started", "Product Viewed"] {
        let row = rows
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the debugger: {rows:?}"));
        let stages: Vec<&str> = row["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for stage in ["ingest:accepted", "function:forward", "deliver:delivered"] {
            assert!(stages.contains(&stage), "{name}: {stages:?}");
        }
    }
    // Pause held the new event back; resume showed it; the filter kept only the match.
    assert_eq!(seen["whilePaused"], 0, "{seen}");
    assert_eq!(seen["afterResume"], 1, "{seen}");
    assert_eq!(seen["filtered"], json!(["Checkout Started"]), "{seen}");
    // What the receiver got went through the function.
    let got = received.lock().unwrap().clone();
    assert!(got.len() >= 3, "{got:?}");
    for event in &got {
        assert_eq!(event["properties"]["reviewed"], true, "{event}");
        assert!(event["properties"].get("email").is_none(), "{event}");
    }
    // The destination's page counted those deliveries.
    let total = seen["deliveredTotal"].as_str().unwrap();
    let delivered: usize = total
        .trim_start_matches("delivered: ")
        .parse()
        .unwrap_or_else(|_| panic!("{total}"));
    assert!(delivered >= 3, "{total}");
    assert!(seen["chartBars"].as_u64().unwrap() >= 1, "{seen}");
    // The tracking plan's violation, the warehouse's sync report, the audit trail.
    assert!(seen["violations"].as_u64().unwrap() >= 1, "{seen}");
    assert!(seen["syncReports"].as_u64().unwrap() >= 1, "{seen}");
    assert!(seen["auditAll"].as_u64().unwrap() >= 5, "{seen}");
    let kinds = seen["auditFunctionKinds"].as_array().unwrap();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k == "function"),
        "{kinds:?}"
    );
    // The read-only token: every change disabled, the editor not editable, testing allowed.
    let ro = &seen["readOnly"];
    assert_eq!(ro["who"], "Workspace Member", "{ro}");
    for button in [
        "addWriteKey",
        "deleteSource",
        "saveEnforcement",
        "createSource",
        "saveFunction",
        "deploy",
        "detach",
        "disableDestination",
        "saveDestination",
    ] {
        assert_eq!(ro[button], true, "{button} should be disabled: {ro}");
    }
    assert_eq!(ro["editorEditable"], "false", "{ro}");
    assert_eq!(ro["runTest"], false, "{ro}");
    // And the API agrees: the same token may not create a source.
    let r = server
        .call(
            reqwest::Method::POST,
            "/sources",
            Some(&readonly),
            Some(json!({"slug": "nope", "enabled": true, "metadataId": "http"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Signing out forgot the token.
    assert_eq!(seen["afterSignOut"], Value::Null);
    for page in [
        "sign-in",
        "source",
        "destination-field-error",
        "destination",
        "function-syntax-error",
        "function-test",
        "function",
        "debugger",
        "tracking-plan",
        "warehouse",
        "audit",
        "read-only-function",
    ] {
        assert!(shots.join(format!("{page}.png")).is_file(), "{page}");
    }
    server.stop().await;
}
