//! File destinations write only under `<data dir>/files/`, through real HTTP: escaping paths
//! are refused at create and update (422 naming the rule), a path named like the database's
//! own files lands under `files/` and the server still restarts, and a symbolic link out of
//! `files/` is refused when the file is opened.

mod api_support;

use std::time::Duration;

use api_support::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn track(server: &Server, key: &str, message_id: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/track", server.url))
        .basic_auth(key, Some(""))
        .json(&json!({"userId": "u", "event": "Signed Up", "messageId": message_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The text of `path` once it contains `needle` (waits up to 20 s).
async fn eventually_contains(path: &std::path::Path, needle: &str) -> String {
    for _ in 0..400 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never contained {needle}", path.display());
}

#[tokio::test]
async fn paths_outside_files_are_refused_at_create_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("web").await;
    let bad = [
        "../escape.jsonl",
        "/etc/passwd",
        "/tmp/abs.jsonl",
        "sub/../../x",
        "a/..",
        "..",
        "",
        "dir/",
    ];
    for path in bad {
        let r = server
            .post(
                "/destinations",
                json!({"sourceId": src, "metadataId": "file", "settings": {"path": path}}),
            )
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "settings.path"),
            "{path:?}: {}",
            r.body
        );
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("relative") && message.contains("files/"),
            "{path:?}: the rule is named: {message}"
        );
    }
    // A good path is stored in its normal form.
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": src, "metadataId": "file", "settings": {"path": "./out//web.jsonl"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.data()["destination"]["settings"]["path"], "out/web.jsonl");
    let id = r.data()["destination"]["id"].as_str().unwrap().to_string();
    for path in bad {
        let r = server
            .patch(
                &format!("/destinations/{id}"),
                json!({"settings": {"path": path}}),
            )
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "settings.path"),
            "update to {path:?}: {}",
            r.body
        );
    }
    let r = server.get(&format!("/destinations/{id}")).await;
    assert_eq!(r.data()["destination"]["settings"]["path"], "out/web.jsonl");
    server.stop().await;
}

#[tokio::test]
async fn a_path_named_like_the_database_never_touches_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("web").await;
    let key = server.write_key(&src).await;
    let conf_before = std::fs::read(dir.path().join("db/conf")).unwrap();
    for path in ["db/conf", "db/db"] {
        server.file_destination(&src, path, path).await;
    }
    track(&server, &key, "m-1").await;
    for path in ["db/conf", "db/db"] {
        eventually_contains(&server.file(path), "m-1").await;
    }
    assert_eq!(
        std::fs::read(dir.path().join("db/conf")).unwrap(),
        conf_before,
        "sled's own files are untouched"
    );
    server.stop().await;

    // The database still opens, and events still flow.
    let server = Server::start(dir.path()).await;
    assert_eq!(server.get("/").await.status, StatusCode::OK);
    track(&server, &key, "m-2").await;
    eventually_contains(&server.file("db/conf"), "m-2").await;
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_symbolic_link_out_of_files_is_refused_when_the_file_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("web").await;
    let key = server.write_key(&src).await;
    let dest = server
        .file_destination(&src, "linked", "link/x.jsonl")
        .await;
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("files/link")).unwrap();
    track(&server, &key, "m-1").await;
    let mut failed = Value::Null;
    for _ in 0..400 {
        let r = server
            .get(&format!("/destinations/{dest}/failed-events"))
            .await;
        failed = r.data()["failedEvents"].clone();
        if failed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed[0]["event"]["messageId"], "m-1", "{failed}");
    let error = failed[0]["lastError"].as_str().unwrap();
    assert!(error.contains("symbolic link"), "{error}");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing was written outside files/"
    );
    server.stop().await;
}
