//! The OpenAPI document passes an OpenAPI linter: `@redocly/cli lint` (pinned in
//! tests/openapi/package-lock.json, installed by `scripts/test`) with Redocly's recommended
//! rules, over the document a real server serves. Zero errors; the warnings are printed.

mod api_support;

use std::path::PathBuf;
use std::process::Command;

use api_support::Server;
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_lints_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let linter = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi");
    let bin = linter.join("node_modules/@redocly/cli/bin/cli.js");
    assert!(
        bin.is_file(),
        "@redocly/cli is not installed: run scripts/test (or `npm ci` in {})",
        linter.display()
    );
    let r = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    // The document names the server that served it.
    assert_eq!(
        r.body["servers"][0]["url"],
        server.url.as_str(),
        "{}",
        r.body["servers"]
    );
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&r.body).unwrap()).unwrap();

    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(bin)
            .args(["lint", "--format", "json", "--config", "redocly.yaml"])
            .arg(&file)
            .current_dir(&linter)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the linter's report is not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let problems = report["problems"].as_array().expect("problems");
    let describe = |severity: &str| -> Vec<String> {
        problems
            .iter()
            .filter(|p| p["severity"] == severity)
            .map(|p| {
                format!(
                    "{} at {}: {}",
                    p["ruleId"].as_str().unwrap_or("?"),
                    p["location"][0]["pointer"].as_str().unwrap_or("?"),
                    p["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    let warnings = describe("warn");
    if !warnings.is_empty() {
        eprintln!("{} lint warnings:\n{}", warnings.len(), warnings.join("\n"));
    }
    let errors = describe("error");
    assert!(
        errors.is_empty(),
        "{} lint errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert_eq!(report["totals"]["errors"], 0, "{}", report["totals"]);
    server.stop().await;
}
