//! `sluice` as a client of a running server: resources managed from the command line, tables by
//! default and JSON with `--json`, server errors shown as their message.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Cli, start, stop};

const TOKEN: &str = "cli-test-owner-token-0123";

fn pii_filter_wasm() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/wasm/pii_filter.wasm")
}

#[test]
fn the_cli_manages_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), Some(TOKEN));
    let cli = Cli::of(&server, TOKEN);

    // Sources: a table by default, JSON on request.
    let table = cli.ok(&[
        "sources",
        "create",
        "web",
        "--type",
        "javascript",
        "--name",
        "Web site",
    ]);
    assert!(table.starts_with("ID"), "a table with a header: {table}");
    assert!(
        table.contains("Web site") && table.contains("javascript"),
        "{table}"
    );
    let sources = cli.json(&["sources", "list"]);
    assert_eq!(sources.as_array().map(Vec::len), Some(1));
    let source = sources[0]["id"].as_str().unwrap().to_string();
    assert_eq!(sources[0]["writeKeys"].as_array().map(Vec::len), Some(1));
    assert_eq!(cli.json(&["sources", "get", &source])["slug"], "web");

    // A server error is its message (and field), not raw JSON.
    let err = cli.fails(&[
        "destinations",
        "create",
        "--source",
        &source,
        "--type",
        "webhook",
        "--setting",
        "url=nope",
    ]);
    assert!(
        err.contains("422") && err.contains("field settings.url"),
        "{err}"
    );
    assert!(!err.contains(r#"{"errors""#), "{err}");
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        &source,
        "--type",
        "webhook",
        "--setting",
        "url=https://hooks.example.com/x",
    ]);
    assert_eq!(
        cli.json(&["destinations", "list", "--source", &source])
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    cli.ok(&["tracking-plans", "create", "Checkout"]);
    assert_eq!(cli.json(&["tracking-plans", "list"])[0]["name"], "Checkout");

    // Functions: deploy a component, deploy again (a new version), test on a file of events.
    let wasm = pii_filter_wasm();
    let wasm = wasm.to_str().unwrap();
    let first = cli.json(&[
        "functions",
        "deploy",
        wasm,
        "--name",
        "pii",
        "--setting",
        "hashUserId:BOOLEAN",
    ]);
    let function = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["deployedVersionId"], first["versionId"]);
    let second = cli.json(&[
        "functions",
        "deploy",
        wasm,
        "--name",
        "pii",
        "--setting",
        "hashUserId:BOOLEAN",
    ]);
    assert_eq!(second["id"], first["id"], "same name, same function");
    assert_ne!(second["versionId"], first["versionId"], "a new version");
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"type\":\"track\",\"event\":\"x\",\"userId\":\"u\",\"properties\":{\"email\":\"a@b.example.com\"}}\n\
         {\"type\":\"flush\",\"userId\":\"u\"}\n",
    )
    .unwrap();
    let events = events.to_str().unwrap();
    let results = cli.json(&[
        "functions",
        "test",
        &function,
        "--events",
        events,
        "--settings",
        r#"{"hashUserId":true}"#,
    ]);
    assert_eq!(results[0]["outcome"], "forward");
    assert_eq!(results[0]["event"]["properties"]["email"], "[EMAIL]");
    assert_eq!(results[1]["outcome"], "error");
    let table = cli.ok(&["functions", "test", &function, "--events", events]);
    assert!(
        table.contains("forward") && table.contains("event-not-supported"),
        "{table}"
    );

    // Tokens: the secret is shown once and works; revoking it stops it.
    let no_role = cli.fails(&["tokens", "create", "--description", "ci"]);
    assert!(
        no_role.contains("--role"),
        "a role must be chosen: {no_role}"
    );
    let created = cli.ok(&[
        "tokens",
        "create",
        "--description",
        "ci",
        "--role",
        "Source Admin",
    ]);
    let secret = created.lines().nth(1).unwrap_or_default().to_string();
    assert!(secret.len() > 16, "{created}");
    let tokens = cli.json(&["tokens", "list"]);
    let ci = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["description"] == "ci")
        .unwrap();
    assert!(ci.get("value").is_none(), "secrets are never listed");
    let ci_id = ci["id"].as_str().unwrap().to_string();
    cli.ok(&["tokens", "revoke", &ci_id]);

    // Missing token and unreachable server are explained.
    let no_token = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["sources", "list"])
        .env("SLUICE_URL", &cli.url)
        .env_remove("SLUICE_TOKEN")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("no API token"));
    cli.ok(&["sources", "delete", &source]);
    assert_eq!(
        cli.json(&["sources", "list"]).as_array().map(Vec::len),
        Some(0)
    );
    stop(server);
    let gone = cli.fails(&["sources", "list"]);
    assert!(gone.contains("cannot reach sluice"), "{gone}");
}
