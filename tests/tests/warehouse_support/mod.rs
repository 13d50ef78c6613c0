//! Shared by the `warehouse_*` tests: events of every type, creating and syncing warehouses
//! through the API, and reading what was loaded with SQL (DuckDB files, the PostgreSQL at
//! 127.0.0.1:5432 or `SLUICE_TEST_POSTGRES_URL`).

#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::api_support::Server;

/// One event of each type Segment's warehouses load (ids prefixed with `tag`).
pub fn every_type(tag: &str) -> Vec<Value> {
    let at = "2026-03-01T10:00:00.000Z";
    vec![
        json!({"type": "track", "messageId": format!("{tag}-t1"), "userId": "u1", "event": "Order Completed",
               "timestamp": at, "context": {"library": {"name": "analytics.js", "version": "2.0"}, "ip": "1.2.3.4"},
               "properties": {"orderId": "o-1", "total": 99.5, "quantity": 3, "coupon": true,
                              "products": [{"sku": "a"}], "shipping": {"city": "Lyon"}}}),
        json!({"type": "identify", "messageId": format!("{tag}-i1"), "userId": "u1", "anonymousId": "a1",
               "timestamp": at, "traits": {"email": "u1@example.com", "plan": "free", "createdAt": "2025-01-01T00:00:00Z"}}),
        json!({"type": "page", "messageId": format!("{tag}-p1"), "anonymousId": "a1", "name": "Home",
               "timestamp": at, "properties": {"url": "https://example.com/", "title": "Home"}}),
        json!({"type": "screen", "messageId": format!("{tag}-s1"), "userId": "u1", "name": "Cart",
               "timestamp": at, "properties": {"items": 2}}),
        json!({"type": "group", "messageId": format!("{tag}-g1"), "userId": "u1", "groupId": "acme",
               "timestamp": at, "traits": {"name": "Acme", "employees": 50}}),
        json!({"type": "alias", "messageId": format!("{tag}-a1"), "userId": "u1", "previousId": "a1",
               "timestamp": at}),
    ]
}

/// Creates a warehouse of `kind` with `settings` (syncs only when asked unless the settings
/// name an interval) and connects `source`; returns its id.
pub async fn warehouse(
    server: &Server,
    kind: &str,
    mut settings: Map<String, Value>,
    source: &str,
) -> String {
    settings.entry("syncIntervalSeconds").or_insert(json!(3600));
    let r = server
        .post(
            "/warehouses",
            json!({"metadataId": kind, "settings": settings}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.data()["warehouse"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let r = server
        .post(
            &format!("/warehouses/{id}/connected-sources/{source}"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}

/// Runs a sync now and returns its reports, once the events sent before have been staged:
/// delivery stages them moments after ingestion, so this syncs until `events` were taken.
pub async fn sync_until(server: &Server, id: &str, events: u64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut taken = 0;
    for _ in 0..200 {
        let r = server
            .post(&format!("/warehouses/{id}/syncs"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for report in r.data()["reports"].as_array().expect("reports") {
            assert_eq!(report["status"], "SUCCESS", "{report}");
            taken += report["count"].as_u64().unwrap_or(0);
            all.push(report.clone());
        }
        if taken >= events {
            assert_eq!(taken, events, "the sync took exactly what was sent");
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("only {taken} of {events} events were synced");
}

/// The DuckDB file of embedded warehouse `id`.
pub fn duckdb_file(server: &Server, id: &str) -> std::path::PathBuf {
    server
        .dir
        .join("warehouses")
        .join(id)
        .join("warehouse.duckdb")
}

/// Rows of `sql` on the DuckDB file, each column as text (NULL as `null`). Opened and closed
/// here: call it between syncs only.
pub fn duck(file: &std::path::Path, sql: &str) -> Vec<Vec<Value>> {
    let conn = duckdb::Connection::open(file).expect("the DuckDB file opens");
    let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = statement.query([]).expect("the query runs");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("a row") {
        let n = row.as_ref().column_count();
        let cells = (0..n)
            .map(
                |i| match row.get::<_, duckdb::types::Value>(i).expect("a cell") {
                    duckdb::types::Value::Null => Value::Null,
                    duckdb::types::Value::Boolean(b) => json!(b),
                    duckdb::types::Value::BigInt(v) => json!(v),
                    duckdb::types::Value::Int(v) => json!(v),
                    duckdb::types::Value::HugeInt(v) => json!(v as i64),
                    duckdb::types::Value::UBigInt(v) => json!(v),
                    duckdb::types::Value::Double(v) => json!(v),
                    duckdb::types::Value::Text(t) => json!(t),
                    other => json!(format!("{other:?}")),
                },
            )
            .collect();
        out.push(cells);
    }
    out
}

/// `(column, data type)` of `schema.table` in a DuckDB file, by column name.
pub fn duck_columns(file: &std::path::Path, schema: &str, table: &str) -> Map<String, Value> {
    duck(
        file,
        &format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = '{schema}' AND table_name = '{table}'"
        ),
    )
    .into_iter()
    .map(|r| (r[0].as_str().unwrap_or("").to_string(), r[1].clone()))
    .collect()
}

/// The settings of a `postgres` warehouse on the test server with a fresh schema prefix.
pub fn postgres_settings(prefix: &str) -> Map<String, Value> {
    let (host, port, user, database, password) = postgres_target();
    let mut settings = Map::new();
    settings.insert("hostname".into(), json!(host));
    settings.insert("port".into(), json!(port));
    settings.insert("username".into(), json!(user));
    settings.insert("database".into(), json!(database));
    if let Some(p) = password {
        settings.insert("password".into(), json!(p));
    }
    settings.insert("schemaPrefix".into(), json!(prefix));
    settings
}

/// (host, port, user, database, password) of the test server.
pub fn postgres_target() -> (String, u16, String, String, Option<String>) {
    if let Ok(url) = std::env::var("SLUICE_TEST_POSTGRES_URL") {
        let config: tokio_postgres::Config = url.parse().expect("SLUICE_TEST_POSTGRES_URL parses");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        return (
            host,
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_user().unwrap_or("postgres").to_string(),
            config.get_dbname().unwrap_or("test").to_string(),
            config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        );
    }
    (
        "127.0.0.1".into(),
        5432,
        "postgres".into(),
        "test".into(),
        None,
    )
}

/// A client of the test server.
pub async fn postgres() -> tokio_postgres::Client {
    let (host, port, user, database, password) = postgres_target();
    let mut config = tokio_postgres::Config::new();
    config.host(&host).port(port).user(&user).dbname(&database);
    if let Some(p) = password {
        config.password(p);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers (scripts/test starts one when none listens)");
    tokio::spawn(connection);
    client
}

/// A schema prefix no other test run uses.
pub fn fresh_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t{}_{:x}_", std::process::id(), nanos)
}
