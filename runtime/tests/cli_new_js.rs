//! `sluice new <name> --lang js` makes a JavaScript function project whose own test
//! (`sluice run index.js events.jsonl --expect expected.jsonl`) passes as created, and fails
//! when the function stops doing what the expectations say.

use std::path::Path;
use std::process::{Command, Output};

fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sluice runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_new_javascript_project_passes_its_own_test() {
    let dir = tempfile::tempdir().unwrap();
    let created = sluice(dir.path(), &["new", "mask-js", "--lang", "js"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).contains("--expect expected.jsonl"),
        "{}",
        text(&created.stdout)
    );
    let project = dir.path().join("mask-js");
    for file in [
        "index.js",
        "events.jsonl",
        "expected.jsonl",
        "README.md",
        "package.json",
    ] {
        assert!(project.join(file).is_file(), "{file} is created");
    }
    let code = std::fs::read_to_string(project.join("index.js")).unwrap();
    assert!(
        code.contains("async function onTrack(event, settings)"),
        "{code}"
    );
    assert!(
        std::fs::read_to_string(project.join("README.md"))
            .unwrap()
            .starts_with("# mask-js")
    );

    // Its own test passes as created.
    let tested = sluice(
        &project,
        &[
            "run",
            "index.js",
            "events.jsonl",
            "--expect",
            "expected.jsonl",
        ],
    );
    assert!(
        tested.status.success(),
        "{}{}",
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).starts_with("ok: 4 output lines"),
        "{}",
        text(&tested.stdout)
    );
    assert!(
        text(&tested.stderr).contains("redacted 2 values"),
        "{}",
        text(&tested.stderr)
    );

    // The run itself: the events it makes.
    let ran = sluice(&project, &["run", "index.js", "events.jsonl"]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let lines: Vec<serde_json::Value> = text(&ran.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["properties"]["email"], "[EMAIL]");
    assert_eq!(lines[1]["sluice"]["outcome"], "drop");
    assert_eq!(lines[2]["sluice"]["kind"], "validation-error");
    assert_eq!(lines[3]["sluice"]["kind"], "event-not-supported");

    // A function that no longer masks fails its test, naming the line.
    std::fs::write(
        project.join("index.js"),
        code.replace("return '[EMAIL]';", "return '[MAIL]';"),
    )
    .unwrap();
    let failed = sluice(
        &project,
        &[
            "run",
            "index.js",
            "events.jsonl",
            "--expect",
            "expected.jsonl",
        ],
    );
    assert!(!failed.status.success());
    assert!(
        text(&failed.stdout).contains("output line 1:"),
        "{}",
        text(&failed.stdout)
    );
    assert!(
        text(&failed.stderr).contains("the output differs from expected.jsonl"),
        "{}",
        text(&failed.stderr)
    );

    // Code that does not parse is refused with where.
    std::fs::write(project.join("index.js"), "async function onTrack(event {\n").unwrap();
    let broken = sluice(&project, &["run", "index.js", "events.jsonl"]);
    assert!(!broken.status.success());
    assert!(
        text(&broken.stderr).contains("index.js was refused")
            && text(&broken.stderr).contains("line 1"),
        "{}",
        text(&broken.stderr)
    );
}
