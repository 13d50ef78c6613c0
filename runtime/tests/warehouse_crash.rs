//! The embedded warehouse survives SIGKILL: a real `sluice serve` syncing every second is
//! killed while it loads, restarted, and every event is in `tracks` exactly once; then its
//! staging position is moved back to the start (a crash after a load committed but before
//! its position did) and the replayed load adds no row. Set up with the `sluice warehouses`
//! commands.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Cli, start, stop};

mod support;

const TOKEN: &str = "warehouse-crash-owner-token";
const EVENTS: usize = 6000;

fn send(cli: &Cli, dir: &Path, key: &str, from: usize, to: usize) {
    let file = dir.join(format!("events-{from}.jsonl"));
    let lines: Vec<String> = (from..to)
        .map(|i| {
            json!({"type": "track", "messageId": format!("k{i}"), "userId": format!("u{}", i % 50),
                   "event": "Item Viewed", "properties": {"n": i, "sku": format!("s{}", i % 7)}})
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("the events file is written");
    let out = cli
        .command(&[
            "send",
            file.to_str().unwrap_or_default(),
            "--write-key",
            key,
        ])
        .output()
        .expect("sluice send runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (rows, distinct ids) of `tracks` and of the event's table, read with the server stopped.
fn counts(file: &Path) -> [i64; 4] {
    let conn = duckdb::Connection::open(file).expect("the DuckDB file opens");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0) };
    [
        one("SELECT count(*) FROM crash.tracks"),
        one("SELECT count(DISTINCT id) FROM crash.tracks"),
        one("SELECT count(*) FROM crash.item_viewed"),
        one("SELECT count(DISTINCT id) FROM crash.item_viewed"),
    ]
}

/// Restarts the server until every event is loaded (each run gets a few seconds of syncs).
fn settle(data: &Path, file: &Path) -> [i64; 4] {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let server = start(data, None);
        std::thread::sleep(Duration::from_secs(3));
        stop(server);
        let now = counts(file);
        if now[0] >= EVENTS as i64 || Instant::now() > deadline {
            return now;
        }
    }
}

#[test]
fn a_replay_after_sigkill_mid_load_leaves_no_duplicate_rows() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let server = start(&data, Some(TOKEN));
    let cli = Cli::of(&server, TOKEN);
    let (source, key) = cli.source("crash");
    let warehouse: Value = cli.json(&[
        "warehouses",
        "create",
        "--type",
        "duckdb",
        "--interval",
        "1",
    ]);
    let id = warehouse["id"].as_str().expect("an id").to_string();
    cli.ok(&["warehouses", "connect", &id, &source]);
    let state = cli.json(&["warehouses", "state", &id]);
    assert_eq!(state["connectionState"], "CONNECTED", "{state}");

    send(&cli, dir.path(), &key, 0, EVENTS / 2);
    // Let syncs start, then send more and kill the server while it stages and loads them.
    std::thread::sleep(Duration::from_millis(1200));
    send(&cli, dir.path(), &key, EVENTS / 2, EVENTS);
    std::thread::sleep(Duration::from_millis(700));
    let mut server = server;
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    drop(server);

    let file = data.join("warehouses").join(&id).join("warehouse.duckdb");
    let n = EVENTS as i64;
    assert_eq!(
        settle(&data, &file),
        [n, n, n, n],
        "every event once, after SIGKILL"
    );

    // A crash between the load's commit and the staging position's: the position goes back.
    let consumer = data
        .join("warehouses")
        .join(&id)
        .join("staging")
        .join("sync.consumer");
    let mut bytes = 0u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&0u64.to_le_bytes()).to_le_bytes());
    std::fs::write(&consumer, bytes).expect("the position is rewritten");
    let server = start(&data, None);
    let cli = Cli::of(&server, TOKEN);
    let reports = cli.json(&["warehouses", "sync", &id]);
    let taken: u64 = reports
        .as_array()
        .expect("reports")
        .iter()
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        taken >= EVENTS as u64,
        "the whole staging log was loaded again: {reports}"
    );
    let listed = cli.ok(&["warehouses", "syncs", &id]);
    assert!(listed.contains("SUCCESS"), "{listed}");
    stop(server);
    assert_eq!(counts(&file), [n, n, n, n], "the replay added no row");
}
