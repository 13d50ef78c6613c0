//! `sluice new` makes a project that passes its own test, builds into a component, and runs
//! under `sluice run` with the output its template promises.

use std::path::Path;
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("sluice runs")
}

/// Runs cargo in the generated project, with a target directory of its own that survives
/// between runs (a nested cargo cannot share the outer build's lock).
fn cargo(project: &Path, args: &[&str]) -> Output {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_new_function_project_passes_its_own_test_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo-fn");
    let project_arg = project.to_str().unwrap();

    // By default the SDK is a versioned dependency: no path into this clone is written.
    let by_version = dir.path().join("by-version");
    let created = sluice(&["new", "demo-fn", "--path", by_version.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let manifest = std::fs::read_to_string(by_version.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("sluice-guest = \"0.1\""),
        "a versioned SDK: {manifest}"
    );
    assert!(!manifest.contains("path ="), "no path: {manifest}");

    // Inside this repository, the SDK is the checkout's own (`--sdk`).
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let created = sluice(&[
        "new",
        "demo-fn",
        "--path",
        project_arg,
        "--sdk",
        sdk.to_str().unwrap(),
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("cargo test"));

    let again = sluice(&["new", "demo-fn", "--path", project_arg]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    let bad = sluice(&[
        "new",
        "9 lives",
        "--path",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        text(&bad.stderr).contains("not a valid function name"),
        "{}",
        text(&bad.stderr)
    );

    let tested = cargo(&project, &["test", "--quiet"]);
    assert!(
        tested.status.success(),
        "{}{}",
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).contains("1 passed"),
        "{}",
        text(&tested.stdout)
    );

    let built = cargo(
        &project,
        &["build", "--quiet", "--target", "wasm32-wasip2", "--release"],
    );
    assert!(built.status.success(), "{}", text(&built.stderr));
    let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scaffold-target/wasm32-wasip2/release/demo_fn.wasm");
    let events = project.join("events.jsonl");
    let ran = sluice(&[
        "run",
        wasm.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let lines: Vec<serde_json::Value> = text(&ran.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0]["properties"],
        serde_json::json!({"email": "[EMAIL]", "plan": "pro", "note": "call [PHONE]"})
    );
    assert_eq!(lines[1]["sluice"]["outcome"], "drop");
    assert_eq!(lines[2]["sluice"]["kind"], "event-not-supported");
    assert!(
        text(&ran.stderr).contains("redacted 2 values"),
        "{}",
        text(&ran.stderr)
    );
}

/// `sluice new --kind destination` (Rust): the crate's own native tests pass, it builds into a
/// component, and the run `sluice new` prints (a local receiver) delivers its sample events.
/// Decision: built in full like the insert scaffold above, sharing its target directory so
/// the SDK and its dependencies are compiled once (about 80 s from nothing, seconds after).
#[test]
fn a_new_rust_destination_passes_its_own_test_and_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("post-it");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let created = sluice(&[
        "new",
        "post-it",
        "--kind",
        "destination",
        "--path",
        project.to_str().unwrap(),
        "--sdk",
        sdk.to_str().unwrap(),
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).contains("--kind destination --receiver"),
        "{}",
        text(&created.stdout)
    );
    let source = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
    assert!(source.contains("fn verdict("), "{source}");

    let tested = cargo(&project, &["test", "--quiet"]);
    assert!(
        tested.status.success(),
        "{}{}",
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).contains("3 passed"),
        "{}",
        text(&tested.stdout)
    );
    let built = cargo(
        &project,
        &["build", "--quiet", "--target", "wasm32-wasip2", "--release"],
    );
    assert!(built.status.success(), "{}", text(&built.stderr));
    let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scaffold-target/wasm32-wasip2/release/post_it.wasm");
    let events = project.join("events.jsonl");
    let ran = sluice(&[
        "run",
        wasm.to_str().unwrap(),
        events.to_str().unwrap(),
        "--kind",
        "destination",
        "--receiver",
        "--settings",
        r#"{"url":"{{receiver}}/events"}"#,
    ]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let lines: Vec<serde_json::Value> = text(&ran.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["delivered"], true, "{lines:?}");
    assert_eq!(
        lines[0]["requests"][0]["body"]["name"], "Order Completed",
        "{lines:?}"
    );
    assert_eq!(lines[1]["requests"][0]["body"]["type"], "identify");
    assert_eq!(lines[2]["skipped"]["kind"], "event-not-supported");
}
