//! Segment conformance: Segment's published TypeScript SDK (tests/conformance, pinned) drives a
//! real sluice on an ephemeral port, and every answer is checked against the SDK's models.
//! `scripts/test` installs the SDK (`npm ci` in tests/conformance).

mod api_support;

use std::path::PathBuf;
use std::process::Command;

use api_support::{OWNER, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_sdk_operations_conform_to_its_models() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance");
    assert!(
        scripts
            .join("node_modules/@segment/public-api-sdk-typescript")
            .is_dir(),
        "Segment's SDK is not installed: run scripts/test (or `npm ci` in {})",
        scripts.display()
    );
    let url = server.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("conformance.js")
            .current_dir(&scripts)
            .env("SLUICE_URL", url)
            .env("SLUICE_TOKEN", OWNER)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK conformance script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Every operation the brief names was called and checked.
    for op in [
        "getWorkspace",
        "listSources",
        "createSource",
        "getSource",
        "updateSource",
        "deleteSource",
        "listDestinations",
        "createDestination",
        "getDestination",
        "listTrackingPlans",
        "createTrackingPlan",
        "listAuditEvents",
        "listWarehouses",
    ] {
        assert!(
            stdout.contains(&format!("ok {op} ")),
            "{op} unchecked:\n{stdout}"
        );
    }
    server.stop().await;
}
