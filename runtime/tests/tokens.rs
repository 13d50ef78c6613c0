//! Token revocation is permanent, with the real `sluice` binary: a revoked bootstrap token
//! stays revoked when the server restarts with the same `SLUICE_BOOTSTRAP_TOKEN`.

mod support;

use support::{Cli, get, start, stop};

const BOOTSTRAP: &str = "bootstrap-owner-token-0001";

#[test]
fn a_revoked_bootstrap_token_stays_revoked_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(BOOTSTRAP));
    let boot = Cli::of(&server, BOOTSTRAP);
    let created = boot.json(&[
        "tokens",
        "create",
        "--description",
        "second owner",
        "--role",
        "Workspace Owner",
    ]);
    let second = created["value"].as_str().unwrap().to_string();
    let bootstrap_id = boot
        .json(&["tokens", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["description"] == "bootstrap owner token")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .expect("the bootstrap token is listed");
    let owner = Cli::of(&server, &second);
    owner.ok(&["tokens", "revoke", &bootstrap_id]);
    let (status, _) = get(&server.address, "/sources", Some(BOOTSTRAP));
    assert!(status.contains("401"), "revoked at once: {status}");
    stop(server);

    // The same bootstrap token on restart: still revoked, not recreated.
    let server = start(dir.path(), Some(BOOTSTRAP));
    let (status, _) = get(&server.address, "/sources", Some(BOOTSTRAP));
    assert!(status.contains("401"), "still revoked: {status}");
    let (status, _) = get(&server.address, "/sources", Some(&second));
    assert!(status.contains("200"), "{status}");
    let owner = Cli::of(&server, &second);
    let tokens = owner.json(&["tokens", "list"]);
    let descriptions: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["second owner"]);
    stop(server);
}
