//! The embedded warehouse end to end: events sent to `/v1/batch` go through the pipeline,
//! are staged, and a sync loads them into Segment's tables in a DuckDB file, read back here
//! with SQL.

mod api_support;
mod warehouse_support;

use api_support::Server;
use reqwest::StatusCode;
use serde_json::{Map, json};
use warehouse_support::{duck, duck_columns, duckdb_file, every_type, sync_until, warehouse};

/// A server over `dir` with a source `shop` connected to an embedded warehouse: the server,
/// the source's write key, the warehouse's id and its DuckDB file.
async fn shop_on_duckdb(dir: &std::path::Path) -> (Server, String, String, std::path::PathBuf) {
    let server = Server::start(dir).await;
    let source = server.source("shop").await;
    let key = server.write_key(&source).await;
    let id = warehouse(&server, "duckdb", Map::new(), &source).await;
    let file = duckdb_file(&server, &id);
    (server, key, id, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_every_type_land_in_segments_tables() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web-app").await;
    let key = server.write_key(&source).await;
    let id = warehouse(&server, "duckdb", Map::new(), &source).await;
    let state = server
        .get(&format!("/warehouses/{id}/connection-state"))
        .await;
    assert_eq!(
        state.data()["connectionState"],
        "CONNECTED",
        "{}",
        state.body
    );

    server.send_batch(&key, every_type("e")).await;
    let reports = sync_until(&server, &id, 6).await;
    assert_eq!(reports[0]["sourceId"], source.as_str());
    assert_eq!(
        reports
            .iter()
            .map(|r| r["tables"]["tracks"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        1
    );

    let file = duckdb_file(&server, &id);
    let tables: Vec<String> = duck(
        &file,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'web_app' ORDER BY 1",
    )
    .into_iter()
    .map(|r| r[0].as_str().unwrap().to_string())
    .collect();
    assert_eq!(
        tables,
        [
            "aliases",
            "groups",
            "identifies",
            "order_completed",
            "pages",
            "screens",
            "tracks",
            "users"
        ]
    );

    let columns = duck_columns(&file, "web_app", "order_completed");
    for (column, kind) in [
        ("id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("received_at", "TIMESTAMP"),
        ("timestamp", "TIMESTAMP"),
        ("uuid_ts", "TIMESTAMP"),
        ("event", "VARCHAR"),
        ("event_text", "VARCHAR"),
        ("context_library_name", "VARCHAR"),
        ("context_ip", "VARCHAR"),
        ("order_id", "VARCHAR"),
        ("total", "DOUBLE"),
        ("quantity", "BIGINT"),
        ("coupon", "BOOLEAN"),
        ("products", "VARCHAR"),
        ("shipping_city", "VARCHAR"),
    ] {
        assert_eq!(
            columns.get(column),
            Some(&json!(kind)),
            "order_completed.{column}: {columns:?}"
        );
    }
    let row = &duck(
        &file,
        "SELECT id, event, event_text, total, quantity, coupon, products, shipping_city, \
         strftime(\"timestamp\", '%Y-%m-%d %H:%M') FROM web_app.order_completed",
    )[0];
    assert_eq!(
        row,
        &vec![
            json!("e-t1"),
            json!("order_completed"),
            json!("Order Completed"),
            json!(99.5),
            json!(3),
            json!(true),
            json!("[{\"sku\":\"a\"}]"),
            json!("Lyon"),
            json!("2026-03-01 10:00"),
        ]
    );
    let tracks = duck_columns(&file, "web_app", "tracks");
    assert!(
        tracks.contains_key("event_text") && !tracks.contains_key("total"),
        "{tracks:?}"
    );
    assert_eq!(
        duck(&file, "SELECT id, email, plan FROM web_app.users"),
        [vec![json!("u1"), json!("u1@example.com"), json!("free")]]
    );
    assert_eq!(
        duck_columns(&file, "web_app", "identifies").get("created_at"),
        Some(&json!("TIMESTAMP"))
    );
    assert_eq!(
        duck(&file, "SELECT name, url FROM web_app.pages"),
        [vec![json!("Home"), json!("https://example.com/")]]
    );
    assert_eq!(
        duck(&file, "SELECT name, items FROM web_app.screens"),
        [vec![json!("Cart"), json!(2)]]
    );
    assert_eq!(
        duck(
            &file,
            "SELECT group_id, name, employees FROM web_app.groups"
        ),
        [vec![json!("acme"), json!("Acme"), json!(50)]]
    );
    assert_eq!(
        duck(&file, "SELECT previous_id FROM web_app.aliases"),
        [vec![json!("a1")]]
    );

    let listed = server.get(&format!("/warehouses/{id}/syncs")).await;
    assert!(!listed.data()["reports"].as_array().unwrap().is_empty());
    let mine = server
        .get(&format!(
            "/warehouses/{id}/connected-sources/{source}/syncs"
        ))
        .await;
    let report = &mine.data()["reports"][0];
    assert_eq!(report["status"], "SUCCESS");
    assert!(
        report["duration"].is_number() && report["end"].is_string(),
        "{report}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_columns_widening_discards_and_the_latest_traits() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key, id, file) = shop_on_duckdb(dir.path()).await;
    let track = |n: u32, properties: serde_json::Value| json!({"type": "track", "messageId": format!("m{n}"), "userId": "u1", "event": "Added", "properties": properties});

    server
        .send_batch(&key, vec![
            json!({"type": "identify", "messageId": "i1", "userId": "u1", "traits": {"plan": "free", "email": "a@b.c"}}),
            track(1, json!({"count": 1})),
        ])
        .await;
    sync_until(&server, &id, 2).await;
    assert_eq!(
        duck_columns(&file, "shop", "added").get("count"),
        Some(&json!("BIGINT"))
    );

    server
        .send_batch(&key, vec![
            json!({"type": "identify", "messageId": "i2", "userId": "u1", "traits": {"plan": "pro"}}),
            track(2, json!({"count": 2.5, "coupon": "SPRING"})),
        ])
        .await;
    sync_until(&server, &id, 2).await;
    let columns = duck_columns(&file, "shop", "added");
    assert_eq!(
        columns.get("count"),
        Some(&json!("DOUBLE")),
        "an integer column widens to float"
    );
    assert_eq!(
        columns.get("coupon"),
        Some(&json!("VARCHAR")),
        "a new property adds a column"
    );
    assert_eq!(
        duck(&file, "SELECT id, plan, email FROM shop.users"),
        [vec![json!("u1"), json!("pro"), json!("a@b.c")]],
        "users holds the latest traits, keeping those the newest identify left out"
    );
    assert_eq!(
        duck(&file, "SELECT count(*) FROM shop.identifies"),
        [vec![json!(2)]]
    );

    server
        .send_batch(&key, vec![track(3, json!({"count": "many", "coupon": 7}))])
        .await;
    let reports = sync_until(&server, &id, 1).await;
    let notices = reports[0]["notices"].to_string();
    assert!(notices.contains("discards"), "{notices}");
    assert_eq!(
        duck(
            &file,
            "SELECT table_name, column_name, row_id, column_value, reason FROM shop.discards"
        ),
        [vec![
            json!("added"),
            json!("count"),
            json!("m3"),
            json!("many"),
            json!("text does not fit a column of a float")
        ]]
    );
    assert_eq!(
        duck(
            &file,
            "SELECT id, count, coupon FROM shop.added ORDER BY id"
        ),
        [
            vec![json!("m1"), json!(1.0), serde_json::Value::Null],
            vec![json!("m2"), json!(2.5), json!("SPRING")],
            vec![json!("m3"), serde_json::Value::Null, json!("7")],
        ],
        "the refused value is NULL in its row, the integer is stored as text in a text column"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selective_sync_leaves_out_what_was_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (a, b) = (server.source("kept").await, server.source("dropped").await);
    let id = warehouse(&server, "duckdb", Map::new(), &a).await;
    let r = server
        .post(
            &format!("/warehouses/{id}/connected-sources/{b}"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = server
        .patch(
            &format!("/warehouses/{id}/selective-sync"),
            json!({"syncOverrides": [
                {"sourceId": a, "collection": "pages", "enabled": false},
                {"sourceId": a, "collection": "tracks", "property": "context_ip", "enabled": false},
                {"sourceId": b, "enabled": false}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["status"], "UPDATED");
    let r = server
        .patch(
            &format!("/warehouses/{id}/selective-sync"),
            json!({"syncOverrides": [{"sourceId": b, "enabled": false}]}),
        )
        .await;
    assert_eq!(r.data()["status"], "UNCHANGED", "{}", r.body);
    let r = server
        .patch(
            &format!("/warehouses/{id}/selective-sync"),
            json!({"syncOverrides": [{"sourceId": "ghost", "enabled": false}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "syncOverrides[0].sourceId"
        )
    );

    for source in [&a, &b] {
        let key = server.write_key(source).await;
        server.send_batch(&key, every_type(source)).await;
    }
    sync_until(&server, &id, 12).await;
    let file = duckdb_file(&server, &id);
    let schemas = duck(
        &file,
        "SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_schema IN ('kept', 'dropped')",
    );
    assert_eq!(
        schemas,
        [vec![json!("kept")]],
        "the source turned off loads nothing"
    );
    let tables = duck(
        &file,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'kept' AND table_name = 'pages'",
    );
    assert_eq!(
        tables,
        [vec![json!(0)]],
        "the table turned off is not created"
    );
    let tracks = duck_columns(&file, "kept", "tracks");
    assert!(
        !tracks.contains_key("context_ip") && tracks.contains_key("context_library_name"),
        "{tracks:?}"
    );
    assert!(duck_columns(&file, "kept", "order_completed").contains_key("context_ip"));

    let listed = server
        .get(&format!(
            "/warehouses/{id}/connected-sources/{a}/selective-syncs"
        ))
        .await;
    let items = listed.data()["items"].as_array().expect("items").clone();
    let item = |name: &str| {
        items
            .iter()
            .find(|i| i["collection"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(item("pages")["enabled"], false);
    assert_eq!(item("tracks")["enabled"], true);
    assert_eq!(item("tracks")["properties"]["context_ip"], false);
    assert_eq!(item("tracks")["properties"]["event_text"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_warehouse_refuses_a_sync_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web").await;
    let id = warehouse(&server, "duckdb", Map::new(), &source).await;
    let r = server
        .patch(&format!("/warehouses/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = server
        .post(&format!("/warehouses/{id}/syncs"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.to_string().contains("is disabled"), "{}", r.body);
    let r = server
        .post(
            "/warehouses",
            json!({"metadataId": "duckdb", "settings": {"syncIntervalSeconds": 0}}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "settings.syncIntervalSeconds"
        )
    );
    server.stop().await;
}

/// What kill -9 between a load's commit and its staging position's commit leaves: the next
/// sync loads the same events again. Modelled exactly by removing the committed position (the
/// `sync.consumer` file) while the server is stopped; the replay meets stored ids in every
/// table (tracks, an event's table, `users`' upsert, `discards`) and must add no row. The
/// text that crosses the load holds quotes, commas, new lines, tabs and non-ASCII letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_load_makes_no_second_row() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key, id, file) = shop_on_duckdb(dir.path()).await;
    let note = "a \"quoted\", comma;\nnew line\r\tcafé ☕ \\ end";
    let mut events = every_type("r");
    events.push(
        json!({"type": "track", "messageId": "r-n1", "userId": "u1", "event": "Added",
                       "properties": {"count": 1, "note": note}}),
    );
    events.push(
        json!({"type": "track", "messageId": "r-n2", "userId": "u1", "event": "Added",
                       "properties": {"count": "many", "note": ""}}),
    );
    server.send_batch(&key, events).await;
    sync_until(&server, &id, 8).await;
    let counts = |file: &std::path::Path| {
        duck(
            file,
            "SELECT (SELECT count(*) FROM shop.tracks), (SELECT count(*) FROM shop.added), \
             (SELECT count(*) FROM shop.identifies), (SELECT count(*) FROM shop.users), \
             (SELECT count(*) FROM shop.discards), (SELECT count(*) FROM shop.pages)",
        )
    };
    let loaded = counts(&file);
    assert_eq!(
        loaded,
        [vec![
            json!(3),
            json!(2),
            json!(1),
            json!(1),
            json!(1),
            json!(1)
        ]]
    );
    server.stop().await;

    let position = file.with_file_name("staging").join("sync.consumer");
    std::fs::remove_file(&position).expect("the staging position was committed");
    let server = Server::start(dir.path()).await;
    server
        .send_batch(
            &key,
            vec![json!({"type": "track", "messageId": "r-n3", "userId": "u1",
                                      "event": "Added", "properties": {"count": 3}})],
        )
        .await;
    sync_until(&server, &id, 9).await;
    assert_eq!(
        counts(&file),
        [vec![
            json!(4),
            json!(3),
            json!(1),
            json!(1),
            json!(1),
            json!(1)
        ]],
        "the replayed events added no row; the new one did"
    );
    assert_eq!(
        duck(&file, "SELECT id, note, count FROM shop.added ORDER BY id"),
        [
            vec![json!("r-n1"), json!(note), json!(1)],
            vec![
                json!("r-n2"),
                serde_json::Value::Null,
                serde_json::Value::Null
            ],
            vec![json!("r-n3"), serde_json::Value::Null, json!(3)],
        ],
        "text with quotes, commas and new lines loads as sent"
    );
    assert_eq!(
        duck(&file, "SELECT id, email FROM shop.users"),
        [vec![json!("u1"), json!("u1@example.com")]]
    );
    server.stop().await;
}
