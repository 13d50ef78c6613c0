//! Answers that used to be silent or misleading: duplicates (1), a replay that failed again
//! (7), wrong tracking paths and listeners (8), errors that do not say what to do (9).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{canned, request};
use crate::support::{Cli, stop};
use crate::{TOKEN, events, eventually, json_lines, serve, text};

#[test]
fn resent_events_are_reported_as_duplicates_and_new_ids_send_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (_, key) = cli.source("web");
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "file",
        "--setting",
        "path=web.jsonl",
    ]);
    let file = events(dir.path(), "events.jsonl", "m", 10);
    let file = file.to_str().unwrap();
    let first = cli.ok(&["send", "--write-key", &key, file]);
    assert!(first.contains("10 new, 0 duplicates, 0 refused"), "{first}");

    let again = cli.run(&["send", "--write-key", &key, file]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("0 new, 10 duplicates, 0 refused"),
        "{}",
        text(&again.stdout)
    );
    assert!(
        text(&again.stderr).contains("--new-ids"),
        "the summary names the fix: {}",
        text(&again.stderr)
    );
    let summary: Value =
        serde_json::from_str(&cli.ok(&["send", "--write-key", &key, file, "--json"])).unwrap();
    assert_eq!(summary["duplicates"], 10, "{summary}");

    // On the wire: a header Segment's clients ignore.
    let auth = format!(
        "Basic {}",
        base64_user(&key) // `key:` in base64
    );
    let body = r#"{"batch":[{"type":"track","event":"x","userId":"u","messageId":"m-0"},{"type":"track","event":"x","userId":"u","messageId":"fresh-1"}]}"#;
    let answer = request(
        &server.address,
        "POST",
        "/v1/batch",
        &[("Authorization", &auth)],
        Some(body),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-sluice-duplicates"), Some("1"));

    let renewed = cli.ok(&["send", "--write-key", &key, file, "--new-ids"]);
    assert!(renewed.contains("10 new, 0 duplicates"), "{renewed}");
    let out = dir.path().join("data/files/web.jsonl");
    let lines = eventually("21 events delivered", || {
        Some(json_lines(&out)).filter(|l| l.len() >= 21)
    });
    assert_eq!(lines.len(), 21, "10 + 1 + 10, nothing twice");
    stop(server);
}

/// `user:` in base64, as HTTP Basic wants it.
fn base64_user(user: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_replay_whose_events_fail_again_exits_non_zero_and_failures_keep_the_receivers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (_, key) = cli.source("web");
    let (receiver, _) = canned(vec![(
        400,
        "",
        r#"{"error":"field `total` must be a string"}"#,
    )]);
    let url = format!("url=http://{receiver}/hook");
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "webhook",
        "--name",
        "strict",
        "--setting",
        &url,
    ]);
    let file = events(dir.path(), "events.jsonl", "f", 3);
    cli.ok(&["send", "--write-key", &key, file.to_str().unwrap()]);
    let letters = eventually("3 dead letters", || {
        let letters = cli.json(&["destinations", "failed-events", "strict"]);
        (letters.as_array().map(Vec::len) == Some(3)).then_some(letters)
    });
    let error = letters[0]["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("answered 400") && error.contains("field `total` must be a string"),
        "the receiver's status and body are kept: {error}"
    );

    let out = cli.run(&["destinations", "replay", "strict", "--wait"]);
    assert!(!out.status.success(), "every replayed event failed again");
    assert!(
        text(&out.stdout).contains("0 delivered, 3 failed again"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("failed-events"),
        "{}",
        text(&out.stderr)
    );
    stop(server);
}

#[test]
fn a_refused_connection_is_kept_with_its_root_cause() {
    let dir = tempfile::tempdir().unwrap();
    // Retries end at once: the first refusal becomes the dead letter.
    let server = serve(&dir.path().join("data"), &["--retry-max-age-secs", "0"]);
    let cli = Cli::of(&server, TOKEN);
    let (_, key) = cli.source("web");
    let down = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("url=http://{}/hook", down.local_addr().unwrap());
    drop(down);
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "webhook",
        "--name",
        "down",
        "--setting",
        &url,
    ]);
    let file = events(dir.path(), "events.jsonl", "c", 1);
    cli.ok(&["send", "--write-key", &key, file.to_str().unwrap()]);
    let letters = eventually("a dead letter", || {
        let letters = cli.json(&["destinations", "failed-events", "down"]);
        (letters.as_array().map(Vec::len) == Some(1)).then_some(letters)
    });
    let error = letters[0]["lastError"].as_str().unwrap_or_default();
    assert!(
        error.to_lowercase().contains("connection refused"),
        "the root cause, not only `error sending request`: {error}"
    );
    stop(server);
}

#[test]
fn tracking_path_typos_and_the_wrong_listener_are_answered_with_where_to_go() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let typo = request(&server.address, "POST", "/v1/trak", &[], Some("{}"));
    assert_eq!(typo.status, 404, "{}", typo.body);
    assert!(
        typo.body.contains("no tracking path /v1/trak") && typo.body.contains("/v1/track"),
        "{}",
        typo.body
    );
    stop(server);

    // The tracking API on its own listener: the control plane's port points there.
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        &dir.path().join("data"),
        &["--ingest-listen", "127.0.0.1:0"],
    );
    let ingest = eventually("the ingest listener's address", || {
        server
            .stderr
            .try_iter()
            .find_map(|l| l.split("ingest_address=").nth(1).map(str::to_string))
    });
    let ingest = ingest.split_whitespace().next().unwrap().to_string();
    let misdirected = request(&server.address, "POST", "/v1/track", &[], Some("{}"));
    assert_eq!(misdirected.status, 404, "{}", misdirected.body);
    assert!(
        misdirected.body.contains(&format!("http://{ingest}"))
            && misdirected.body.contains("ingest listener"),
        "{}",
        misdirected.body
    );
    let typo = request(&ingest, "POST", "/v1/trak", &[], Some("{}"));
    assert_eq!(typo.status, 404);
    assert!(typo.body.contains("/v1/batch"), "{}", typo.body);
    stop(server);
}

/// `sluice <args>` with only `env` of the `SLUICE_*` variables.
fn sluice(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.args(args);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SLUICE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("sluice runs");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn errors_say_what_to_do() {
    let (ok, _, err) = sluice(&["sources", "list"], &[]);
    assert!(
        !ok && err.contains("set SLUICE_TOKEN or pass --token"),
        "{err}"
    );
    let (ok, _, err) = sluice(
        &["sources", "list"],
        &[("SLUICE_URL", "127.0.0.1:1"), ("SLUICE_TOKEN", "t")],
    );
    assert!(
        !ok && err.contains("has no scheme; use http://127.0.0.1:1"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let url = format!("http://{}", server.address);
    let (ok, _, err) = sluice(
        &["sources", "list"],
        &[
            ("SLUICE_URL", &url),
            ("SLUICE_TOKEN", "not-a-token-of-this-server"),
        ],
    );
    assert!(
        !ok && err.contains("401") && err.contains("SLUICE_TOKEN"),
        "{err}"
    );
    stop(server);

    let (ok, out, err) = sluice(
        &["serve", "--listen", "localhost:18312", "--print-config"],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("listen = \"127.0.0.1:18312\""), "{out}");
    let (ok, _, err) = sluice(
        &["serve", "--listen", "example.com:80", "--print-config"],
        &[],
    );
    assert!(
        !ok && err.contains("give an IP address and a port, such as 127.0.0.1:8080"),
        "{err}"
    );
    let (ok, _, err) = sluice(&["serve", "--config", "/nonexistent/sluice.toml"], &[]);
    assert!(!ok);
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "the cause once: {err}"
    );
}

#[test]
fn the_cli_waits_out_a_rate_limit() {
    let (server, answered) = canned(vec![
        (
            429,
            "Retry-After: 1\r\n",
            r#"{"errors":[{"type":"RequestError","message":"Too many requests"}]}"#,
        ),
        (200, "", r#"{"data":{"sources":[],"pagination":{}}}"#),
    ]);
    let started = Instant::now();
    let url = format!("http://{server}");
    let (ok, out, err) = sluice(
        &["sources", "list"],
        &[("SLUICE_URL", &url), ("SLUICE_TOKEN", "t")],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "(none)");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
}
