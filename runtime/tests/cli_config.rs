//! `sluice serve`'s configuration as an operator meets it: a `sluice.toml` (given, or found in
//! the working directory), `SLUICE_*` variables and flags, flags > environment > file >
//! defaults, shown by `--print-config`; a bad file or value stops the server with the file,
//! key and problem; a real server runs with what the file says.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{forward_lines, get, stop};

/// `sluice serve <args>` in `dir`, with only the given `SLUICE_*` variables set.
fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("serve").args(args).current_dir(dir);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SLUICE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command
}

fn output(command: &mut Command) -> (Output, String, String) {
    let out = command.output().expect("sluice runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn print_config_shows_flags_over_environment_over_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(
        &file,
        "[server]\nrate_limit = 2\nworkspace_name = \"from-file\"\n\n[ingest]\nqueue_bound = 1\n\n[delivery]\nwebhook_timeout_ms = 3\n",
    )
    .unwrap();
    let (out, stdout, stderr) = output(
        serve(
            dir.path(),
            &[
                "--config",
                file.to_str().unwrap(),
                "--webhook-timeout-ms",
                "300",
                "--print-config",
            ],
            &[
                ("SLUICE_RATE_LIMIT", "20"),
                ("SLUICE_WEBHOOK_TIMEOUT_MS", "30"),
            ],
        )
        .stdout(Stdio::piped()),
    );
    assert!(out.status.success(), "{stderr}");
    let printed: toml::Table = stdout.parse().expect("the printout is TOML");
    let value = |section: &str, key: &str| printed[section][key].clone();
    assert_eq!(
        value("ingest", "queue_bound").as_integer(),
        Some(1),
        "file over default"
    );
    assert_eq!(
        value("server", "rate_limit").as_integer(),
        Some(20),
        "environment over file"
    );
    assert_eq!(
        value("delivery", "webhook_timeout_ms").as_integer(),
        Some(300),
        "flag over environment"
    );
    assert_eq!(
        value("server", "listen").as_str(),
        Some("127.0.0.1:8080"),
        "default"
    );
    assert_eq!(
        value("delivery", "retry_max_age_secs").as_integer(),
        Some(14400),
        "default"
    );
    // Each line says where its value came from.
    for line in [
        format!("queue_bound = 1  # from {}", file.display()),
        "rate_limit = 20  # from SLUICE_RATE_LIMIT".to_string(),
        "webhook_timeout_ms = 300  # from --webhook-timeout-ms".to_string(),
        "listen = \"127.0.0.1:8080\"  # default".to_string(),
    ] {
        assert!(stdout.contains(&line), "{line} in\n{stdout}");
    }

    // Without --config, ./sluice.toml is read if it is there.
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[debugger]\nevents_per_source = 7\n",
    )
    .unwrap();
    let (out, stdout, _) = output(&mut serve(dir.path(), &["--print-config"], &[]));
    assert!(out.status.success());
    assert!(
        stdout.contains("events_per_source = 7  # from sluice.toml"),
        "{stdout}"
    );
    assert!(stdout.contains("rate_limit = 6000  # default"), "{stdout}");
}

#[test]
fn a_bad_configuration_stops_the_server_naming_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[ingest]\nqueue_bound = \"lots\"\n",
    )
    .unwrap();
    let (out, _, stderr) = output(&mut serve(dir.path(), &[], &[]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid configuration file sluice.toml, line 5: key `ingest.queue_bound`: invalid type: string \"lots\""),
        "{stderr}"
    );

    std::fs::write(&file, "[server]\nlisen = \"127.0.0.1:0\"\n").unwrap();
    let (out, _, stderr) = output(&mut serve(dir.path(), &["--print-config"], &[]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("sluice.toml, line 2") && stderr.contains("unknown field `lisen`"),
        "{stderr}"
    );

    let (out, _, stderr) = output(&mut serve(dir.path(), &["--config", "missing.toml"], &[]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read the configuration file missing.toml"),
        "{stderr}"
    );

    std::fs::remove_file(&file).unwrap();
    let (out, _, stderr) = output(&mut serve(
        dir.path(),
        &[],
        &[("SLUICE_QUEUE_BOUND", "many")],
    ));
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid setting `ingest.queue_bound` (from SLUICE_QUEUE_BOUND): `many` is not a whole number"),
        "{stderr}"
    );
    let (out, _, stderr) = output(&mut serve(dir.path(), &["--rate-limit", "0"], &[]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("`server.rate_limit` (from --rate-limit): must be at least 1"),
        "{stderr}"
    );
    // A short bootstrap token is refused before anything is written.
    let (out, _, stderr) = output(&mut serve(
        dir.path(),
        &["--data-dir", "fresh-data", "--bootstrap-token", "short"],
        &[],
    ));
    assert!(!out.status.success());
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    assert!(!dir.path().join("fresh-data").exists(), "no data directory");
}

#[test]
fn a_server_runs_with_what_its_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ningest_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
             workspace_name = \"acme\"\nbootstrap_token = \"config-owner-token-0123\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut child = serve(dir.path(), &[], &[("RUST_LOG", "info")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let stderr = forward_lines(child.stderr.take().expect("piped"));
    let after = |line: &str, key: &str| {
        line.split(key)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    };
    let (mut control, mut ingest) = (None, None);
    while control.is_none() || ingest.is_none() {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports its addresses");
        if let Some(at) = after(&line, "ingest_address=") {
            ingest = Some(at);
        } else if let Some(at) = after(&line, "address=") {
            control = Some(at);
        }
    }
    let (address, ingest) = (control.unwrap_or_default(), ingest.unwrap_or_default());
    let (status, body) = get(&address, "/", Some("config-owner-token-0123"));
    assert!(
        status.contains("200") && body.contains("acme"),
        "{status} {body}"
    );
    assert!(data.join("db").exists(), "the data directory is the file's");
    // The tracking API's own listener answers the probes, but keeps the metrics to itself.
    let (status, body) = get(&ingest, "/healthz", None);
    assert!(status.contains("200") && body == "ok\n", "{status} {body}");
    let (status, _) = get(&ingest, "/readyz", None);
    assert!(status.contains("200"), "{status}");
    let (status, _) = get(&ingest, "/metrics", None);
    assert!(status.contains("404"), "{status}");
    let (status, body) = get(&address, "/metrics", None);
    assert!(status.contains("200"), "{status}");
    assert!(
        body.contains(
            r#"sluice_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "requests on either listener are counted: {body}"
    );
    stop(support::Server {
        child,
        address,
        stdout: Vec::new(),
        stderr,
    });
}
