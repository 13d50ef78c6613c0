//! Two things scripts and agents lean on: finding a source by its slug (`GET /sources?slug=`)
//! and a default rate limit as generous as Segment's (about 100 requests a second per token).

mod api_support;

use api_support::Server;
use reqwest::StatusCode;

#[tokio::test]
async fn a_source_is_found_by_its_slug() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let ios = server.source("ios-app").await;
    server.source("web").await;
    server.source("backend").await;

    let r = server.get("/sources?slug=ios-app").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let found = r.data()["sources"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{}", r.body);
    assert_eq!(found[0]["id"], ios.as_str());
    assert_eq!(found[0]["slug"], "ios-app");
    assert_eq!(r.data()["pagination"]["totalEntries"], 1);

    // No such slug: an empty page, not an error.
    let r = server.get("/sources?slug=android-app").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["sources"], serde_json::json!([]));
    assert_eq!(r.data()["pagination"]["totalEntries"], 0);

    // Pagination still applies alongside, and no slug lists them all.
    assert_eq!(
        server.count("/sources?pagination.count=2", "sources").await,
        2
    );
    assert_eq!(server.count("/sources", "sources").await, 3);

    // A renamed source is found by its new slug only.
    let r = server
        .patch(
            &format!("/sources/{ios}"),
            serde_json::json!({"slug": "ios"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(server.count("/sources?slug=ios-app", "sources").await, 0);
    assert_eq!(server.count("/sources?slug=ios", "sources").await, 1);

    // A token scoped to another source does not learn that this one exists.
    let web = server.get("/sources?slug=web").await.data()["sources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let scoped = server
        .token(serde_json::json!([{"roleId": "source-admin",
            "resources": [{"id": web, "type": "SOURCE"}]}]))
        .await;
    let r = server
        .call(
            reqwest::Method::GET,
            "/sources?slug=ios",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["sources"], serde_json::json!([]));
    server.stop().await;
}

#[tokio::test]
async fn the_default_rate_limit_is_about_100_requests_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    // 1,000 requests as fast as one client sends them: none is refused (the old default of 600
    // a minute refused the 601st).
    let mut last = None;
    for _ in 0..1000 {
        let r = server.get("/sources?pagination.count=1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        last = Some(r);
    }
    let last = last.unwrap();
    let header = |name: &str| -> u64 {
        last.headers[name]
            .to_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{name} is a number"))
    };
    let consumed = header("x-ratelimit-consumed");
    let remaining = header("x-ratelimit-remaining");
    // A minute's budget is 6,000: 100 a second. Some of the budget refills while the requests
    // run, so `consumed` is at most 1,000.
    assert_eq!(consumed + remaining, 6000, "{:?}", last.headers);
    assert!((1..=1000).contains(&consumed), "consumed {consumed}");
    server.stop().await;
}
