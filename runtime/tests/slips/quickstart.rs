//! `docs/quickstart.md` run as a new user would: every `T1` command in one shell (its
//! variables and directory carried from step to step), the server of `T2` started from the
//! command the page gives, and each printed output the page shows checked against what the
//! command printed. README's quick start must be the same text, so it is kept honest too.
//!
//! What is not literal: the build of step 1 (this test runs the `sluice` it was built with),
//! `/tmp/qs` (a temporary directory), the server's port (a free one, through `SLUICE_URL`),
//! and in outputs ids, times and durations; `...` in a shown line stands for anything. A read
//! whose output does not match yet is tried again for up to 20 s, as a person looks again a
//! moment later (deliveries are asynchronous).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::start;
use crate::support::forward_lines;

/// One command of the page, with the terminal it runs in and the output it shows.
#[derive(Debug)]
struct Step {
    terminal: u8,
    command: String,
    shown: Vec<String>,
}

/// The commands of `page`, in order.
fn steps(page: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut terminal = 1;
    let mut block: Option<String> = None;
    for line in page.lines() {
        if let Some(kind) = line.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(kind.to_string()),
            };
            continue;
        }
        match block.as_deref() {
            None => {
                for t in 1..=3u8 {
                    if line.starts_with("**") && line.contains(&format!("(T{t}")) {
                        terminal = t;
                    }
                }
            }
            Some("sh") => {
                if !line.trim().is_empty() {
                    steps.push(Step {
                        terminal,
                        command: line.to_string(),
                        shown: vec![],
                    });
                }
            }
            Some("console") => match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step {
                    terminal,
                    command: command.to_string(),
                    shown: vec![],
                }),
                None => {
                    if let Some(last) = steps.last_mut() {
                        last.shown.push(line.to_string());
                    }
                }
            },
            // What another terminal shows (`text`), or anything else: not run.
            Some(_) => {}
        }
    }
    steps
}

/// A line with what differs from run to run replaced, and spaces collapsed.
fn normal(line: &str) -> String {
    let mut out = String::new();
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&normal_word(word));
    }
    out
}

/// Ids (runs of 12 or more hex digits, dashes allowed: UUIDs too), RFC 3339 times and
/// durations (`11.5ms`, `1.2s`) become placeholders.
fn normal_word(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || **c == '-')
            .count();
        let digits = chars[i..i + run]
            .iter()
            .filter(|c| c.is_ascii_hexdigit())
            .count();
        if digits >= 12 {
            out.push_str("<id>");
            i += run;
            continue;
        }
        if chars[i].is_ascii_digit() {
            let rest: String = chars[i..].iter().collect();
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || ".:-TZ".contains(c)))
                .unwrap_or(rest.len());
            let number = &rest[..end];
            let unit: String = rest[end..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            if number.contains('T') && number.contains(':') {
                out.push_str("<time>");
                i += number.chars().count();
                continue;
            }
            if ["ms", "s", "µs", "us", "ns"].contains(&unit.as_str()) && !number.contains(':') {
                out.push_str("<duration>");
                i += number.chars().count() + unit.chars().count();
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Whether `got` holds every shown line, in order (each `...` in a shown line standing for
/// anything).
fn shows(got: &[String], shown: &[String]) -> bool {
    let got: Vec<String> = got.iter().map(|l| normal(l)).collect();
    let mut at = 0;
    'shown: for want in shown.iter().map(|l| normal(l)).filter(|l| !l.is_empty()) {
        while at < got.len() {
            at += 1;
            if matches_pattern(&got[at - 1], &want) {
                continue 'shown;
            }
        }
        return false;
    }
    true
}

fn matches_pattern(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for (i, part) in pattern.split("...").enumerate() {
        match rest.find(part) {
            Some(p) if i > 0 || p == 0 => rest = &rest[p + part.len()..],
            _ => return false,
        }
    }
    true
}

/// A bash session: commands in, their output (stdout and stderr together) out.
struct Shell {
    input: ChildStdin,
    output: Receiver<String>,
    child: std::process::Child,
}

impl Shell {
    fn new(dir: &Path, path: &str, cache: &Path) -> Shell {
        let mut command = Command::new("bash");
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SLUICE_")) {
            command.env_remove(name);
        }
        let mut child = command
            .current_dir(dir)
            .env("PATH", path)
            .env("SLUICE_CACHE_DIR", cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash starts");
        let mut input = child.stdin.take().expect("stdin");
        let output = forward_lines(child.stdout.take().expect("stdout"));
        writeln!(input, "exec 2>&1").unwrap();
        Shell {
            input,
            output,
            child,
        }
    }

    /// Runs `command`; its output lines and exit status.
    fn run(&mut self, command: &str) -> (Vec<String>, i32) {
        writeln!(self.input, "{command}\necho \"@@@ $?\"").unwrap();
        let mut lines = Vec::new();
        loop {
            let line = self
                .output
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("`{command}` did not finish"));
            if let Some(status) = line.strip_prefix("@@@ ") {
                return (lines, status.trim().parse().unwrap_or(-1));
            }
            lines.push(line);
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

#[test]
fn the_readme_quick_start_is_the_quickstart_page() {
    let page = std::fs::read_to_string(repository().join("docs/quickstart.md")).unwrap();
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let first = page.find("You need Rust").expect("the page's steps");
    let last = page.find("Next: edit").expect("the page's last paragraph");
    assert!(
        readme.contains(&page[first..last]),
        "README's quick start differs from docs/quickstart.md"
    );
}

#[test]
fn the_quickstart_page_runs_as_written() {
    let repo = repository();
    if !repo.join("../shared/data/events.jsonl").is_file() {
        panic!("the sample events are missing: the page needs ../shared/data/events.jsonl");
    }
    let page = std::fs::read_to_string(repo.join("docs/quickstart.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let qs = dir.path().to_str().unwrap().to_string();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut server = None;
    let mut shell = Shell::new(&repo, &path, &dir.path().join("cache"));
    let mut ran = 0;
    for step in steps(&page) {
        let command = step.command.replace("/tmp/qs", &qs);
        if command.contains("build-components") || step.terminal == 3 {
            continue;
        }
        if step.terminal == 2 {
            let args = command
                .strip_prefix("sluice ")
                .expect("T2 runs `sluice serve`");
            let mut serve = Command::new(&binary);
            serve
                .args(args.split_whitespace())
                .args(["--listen", "127.0.0.1:0"]);
            for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SLUICE_")) {
                serve.env_remove(name);
            }
            let started = start(serve);
            shell.run(&format!("export SLUICE_URL=http://{}", started.address));
            server = Some(started);
            continue;
        }
        let started = Instant::now();
        let (got, status) = loop {
            let (got, status) = shell.run(&command);
            let reads_only = ![
                "send", "create", "deploy", "new", "export", "mkdir", "cd", "=",
            ]
            .iter()
            .any(|w| command.contains(w));
            if (status == 0 && shows(&got, &step.shown))
                || !reads_only
                || started.elapsed() > Duration::from_secs(20)
            {
                break (got, status);
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_eq!(status, 0, "`{}` failed:\n{}", step.command, got.join("\n"));
        assert!(
            shows(&got, &step.shown),
            "`{}` printed:\n{}\nthe page shows:\n{}",
            step.command,
            got.join("\n"),
            step.shown.join("\n")
        );
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} commands ran");
    assert!(server.is_some(), "the page starts a server");
}

#[test]
fn shown_lines_match_with_ids_times_and_durations_left_out() {
    let got = vec![
        "sent 100 events in 1 requests in 9.8ms; 100 new, 0 duplicates, 0 refused".to_string(),
        "attached to 01a2188474987638b6979048a9cddd99".to_string(),
    ];
    assert!(shows(
        &got,
        &["sent 100 events in 1 requests in 11.5ms; 100 new, 0 duplicates, 0 refused".into()]
    ));
    assert!(shows(
        &got,
        &["attached to 01a2188474987638b6979048a9cddd7d".into()]
    ));
    assert!(!shows(
        &got,
        &["sent 99 events in 1 requests in 11.5ms; 0 refused".into()]
    ));
    assert!(shows(
        &["2026-11-30T10:00:00.1Z  info   redacted 2 values  (event 9b975338-eade-4845-544c-efd37f75b7e0, instance 01a2188486b0f00d1122334455667788)".to_string()],
        &["2026-11-26T15:41:09.177581955Z  info   redacted 2 values  (event 1b975338-eade-4845-544c-efd37f75b7e0, instance 01a2188486b0...)".to_string()]
    ));
}
