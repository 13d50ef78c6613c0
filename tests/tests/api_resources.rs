//! Sources, catalog, destinations, tracking plans, warehouses, spaces and the audit trail
//! through real HTTP, with pagination, restart persistence and concurrent writers.

mod api_support;

use api_support::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn catalog_lists_what_sluice_supports() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    // Each list under Segment's name for it: `sourcesCatalog`, `destinationsCatalog`, ...
    let ids = |r: &api_support::Reply| -> Vec<String> {
        let list = ["sourcesCatalog", "destinationsCatalog", "warehousesCatalog"]
            .into_iter()
            .find_map(|name| r.data()[name].as_array())
            .unwrap();
        list.iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let r = server.get("/catalog/sources").await;
    assert_eq!(ids(&r), ["http", "javascript", "ios", "android", "server"]);
    let r = server.get("/catalog/destinations").await;
    assert_eq!(ids(&r), ["webhook", "file"]);
    let url = &r.data()["destinationsCatalog"][0]["options"][0];
    assert_eq!(
        (url["name"].as_str(), url["required"].as_bool()),
        (Some("url"), Some(true))
    );
    let r = server.get("/catalog/warehouses").await;
    assert_eq!(ids(&r), ["postgres", "duckdb"]);
    let r = server.get("/catalog/sources?pagination.count=2").await;
    assert_eq!(ids(&r), ["http", "javascript"]);
    // Segment's SDKs write the list parameters with brackets.
    let r = server.get("/catalog/sources?pagination%5Bcount%5D=1").await;
    assert_eq!(ids(&r), ["http"]);
    let next = r.data()["pagination"]["next"]
        .as_str()
        .unwrap()
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let r = server
        .get(&format!(
            "/catalog/sources?pagination[count]=1&pagination[cursor]={next}"
        ))
        .await;
    assert_eq!(ids(&r), ["javascript"]);
    assert_eq!(r.data()["pagination"]["totalEntries"], 5);
    server.stop().await;
}

#[tokio::test]
async fn sources_crud_write_keys_labels_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server
        .post(
            "/sources",
            json!({"slug": "ios-app", "enabled": true, "metadataId": "ios", "name": "iOS app"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let source = &r.data()["source"];
    let id = source["id"].as_str().unwrap().to_string();
    assert_eq!(source["metadata"]["id"], "ios");
    assert_eq!(source["workspaceId"], "default");
    let first_key = source["writeKeys"][0].as_str().unwrap().to_string();
    assert_eq!(first_key.len(), 32);

    let r = server
        .post(
            "/sources",
            json!({"slug": "ios-app", "enabled": true, "metadataId": "ios"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let r = server.get(&format!("/sources/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["source"]["name"], "iOS app");
    assert_eq!(r.data()["trackingPlanId"], Value::Null);

    let r = server
        .patch(
            &format!("/sources/{id}"),
            json!({"name": "iPhone", "enabled": false, "slug": "iphone"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["source"]["name"], "iPhone");
    assert_eq!(r.data()["source"]["enabled"], false);
    // The old slug is free again, the new one taken.
    server.source("ios-app").await;
    let r = server
        .patch(&format!("/sources/{id}"), json!({"slug": "ios-app"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = server
        .patch(&format!("/sources/{id}"), json!({"enabled": "no"}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "enabled")
    );

    // Write keys: add one, revoke the first.
    let r = server
        .post(&format!("/sources/{id}/writekey"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["source"]["writeKeys"].as_array().unwrap().len(), 2);
    let r = server
        .delete(&format!("/sources/{id}/writekey/{first_key}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let keys = r.data()["source"]["writeKeys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0], first_key.as_str());
    let r = server
        .delete(&format!("/sources/{id}/writekey/{first_key}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Labels: add merges by key, put replaces.
    let r = server
        .post(
            &format!("/sources/{id}/labels"),
            json!({"labels": [{"key": "env", "value": "dev"}]}),
        )
        .await;
    assert_eq!(
        r.data()["source"]["labels"],
        json!([{"key": "env", "value": "dev"}])
    );
    let r = server
        .post(
            &format!("/sources/{id}/labels"),
            json!({"labels": [{"key": "env", "value": "prod"}, {"key": "team", "value": "app"}]}),
        )
        .await;
    assert_eq!(r.data()["source"]["labels"].as_array().unwrap().len(), 2);
    let r = server
        .put(
            &format!("/sources/{id}/labels"),
            json!({"labels": [{"key": "team", "value": "web"}]}),
        )
        .await;
    assert_eq!(
        r.data()["source"]["labels"],
        json!([{"key": "team", "value": "web"}])
    );
    let r = server
        .put(
            &format!("/sources/{id}/labels"),
            json!({"labels": [{"key": "", "value": "x"}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "labels[0].key")
    );

    // Schema settings: defaults, a merge patch, validation.
    let r = server.get(&format!("/sources/{id}/settings")).await;
    assert_eq!(r.data()["track"]["allowUnplannedEvents"], true);
    assert_eq!(r.data()["track"]["commonEventOnViolations"], "ALLOW");
    let other = server.source("violations").await;
    let r = server
        .patch(
            &format!("/sources/{id}/settings"),
            json!({"track": {"allowUnplannedEvents": false, "commonEventOnViolations": "OMIT_PROPERTIES"},
                   "identify": {"commonEventOnViolations": "BLOCK"}, "forwardingViolationsTo": other}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["track"]["allowUnplannedEvents"], false);
    assert_eq!(r.data()["track"]["allowUnplannedEventProperties"], true);
    assert_eq!(
        r.data()["track"]["commonEventOnViolations"],
        "OMIT_PROPERTIES"
    );
    assert_eq!(r.data()["identify"]["commonEventOnViolations"], "BLOCK");
    assert_eq!(r.data()["forwardingViolationsTo"], other.as_str());
    for (patch, field) in [
        (
            json!({"track": {"commonEventOnViolations": "OMIT_TRAITS"}}),
            "track.commonEventOnViolations",
        ),
        (
            json!({"track": {"allowUnplannedEvents": "sometimes"}}),
            "track.allowUnplannedEvents",
        ),
        (json!({"track": {"colour": true}}), "track.colour"),
        (
            json!({"forwardingBlockedEventsTo": "nope"}),
            "forwardingBlockedEventsTo",
        ),
    ] {
        let r = server
            .patch(&format!("/sources/{id}/settings"), patch.clone())
            .await;
        // A source that does not exist is a 404 naming the field; anything else a 422.
        let status = if field.starts_with("forwarding") {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(
            (r.status, r.field()),
            (status, field),
            "{patch}: {}",
            r.body
        );
    }
    let r = server.get(&format!("/sources/{id}/settings")).await;
    assert_eq!(
        r.data()["track"]["allowUnplannedEvents"],
        false,
        "a refused patch changes nothing"
    );

    let r = server.delete(&format!("/sources/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["status"], "SUCCESS");
    assert_eq!(
        server.get(&format!("/sources/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.delete(&format!("/sources/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .patch(&format!("/sources/{id}"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        server.audit_types(&id).await,
        [
            "Source Created",
            "Source Modified",
            "Source Write Key Created",
            "Source Write Key Revoked",
            "Source Modified",
            "Source Modified",
            "Source Modified",
            "Source Settings Modified",
            "Source Deleted"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn lists_paginate_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(server.source(&format!("s{i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/sources?pagination.count=3&pagination.cursor={c}"),
            None => "/sources?pagination.count=3".into(),
        };
        let r = server.get(&path).await;
        assert_eq!(r.status, StatusCode::OK);
        let p = &r.data()["pagination"];
        assert_eq!(p["totalEntries"], 7);
        assert_eq!(p["previous"].is_null(), pages == 0);
        seen.extend(
            r.data()["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match p["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every source once, in creation order");
    let r = server.get("/sources").await;
    assert_eq!(
        r.data()["sources"].as_array().unwrap().len(),
        7,
        "default count is 200"
    );
    server.stop().await;
}

#[tokio::test]
async fn destinations_belong_to_a_source_and_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let a = server.source("a").await;
    let b = server.source("b").await;
    let r = server
        .post("/destinations", json!({"sourceId": a, "metadataId": "webhook", "name": "hook", "settings": {"url": "https://example.com/in"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let hook = r.data()["destination"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.data()["destination"]["enabled"], true);
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": b, "metadataId": "file", "settings": {"path": "out.jsonl"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.data()["destination"]["name"], "File");

    for (body, field) in [
        (
            json!({"sourceId": a, "metadataId": "webhook", "settings": {}}),
            "settings.url",
        ),
        (
            json!({"sourceId": a, "metadataId": "webhook", "settings": {"url": "ftp://x"}}),
            "settings.url",
        ),
        (
            json!({"sourceId": a, "metadataId": "webhook", "settings": {"url": "https://"}}),
            "settings.url",
        ),
        (
            json!({"sourceId": a, "metadataId": "webhook", "settings": {"url": 7}}),
            "settings.url",
        ),
        (
            json!({"sourceId": a, "metadataId": "webhook", "settings": {"url": "http://x", "verb": "PUT"}}),
            "settings.verb",
        ),
        (
            json!({"sourceId": a, "metadataId": "kafka", "settings": {}}),
            "metadataId",
        ),
        (
            json!({"sourceId": "ghost", "metadataId": "file", "settings": {"path": "x"}}),
            "sourceId",
        ),
        (
            json!({"metadataId": "file", "settings": {"path": "x"}}),
            "sourceId",
        ),
    ] {
        let r = server.post("/destinations", body.clone()).await;
        // A catalog entry or source that does not exist is a 404 naming the field.
        let status = if body["metadataId"] == "kafka" || body["sourceId"] == "ghost" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!((r.status, r.field()), (status, field), "{body}: {}", r.body);
    }

    let r = server.get(&format!("/destinations?sourceId={a}")).await;
    let list = r.data()["destinations"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], hook.as_str());
    assert_eq!(server.count("/destinations", "destinations").await, 2);
    let r = server
        .get(&format!("/sources/{a}/connected-destinations"))
        .await;
    assert_eq!(r.data()["destinations"][0]["id"], hook.as_str());

    let r = server
        .patch(
            &format!("/destinations/{hook}"),
            json!({"settings": {"url": "not a url"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "settings.url")
    );
    let r = server
        .patch(
            &format!("/destinations/{hook}"),
            json!({"enabled": false, "settings": {"url": "http://localhost:9/x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.data()["destination"]["settings"]["url"],
        "http://localhost:9/x"
    );
    assert_eq!(
        server.get(&format!("/destinations/{hook}")).await.data()["destination"]["enabled"],
        false
    );

    // Deleting a source deletes its destinations.
    assert_eq!(
        server.delete(&format!("/sources/{a}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get(&format!("/destinations/{hook}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&hook).await,
        [
            "Integration Created",
            "Integration Modified",
            "Integration Deleted"
        ]
    );
    let r = server.get("/destinations").await;
    assert_eq!(r.data()["destinations"].as_array().unwrap().len(), 1);
    let file = r.data()["destinations"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server.delete(&format!("/destinations/{file}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.delete(&format!("/destinations/{file}")).await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn tracking_plans_rules_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("web").await;
    let r = server
        .post(
            "/tracking-plans",
            json!({"name": "Checkout", "description": "orders"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let plan = r.data()["trackingPlan"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.data()["trackingPlan"]["type"], "LIVE");
    assert_eq!(
        server
            .post("/tracking-plans", json!({"name": ""}))
            .await
            .field(),
        "name"
    );

    let order = json!({"type": "TRACK", "key": "Order Completed", "version": 1,
        "jsonSchema": {"type": "object", "properties": {"properties": {"type": "object", "required": ["orderId"]}}}});
    let common = json!({"type": "COMMON", "jsonSchema": {"type": "object"}});
    let r = server
        .put(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [order, common]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["rules"].as_array().unwrap().len(), 2);

    // An invalid schema is refused, naming the rule.
    let bad = json!({"type": "TRACK", "key": "Signed Up", "jsonSchema": {"type": "banana"}});
    let r = server
        .patch(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [common, bad]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "rules[1].jsonSchema"),
        "{}",
        r.body
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Signed Up")
    );
    let r = server
        .patch(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [{"type": "TRACK", "jsonSchema": {}}]}),
        )
        .await;
    assert_eq!(r.field(), "rules[0].key");
    let r = server
        .patch(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [{"type": "ALIAS", "jsonSchema": {}}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "rules[0].type")
    );
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"type": "TRACK", "key": format!("e{i}"), "jsonSchema": {}}))
        .collect();
    assert_eq!(
        server
            .put(
                &format!("/tracking-plans/{plan}/rules"),
                json!({"rules": many})
            )
            .await
            .field(),
        "rules"
    );

    // Upsert replaces by (type, key, version) and adds new ones.
    let order_v1 = json!({"type": "TRACK", "key": "Order Completed", "version": 1, "jsonSchema": {"type": "object", "required": ["properties"]}});
    let signed = json!({"type": "TRACK", "key": "Signed Up", "jsonSchema": {"type": "object"}});
    let r = server
        .patch(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [order_v1, signed]}),
        )
        .await;
    assert_eq!(r.data()["rules"].as_array().unwrap().len(), 3);
    assert_eq!(
        r.data()["rules"][0]["jsonSchema"]["required"],
        json!(["properties"])
    );
    let r = server
        .call(
            reqwest::Method::DELETE,
            &format!("/tracking-plans/{plan}/rules"),
            Some(api_support::OWNER),
            Some(json!({"rules": [{"type": "COMMON"}]})),
        )
        .await;
    assert_eq!(r.data()["rules"].as_array().unwrap().len(), 2);
    let r = server
        .get(&format!("/tracking-plans/{plan}/rules?pagination.count=1"))
        .await;
    assert_eq!(r.data()["rules"].as_array().unwrap().len(), 1);
    assert_eq!(r.data()["pagination"]["totalEntries"], 2);

    // One plan per source.
    let r = server
        .post(
            &format!("/tracking-plans/{plan}/sources"),
            json!({"sourceId": src}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        server.get(&format!("/sources/{src}")).await.data()["trackingPlanId"],
        plan.as_str()
    );
    let other = server
        .post("/tracking-plans", json!({"name": "Other"}))
        .await
        .data()["trackingPlan"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server
        .post(
            &format!("/tracking-plans/{other}/sources"),
            json!({"sourceId": src}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = server
        .post(
            &format!("/tracking-plans/{other}/sources"),
            json!({"sourceId": "ghost"}),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::NOT_FOUND, "sourceId"));
    let r = server.get(&format!("/tracking-plans/{plan}/sources")).await;
    assert_eq!(r.data()["sources"][0]["id"], src.as_str());
    let r = server
        .delete(&format!("/tracking-plans/{plan}/sources?sourceId={src}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        server.get(&format!("/sources/{src}")).await.data()["trackingPlanId"],
        Value::Null
    );
    assert_eq!(
        server
            .delete(&format!("/tracking-plans/{plan}/sources?sourceId={src}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .delete(&format!("/tracking-plans/{plan}/sources"))
            .await
            .field(),
        "sourceId"
    );
    assert_eq!(
        server
            .post(
                &format!("/tracking-plans/{other}/sources"),
                json!({"sourceId": src})
            )
            .await
            .status,
        StatusCode::OK
    );

    let r = server
        .patch(
            &format!("/tracking-plans/{plan}"),
            json!({"name": "Checkout v2"}),
        )
        .await;
    assert_eq!(r.data()["trackingPlan"]["name"], "Checkout v2");
    assert_eq!(server.count("/tracking-plans", "trackingPlans").await, 2);
    // Deleting a plan frees its sources.
    assert_eq!(
        server
            .delete(&format!("/tracking-plans/{other}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server.get(&format!("/sources/{src}")).await.data()["trackingPlanId"],
        Value::Null
    );
    assert_eq!(
        server.get(&format!("/tracking-plans/{other}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&plan).await,
        [
            "Tracking Plan Created",
            "Tracking Plan Modified",
            "Tracking Plan Modified",
            "Tracking Plan Modified",
            "Source Connected to Tracking Plan",
            "Source Disconnected from Tracking Plan",
            "Tracking Plan Modified"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn warehouses_connect_many_sources_and_spaces_have_unique_slugs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (a, b) = (server.source("a").await, server.source("b").await);
    let r = server
        .post(
            "/warehouses",
            json!({"metadataId": "postgres", "settings": {"hostname": "db", "database": "events"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "settings.username")
    );
    let r = server
        .post("/warehouses", json!({"metadataId": "postgres", "name": "pg", "settings": {"hostname": "db", "database": "events", "username": "u", "port": 5432}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pg = r.data()["warehouse"]["id"].as_str().unwrap().to_string();
    let embedded = server
        .post("/warehouses", json!({"metadataId": "duckdb"}))
        .await
        .data()["warehouse"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server
            .get(&format!("/warehouses/{pg}/connection-state"))
            .await
            .data()["connectionState"],
        "FAILED"
    );
    assert_eq!(
        server
            .get(&format!("/warehouses/{embedded}/connection-state"))
            .await
            .data()["connectionState"],
        "CONNECTED"
    );

    for (w, s) in [(&pg, &a), (&pg, &b), (&embedded, &a)] {
        let r = server
            .post(&format!("/warehouses/{w}/connected-sources/{s}"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(
        server
            .count(&format!("/warehouses/{pg}/connected-sources"), "sources")
            .await,
        2
    );
    assert_eq!(
        server
            .count(&format!("/sources/{a}/connected-warehouses"), "warehouses")
            .await,
        2
    );
    assert_eq!(
        server
            .post(
                &format!("/warehouses/{pg}/connected-sources/ghost"),
                json!({})
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .delete(&format!("/warehouses/{pg}/connected-sources/{b}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .delete(&format!("/warehouses/{pg}/connected-sources/{b}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Deleting a source disconnects it.
    server.delete(&format!("/sources/{a}")).await;
    assert_eq!(
        server.get(&format!("/warehouses/{pg}")).await.data()["warehouse"]["sourceIds"],
        json!([])
    );
    let r = server
        .patch(
            &format!("/warehouses/{pg}"),
            json!({"enabled": false, "name": "postgres"}),
        )
        .await;
    assert_eq!(r.data()["warehouse"]["enabled"], false);
    assert_eq!(server.count("/warehouses", "warehouses").await, 2);
    assert_eq!(
        server.delete(&format!("/warehouses/{pg}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get(&format!("/warehouses/{pg}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&pg).await,
        [
            "Storage Destination Created",
            "Source Connected to Warehouse",
            "Source Connected to Warehouse",
            "Source Disconnected from Warehouse",
            "Storage Destination Modified",
            "Storage Destination Deleted"
        ]
    );

    let r = server
        .post("/spaces", json!({"slug": "main", "name": "Main"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let space = r.data()["space"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        server
            .post("/spaces", json!({"slug": "main", "name": "Again"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        server
            .post("/spaces", json!({"name": "No slug"}))
            .await
            .field(),
        "slug"
    );
    assert_eq!(
        server
            .patch(&format!("/spaces/{space}"), json!({"name": "Primary"}))
            .await
            .data()["space"]["name"],
        "Primary"
    );
    assert_eq!(
        server.get(&format!("/spaces/{space}")).await.data()["space"]["slug"],
        "main"
    );
    assert_eq!(server.count("/spaces", "spaces").await, 1);
    assert_eq!(
        server.delete(&format!("/spaces/{space}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get(&format!("/spaces/{space}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&space).await,
        ["Space Created", "Space Modified", "Space Deleted"]
    );
    server.stop().await;
}

#[tokio::test]
async fn audit_events_filter_by_time_resource_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let before = time_now();
    let a = server.source("a").await;
    let middle = time_now();
    let b = server.source("b").await;
    server.post("/tracking-plans", json!({"name": "p"})).await;

    let r = server.get("/audit-events?resourceType=source").await;
    let events = r.data()["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for key in [
        "id",
        "timestamp",
        "type",
        "actor",
        "resourceId",
        "resourceType",
        "resourceName",
    ] {
        assert!(events[0][key].is_string(), "{key}");
    }
    assert!(
        events[0]["actor"]
            .as_str()
            .unwrap()
            .contains("bootstrap owner token")
    );
    let r = server
        .get(&format!(
            "/audit-events?resourceType=source&startTime={middle}"
        ))
        .await;
    assert_eq!(r.data()["events"][0]["resourceId"], b.as_str());
    assert_eq!(r.data()["events"].as_array().unwrap().len(), 1);
    let r = server
        .get(&format!(
            "/audit-events?startTime={before}&endTime={middle}"
        ))
        .await;
    let events = r.data()["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["resourceId"], a.as_str());
    let r = server.get("/audit-events?resourceType=tracking_plan").await;
    assert_eq!(r.data()["events"][0]["type"], "Tracking Plan Created");
    let r = server
        .get("/audit-events?resourceType=source,tracking_plan")
        .await;
    let types: Vec<&str> = r.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["source", "source", "tracking_plan"]);
    let r = server
        .get("/audit-events?resourceType=source,integration")
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "resourceType")
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`integration`"),
        "{}",
        r.body
    );
    let r = server.get("/audit-events?pagination.count=1").await;
    assert_eq!(r.data()["events"].as_array().unwrap().len(), 1);
    assert!(r.data()["pagination"]["next"].is_string());
    let r = server.get("/audit-events?startTime=yesterday").await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "startTime")
    );
    server.stop().await;
}

fn time_now() -> String {
    // The server's clock and ours are the same machine's; a pause keeps the windows apart.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let t = secs.as_secs_f64();
    let whole = t.floor() as i64;
    let nanos = ((t - t.floor()) * 1e9) as u32;
    // RFC 3339 by hand (days from civil), to avoid a date crate just for the tests.
    let days = whole.div_euclid(86_400);
    let rem = whole.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    s
}

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("kept").await;
    let dest = server.post("/destinations", json!({"sourceId": src, "metadataId": "webhook", "settings": {"url": "https://h.example/x"}})).await;
    let dest = dest.data()["destination"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let plan = server
        .post("/tracking-plans", json!({"name": "kept"}))
        .await
        .data()["trackingPlan"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .put(
            &format!("/tracking-plans/{plan}/rules"),
            json!({"rules": [{"type": "COMMON", "jsonSchema": {"type": "object"}}]}),
        )
        .await;
    server
        .post(
            &format!("/tracking-plans/{plan}/sources"),
            json!({"sourceId": src}),
        )
        .await;
    let token = server.token(json!([{"roleId": "source-read-only"}])).await;
    let audit_before = server.count("/audit-events", "events").await;
    server.stop().await;

    let server = Server::start(dir.path()).await;
    let r = server.get(&format!("/sources/{src}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["trackingPlanId"], plan.as_str());
    assert_eq!(
        server.get(&format!("/destinations/{dest}")).await.data()["destination"]["settings"]["url"],
        "https://h.example/x"
    );
    assert_eq!(
        server
            .count(&format!("/tracking-plans/{plan}/rules"), "rules")
            .await,
        1
    );
    let r = server
        .call(reqwest::Method::GET, "/sources", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "tokens survive");
    assert_eq!(server.count("/audit-events", "events").await, audit_before);
    // Slugs stay unique across restarts.
    let r = server
        .post(
            "/sources",
            json!({"slug": "kept", "enabled": true, "metadataId": "http"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(dir.path()).await);
    let src = server.source("busy").await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let server = server.clone();
        let src = src.clone();
        tasks.push(tokio::spawn(async move {
            // Everyone creates a source with a contested slug, and adds a label to one source.
            let contested = server
                .post(
                    "/sources",
                    json!({"slug": "contested", "enabled": true, "metadataId": "http"}),
                )
                .await;
            let own = server
                .post(
                    "/sources",
                    json!({"slug": format!("own-{i}"), "enabled": true, "metadataId": "http"}),
                )
                .await;
            let label = server
                .post(
                    &format!("/sources/{src}/labels"),
                    json!({"labels": [{"key": format!("k{i}"), "value": "v"}]}),
                )
                .await;
            (contested.status, own.status, label.status)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (contested, own, label) = task.await.unwrap();
        assert!(
            contested == StatusCode::CREATED || contested == StatusCode::CONFLICT,
            "{contested}"
        );
        winners += usize::from(contested == StatusCode::CREATED);
        assert_eq!(own, StatusCode::CREATED);
        assert_eq!(label, StatusCode::OK);
    }
    assert_eq!(winners, 1, "exactly one writer gets the slug");
    let r = server.get(&format!("/sources/{src}")).await;
    assert_eq!(
        r.data()["source"]["labels"].as_array().unwrap().len(),
        16,
        "no label update is lost"
    );
    assert_eq!(server.count("/sources", "sources").await, 18);
    assert_eq!(
        server.audit_types(&src).await.len(),
        17,
        "one audit event per change"
    );
    // Refused changes (the 15 conflicting creates) recorded nothing: events commit with changes.
    let r = server.get("/audit-events?resourceType=source").await;
    let created = r.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "Source Created")
        .count();
    assert_eq!(created, 18);
    let server = std::sync::Arc::try_unwrap(server)
        .ok()
        .expect("the tasks are done");
    server.stop().await;
}

#[tokio::test]
async fn a_warehouse_password_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("shop").await;
    let settings =
        json!({"hostname": "db", "database": "events", "username": "u", "password": "s3cret"});
    let r = server
        .post(
            "/warehouses",
            json!({"metadataId": "postgres", "settings": settings}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.data()["warehouse"]["id"].as_str().unwrap().to_string();
    let mut answers = vec![r];
    answers.push(server.get(&format!("/warehouses/{id}")).await);
    answers.push(server.get("/warehouses").await);
    answers.push(
        server
            .post(
                &format!("/warehouses/{id}/connected-sources/{source}"),
                json!({}),
            )
            .await,
    );
    answers.push(
        server
            .get(&format!("/sources/{source}/connected-warehouses"))
            .await,
    );
    // The mask sent back keeps the password; the answer shows the mask again.
    let masked = json!({"settings": {"hostname": "db2", "database": "events", "username": "u", "password": "********"}});
    answers.push(server.patch(&format!("/warehouses/{id}"), masked).await);
    for r in &answers {
        assert!(r.status.is_success(), "{}", r.body);
        assert!(!r.body.to_string().contains("s3cret"), "{}", r.body);
    }
    let shown = server.get(&format!("/warehouses/{id}")).await;
    assert_eq!(
        shown.data()["warehouse"]["settings"]["password"],
        "********"
    );
    assert_eq!(shown.data()["warehouse"]["settings"]["hostname"], "db2");
    server.stop().await;
}
