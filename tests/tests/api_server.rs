//! The control plane's transport, through real HTTP: auth, envelope, content negotiation,
//! body limits, bad input, request ids, rate limits and the OpenAPI document.

mod api_support;

use api_support::{OWNER, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_runtime::api::Config;

#[tokio::test]
async fn workspace_needs_a_valid_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;

    let r = server.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["workspace"]["slug"], "default");

    for token in [None, Some("wrong")] {
        let r = server.call(Method::GET, "/", token, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_type(), "unauthorized");
        assert!(r.body.get("data").is_none(), "never both data and errors");
        assert!(
            r.headers.contains_key("x-ratelimit-remaining"),
            "rate headers on 401 too"
        );
    }
    // A token that is not a bearer token.
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/", server.url))
        .basic_auth("user", Some(OWNER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_use_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server.get("/no/such/path").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_type(), "not-found");
    let r = server
        .call(Method::PUT, "/sources", Some(OWNER), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_type(), "method-not-allowed");
    // A path parameter that does not decode (invalid UTF-8) is a 400 in the envelope.
    let r = server.get("/sources/%FF").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_type(), "bad-request");
    let r = server.get("/sources/does-not-exist").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does-not-exist")
    );
    server.stop().await;
}

#[tokio::test]
async fn content_negotiation_follows_segment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let client = reqwest::Client::new();
    for (accept, status, kind) in [
        ("application/json", 200, "application/json"),
        (
            "application/vnd.segment.v1+json",
            200,
            "application/vnd.segment.v1+json",
        ),
        (
            "application/vnd.segment.v1beta+json",
            200,
            "application/vnd.segment.v1beta+json",
        ),
        (
            "application/vnd.segment.v1alpha+json",
            200,
            "application/vnd.segment.v1alpha+json",
        ),
        ("*/*", 200, "application/json"),
        // (`text/html` alone is a browser: `/` sends it to the console, `api::console`.)
        ("application/xml", 406, "application/json"),
    ] {
        let r = client
            .get(format!("{}/", server.url))
            .bearer_auth(OWNER)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{accept}");
        assert_eq!(r.headers()["content-type"], kind, "{accept}");
        assert!(
            r.headers().contains_key("x-ratelimit-remaining"),
            "{accept}"
        );
        let body: Value = r.json().await.unwrap();
        if status == 406 {
            assert_eq!(body["errors"][0]["type"], "not-acceptable");
        } else {
            assert!(body["data"]["workspace"].is_object());
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_input_is_400_or_422_naming_the_field_never_500() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let client = reqwest::Client::new();
    let send = |body: &'static str| {
        client
            .post(format!("{}/sources", server.url))
            .bearer_auth(OWNER)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send("{\"slug\": ").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );

    let cases = [
        (
            json!({"slug": "a", "enabled": "yes", "metadataId": "http"}),
            "enabled",
        ),
        (json!({"enabled": true, "metadataId": "http"}), "slug"),
        (
            json!({"slug": "Not A Slug", "enabled": true, "metadataId": "http"}),
            "slug",
        ),
        (
            json!({"slug": "a", "enabled": true, "metadataId": "http", "colour": 1}),
            "colour",
        ),
        (json!("a string"), "."),
    ];
    // A catalog entry that does not exist is the 404 its own URL gives, naming the field.
    let body = json!({"slug": "a", "enabled": true, "metadataId": "carrier-pigeon"});
    let r = server.post("/sources", body).await;
    assert_eq!((r.status, r.field()), (StatusCode::NOT_FOUND, "metadataId"));
    for (body, field) in cases {
        let r = server.post("/sources", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.error_type(), "input-validation");
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    // A body that is not JSON at all.
    let r = client
        .post(format!("{}/sources", server.url))
        .bearer_auth(OWNER)
        .header("content-type", "text/plain")
        .body("slug=a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Query parameters of the wrong shape.
    for query in [
        "pagination.count=0",
        "pagination.count=1001",
        "pagination.count=ten",
        "pagination.cursor=%21%21",
    ] {
        let r = server.get(&format!("/sources?{query}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(r.field().starts_with("pagination."), "{query}");
    }
    let r = server.get("/functions?resourceType=BANANA").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let big = "x".repeat(sluice_runtime::api::BODY_LIMIT_BYTES + 1);
    let r = server
        .post(
            "/sources",
            json!({"slug": "a", "enabled": true, "metadataId": "http", "name": big}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_type(), "payload-too-large");
    // The server is still fine.
    assert_eq!(server.get("/").await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server.get("/").await;
    assert!(!r.headers["x-request-id"].to_str().unwrap().is_empty());
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/", server.url))
        .bearer_auth(OWNER)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    server.stop().await;
}

#[tokio::test]
async fn rate_limits_are_per_token_with_headers_and_429() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        rate_limit_per_minute: 5,
        ..Config::default()
    };
    let server = Server::start_with(dir.path(), config).await;
    for i in 1..=5u32 {
        let r = server.get("/").await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        assert_eq!(r.headers["x-ratelimit-consumed"], i.to_string().as_str());
        assert_eq!(
            r.headers["x-ratelimit-remaining"],
            (5 - i).to_string().as_str()
        );
        let reset = r.headers["x-ratelimit-reset"].to_str().unwrap();
        assert!(reset.ends_with("+0000"), "an RFC 5322 date: {reset}");
    }
    let r = server.get("/").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_type(), "RequestError");
    assert_eq!(r.body["errors"][0]["message"], "Too many requests");
    assert_eq!(r.body["errors"][0]["data"]["remainingPoints"], 0);
    assert!(
        r.body["errors"][0]["data"]["msBeforeNext"]
            .as_u64()
            .unwrap()
            > 0
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");

    // Another token has its own budget (budgets live in memory: a restart starts them afresh).
    server.stop().await;
    let server = Server::start_with(
        dir.path(),
        Config {
            rate_limit_per_minute: 5,
            ..Config::default()
        },
    )
    .await;
    let other = server.token(json!([{"roleId": "workspace-member"}])).await;
    for _ in 0..4 {
        server.get("/").await;
    }
    assert_eq!(server.get("/").await.status, StatusCode::TOO_MANY_REQUESTS);
    let r = server.call(Method::GET, "/", Some(&other), None).await;
    assert_eq!(r.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn openapi_documents_every_route_the_router_serves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = &r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let paths = doc["paths"].as_object().unwrap();

    // The router is built from the same annotations as the document (`api::openapi::router`),
    // so whatever it serves is documented; here every documented operation is also probed over
    // HTTP to show that it is really served.
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has a summary"
            );
            assert!(
                op["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has a description"
            );
            // Every documented operation is really served: it answers with anything but 404/405
            // from the router (a 404 for a missing resource still carries our envelope).
            let concrete = path.replace(['{', '}'], "");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = server.call(m, &concrete, Some(OWNER), None).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if r.status == StatusCode::NOT_FOUND {
                assert!(
                    !r.body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("no such path"),
                    "{method} {path} is routed"
                );
            }
        }
    }
    // Every route the issue names is in the document.
    for (method, path) in [
        ("get", "/"),
        ("get", "/openapi.json"),
        ("get", "/catalog/sources"),
        ("get", "/catalog/destinations"),
        ("get", "/catalog/warehouses"),
        ("post", "/sources"),
        ("patch", "/sources/{id}"),
        ("get", "/sources/{id}/connected-destinations"),
        ("get", "/sources/{id}/connected-warehouses"),
        ("patch", "/sources/{id}/settings"),
        ("put", "/sources/{id}/labels"),
        ("post", "/sources/{id}/writekey"),
        ("delete", "/sources/{id}/writekey/{key}"),
        ("get", "/destinations"),
        ("delete", "/destinations/{id}"),
        ("put", "/tracking-plans/{id}/rules"),
        ("patch", "/tracking-plans/{id}/rules"),
        ("delete", "/tracking-plans/{id}/rules"),
        ("post", "/tracking-plans/{id}/sources"),
        ("delete", "/tracking-plans/{id}/sources"),
        ("get", "/warehouses/{id}/connection-state"),
        ("post", "/warehouses/{id}/connected-sources/{sourceId}"),
        ("post", "/functions"),
        ("get", "/functions/{id}/versions"),
        ("get", "/functions/{id}/versions/{versionId}"),
        ("post", "/functions/{id}/versions"),
        ("post", "/functions/{id}/deploy"),
        ("post", "/functions/{id}/test"),
        ("patch", "/insert-function-instances/{id}"),
        ("delete", "/spaces/{id}"),
        ("get", "/roles"),
        ("put", "/users/{id}/permissions"),
        ("post", "/tokens"),
        ("delete", "/tokens/{id}"),
        ("get", "/audit-events"),
        ("post", "/invites"),
        ("delete", "/invites"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    assert!(operations >= 70, "{operations} operations");
    server.stop().await;
}

#[tokio::test]
async fn no_operation_answers_bad_input_with_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    // Real resources, so that bad bodies reach the handlers' own checks too.
    let src = server.source("real").await;
    let doc = server.get("/openapi.json").await.body;
    let client = reqwest::Client::new();
    let bodies: [&[u8]; 6] = [
        b"",
        b"{",
        b"[]",
        b"\"text\"",
        b"{\"rules\": 7, \"events\": {}, \"settings\": []}",
        b"null",
    ];
    let mut calls = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            for id in ["ghost", src.as_str()] {
                let concrete = path
                    .replace("{id}", id)
                    .replace("{sourceId}", id)
                    .replace("{versionId}", "ghost")
                    .replace("{key}", "ghost");
                for body in bodies {
                    let r = client
                        .request(m.clone(), format!("{}{concrete}", server.url))
                        .bearer_auth(OWNER)
                        .header("content-type", "application/json")
                        .body(body.to_vec())
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let text = r.text().await.unwrap();
                    assert!(
                        !status.is_server_error(),
                        "{method} {concrete} {:?}: {status} {text}",
                        String::from_utf8_lossy(body)
                    );
                    if !status.is_success() {
                        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        assert!(
                            parsed["errors"][0]["message"].is_string(),
                            "{method} {concrete}: {text}"
                        );
                    }
                    calls += 1;
                }
            }
        }
    }
    assert!(calls > 500, "{calls} calls");
    server.stop().await;
}

#[tokio::test]
async fn every_operation_needs_a_token_and_members_cannot_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let member = server.token(json!([{"roleId": "workspace-member"}])).await;
    let doc = server.get("/openapi.json").await.body;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // The tracking API is documented too, but it takes a write key, not a bearer token
        // (its own tests cover that).
        if path.starts_with("/v1/") {
            continue;
        }
        let concrete = path.replace(['{', '}'], "");
        for method in item.as_object().unwrap().keys() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let r = server
                .call(m.clone(), &concrete, None, Some(json!({})))
                .await;
            // The document alone is public (tools and agents read it first).
            let expected = if path == "/openapi.json" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(r.status, expected, "{method} {path} without a token");
            if m != Method::GET && path != "/functions/{id}/test" {
                let r = server
                    .call(m, &concrete, Some(&member), Some(json!({})))
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as a Workspace Member: {}",
                    r.body
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 70, "{checked}");
    server.stop().await;
}
