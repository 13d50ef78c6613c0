//! `--ingest-listen`: the tracking API on its own listener, the control plane on the other,
//! each refusing the other's routes; both stop cleanly and the data survives a restart.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_runtime::api::{self, AppState, Config};

const OWNER: &str = "owner-secret-for-split-tests";

#[tokio::test]
async fn the_tracking_api_can_have_its_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    api::auth::bootstrap(&state.store, Some(OWNER)).unwrap();
    let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", control.local_addr().unwrap());
    let ingest_url = format!("http://{}", ingest.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_runtime::server::run_split(
        control,
        Some(ingest),
        state,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();

    let source: Value = client
        .post(format!("{control_url}/sources"))
        .bearer_auth(OWNER)
        .json(&json!({"slug": "split", "enabled": true, "metadataId": "http"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = source["data"]["source"]["writeKeys"][0].as_str().unwrap();
    let event = json!({"userId": "u", "event": "E"});
    let on_ingest = client
        .post(format!("{ingest_url}/v1/track"))
        .basic_auth(key, Some(""))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(on_ingest.status(), StatusCode::OK);
    let on_control = client
        .post(format!("{control_url}/v1/track"))
        .basic_auth(key, Some(""))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_control.status(),
        StatusCode::NOT_FOUND,
        "the control plane points to the ingest listener"
    );
    let hint = on_control.text().await.unwrap();
    assert!(
        hint.contains("ingest listener") && hint.contains(ingest_url.as_str()),
        "{hint}"
    );
    let sources = client
        .get(format!("{ingest_url}/sources"))
        .bearer_auth(OWNER)
        .send()
        .await
        .unwrap();
    assert_eq!(sources.status(), StatusCode::NOT_FOUND);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Everything was released: the data directory opens again.
    AppState::open(dir.path(), Config::default()).unwrap();
}
