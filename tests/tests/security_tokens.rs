//! Token expiry through real HTTP: `expiresAt` is checked at creation, shown in the list and
//! on `GET /tokens/{id}`, and enforced (401 naming the expiry).

mod api_support;

use std::time::Duration;

use api_support::Server;
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn in_seconds(seconds: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .format(&Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn tokens_expire_when_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let owner = |expires: serde_json::Value| json!({"description": "temp", "permissions": [{"roleId": "workspace-owner"}], "expiresAt": expires});
    for (expires, why) in [
        (json!("yesterday"), "RFC 3339"),
        (json!(in_seconds(-60)), "in the past"),
    ] {
        let r = server.post("/tokens", owner(expires)).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "expiresAt"),
            "{}",
            r.body
        );
        assert!(r.body.to_string().contains(why), "{}", r.body);
    }

    let expires = in_seconds(2);
    let r = server.post("/tokens", owner(json!(expires))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = &r.data()["token"];
    assert_eq!(token["expired"], false);
    let (id, secret) = (
        token["id"].as_str().unwrap().to_string(),
        token["value"].as_str().unwrap().to_string(),
    );
    let shown = token["expiresAt"].as_str().unwrap().to_string();
    assert_eq!(
        OffsetDateTime::parse(&shown, &Rfc3339).unwrap(),
        OffsetDateTime::parse(&expires, &Rfc3339).unwrap()
    );
    let listed = server.get("/tokens").await;
    let listed = listed.data()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(listed["expiresAt"], shown.as_str());
    let got = server.get(&format!("/tokens/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.data()["token"]["expiresAt"], shown.as_str());
    assert!(got.data()["token"].get("value").is_none());

    let r = server
        .call(Method::GET, "/sources", Some(&secret), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "valid until it expires");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = server
        .call(Method::GET, "/sources", Some(&secret), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("expired") && message.contains(&shown),
        "{message}"
    );
    let got = server.get(&format!("/tokens/{id}")).await;
    assert_eq!(got.data()["token"]["expired"], true);

    // A token without `expiresAt` never expires, and says so by omission.
    let r = server.get("/tokens").await;
    let bootstrap = &r.data()["tokens"][0];
    assert!(bootstrap.get("expiresAt").is_none(), "{bootstrap}");
    assert_eq!(bootstrap["expired"], false);
    server.stop().await;
}
