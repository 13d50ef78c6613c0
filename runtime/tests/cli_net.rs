//! Destination and source functions from the command line, with the real binary, real files
//! and real HTTP: `sluice new --lang js --kind destination|source` makes projects whose own
//! test command passes as created and fails when the code changes; `sluice run --kind
//! destination` reaches a receiver only with `--allow-host`; `sluice functions test` runs a
//! deployed destination function on a real server against a real receiver.

mod support;

use support::{assert_files, sluice_in, text};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

/// The destination scaffold's own test, exactly as its files and `sluice new` print it.
const DESTINATION_TEST: &[&str] = &[
    "run",
    "index.js",
    "events.jsonl",
    "--kind",
    "destination",
    "--receiver",
    "--settings",
    r#"{"url":"{{receiver}}/events"}"#,
    "--expect",
    "expected.jsonl",
];

/// The source scaffold's own test.
const SOURCE_TEST: &[&str] = &[
    "run",
    "index.js",
    "requests.jsonl",
    "--kind",
    "source",
    "--expect",
    "expected.jsonl",
];

/// `sluice new <name> --lang js --kind <kind>` in `dir`; the project's directory.
fn scaffold(dir: &Path, name: &str, kind: &str) -> std::path::PathBuf {
    let created = sluice_in(dir, &["new", name, "--lang", "js", "--kind", kind]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    dir.join(name)
}

/// A receiver on 127.0.0.1 that answers every request 200 `{}` and keeps each body.
struct Receiver {
    address: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = answer(stream) {
                    kept.lock().unwrap().push(body);
                }
            }
        });
        Receiver { address, bodies }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// Reads one HTTP/1.1 request (its body sized or chunked) and answers it; its body.
fn answer(mut stream: TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let (mut length, mut chunked) = (0, false);
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or_default();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        }
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.trim().eq_ignore_ascii_case("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size = usize::from_str_radix(read_line(&mut reader)?.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    stream.write_all(reply.as_bytes()).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect()
}

#[test]
fn a_new_javascript_destination_passes_its_own_test_and_fails_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let created = sluice_in(
        dir.path(),
        &["new", "post-it", "--lang", "js", "--kind", "destination"],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).contains(&DESTINATION_TEST.join(" ").replace(
            r#"--settings {"url":"{{receiver}}/events"}"#,
            r#"--settings '{"url":"{{receiver}}/events"}'"#
        )),
        "`sluice new` prints the test command: {}",
        text(&created.stdout)
    );
    let project = dir.path().join("post-it");
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

    let tested = sluice_in(&project, DESTINATION_TEST);
    assert!(
        tested.status.success(),
        "{:?} {}{}",
        tested.status,
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).starts_with("ok: 3 output lines"),
        "{}",
        text(&tested.stdout)
    );
    assert!(
        text(&tested.stderr).contains("delivered"),
        "{}",
        text(&tested.stderr)
    );

    // The same command fails, with the difference, once the request is not what it was.
    let code = std::fs::read_to_string(project.join("index.js")).unwrap();
    std::fs::write(
        project.join("index.js"),
        code.replace("name: event.event,", "name: event.type,"),
    )
    .unwrap();
    let failed = sluice_in(&project, DESTINATION_TEST);
    assert!(!failed.status.success());
    assert!(
        text(&failed.stdout).contains("output line 1:")
            && text(&failed.stdout).contains(r#""name":"track""#),
        "{}",
        text(&failed.stdout)
    );
    assert!(
        text(&failed.stderr).contains("the output differs from expected.jsonl"),
        "{}",
        text(&failed.stderr)
    );
}

#[test]
fn a_new_javascript_source_passes_its_own_test_and_fails_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let project = scaffold(dir.path(), "hooks", "source");
    assert_files(
        &project,
        &[
            "index.js",
            "requests.jsonl",
            "expected.jsonl",
            "README.md",
            "package.json",
        ],
    );
    let tested = sluice_in(&project, SOURCE_TEST);
    assert!(
        tested.status.success(),
        "{}{}",
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).starts_with("ok: 3 output lines"),
        "{}",
        text(&tested.stdout)
    );

    // Without --expect: the events each webhook body made, one per line.
    let ran = sluice_in(
        &project,
        &["run", "index.js", "requests.jsonl", "--kind", "source"],
    );
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let events = json_lines(&ran);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["type"], "identify");
    assert_eq!(events[2]["event"], "Order Paid");

    let code = std::fs::read_to_string(project.join("index.js")).unwrap();
    std::fs::write(
        project.join("index.js"),
        code.replace("event: 'Signed Up'", "event: 'Signed up'"),
    )
    .unwrap();
    let failed = sluice_in(&project, SOURCE_TEST);
    assert!(!failed.status.success());
    assert!(
        text(&failed.stdout).contains("output line 2:")
            && text(&failed.stdout).contains("Signed up"),
        "{}",
        text(&failed.stdout)
    );
}

#[test]
fn a_destination_reaches_a_receiver_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let project = scaffold(dir.path(), "post-it", "destination");
    let receiver = Receiver::start();
    let settings = format!(r#"{{"url":"http://{}/hook"}}"#, receiver.address);
    let run = |allow: Option<&str>| {
        let mut args = vec![
            "run",
            "index.js",
            "events.jsonl",
            "--kind",
            "destination",
            "--settings",
            &settings,
        ];
        if let Some(host) = allow {
            args.extend(["--allow-host", host]);
        }
        sluice_in(&project, &args)
    };

    let allowed = run(Some(&receiver.address));
    assert!(
        allowed.status.success(),
        "{:?} {}",
        allowed.status,
        text(&allowed.stderr)
    );
    let lines = json_lines(&allowed);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["delivered"], true, "{lines:?}");
    assert_eq!(lines[1]["delivered"], true, "{lines:?}");
    assert_eq!(lines[2]["skipped"]["kind"], "event-not-supported");
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["name"], "Order Completed");
    assert_eq!(bodies[1]["traits"]["email"], "ada@example.com");

    let refused = run(None);
    assert!(refused.status.success(), "{}", text(&refused.stderr));
    let lines = json_lines(&refused);
    assert_eq!(lines[0]["delivered"], false, "{lines:?}");
    assert_eq!(lines[0]["retryable"], false);
    let message = lines[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("http-not-allowed"), "{message}");
    assert_eq!(receiver.bodies().len(), 2, "nothing more arrived");
}

#[test]
fn functions_test_runs_a_deployed_destination_against_a_real_receiver() {
    const TOKEN: &str = "cli-net-test-owner-token-01";
    let dir = tempfile::tempdir().unwrap();
    let project = scaffold(dir.path(), "post-it", "destination");
    let receiver = Receiver::start();
    let server = support::start(&dir.path().join("data"), Some(TOKEN));
    let cli = support::Cli::of(&server, TOKEN);
    let index = project.join("index.js");
    let deployed = cli.json(&[
        "functions",
        "deploy",
        index.to_str().unwrap(),
        "--name",
        "post-it",
        "--type",
        "DESTINATION",
        "--setting",
        "url:STRING",
    ]);
    assert_eq!(deployed["resourceType"], "DESTINATION");
    let events = project.join("events.jsonl");
    let settings = format!(r#"{{"url":"http://{}/hook"}}"#, receiver.address);
    let test = |extra: &[&str]| {
        let mut args = vec![
            "functions",
            "test",
            "post-it",
            "--events",
            events.to_str().unwrap(),
            "--settings",
            &settings,
        ];
        args.extend(extra);
        cli.run(&args)
    };

    let report = test(&["--allow-host", &receiver.address]);
    assert!(
        report.status.success(),
        "{}{}",
        text(&report.stdout),
        text(&report.stderr)
    );
    let table = text(&report.stdout);
    assert!(
        table.matches("delivered").count() == 2 && table.contains("event-not-supported"),
        "{table}"
    );
    assert_eq!(receiver.bodies().len(), 2, "{:?}", receiver.bodies());
    assert_eq!(receiver.bodies()[0]["name"], "Order Completed");

    let json = test(&["--allow-host", &receiver.address, "--json"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let results: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(results.as_array().map(Vec::len), Some(3), "{results}");
    assert!(results[0]["error"].is_null(), "{results}");

    // Without the host allowed, the events end in errors naming why, and the command fails.
    let refused = test(&[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stdout).contains("http-not-allowed"),
        "{}",
        text(&refused.stdout)
    );
    assert!(
        text(&refused.stderr).contains("2 of 3 events ended in an error"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(receiver.bodies().len(), 4, "nothing more arrived");
    support::stop(server);
}
