//! The PostgreSQL warehouse end to end against a real server (127.0.0.1:5432, or
//! `SLUICE_TEST_POSTGRES_URL`; `scripts/test` starts one when none listens): events sent to
//! `/v1/batch` land in Segment's tables by COPY, read back here with SQL; a server that
//! cannot be reached fails the sync, which is retried and loses nothing.

mod api_support;
mod warehouse_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api_support::Server;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use warehouse_support::{
    every_type, fresh_prefix, postgres, postgres_settings, postgres_target, sync_until, warehouse,
};

/// `(column, data type)` of `schema.table`.
async fn columns(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Vec<(String, String)> {
    client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&schema, &table],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_every_type_land_in_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web").await;
    let key = server.write_key(&source).await;
    let prefix = fresh_prefix();
    let id = warehouse(&server, "postgres", postgres_settings(&prefix), &source).await;
    let state = server
        .get(&format!("/warehouses/{id}/connection-state"))
        .await;
    assert_eq!(
        state.data()["connectionState"],
        "CONNECTED",
        "{}",
        state.body
    );

    server.send_batch(&key, every_type("pg")).await;
    sync_until(&server, &id, 6).await;
    let schema = format!("{prefix}web");
    let client = postgres().await;
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
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
    let cols = columns(&client, &schema, "order_completed").await;
    for (column, kind) in [
        ("id", "text"),
        ("received_at", "timestamp with time zone"),
        ("uuid_ts", "timestamp with time zone"),
        ("context_library_name", "text"),
        ("total", "double precision"),
        ("quantity", "bigint"),
        ("coupon", "boolean"),
        ("products", "text"),
        ("shipping_city", "text"),
    ] {
        assert!(
            cols.contains(&(column.to_string(), kind.to_string())),
            "order_completed.{column} {kind}: {cols:?}"
        );
    }
    let row = client
        .query_one(
            &format!(
                "SELECT id, event_text, total, quantity, coupon, products, \
                 to_char(\"timestamp\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM \"{schema}\".order_completed"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "pg-t1");
    assert_eq!(row.get::<_, String>(1), "Order Completed");
    assert_eq!(row.get::<_, f64>(2), 99.5);
    assert_eq!(row.get::<_, i64>(3), 3);
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "[{\"sku\":\"a\"}]");
    assert_eq!(row.get::<_, String>(6), "2026-03-01 10:00");
    let user = client
        .query_one(
            &format!("SELECT id, email, plan FROM \"{schema}\".users"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (user.get::<_, String>(0), user.get::<_, String>(2)),
        ("u1".into(), "free".into())
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM \"{schema}\".groups WHERE group_id = 'acme'")
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM \"{schema}\".aliases WHERE previous_id = 'a1'")
        )
        .await,
        1
    );

    // A conflicting type goes to discards; an integer column widens.
    server
        .send_batch(&key, vec![json!({"type": "track", "messageId": "pg-t2", "userId": "u1", "event": "Order Completed",
                                      "properties": {"quantity": 2.5, "coupon": "yes"}})])
        .await;
    sync_until(&server, &id, 1).await;
    let cols = columns(&client, &schema, "order_completed").await;
    assert!(
        cols.contains(&("quantity".into(), "double precision".into())),
        "{cols:?}"
    );
    let discard = client
        .query_one(
            &format!(
                "SELECT table_name, column_name, row_id, column_value FROM \"{schema}\".discards"
            ),
            &[],
        )
        .await
        .unwrap();
    let got: (String, String, String, String) = (
        discard.get(0),
        discard.get(1),
        discard.get(2),
        discard.get(3),
    );
    assert_eq!(
        got,
        (
            "order_completed".into(),
            "coupon".into(),
            "pg-t2".into(),
            "yes".into()
        )
    );
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_state_failed_carries_the_database_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web").await;
    let mut settings = postgres_settings(&fresh_prefix());
    settings.insert("database".into(), json!("no_such_database_for_sluice"));
    let id = warehouse(&server, "postgres", settings, &source).await;
    let r = server
        .get(&format!("/warehouses/{id}/connection-state"))
        .await;
    assert_eq!(r.data()["connectionState"], "FAILED", "{}", r.body);
    let reason = r.data()["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("3D000") && reason.contains("no_such_database_for_sluice"),
        "the server's own error: {reason}"
    );

    let mut closed = postgres_settings(&fresh_prefix());
    closed.insert("port".into(), json!(free_port().await));
    let id = warehouse(&server, "postgres", closed, &source).await;
    let r = server
        .get(&format!("/warehouses/{id}/connection-state"))
        .await;
    assert_eq!(r.data()["connectionState"], "FAILED");
    assert!(
        r.data()["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot connect"),
        "{}",
        r.body
    );
    server.stop().await;
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A TCP proxy to the test server that can be taken down (its connections cut, new ones
/// refused) and brought back on the same port: the warehouse "stops" and "starts" for
/// sluice while the real server serves every other test.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (target_host, target_port, ..) = postgres_target();
        let (flag, cuts) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let target = format!("{target_host}:{target_port}");
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut a, mut b) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn reports(server: &Server, id: &str) -> Vec<Value> {
    server.get(&format!("/warehouses/{id}/syncs")).await.data()["reports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_that_is_down_is_retried_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("app").await;
    let key = server.write_key(&source).await;
    let proxy = Proxy::start().await;
    let prefix = fresh_prefix();
    let mut settings = postgres_settings(&prefix);
    settings.insert("port".into(), json!(proxy.port));
    settings.insert("syncIntervalSeconds".into(), json!(1));
    let id = warehouse(&server, "postgres", settings, &source).await;

    proxy.down();
    let batch: Vec<Value> = (0..300)
        .map(|i| json!({"type": "track", "messageId": format!("d{i}"), "userId": "u", "event": "Ping", "properties": {"i": i}}))
        .collect();
    server.send_batch(&key, batch).await;
    let failed = 'wait: {
        for _ in 0..200 {
            if let Some(r) = reports(&server, &id)
                .await
                .into_iter()
                .find(|r| r["status"] == "FAILED")
            {
                break 'wait r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no failed sync while the warehouse was down: {:?}",
            reports(&server, &id).await
        );
    };
    let notice = failed["notices"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(notice.contains("cannot connect"), "{notice}");

    proxy.up();
    let client = postgres().await;
    let table = format!("\"{prefix}app\".ping");
    for _ in 0..300 {
        if reports(&server, &id)
            .await
            .first()
            .is_some_and(|r| r["status"] == "SUCCESS")
            && client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(&client, &format!("SELECT count(*) FROM {table}")).await,
        300,
        "every event loaded once"
    );
    assert_eq!(
        count(&client, &format!("SELECT count(DISTINCT id) FROM {table}")).await,
        300
    );
    client
        .batch_execute(&format!("DROP SCHEMA \"{prefix}app\" CASCADE"))
        .await
        .unwrap();
    server.stop().await;
}
