//! The `sluice serve` binary as an operator runs it: configuration from flags and environment,
//! the bootstrap token printed once, real HTTP, SIGTERM with the database flushed, restart.

mod support;

use support::{get, start, stop};

#[test]
fn serve_bootstraps_a_token_serves_http_and_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();

    // First start with no token anywhere: one is created and printed once.
    let server = start(dir.path(), None);
    let token = server
        .stdout
        .iter()
        .find(|l| l.starts_with("sl_"))
        .cloned()
        .unwrap_or_else(|| panic!("a token is printed: {:?}", server.stdout));
    let (status, body) = get(&server.address, "/", Some(&token));
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains(r#""workspace""#), "{body}");
    let (status, _) = get(&server.address, "/sources", None);
    assert!(status.contains("401"), "{status}");
    let log = stop(server);
    assert!(
        log.iter().any(|l| l.contains("database flushed")),
        "{log:?}"
    );

    // Restarted on the same data directory: no new token, the old one still works.
    let server = start(dir.path(), None);
    assert!(
        !server.stdout.iter().any(|l| l.starts_with("sl_")),
        "{:?}",
        server.stdout
    );
    let (status, _) = get(&server.address, "/", Some(&token));
    assert!(status.contains("200"), "{status}");
    stop(server);

    // SLUICE_BOOTSTRAP_TOKEN only ever creates the first token of an empty workspace: here
    // one exists, so it grants nothing.
    let chosen = "ci-owner-token-0123456789";
    let server = start(dir.path(), Some(chosen));
    let (status, _) = get(&server.address, "/sources", Some(chosen));
    assert!(status.contains("401"), "{status}");
    stop(server);

    // On an empty workspace it is the first owner token, of the operator's choosing.
    let fresh = tempfile::tempdir().unwrap();
    let server = start(fresh.path(), Some(chosen));
    assert!(
        !server.stdout.iter().any(|l| l.starts_with("sl_")),
        "{:?}",
        server.stdout
    );
    let (status, _) = get(&server.address, "/sources", Some(chosen));
    assert!(status.contains("200"), "{status}");
    stop(server);
}
