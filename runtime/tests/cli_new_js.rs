//! `sluice new <name> --lang js` makes a JavaScript function project whose own test
//! (`sluice run index.js events.jsonl --expect expected.jsonl`) passes as created, and fails
//! when the function stops doing what the expectations say.

mod support;

use support::{assert_files, sluice_in, text};

#[test]
fn a_new_javascript_project_passes_its_own_test() {
    let dir = tempfile::tempdir().unwrap();
    let created = sluice_in(dir.path(), &["new", "mask-js", "--lang", "js"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).contains("--expect expected.jsonl"),
        "{}",
        text(&created.stdout)
    );
    let project = dir.path().join("mask-js");
    assert_files(
        &project,
        &[
            "index.js",
            "events.jsonl",
            "expected.jsonl",
            "README.md",
            "package.json",
        ],
    );
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
    let tested = sluice_in(
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
    let ran = sluice_in(&project, &["run", "index.js", "events.jsonl"]);
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
    let failed = sluice_in(
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
    let broken = sluice_in(&project, &["run", "index.js", "events.jsonl"]);
    assert!(!broken.status.success());
    assert!(
        text(&broken.stderr).contains("index.js was refused")
            && text(&broken.stderr).contains("line 1"),
        "{}",
        text(&broken.stderr)
    );
}

#[test]
fn a_new_javascript_function_deploys_and_runs_on_a_server() {
    const TOKEN: &str = "new-js-test-owner-token-01";
    let dir = tempfile::tempdir().unwrap();
    let created = sluice_in(dir.path(), &["new", "mask-js", "--lang", "js"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let server = support::start(&dir.path().join("data"), Some(TOKEN));
    let cli = support::Cli::of(&server, TOKEN);
    let (source, key) = cli.source("web");
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        &source,
        "--type",
        "file",
        "--setting",
        "path=out.jsonl",
    ]);
    let project = dir.path().join("mask-js");
    let index = project.join("index.js");
    let deployed = cli.json(&[
        "functions",
        "deploy",
        index.to_str().unwrap(),
        "--name",
        "mask-js",
        "--attach",
        &source,
    ]);
    assert_eq!(deployed["runtime"], "javascript");
    // The scaffold's own sample events: a masked sign-up is delivered, the test event is
    // dropped, the anonymous one refused at ingestion, the identify not supported.
    let events = project.join("events.jsonl");
    let sent = cli.run(&["send", "--write-key", &key, events.to_str().unwrap()]);
    assert!(
        !sent.status.success(),
        "one sample line is refused at ingestion"
    );
    let out = dir.path().join("data/files/out.jsonl");
    let mut delivered = String::new();
    for _ in 0..100 {
        delivered = std::fs::read_to_string(&out).unwrap_or_default();
        if !delivered.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let delivered = std::fs::read_to_string(&out).unwrap_or(delivered);
    let lines: Vec<serde_json::Value> = delivered
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{delivered}");
    assert_eq!(lines[0]["properties"]["email"], "[EMAIL]");
    assert_eq!(lines[0]["properties"]["note"], "cc [EMAIL]");
    support::stop(server);
}
