//! The event log (`sluice_runtime::log`): appends of ~100 KB records (100 sample events of
//! ~1 KB each) from 8 concurrent tasks with group commit, next to the same workload through
//! sled with a shared flush per append group (the queue's design before issue 10), and through
//! fjall (an LSM tree with its own journal) with a shared persist; then the
//! time to reopen a log holding ~1 GB, with its files in the page cache and evicted, and to
//! read it all back; and single appends interleaved with the disk's own write + `fdatasync`,
//! the floor under an append.
//!
//! Run: `cargo bench -p sluice-tests --bench log` (`SLUICE_BENCH_APPENDS`, default 2,000: the
//! appends of each full-speed run; `SLUICE_BENCH_PACED_RATE`, default 125 appends/s (12,500
//! events/s, half of issue 10's delivery target): the rate of the paced runs, 8 s each;
//! `SLUICE_BENCH_REOPEN_RECORDS`, default 10,000: the records of ~100 KB written before the
//! reopen, a million events).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluice_runtime::log::{Bytes, EventLog, LogConfig, SegmentLog};
use sluice_tests::sample_events;

const TASKS: usize = 8;
const EVENTS_PER_RECORD: usize = 100;

/// What one throughput run measured.
struct Run {
    name: &'static str,
    appends: usize,
    bytes: u64,
    wall: Duration,
    latencies: Vec<Duration>,
    syncs: u64,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = sample_events();
    let groups: Vec<Vec<Bytes>> = events
        .chunks(EVENTS_PER_RECORD)
        .map(|chunk| chunk.iter().map(|e| Bytes::from(e.clone())).collect())
        .collect();
    let appends = env_usize("SLUICE_BENCH_APPENDS", 2_000);
    let reopen_records = env_usize("SLUICE_BENCH_REOPEN_RECORDS", 10_000);

    let paced_rate = env_usize("SLUICE_BENCH_PACED_RATE", 125);
    let pace = Some(Duration::from_secs_f64(TASKS as f64 / paced_rate as f64));
    let paced_appends = paced_rate * 8;
    let runs = [
        ("as fast as it goes", log_run(&groups, appends, None).await),
        ("as fast as it goes", sled_run(&groups, appends, None).await),
        (
            "as fast as it goes",
            fjall_run(&groups, appends, None).await,
        ),
        ("paced", log_run(&groups, paced_appends, pace).await),
        ("paced", sled_run(&groups, paced_appends, pace).await),
        ("paced", fjall_run(&groups, paced_appends, pace).await),
    ];
    println!(
        "Paced: {paced_rate} appends/s ({} events/s) in total, for 8 s.",
        paced_rate * EVENTS_PER_RECORD
    );
    println!();
    println!(
        "| store | load | records/s | events/s | MB/s | append p50 / p99 | syncs/s | appends per sync |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (load, run) in &runs {
        report(load, run);
    }
    disk_floor(&record(&groups[0]), 500).await;
    reopen(&groups, reopen_records).await;
}

/// The disk's own latency, the floor under every append, measured interleaved with single
/// log appends so both see the same disk: `count` times, 8 ms apart, one append of `record`
/// to a fresh log, then one write of `record` + `fdatasync` on a plain file in the same
/// directory.
async fn disk_floor(record: &Bytes, count: usize) {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = SegmentLog::open(dir.path().join("log"), LogConfig::default()).expect("open");
    let mut file = std::fs::File::create(dir.path().join("floor")).expect("file");
    let (mut appends, mut syncs) = (Vec::new(), Vec::new());
    for _ in 0..count {
        tokio::time::sleep(Duration::from_millis(8)).await;
        let started = Instant::now();
        log.append(vec![record.clone()]).await.expect("append");
        appends.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(8)).await;
        let started = Instant::now();
        tokio::task::block_in_place(|| {
            file.write_all(record).expect("write");
            file.sync_data().expect("sync");
        });
        syncs.push(started.elapsed());
    }
    println!();
    println!("Floor, interleaved, {count} of each, one at a time:");
    println!();
    println!(
        "| {} KB, one at a time | p50 | p90 | p99 |",
        record.len() / 1000
    );
    println!("|---|---:|---:|---:|");
    for (name, mut latencies) in [("log append", appends), ("write + fdatasync", syncs)] {
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)]
                .as_secs_f64()
                * 1e3
        };
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            at(0.5),
            at(0.9),
            at(0.99)
        );
    }
}

/// A record: the group's events, one per line (what one `/v1/batch` request carries).
fn record(group: &[Bytes]) -> Bytes {
    Bytes::from(
        group
            .iter()
            .map(|e| e.as_ref())
            .collect::<Vec<_>>()
            .join(&b'\n'),
    )
}

/// `appends` records appended by `TASKS` tasks to a fresh log (paced by `pace`).
async fn log_run(groups: &[Vec<Bytes>], appends: usize, pace: Option<Duration>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(SegmentLog::open(dir.path(), LogConfig::default()).expect("open"));
    let records: Arc<Vec<Bytes>> = Arc::new(groups.iter().map(|g| record(g)).collect());
    let appender = log.clone();
    let (wall, (latencies, ())) = concurrently(appends, pace, move |i| {
        let (log, records) = (appender.clone(), records.clone());
        async move {
            let record = records[i % records.len()].clone();
            log.append(vec![record]).await.expect("append");
        }
    })
    .await;
    let stats = log.stats();
    Run {
        name: "log (segment files, group commit)",
        appends,
        bytes: stats.bytes,
        wall,
        latencies,
        syncs: stats.syncs,
    }
}

/// Group commit as `queue::Queue::commit` did it over sled: tickets, one sync at a time, and
/// a sync covers every ticket taken before it started.
#[derive(Default)]
struct GroupCommits {
    requested: AtomicU64,
    durable: AtomicU64,
    syncs: AtomicU64,
    syncing: tokio::sync::Mutex<()>,
}

impl GroupCommits {
    async fn commit<F: std::future::Future<Output = ()>>(&self, sync: impl FnOnce() -> F) {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.syncing.lock().await;
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return;
        }
        let covered = self.requested.load(Ordering::SeqCst);
        sync().await;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(covered, Ordering::SeqCst);
    }
}

/// The same appends into fjall (an LSM tree with its own journal), a key per record (as the
/// log keeps them), then a shared `persist(SyncData)`: fjall as the log's replacement.
async fn fjall_run(groups: &[Vec<Bytes>], appends: usize, pace: Option<Duration>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyspace = fjall::Config::new(dir.path()).open().expect("fjall");
    let records = keyspace
        .open_partition("ingest", fjall::PartitionCreateOptions::default())
        .expect("partition");
    let commits = Arc::new(GroupCommits::default());
    let encoded: Arc<Vec<Bytes>> = Arc::new(groups.iter().map(|g| record(g)).collect());
    let next = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (wall, (latencies, ())) = {
        let (commits, bytes) = (commits.clone(), bytes.clone());
        concurrently(appends, pace, move |i| {
            let (keyspace, records, commits, encoded, next, bytes) = (
                keyspace.clone(),
                records.clone(),
                commits.clone(),
                encoded.clone(),
                next.clone(),
                bytes.clone(),
            );
            async move {
                let record = encoded[i % encoded.len()].clone();
                let key = next.fetch_add(1, Ordering::SeqCst).to_be_bytes();
                bytes.fetch_add(record.len() as u64 + 8, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || records.insert(key, record.as_ref()))
                    .await
                    .expect("task")
                    .expect("insert");
                commits
                    .commit(|| async move {
                        tokio::task::spawn_blocking(move || {
                            keyspace.persist(fjall::PersistMode::SyncData)
                        })
                        .await
                        .expect("task")
                        .expect("persist");
                    })
                    .await;
            }
        })
        .await
    };
    Run {
        name: "fjall 2 (a key per record, shared persist)",
        appends,
        bytes: bytes.load(Ordering::Relaxed),
        wall,
        latencies,
        syncs: commits.syncs.load(Ordering::Relaxed),
    }
}

/// The same appends into sled: each event its own key (as `dp.ingest` stores them), the
/// group's inserts in one batch, then a shared flush.
async fn sled_run(groups: &[Vec<Bytes>], appends: usize, pace: Option<Duration>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path()).expect("sled");
    let tree = db.open_tree("dp.ingest").expect("tree");
    let commits = Arc::new(GroupCommits::default());
    let groups = Arc::new(groups.to_vec());
    let bytes = Arc::new(AtomicU64::new(0));
    let (wall, (latencies, ())) = {
        let (commits, bytes) = (commits.clone(), bytes.clone());
        concurrently(appends, pace, move |i| {
            let (db, tree, commits, groups, bytes) = (
                db.clone(),
                tree.clone(),
                commits.clone(),
                groups.clone(),
                bytes.clone(),
            );
            async move {
                let mut batch = sled::Batch::default();
                for event in &groups[i % groups.len()] {
                    let key = db.generate_id().expect("id").to_be_bytes();
                    batch.insert(&key, event.as_ref());
                    bytes.fetch_add(event.len() as u64 + 8, Ordering::Relaxed);
                }
                tree.apply_batch(batch).expect("insert");
                commits
                    .commit(|| async move { db.flush_async().await.map(drop).expect("flush") })
                    .await;
            }
        })
        .await
    };
    Run {
        name: "sled (a key per event, shared flush)",
        appends,
        bytes: bytes.load(Ordering::Relaxed),
        wall,
        latencies,
        syncs: commits.syncs.load(Ordering::Relaxed),
    }
}

/// Runs `append(i)` for `i` in `0..appends` from `TASKS` tasks (with `pace`, each task starts
/// one append per `pace`, the tasks evenly staggered); returns the wall time, each append's latency, and the last
/// append's output.
async fn concurrently<F, Fut, T>(
    appends: usize,
    pace: Option<Duration>,
    append: F,
) -> (Duration, (Vec<Duration>, T))
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let append = Arc::new(append);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (append, next) = (append.clone(), next.clone());
            // Staggered, so that paced tasks do not all append at the same instant.
            let mut tick = pace.map(|pace| {
                let offset = pace.mul_f64(task as f64 / TASKS as f64);
                tokio::time::interval_at(tokio::time::Instant::now() + offset, pace)
            });
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut last = None;
                loop {
                    if let Some(tick) = tick.as_mut() {
                        tick.tick().await;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= appends {
                        break;
                    }
                    let sent = Instant::now();
                    last = Some(append(i).await);
                    latencies.push(sent.elapsed());
                }
                (latencies, last)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut last = None;
    for task in tasks {
        let (mine, output) = task.await.expect("task");
        latencies.extend(mine);
        last = output.or(last);
    }
    let wall = started.elapsed();
    (wall, (latencies, last.expect("at least one append")))
}

fn report(load: &str, run: &Run) {
    let mut latencies = run.latencies.clone();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let secs = run.wall.as_secs_f64();
    println!(
        "| {} | {load} | {:.0} | {:.0} | {:.1} | {:.1} / {:.1} ms | {:.0} | {:.2} |",
        run.name,
        run.appends as f64 / secs,
        (run.appends * EVENTS_PER_RECORD) as f64 / secs,
        run.bytes as f64 / secs / 1e6,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        run.syncs as f64 / secs,
        run.appends as f64 / run.syncs.max(1) as f64,
    );
}

/// Writes `records` records of ~100 KB, tops the active segment up until it is nearly full
/// (the longest scan at open), then times reopening: warm, and with the files evicted from
/// the page cache.
async fn reopen(groups: &[Vec<Bytes>], records: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let records_all: Vec<Bytes> = groups.iter().map(|g| record(g)).collect();
    let config = LogConfig::default();
    let filled = Instant::now();
    {
        let log = Arc::new(SegmentLog::open(dir.path(), config.clone()).expect("open"));
        let all = Arc::new(records_all.clone());
        concurrently(records, None, move |i| {
            let (log, all) = (log.clone(), all.clone());
            async move {
                log.append(vec![all[i % all.len()].clone()])
                    .await
                    .expect("append");
            }
        })
        .await;
    }
    let log = SegmentLog::open(dir.path(), config.clone()).expect("open");
    let mut i = 0;
    while active_len(dir.path()) + 2 * records_all[0].len() as u64 + 16 <= config.segment_bytes {
        log.append(vec![records_all[i % records_all.len()].clone()])
            .await
            .expect("top up");
        i += 1;
    }
    let size = log.end() - log.first();
    drop(log);
    let filled = filled.elapsed();

    let warm = timed_open(dir.path(), &config).await;
    evict(dir.path());
    let cold = timed_open(dir.path(), &config).await;
    let read_back = read_everything(dir.path(), &config);
    println!();
    println!(
        "Reopen: {} records ({:.0} MB, {} segments, the last {:.1} MiB) written in {:.1} s.",
        records + i,
        size as f64 / 1e6,
        segments(dir.path()).len(),
        active_len(dir.path()) as f64 / (1 << 20) as f64,
        filled.as_secs_f64()
    );
    println!();
    println!("| reopen | open (scan of the last segment) | first append after open | total |");
    println!("|---|---:|---:|---:|");
    for (name, (open, append)) in [
        ("page cache warm", warm),
        ("files evicted from the page cache", cold),
    ] {
        println!(
            "| {name} | {:.0} ms | {:.1} ms | {:.0} ms |",
            open.as_secs_f64() * 1e3,
            append.as_secs_f64() * 1e3,
            (open + append).as_secs_f64() * 1e3
        );
    }
    let (count, bytes, took) = read_back;
    println!();
    println!(
        "Read back (256 records or 4 MiB per read; all but the last segment evicted, so from disk): {count} records, {:.0} MB in {:.2} s: {:.0} MB/s, {:.0} events/s.",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        bytes as f64 / 1e6 / took.as_secs_f64(),
        (count * EVENTS_PER_RECORD) as f64 / took.as_secs_f64()
    );
}

/// Reads the whole log back as a consumer would (256 records or 4 MiB per read), from the
/// disk (the files were evicted); returns the records, bytes and time.
fn read_everything(dir: &Path, config: &LogConfig) -> (usize, u64, Duration) {
    let log = SegmentLog::open(dir, config.clone()).expect("reopen");
    let started = Instant::now();
    let (mut position, mut records, mut bytes) = (log.first(), 0, 0);
    while position < log.end() {
        let batch = log.read_blocking(position, 256, 4 << 20).expect("read");
        records += batch.len();
        bytes += batch.iter().map(|r| r.payload.len() as u64).sum::<u64>();
        position = batch.last().expect("progress").next;
    }
    (records, bytes, started.elapsed())
}

/// Opens the log and appends once: until then it is not serving.
async fn timed_open(dir: &Path, config: &LogConfig) -> (Duration, Duration) {
    let started = Instant::now();
    let log = SegmentLog::open(dir, config.clone()).expect("reopen");
    let open = started.elapsed();
    let started = Instant::now();
    log.append(vec![Bytes::from_static(b"{}")])
        .await
        .expect("append");
    (open, started.elapsed())
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn active_len(dir: &Path) -> u64 {
    segments(dir)
        .last()
        .map_or(0, |f| std::fs::metadata(f).expect("stat").len())
}

/// Drops the log's files from the page cache (GNU dd's `nocache`), leaving the rest alone.
fn evict(dir: &Path) {
    for file in segments(dir) {
        let status = std::process::Command::new("dd")
            .arg(format!("if={}", file.display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()
            .expect("dd");
        assert!(status.success(), "dd nocache");
    }
}
