//! The document and the server agree, as schemathesis (PyPI, pinned; `scripts/test` installs
//! it into a virtualenv) finds by generating requests from `/openapi.json` against a real
//! server: valid and invalid bodies, parameters and paths for every operation, the tracking API
//! included, with every check on (no 5xx; every status, header, content type and body as
//! documented; invalid input refused; valid input accepted; auth enforced). Left out:
//! `deleteToken` (it could revoke the run's own token), and the check that valid input is
//! accepted for the five operations whose bodies no schema can judge (see below).
//!
//! Bounded: a few examples per operation, a fixed seed (a failure reproduces), and a time
//! budget, so that it takes a few minutes on two cores.

mod api_support;

use std::path::PathBuf;
use std::process::Command;

use api_support::{OWNER, Server};
use sluice_runtime::api::Config;

/// The virtualenv `scripts/test` makes: `$SLUICE_PY_VENV`, else `~/.cache/sluice/venv`.
fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_PY_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/sluice/venv")
}

/// Two exceptions, written into schemathesis's settings file.
///
/// Operations whose bodies are valid only if their content is: JavaScript that parses or a
/// WebAssembly component that compiles (`code`, `wasm`), and a destination's `settings`,
/// and a warehouse's `settings`, checked against the chosen catalog type's own schema
/// (`GET /catalog/destinations`, `GET /catalog/warehouses`). A
/// schema-valid random body is refused there with a 422 that names the problem, as it should
/// be, so the check that schema-valid input is accepted is off for them.
///
/// Operations on a resource (`/{id}`) whose body names another one (`sourceId`,
/// `versionId`): when the named one does not exist the answer is a 404 whose `field` says
/// so, which the stateful check "a resource just created answers" would read as the path's
/// resource having vanished; that check is off for them. Every other check runs on all five.
const EXCEPTIONS: &str = "[[operations]]\n\
    include-operation-id-regex = \"^(createFunction|updateFunction|createDestination|createWarehouse|updateWarehouse)$\"\n\
    checks.positive_data_acceptance.enabled = false\n\n\
    [[operations]]\n\
    include-operation-id-regex = \"^(addSourceToTrackingPlan|testFunction|restoreFunctionVersion|createFunctionDeployment|updateSchemaSettingsInSource)$\"\n\
    checks.ensure_resource_availability.enabled = false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_mismatch_and_no_server_error() {
    let bin = venv().join("bin/schemathesis");
    assert!(
        bin.is_file(),
        "schemathesis is not installed in {}: run scripts/test",
        venv().display()
    );
    let dir = tempfile::tempdir().unwrap();
    // Rate limiting is tested elsewhere; here a 429 would only hide what the run is after.
    let config = Config {
        rate_limit_per_minute: 1_000_000,
        ..Config::default()
    };
    let server = Server::start_with(&dir.path().join("data"), config).await;
    // A real source, so that the tracking API's operations get past authentication.
    let source = server.source("schemathesis").await;
    let write_key = server.write_key(&source).await;
    let settings = dir.path().join("schemathesis.toml");
    std::fs::write(
        &settings,
        format!(
            "[auth.openapi.bearer]\nbearer = \"{OWNER}\"\n\n\
             [auth.openapi.writeKey]\nusername = \"{write_key}\"\npassword = \"\"\n\n\
             {EXCEPTIONS}"
        ),
    )
    .unwrap();
    let url = format!("{}/openapi.json", server.url);
    let report = dir.path().join("report");
    let work = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .arg("--config-file")
            .arg(&settings)
            .args(["run", &url])
            // Every check runs by default (schemathesis 4); `--checks all` would also override
            // the per-operation exception in the settings file.
            .args(["--exclude-operation-id", "deleteToken"])
            .args(["--max-examples", "8"])
            .args(["--seed", "13"])
            // One worker: with two, hypothesis parses its lambdas' source on two threads at
            // once, which CPython 3.11 answers with `SystemError: AST constructor recursion
            // depth mismatch` (a CPython bug when two threads parse at once), a runtime error.
            .args(["--workers", "1"])
            .args(["--request-timeout", "60"])
            // The first JavaScript upload compiles the engine component (seconds, more on a
            // loaded two-core machine); every other answer takes milliseconds.
            .args(["--max-response-time", "60"])
            .args(["--generation-database", "none"])
            .args(["--no-color", "--output-truncate", "false"])
            .arg("--report-dir")
            .arg(&report)
            .env("SCHEMATHESIS_HOOKS", "")
            // Its cache directory (`.schemathesis`) goes with the temporary directory.
            .current_dir(&work)
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // It really ran: (nearly) every operation was tested, with thousands of cases.
    let number_after = |label: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{label}` in the report:\n{stdout}"))
    };
    let tested = number_after("Tested:");
    assert!(tested >= 85, "{tested} operations tested:\n{stdout}");
    // "Test cases:" then "  4767 generated, 4767 passed, 120 skipped".
    let cases: usize = stdout
        .lines()
        .skip_while(|l| l.trim() != "Test cases:")
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no test case count in the report:\n{stdout}"));
    assert!(cases >= 1000, "{cases} cases:\n{stdout}");
    server.stop().await;
}
