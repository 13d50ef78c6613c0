//! Warehouse loads against each database's own bulk path, on the same data in the same run:
//! 100,000 events (the sample events, repeated with fresh ids) sent to `/v1/batch`, staged,
//! then synced into the embedded DuckDB and into PostgreSQL; the sync time comes from the
//! sync reports (their `duration`), so ingestion and staging are not counted. Next to them:
//! DuckDB's `read_json` of the same events, and each database's `COPY` of the same rows as
//! CSV (every loaded table exported, copied into empty twins: DuckDB's `COPY ... FROM` a
//! file, PostgreSQL's `COPY ... FROM STDIN`).
//! Then whether a sync slows the pipeline's other destinations: the rate at which a file
//! destination of another source delivers 20,000 events, alone and while another warehouse
//! (DuckDB, fed the same 100,000 events) syncs, in several passes (one warehouse each),
//! with their median.
//!
//! Run: `cargo bench -p sluice-tests --bench warehouse` (`SLUICE_BENCH_EVENTS`, default
//! 100,000; PostgreSQL at 127.0.0.1:5432 or `SLUICE_TEST_POSTGRES_URL`).
//! `SLUICE_BENCH_SKIP=postgres,side` leaves parts out, `SLUICE_BENCH_SIDE_PASSES` (default 5)
//! sets the side measure's passes; `SLUICE_BENCH_PERF_FIFO=<fifo>` writes
//! `enable` and `disable` to a `perf record -D -1 --control fifo:<fifo>` around the first
//! DuckDB sync, so that a profile holds that sync alone.

#[path = "../tests/api_support/mod.rs"]
mod api_support;
#[path = "../tests/warehouse_support/mod.rs"]
mod warehouse_support;

use std::path::Path;
use std::time::{Duration, Instant};

use api_support::Server;
use futures_util::SinkExt;
use serde_json::{Map, Value, json};
use sluice_tests::sample_events;
use warehouse_support::{duckdb_file, fresh_prefix, postgres, postgres_settings, warehouse};

/// The allocator the `sluice` binary uses, so the bench measures what users run.
#[global_allocator]
static ALLOCATOR: sluice_runtime::Allocator = sluice_runtime::Allocator;

/// Sends `events` in batches of 500 from 4 clients.
async fn send(server: &Server, key: &str, events: &[Value]) {
    let chunks: Vec<Vec<Value>> = events.chunks(500).map(<[Value]>::to_vec).collect();
    let per = chunks.len().div_ceil(4);
    let mut tasks = Vec::new();
    for part in chunks.chunks(per) {
        let part = part.to_vec();
        let (url, key) = (server.url.clone(), key.to_string());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for batch in part {
                let r = client
                    .post(format!("{url}/v1/batch"))
                    .basic_auth(&key, Some(""))
                    .json(&json!({ "batch": batch }))
                    .send()
                    .await
                    .expect("the server answers");
                assert!(r.status().is_success(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.expect("a client");
    }
}

/// Syncs until `n` events were taken; returns (seconds spent syncing, rows written). Each
/// sync that took events is one more closing checkpoint, so the count is printed.
async fn sync_all(server: &Server, id: &str, n: u64) -> (f64, u64) {
    let (mut taken, mut seconds, mut rows, mut syncs) = (0, 0.0, 0, 0);
    while taken < n {
        syncs += 1;
        let r = server
            .post(&format!("/warehouses/{id}/syncs"), json!({}))
            .await;
        for report in r.data()["reports"].as_array().cloned().unwrap_or_default() {
            assert_eq!(report["status"], "SUCCESS", "{report}");
            taken += report["count"].as_u64().unwrap_or(0);
            seconds += report["duration"].as_f64().unwrap_or(0.0);
            rows += report["tables"]
                .as_object()
                .map(|t| t.values().filter_map(Value::as_u64).sum::<u64>())
                .unwrap_or(0);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eprintln!("warehouse {id}: {n} events in {syncs} syncs");
    (seconds, rows)
}

/// Bytes in the files under `dir`, recursively.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Waits until the warehouses' staging logs under `data` stop growing (unchanged for
/// 500 ms): delivery has staged what was sent, so a sync takes it all at once and does not
/// compete with staging for the CPU.
async fn staged(data: &Path) {
    let dir = data.join("warehouses");
    let mut last = bytes_under(&dir);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = bytes_under(&dir);
        if now == last {
            return;
        }
        last = now;
    }
}

/// Lines counted so far in an append-only file: each poll reads only what was appended
/// since the last (reading the whole file every 10 ms would take the CPU being measured).
#[derive(Default)]
struct Lines {
    read: u64,
    count: usize,
}

impl Lines {
    /// Waits until `file` holds `n` lines (polled every 10 ms, up to 120 s).
    async fn wait(&mut self, file: &Path, n: usize) {
        use std::io::{Read, Seek, SeekFrom};
        for _ in 0..12_000 {
            if let Ok(mut f) = std::fs::File::open(file) {
                let mut fresh = Vec::new();
                f.seek(SeekFrom::Start(self.read)).expect("seeks");
                f.read_to_end(&mut fresh).expect("reads");
                self.read += fresh.len() as u64;
                self.count += fresh.iter().filter(|&&c| c == b'\n').count();
            }
            if self.count >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} never held {n} lines", file.display());
    }
}

/// Events/s of `events` sent with `key` and delivered to `file` (which held `before` lines,
/// counted in `lines`): from the first request until the last line is written.
async fn delivered(
    server: &Server,
    key: &str,
    events: &[Value],
    file: &Path,
    lines: &mut Lines,
    before: usize,
) -> f64 {
    let t = Instant::now();
    send(server, key, events).await;
    lines.wait(file, before + events.len()).await;
    events.len() as f64 / t.elapsed().as_secs_f64()
}

/// The other destination's rate alone, then while warehouse `id` syncs `n` staged events
/// (the sends start 300 ms into the sync), for pass `pass`: (alone, during the sync, sync
/// seconds).
async fn beside_a_sync(
    server: &Server,
    id: &str,
    n: u64,
    side: &Side,
    pass: usize,
) -> (f64, f64, f64) {
    let (first, second) = (2 * pass * SIDE, (2 * pass + 1) * SIDE);
    let mut lines = side.lines.lock().await;
    let events = &side.events[first..second];
    let alone = delivered(server, &side.key, events, &side.file, &mut lines, first).await;
    let during = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let events = &side.events[second..second + SIDE];
        delivered(server, &side.key, events, &side.file, &mut lines, second).await
    };
    let ((seconds, _), during) = tokio::join!(sync_all(server, id, n), during);
    (alone, during, seconds)
}

/// Passes of the side measure (`SLUICE_BENCH_SIDE_PASSES`, default 5): each has its own
/// warehouse, fed the same events, so that each pass syncs as many.
fn side_passes() -> usize {
    std::env::var("SLUICE_BENCH_SIDE_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// Events per pass of the other destination.
const SIDE: usize = 20_000;

/// Another source with a file destination: its key, its file (never rotated), the lines
/// counted in it, `2 * SIDE` events per pass.
struct Side {
    key: String,
    file: std::path::PathBuf,
    lines: tokio::sync::Mutex<Lines>,
    events: Vec<Value>,
}

fn events(n: usize) -> Vec<Value> {
    let samples: Vec<Value> = sample_events()
        .iter()
        .map(|l| serde_json::from_str(l).expect("a sample event"))
        .collect();
    (0..n)
        .map(|i| {
            let mut e = samples[i % samples.len()].clone();
            e["messageId"] = json!(format!("bench-{i}"));
            e
        })
        .collect()
}

/// PostgreSQL's own bulk path: every table the sync loaded into schema `<prefix>bench`,
/// exported as CSV and copied into empty twins; returns the seconds the `COPY`s took.
async fn copy_bulk(prefix: &str) -> f64 {
    let client = postgres().await;
    let schema = format!("{prefix}bench");
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let twin = format!("{prefix}twin");
    client
        .batch_execute(&format!("CREATE SCHEMA \"{twin}\""))
        .await
        .expect("schema");
    let mut csv = Vec::new();
    for table in &tables {
        client
            .batch_execute(&format!(
                "CREATE TABLE \"{twin}\".\"{table}\" (LIKE \"{schema}\".\"{table}\" INCLUDING ALL)"
            ))
            .await
            .expect("twin");
        let out = client
            .copy_out(&format!(
                "COPY \"{schema}\".\"{table}\" TO STDOUT (FORMAT csv)"
            ))
            .await
            .expect("copy out");
        let mut out = std::pin::pin!(out);
        let mut data = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut out).await {
            data.extend_from_slice(&chunk.expect("a chunk"));
        }
        csv.push((table.clone(), bytes::Bytes::from(data)));
    }
    let t = Instant::now();
    for (table, data) in csv {
        let sink = client
            .copy_in(&format!(
                "COPY \"{twin}\".\"{table}\" FROM STDIN (FORMAT csv)"
            ))
            .await
            .expect("copy in");
        let mut sink = std::pin::pin!(sink);
        sink.send(data).await.expect("sent");
        sink.as_mut().finish().await.expect("copied");
    }
    let bulk_pg = t.elapsed().as_secs_f64();
    client
        .batch_execute(&format!(
            "DROP SCHEMA \"{schema}\" CASCADE; DROP SCHEMA \"{twin}\" CASCADE"
        ))
        .await
        .expect("cleaned up");
    bulk_pg
}

/// DuckDB's own bulk path for the same rows: every table the sync loaded into `file`,
/// exported as `format` (`csv`, `parquet`), then copied (`COPY ... FROM`) into empty twins in
/// a fresh file under `dir`, on DuckDB's default threads; returns the seconds the `COPY`s
/// took, without and with closing the file (its checkpoint).
fn duck_copy_bulk(file: &Path, dir: &Path, format: &str) -> (f64, f64) {
    let synced = duckdb::Connection::open(file).expect("the synced file opens");
    let tables: Vec<(String, String)> = synced
        .prepare(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_catalog = current_database()",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<duckdb::Result<Vec<_>>>()
        })
        .expect("tables");
    let twin = dir.join(format!("twin-{format}.duckdb"));
    synced
        .execute_batch(&format!("ATTACH '{}' AS twin", twin.display()))
        .expect("twin");
    let mut copies = Vec::new();
    for (i, (schema, table)) in tables.iter().enumerate() {
        let export = dir.join(format!("table-{i}.{format}"));
        let name = format!("\"{schema}\".\"{table}\"");
        synced
            .execute_batch(&format!(
                "CREATE SCHEMA IF NOT EXISTS twin.\"{schema}\"; \
                 CREATE TABLE twin.{name} AS SELECT * FROM {name} LIMIT 0; \
                 COPY {name} TO '{}' (FORMAT {format})",
                export.display()
            ))
            .expect("exported");
        copies.push(format!(
            "COPY twin.{name} FROM '{}' (FORMAT {format})",
            export.display()
        ));
    }
    drop(synced);
    let conn = duckdb::Connection::open_in_memory().expect("DuckDB");
    conn.execute_batch(&format!("ATTACH '{}' AS twin", twin.display()))
        .expect("the twin opens");
    let t = Instant::now();
    for copy in &copies {
        conn.execute_batch(copy).expect("copied");
    }
    let bulk = t.elapsed().as_secs_f64();
    drop(conn);
    (bulk, t.elapsed().as_secs_f64())
}

/// One line of DuckDB's `COPY` of the same rows as `format`: its (seconds, with the close)
/// against the sync's seconds.
fn duck_copy_line(format: &str, (bulk, closed): (f64, f64), rows: u64, sync: f64) {
    println!(
        "  COPY {format:<9} {bulk:>7.2}s  {:>9.0} rows/s  ratio {:.2}x (+ close {closed:.2}s, \
         {:.2}x; the same rows into empty twins)",
        rows as f64 / bulk.max(1e-9),
        bulk / sync.max(1e-9),
        closed / sync.max(1e-9)
    );
}

/// Whether `SLUICE_BENCH_SKIP` (a comma-separated list) names `part`.
fn skipped(part: &str) -> bool {
    std::env::var("SLUICE_BENCH_SKIP")
        .map(|s| s.split(',').any(|p| p.trim() == part))
        .unwrap_or(false)
}

/// Tells a waiting `perf record --control fifo:...` to `enable` or `disable` its events.
fn perf(command: &str) {
    if let Some(fifo) = std::env::var_os("SLUICE_BENCH_PERF_FIFO") {
        std::fs::write(fifo, format!("{command}\n")).expect("perf's control fifo");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("SLUICE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let events = events(n);
    let dir = tempfile::tempdir().expect("a directory");
    // The side measure's file holds every pass's events: never rotated.
    let mut config = sluice_runtime::api::Config::default();
    config.data_plane.file_rotate_bytes = u64::MAX;
    let server = Server::start_with(dir.path(), config).await;
    let source = server.source("bench").await;
    let key = server.write_key(&source).await;
    let prefix = fresh_prefix();
    let duck = warehouse(&server, "duckdb", Map::new(), &source).await;
    let pg = warehouse(&server, "postgres", postgres_settings(&prefix), &source).await;
    let passes = if skipped("side") { 0 } else { side_passes() };
    let mut beside = Vec::with_capacity(passes);
    for _ in 0..passes {
        beside.push(warehouse(&server, "duckdb", Map::new(), &source).await);
    }
    let side_source = server.source("side").await;
    server
        .file_destination(&side_source, "side", "side.jsonl")
        .await;
    let side = Side {
        key: server.write_key(&side_source).await,
        file: server.file("side.jsonl"),
        lines: tokio::sync::Mutex::new(Lines::default()),
        events: (0..2 * SIDE * passes)
            .map(|i| {
                let mut e = events[i % events.len()].clone();
                e["messageId"] = json!(format!("side-{i}"));
                e
            })
            .collect(),
    };
    let started = Instant::now();
    send(&server, &key, &events).await;
    eprintln!("sent {n} events in {:.1}s", started.elapsed().as_secs_f64());
    staged(&server.dir).await;
    eprintln!("staged after {:.1}s", started.elapsed().as_secs_f64());

    perf("enable");
    let (duck_s, duck_rows) = sync_all(&server, &duck, n as u64).await;
    perf("disable");
    let (pg_s, pg_rows) = if skipped("postgres") {
        (0.0, 0)
    } else {
        sync_all(&server, &pg, n as u64).await
    };
    let mut side_runs = Vec::with_capacity(passes);
    for (pass, id) in beside.iter().enumerate() {
        side_runs.push(beside_a_sync(&server, id, n as u64, &side, pass).await);
    }
    let synced = duckdb_file(&server, &duck);
    server.stop().await;

    // DuckDB's own bulk path for the same rows: COPY of each table into empty twins.
    let copy_duck = duck_copy_bulk(&synced, dir.path(), "csv");
    let parquet = duck_copy_bulk(&synced, dir.path(), "parquet");

    // DuckDB's own bulk path: read_json of the same events into a table.
    let json_file = dir.path().join("events.jsonl");
    let text: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&json_file, text.join("\n")).expect("written");
    let conn = duckdb::Connection::open(dir.path().join("bulk.duckdb")).expect("opens");
    let t = Instant::now();
    conn.execute_batch(&format!(
        "CREATE TABLE events AS SELECT * FROM read_json('{}', format = 'newline_delimited')",
        json_file.display()
    ))
    .expect("read_json");
    let bulk_duck = t.elapsed().as_secs_f64();
    // Closing checkpoints the file, which a sync's time includes (each load closes it).
    drop(conn);
    let bulk_duck_closed = t.elapsed().as_secs_f64();

    // PostgreSQL's own bulk path: COPY of the same rows as CSV into empty twins.
    let bulk_pg = if skipped("postgres") {
        0.0
    } else {
        copy_bulk(&prefix).await
    };

    let rate = |rows: f64, s: f64| rows / s.max(1e-9);
    let nf = n as f64;
    println!("warehouse load of {n} events (sync time from the sync reports):");
    println!(
        "  duckdb    sync {duck_s:>7.2}s  {:>9.0} events/s  {:>9.0} rows/s ({duck_rows} rows)",
        rate(nf, duck_s),
        rate(duck_rows as f64, duck_s)
    );
    println!(
        "  read_json      {bulk_duck:>7.2}s  {:>9.0} events/s  ratio {:.2}x",
        rate(nf, bulk_duck),
        bulk_duck / duck_s.max(1e-9)
    );
    println!(
        "  read_json + close {bulk_duck_closed:>4.2}s  (with the checkpoint a sync's close makes) ratio {:.2}x",
        bulk_duck_closed / duck_s.max(1e-9)
    );
    for (format, bulk) in [("csv", copy_duck), ("parquet", parquet)] {
        duck_copy_line(format, bulk, duck_rows, duck_s);
    }
    println!(
        "  postgres  sync {pg_s:>7.2}s  {:>9.0} events/s  {:>9.0} rows/s ({pg_rows} rows)",
        rate(nf, pg_s),
        rate(pg_rows as f64, pg_s)
    );
    println!(
        "  COPY csv       {bulk_pg:>7.2}s  {:>9.0} rows/s  ratio {:.2}x",
        rate(pg_rows as f64, bulk_pg),
        bulk_pg / pg_s.max(1e-9)
    );
    let mut ratios = Vec::with_capacity(side_runs.len());
    for (pass, (alone, during, seconds)) in side_runs.iter().enumerate() {
        let ratio = during / alone.max(1e-9);
        ratios.push(ratio);
        println!(
            "  file destination of another source, pass {}: {alone:>9.0} events/s alone, \
             {during:>9.0} events/s during a DuckDB sync ({seconds:.2}s), ratio {ratio:.2}x",
            pass + 1
        );
    }
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        println!(
            "  file destination during a sync / alone: median {median:.2}x of {} passes \
             (min {:.2}x, max {:.2}x)",
            ratios.len(),
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}
