//! The local loop and what the tables show: deploying the directory `sluice new --lang js`
//! made (10), the engine cache of `sluice run` (11), tables with the reason, the output and
//! the changes (12).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Cli, stop};
use crate::{TOKEN, eventually, serve, text};

#[test]
fn a_javascript_directory_deploys_and_the_tables_show_reasons_outputs_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (_, key) = cli.source("web");
    let project = dir.path().join("my-filter");
    cli.ok(&[
        "new",
        "my-filter",
        "--lang",
        "js",
        "--path",
        project.to_str().unwrap(),
    ]);

    let deployed = cli.json(&[
        "functions",
        "deploy",
        project.to_str().unwrap(),
        "--attach",
        "web",
    ]);
    assert_eq!(
        deployed["displayName"], "my-filter",
        "named after the directory"
    );
    assert_eq!(deployed["deployedVersionId"], deployed["versionId"]);

    // `get` shows the fields, not the code first; `--code` shows the code.
    let shown = cli.ok(&["functions", "get", "my-filter"]);
    assert!(!shown.contains("async function onTrack"), "{shown}");
    assert!(
        shown.contains("code: ") && shown.contains("--code"),
        "{shown}"
    );
    assert!(
        cli.ok(&["functions", "get", "my-filter", "--code"])
            .contains("async function onTrack")
    );

    // `test` shows the output event and what changed.
    let tested = cli.ok(&[
        "functions",
        "test",
        "my-filter",
        "--events",
        project.join("events.jsonl").to_str().unwrap(),
    ]);
    assert!(
        tested.contains("~properties.email") && tested.contains("[EMAIL]"),
        "{tested}"
    );

    // `events list` says why an event went no further.
    let page = dir.path().join("page.jsonl");
    std::fs::write(
        &page,
        "{\"type\":\"page\",\"name\":\"Home\",\"userId\":\"u\"}\n",
    )
    .unwrap();
    cli.ok(&["send", "--write-key", &key, page.to_str().unwrap()]);
    let listed = eventually("the page event's function error", || {
        let listed = cli.ok(&["events", "list", "--source", "web"]);
        listed.contains("function:error").then_some(listed)
    });
    assert!(
        listed.contains("REASON") && listed.contains("event-not-supported"),
        "{listed}"
    );
    stop(server);
}

/// `sluice run <args>` with its cache in `cache`; the run's wall time.
fn run(cache: &std::path::Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .args(args)
        .env("SLUICE_CACHE_DIR", cache)
        .output()
        .expect("sluice runs");
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("[EMAIL]"),
        "{}",
        text(&out.stdout)
    );
    took
}

#[test]
fn sluice_run_caches_the_compiled_engine_verified() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("fn");
    let made = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "new",
            "fn",
            "--lang",
            "js",
            "--path",
            project.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(made.status.success());
    let cache = dir.path().join("cache");
    let script = project.join("index.js");
    let events = project.join("events.jsonl");
    let args = [script.to_str().unwrap(), events.to_str().unwrap()];

    let first = run(&cache, &args);
    let artifacts: Vec<_> = std::fs::read_dir(cache.join("artifacts"))
        .expect("the cache directory")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let written = std::fs::metadata(&artifacts[0])
        .unwrap()
        .modified()
        .unwrap();
    let second = run(&cache, &args);
    eprintln!("sluice run: first {first:?}, second {second:?}");
    assert_eq!(
        std::fs::metadata(&artifacts[0])
            .unwrap()
            .modified()
            .unwrap(),
        written,
        "the second run loads the artifact, it does not compile and write it again"
    );
    // Loading skips Cranelift's seconds: a wide margin, so a loaded machine cannot flip it.
    assert!(
        second * 4 < first,
        "a cached run is far quicker than the first: {second:?} against {first:?}"
    );

    // A damaged artifact is noticed, compiled again and replaced.
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&artifacts[0], &bytes).unwrap();
    run(&cache, &args);
    assert_ne!(std::fs::read(&artifacts[0]).unwrap(), bytes, "rewritten");
}
