//! The tracking API in a browser: analytics.js on another origin first sends a CORS preflight,
//! then posts with `Authorization` and `Content-Type: application/json`; both must be allowed,
//! on the shared listener and on the tracking API's own listener.

mod api_support;

use api_support::Server;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ORIGIN: &str = "https://shop.example.com";

/// Asserts that `url`'s `/v1/track` answers a browser's preflight and a cross-origin POST.
async fn browser_can_track(base: &str, key: &str) {
    let client = reqwest::Client::new();
    let preflight = client
        .request(Method::OPTIONS, format!("{base}/v1/track"))
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    let header = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    assert!(
        ["*", ORIGIN].contains(&header("access-control-allow-origin").as_str()),
        "{h:?}"
    );
    assert!(
        header("access-control-allow-methods").contains("post"),
        "{h:?}"
    );
    let allowed = header("access-control-allow-headers");
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{h:?}"
    );

    let post = client
        .post(format!("{base}/v1/track"))
        .header("Origin", ORIGIN)
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{key}:"))),
        )
        .json(&json!({"userId": "u1", "event": "Browser Event"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    let acao = post
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        ["*", ORIGIN].contains(&acao.as_str()),
        "{:?}",
        post.headers()
    );
    assert_eq!(
        post.json::<serde_json::Value>().await.unwrap(),
        json!({"success": true})
    );
}

#[tokio::test]
async fn tracking_api_answers_cors_preflight_and_cross_origin_posts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web").await;
    let key = server.write_key(&source).await;
    browser_can_track(&server.url, &key).await;

    // A refusal (an unknown key) still carries the header, so the page can read why.
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/track", server.url))
        .header("Origin", ORIGIN)
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode("nope:")),
        )
        .json(&json!({"userId": "u1", "event": "E"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // The control plane is not opened to browsers on other origins.
    let control = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}/sources", server.url))
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !control
            .headers()
            .contains_key("access-control-allow-origin")
    );
    server.stop().await;
}

#[tokio::test]
async fn tracking_listener_of_its_own_answers_cors_too() {
    let dir = tempfile::tempdir().unwrap();
    let state = sluice_runtime::api::AppState::open(dir.path(), Default::default()).unwrap();
    sluice_runtime::api::auth::bootstrap(&state.store, Some(api_support::OWNER)).unwrap();
    let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tracking = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", control.local_addr().unwrap());
    let tracking_url = format!("http://{}", tracking.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sluice_runtime::server::run_split(
        control,
        Some(tracking),
        state,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{control_url}/sources"))
        .bearer_auth(api_support::OWNER)
        .json(&json!({"slug": "web", "enabled": true, "metadataId": "javascript"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["data"]["source"]["writeKeys"][0].as_str().unwrap();
    browser_can_track(&tracking_url, key).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
