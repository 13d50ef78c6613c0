//! Functions, versions, deployment, the test endpoint and insert function instances through
//! real HTTP, with the example components (`scripts/build-components` builds them).

mod api_support;

use api_support::{Reply, Server};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_tests::component;

fn wasm(example: &str) -> String {
    STANDARD.encode(component(example))
}

fn pii_settings() -> Value {
    json!([
        {"name": "redaction", "label": "Redaction", "type": "STRING", "description": "mask or hash"},
        {"name": "hashUserId", "label": "Hash user id", "type": "BOOLEAN"},
        {"name": "dropFields", "label": "Drop fields", "type": "ARRAY"},
        {"name": "apiKey", "label": "API key", "type": "STRING", "sensitive": true}
    ])
}

async fn create_pii(server: &Server) -> Reply {
    server
        .post(
            "/functions",
            json!({"displayName": "PII filter", "resourceType": "INSERT_SOURCE", "description": "redacts PII",
                   "settings": pii_settings(), "wasm": wasm("pii-filter")}),
        )
        .await
}

#[tokio::test]
async fn functions_are_uploaded_versioned_deployed_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = create_pii(&server).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let f = r.data()["function"].clone();
    let id = f["id"].as_str().unwrap().to_string();
    assert_eq!(f["runtime"], "wasm");
    assert_eq!(f["runnable"], true);
    assert_eq!(f["deployedVersionId"], Value::Null);
    let digest = f["digest"].as_str().unwrap().to_string();
    assert_eq!(
        digest,
        sluice_runtime::engine::digest_hex(&component("pii-filter"))
    );

    // The same component in another function: same digest, stored once.
    let r = server
        .post("/functions", json!({"displayName": "Copy", "resourceType": "INSERT_DESTINATION", "wasm": wasm("pii-filter")}))
        .await;
    assert_eq!(r.data()["function"]["digest"], digest.as_str());
    let copy = r.data()["function"]["id"].as_str().unwrap().to_string();

    // Bad uploads: the engine's reason, as a 422 on `wasm`.
    for (body, needle) in [
        (
            json!({"displayName": "x", "resourceType": "INSERT_SOURCE", "wasm": STANDARD.encode(b"hello")}),
            "not a WebAssembly binary",
        ),
        (
            json!({"displayName": "x", "resourceType": "INSERT_SOURCE", "wasm": STANDARD.encode(wat::parse_str("(module)").unwrap())}),
            "core WebAssembly module",
        ),
        (
            json!({"displayName": "x", "resourceType": "INSERT_SOURCE", "wasm": "%%%"}),
            "not base64",
        ),
        (
            json!({"displayName": "x", "resourceType": "INSERT_SOURCE", "wasm": "AA==", "code": "x"}),
            "exactly one",
        ),
    ] {
        let r = server.post("/functions", body).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "wasm"),
            "{}",
            r.body
        );
        assert!(
            r.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            r.body
        );
    }
    let r = server
        .post(
            "/functions",
            json!({"displayName": "x", "resourceType": "INSERT_SOURCE"}),
        )
        .await;
    assert_eq!(r.field(), "code");
    let r = server
        .post(
            "/functions",
            json!({"displayName": "x", "resourceType": "MAGIC", "code": "x"}),
        )
        .await;
    assert_eq!(r.field(), "resourceType");

    // Update makes a version; deploy picks one; restore brings an old one back as the latest.
    let r = server
        .patch(
            &format!("/functions/{id}"),
            json!({"displayName": "PII filter v2", "wasm": wasm("enrich")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(r.data()["function"]["digest"], digest.as_str());
    let r = server.get(&format!("/functions/{id}/versions")).await;
    let versions = r.data()["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2);
    let (v1, v2) = (
        versions[0]["id"].as_str().unwrap().to_string(),
        versions[1]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(versions[0]["digest"], digest.as_str());

    let r = server
        .post(&format!("/functions/{id}/deploy"), json!({"versionId": v1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["function"]["deployedVersionId"], v1.as_str());
    assert_eq!(r.data()["function"]["isLatestVersion"], false);
    let r = server.get(&format!("/functions/{id}/versions/{v1}")).await;
    assert_eq!(r.data()["version"]["isDeployed"], true);
    assert!(r.data()["version"]["deployedAt"].is_string());
    assert_eq!(
        server
            .get(&format!("/functions/{id}/versions/{v2}"))
            .await
            .data()["version"]["isDeployed"],
        false
    );
    assert_eq!(
        server
            .get(&format!("/functions/{id}/versions/nope"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Deploy with no body deploys the latest.
    let r = server
        .call(
            Method::POST,
            &format!("/functions/{id}/deploy"),
            Some(api_support::OWNER),
            None,
        )
        .await;
    assert_eq!(r.data()["function"]["deployedVersionId"], v2.as_str());
    assert_eq!(
        server
            .post(
                &format!("/functions/{id}/deploy"),
                json!({"versionId": "nope"})
            )
            .await
            .field(),
        "versionId"
    );

    let r = server
        .post(
            &format!("/functions/{id}/versions"),
            json!({"versionId": v1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["function"]["digest"], digest.as_str());
    assert_eq!(
        server
            .count(&format!("/functions/{id}/versions"), "versions")
            .await,
        3
    );
    assert_eq!(
        server
            .post(
                &format!("/functions/{id}/versions"),
                json!({"versionId": "nope"})
            )
            .await
            .field(),
        "versionId"
    );

    let r = server
        .get("/functions?resourceType=INSERT_DESTINATION")
        .await;
    let list = r.data()["functions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], copy.as_str());
    assert_eq!(server.count("/functions", "functions").await, 2);

    assert_eq!(
        server.delete(&format!("/functions/{copy}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get(&format!("/functions/{copy}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&id).await,
        [
            "Function Created",
            "Function Modified",
            "Function Deployed",
            "Function Deployed",
            "Function Modified"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn testing_a_function_reports_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let id = create_pii(&server).await.data()["function"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let event = json!({"type": "track", "event": "Signed Up", "userId": "u1",
                       "properties": {"email": "ada@example.com", "plan": "pro", "secret": "x"}});
    let r = server
        .post(&format!("/functions/{id}/test"), json!({"events": [event], "settings": {"hashUserId": true, "dropFields": ["properties.secret"]}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let result = &r.data()["results"][0];
    assert_eq!(result["outcome"], "forward");
    let out = &result["event"];
    assert_ne!(out["properties"]["email"], "ada@example.com");
    assert_eq!(out["properties"]["plan"], "pro");
    assert!(out["properties"].get("secret").is_none());
    assert_ne!(out["userId"], "u1");
    let changes: Vec<(String, String)> = result["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["op"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("properties.email".into(), "changed".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("properties.secret".into(), "removed".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("userId".into(), "changed".into())),
        "{changes:?}"
    );
    assert!(result["fuelUsed"].as_u64().unwrap() > 0);
    assert!(result["durationUs"].as_u64().is_some());
    assert_eq!(r.data()["summary"]["forwarded"], 1);

    // Settings are checked against the declarations.
    let r = server
        .post(
            &format!("/functions/{id}/test"),
            json!({"events": [{}], "settings": {"hashUserId": "yes"}}),
        )
        .await;
    assert_eq!(r.field(), "settings.hashUserId");
    let r = server
        .post(
            &format!("/functions/{id}/test"),
            json!({"events": [{}], "settings": {"colour": "red"}}),
        )
        .await;
    assert_eq!(r.field(), "settings.colour");
    assert_eq!(
        server
            .post(&format!("/functions/{id}/test"), json!({"events": []}))
            .await
            .field(),
        "events"
    );
    assert_eq!(
        server
            .post(&format!("/functions/{id}/test"), json!({"events": [1]}))
            .await
            .field(),
        "events[0]"
    );
    let r = server
        .post(
            &format!("/functions/{id}/test"),
            json!({"events": [{}], "limits": {"deadlineMs": 0}}),
        )
        .await;
    assert_eq!(r.field(), "limits.deadlineMs");
    assert_eq!(
        server
            .post("/functions/ghost/test", json!({"events": [{}]}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Every kind of outcome, from the hostile example.
    let r = server.post("/functions", json!({"displayName": "hostile", "resourceType": "INSERT_SOURCE", "wasm": wasm("hostile")})).await;
    let hostile = r.data()["function"]["id"].as_str().unwrap().to_string();
    let track = |name: &str| json!({"type": "track", "event": name, "userId": "u", "properties": {"copies": 3}});
    let r = server
        .post(
            &format!("/functions/{hostile}/test"),
            json!({"events": [track("fine"), track("fanout"), track("retry"), track("panic"), track("chatty"), {"type": "identify", "userId": "u"}],
                   // `chatty` logs 100,000 lines: more than the default fuel allows.
                   "limits": {"fuel": 1_000_000_000, "deadlineMs": 5000}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let results = r.data()["results"].as_array().unwrap();
    assert_eq!(results[0]["outcome"], "forward");
    assert_eq!(results[0]["changes"], json!([]));
    assert_eq!(results[1]["outcome"], "fan-out");
    assert_eq!(results[1]["events"].as_array().unwrap().len(), 3);
    assert_eq!(results[2]["outcome"], "error");
    assert_eq!(
        results[2]["error"],
        json!({"origin": "function", "kind": "retry-error", "message": "the upstream is down, try again", "retryable": true})
    );
    assert_eq!(
        (
            results[3]["error"]["origin"].as_str(),
            results[3]["error"]["kind"].as_str()
        ),
        (Some("sandbox"), Some("trap"))
    );
    assert!(
        results[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("panicked on purpose"),
        "{}",
        results[3]
    );
    assert_eq!(results[4]["outcome"], "forward", "{}", results[4]);
    assert_eq!(
        results[4]["logs"][0],
        json!({"level": "info", "message": "line 0"})
    );
    let last = results[4]["logs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["message"].as_str().unwrap().contains("dropped"),
        "the log bound is reported: {last}"
    );
    assert_eq!(results[5]["error"]["kind"], "event-not-supported");
    let summary = &r.data()["summary"];
    let counts =
        ["events", "forwarded", "fannedOut", "errors"].map(|k| summary[k].as_u64().unwrap());
    assert_eq!(counts, [6, 2, 1, 3]);

    // The sandbox's bounds, tightened per test run.
    let r = server
        .post(
            &format!("/functions/{hostile}/test"),
            json!({"events": [track("loop")], "limits": {"fuel": 5_000_000, "deadlineMs": 5000}}),
        )
        .await;
    let result = &r.data()["results"][0];
    assert_eq!(
        (
            result["error"]["kind"].as_str(),
            result["error"]["retryable"].as_bool()
        ),
        (Some("out-of-fuel"), Some(false))
    );
    assert_eq!(result["fuelUsed"], 5_000_000);
    let r = server
        .post(
            &format!("/functions/{hostile}/test"),
            json!({"events": [track("loop")], "limits": {"fuel": 1_000_000_000, "deadlineMs": 2}}),
        )
        .await;
    let result = &r.data()["results"][0];
    assert_eq!(
        (
            result["error"]["kind"].as_str(),
            result["error"]["retryable"].as_bool()
        ),
        (Some("deadline-exceeded"), Some(true))
    );
    let r = server
        .post(
            &format!("/functions/{hostile}/test"),
            json!({"events": [track("grow")], "limits": {"memoryMib": 4, "fuel": 1_000_000_000, "deadlineMs": 5000}}),
        )
        .await;
    assert_eq!(
        r.data()["results"][0]["error"]["kind"],
        "memory-limit",
        "{}",
        r.body
    );
    let r = server
        .post(
            &format!("/functions/{hostile}/test"),
            json!({"events": [track("fine")], "limits": {"memoryMib": u64::MAX}}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "limits.memoryMib")
    );
    server.stop().await;
}

#[tokio::test]
async fn insert_function_instances_attach_with_masked_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("app").await;
    let dest = server
        .post(
            "/destinations",
            json!({"sourceId": src, "metadataId": "file", "settings": {"path": "x"}}),
        )
        .await;
    let dest = dest.data()["destination"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = create_pii(&server).await.data()["function"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Only a deployed function can be attached (else 422: it would discard every event).
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": f, "integrationId": src, "settings": {}}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "functionId")
    );
    let r = server
        .post(&format!("/functions/{f}/deploy"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = server
        .post("/insert-function-instances", json!({"functionId": f, "integrationId": src, "settings": {"redaction": "hash", "apiKey": "s3cret"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let inst = &r.data()["insertFunctionInstance"];
    let id = inst["id"].as_str().unwrap().to_string();
    assert_eq!(inst["settings"]["apiKey"], "********");
    assert_eq!(inst["settings"]["redaction"], "hash");
    assert_eq!(
        (
            inst["integrationType"].as_str(),
            inst["order"].as_u64(),
            inst["enabled"].as_bool()
        ),
        (Some("SOURCE"), Some(0), Some(true))
    );
    let second = server
        .post(
            "/insert-function-instances",
            json!({"functionId": f, "integrationId": src, "name": "second"}),
        )
        .await;
    assert_eq!(
        second.data()["insertFunctionInstance"]["order"],
        1,
        "appended after the others"
    );

    // A reference to nothing is the 404 its own URL gives; a wrong one is a 422.
    for (body, status, field) in [
        (
            json!({"functionId": "ghost", "integrationId": src}),
            StatusCode::NOT_FOUND,
            "functionId",
        ),
        (
            json!({"functionId": f, "integrationId": "ghost"}),
            StatusCode::NOT_FOUND,
            "integrationId",
        ),
        (
            json!({"functionId": f, "integrationId": dest}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "functionId",
        ),
        (
            json!({"functionId": f, "integrationId": src, "settings": {"redaction": 1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "settings.redaction",
        ),
    ] {
        let r = server
            .post("/insert-function-instances", body.clone())
            .await;
        assert_eq!((r.status, r.field()), (status, field), "{body}: {}", r.body);
    }

    // Sending the mask back keeps the secret; the secret is never returned.
    let r = server
        .patch(&format!("/insert-function-instances/{id}"), json!({"settings": {"apiKey": "********", "redaction": "mask"}, "order": 5, "enabled": false}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.data()["insertFunctionInstance"]["settings"]["apiKey"],
        "********"
    );
    assert_eq!(r.data()["insertFunctionInstance"]["order"], 5);
    let r = server
        .get(&format!("/insert-function-instances/{id}"))
        .await;
    assert!(!r.body.to_string().contains("s3cret"));
    assert_eq!(
        r.data()["insertFunctionInstance"]["settings"]["redaction"],
        "mask"
    );

    let r = server
        .get(&format!("/insert-function-instances?integrationId={src}"))
        .await;
    let list = r.data()["insertFunctionInstances"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "second", "ordered by order");
    assert!(!r.body.to_string().contains("s3cret"));

    // A function in use cannot be deleted.
    assert_eq!(
        server.delete(&format!("/functions/{f}")).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        server
            .delete(&format!("/insert-function-instances/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .get(&format!("/insert-function-instances/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&id).await,
        [
            "Insert Function Instance Created",
            "Insert Function Instance Modified",
            "Insert Function Instance Deleted"
        ]
    );
    // Deleting a destination detaches its instances.
    let r = server
        .post(
            "/functions",
            json!({"displayName": "d", "resourceType": "INSERT_DESTINATION", "code": "function onTrack(e) { return e }"}),
        )
        .await;
    let df = r.data()["function"]["id"].as_str().unwrap().to_string();
    let r = server
        .post(&format!("/functions/{df}/deploy"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": df, "integrationId": dest}),
        )
        .await;
    assert_eq!(
        r.data()["insertFunctionInstance"]["integrationType"],
        "DESTINATION"
    );
    let on_dest = r.data()["insertFunctionInstance"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server.delete(&format!("/destinations/{dest}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .get(&format!("/insert-function-instances/{on_dest}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Deleting the source detaches the rest.
    server.delete(&format!("/sources/{src}")).await;
    assert_eq!(
        server.get("/insert-function-instances").await.data()["insertFunctionInstances"],
        json!([])
    );
    server.stop().await;
}

#[tokio::test]
async fn function_scopes_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let code = "function onTrack(e) { return e }";
    let a = server
        .post(
            "/functions",
            json!({"displayName": "a", "resourceType": "SOURCE", "code": code}),
        )
        .await;
    let a = a.data()["function"]["id"].as_str().unwrap().to_string();
    let b = server
        .post(
            "/functions",
            json!({"displayName": "b", "resourceType": "SOURCE", "code": code}),
        )
        .await;
    let b = b.data()["function"]["id"].as_str().unwrap().to_string();
    let admin_of_a = server
        .token(json!([{"roleId": "function-admin", "resources": [{"id": a, "type": "FUNCTION"}]}]))
        .await;
    let reader = server
        .token(json!([{"roleId": "function-read-only"}]))
        .await;
    let t = Some(admin_of_a.as_str());
    let r = server.call(Method::GET, "/functions", t, None).await;
    assert_eq!(r.data()["functions"].as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .call(Method::GET, &format!("/functions/{b}"), t, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = server
        .call(
            Method::PATCH,
            &format!("/functions/{a}"),
            t,
            Some(json!({"description": "mine"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = server
        .call(
            Method::PATCH,
            &format!("/functions/{a}"),
            Some(&reader),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        server
            .call(
                Method::GET,
                &format!("/functions/{b}/versions"),
                Some(&reader),
                None
            )
            .await
            .status,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn functions_and_instances_survive_a_restart_and_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("app").await;
    let f = create_pii(&server).await.data()["function"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .post(&format!("/functions/{f}/deploy"), json!({}))
        .await;
    let r = server
        .post(
            "/insert-function-instances",
            json!({"functionId": f, "integrationId": src, "settings": {"apiKey": "k"}}),
        )
        .await;
    let instance = r.data()["insertFunctionInstance"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.stop().await;

    let server = Server::start(dir.path()).await;
    let r = server.get(&format!("/functions/{f}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.data()["function"]["deployedVersionId"].is_string());
    assert_eq!(
        server
            .count(&format!("/functions/{f}/versions"), "versions")
            .await,
        1
    );
    let r = server
        .get(&format!("/insert-function-instances/{instance}"))
        .await;
    assert_eq!(
        r.data()["insertFunctionInstance"]["settings"]["apiKey"],
        "********"
    );
    // The component is loaded back from storage and runs.
    let r = server
        .post(&format!("/functions/{f}/test"), json!({"events": [{"type": "track", "event": "x", "userId": "u", "properties": {"e": "a@b.com"}}]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["results"][0]["outcome"], "forward");
    assert_ne!(
        r.data()["results"][0]["event"]["properties"]["e"],
        "a@b.com"
    );
    server.stop().await;
}
