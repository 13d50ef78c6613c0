//! The data plane end to end: batches of the sample events through ingestion (durable
//! acknowledgement), the `pii-filter` insert function and delivery to a local webhook
//! receiver; next to an axum handler that only reads the body (the HTTP ceiling). Then: the
//! acknowledgement latency at half the delivered rate, a restart over a log holding a million
//! events, and memory under a burst ten times what the pipeline delivers. For the full-load and
//! half-load runs it also prints where the server's time went per request (`/metrics`'
//! `sluice_ingest_phase_seconds`: parse, dedup, pace, append; `http` is the whole request).
//!
//! Run: `scripts/build-components && cargo bench -p sluice-tests --bench dataplane`
//! (`SLUICE_BENCH_EVENTS`, default 50,000, sets how many events the throughput run sends;
//! `SLUICE_BENCH_WEBHOOK_BATCH`, default 100, the webhook's `batchSize`: 1 sends a request per
//! event; `SLUICE_BENCH_RECOVERY_EVENTS`, default 1,000,000, the events in the log at restart;
//! `SLUICE_BENCH_PIPELINE_LEAD` and `SLUICE_BENCH_PIPELINE_NICE` override the server's
//! `pipeline_lead` (default 48) and `pipeline_nice` (default 10); `SLUICE_BENCH_LOCKSTEP=1`
//! starts the paced clients' ticks together, as before 2026-12-01, instead of spread).

#[path = "../tests/api_support/mod.rs"]
mod api_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_support::Server;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sluice_runtime::api::Config;
use sluice_runtime::dataplane::DataPlaneConfig;
use sluice_tests::{component, sample_events};

/// The allocator the `sluice` binary uses, so the bench measures what users run.
#[global_allocator]
static ALLOCATOR: sluice_runtime::Allocator = sluice_runtime::Allocator;

const BATCH: usize = 100;
const CLIENTS: usize = 8;

/// A webhook batch as the receiver reads it: every event is parsed (validated) and counted,
/// without building a tree of it (a receiver that stores the body keeps the bytes).
#[derive(serde::Deserialize)]
struct Received {
    batch: Vec<serde::de::IgnoredAny>,
}

/// A receiver that counts the events it gets: one per body, or the length of a body's
/// `batch` array.
async fn counter() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let shared = count.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                let events = if body.starts_with(b"{\"batch\"") {
                    serde_json::from_slice::<Received>(&body).map_or(0, |r| r.batch.len())
                } else {
                    1
                };
                shared.fetch_add(events as u64, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

/// The batch bodies: every event gets a fresh `messageId`, so none is deduplicated.
fn batches(events: &[Value], total: usize, round: &str) -> Vec<String> {
    (0..total)
        .map(|i| {
            let mut event = events[i % events.len()].clone();
            event["messageId"] = json!(format!("{round}-{i}"));
            event
        })
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|chunk| json!({"batch": chunk}).to_string())
        .collect()
}

/// Sends every body from `CLIENTS` concurrent clients, each waiting for its answer; with
/// `interval`, each client paces itself to one request per interval, the clients' ticks
/// spread evenly over it (a steady arrival rate, as from many independent senders, rather
/// than all eight requests at the same instant). Returns each request's latency and the wall
/// time.
async fn send(
    url: &str,
    auth: &str,
    bodies: Vec<String>,
    interval: Option<Duration>,
) -> (Vec<Duration>, Duration) {
    let client = reqwest::Client::new();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let (client, bodies, next, url, auth) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            url.to_string(),
            auth.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut tick = interval.map(|every| {
                let spread = std::env::var_os("SLUICE_BENCH_LOCKSTEP").is_none();
                let share = if spread { client_index as f64 } else { 0.0 };
                let offset = every.mul_f64(share / CLIENTS as f64);
                tokio::time::interval_at(tokio::time::Instant::now() + offset, every)
            });
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                if let Some(tick) = tick.as_mut() {
                    tick.tick().await;
                }
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the request is answered");
                assert!(response.status().is_success(), "{}", response.status());
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    (latencies, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("SLUICE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let webhook_batch: u64 = std::env::var("SLUICE_BENCH_WEBHOOK_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let events: Vec<Value> = sample_events()
        .iter()
        .map(|e| serde_json::from_str(e).expect("JSON"))
        .collect();

    // The floor under every acknowledgement: the device's own fdatasync of one request's worth
    // of bytes, in the same file system as the server's data.
    let floor = sync_floor(&std::env::temp_dir());

    // The ceiling: the same clients and bodies against a handler that only reads the body.
    let (ceiling_url, ceiling_count) = counter().await;
    let (_, ceiling_time) = send(&ceiling_url, "-", batches(&events, total, "ceiling"), None).await;
    assert_eq!(ceiling_count.load(Ordering::Relaxed) as usize, total);

    // sluice: a source with the pii-filter attached and a webhook to a counting receiver.
    let dir = tempfile::tempdir().expect("temp dir");
    let defaults = DataPlaneConfig::default();
    let pipeline_lead = std::env::var("SLUICE_BENCH_PIPELINE_LEAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(defaults.pipeline_lead);
    let pipeline_nice = std::env::var("SLUICE_BENCH_PIPELINE_NICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(defaults.pipeline_nice);
    let config = Config {
        data_plane: DataPlaneConfig {
            queue_bound: 10_000_000,
            pipeline_lead,
            pipeline_nice,
            ..defaults
        },
        ..Config::default()
    };
    let server = Server::start_with(dir.path(), config).await;
    let (hook_url, delivered) = counter().await;
    let (ingest, auth) = pipeline(&server, &hook_url, webhook_batch).await;

    // Throughput: as fast as the clients can go, until the receiver has every event. The
    // bodies are made before the clock starts, as `send` does for its own timing.
    let bodies = batches(&events, total, "max");
    let before_full = Scrape::of(&server).await;
    let started = Instant::now();
    let (mut acks, ack_time) = send(&ingest, &auth, bodies, None).await;
    let delivered_by_last_ack = delivered.load(Ordering::Relaxed) as usize;
    while (delivered.load(Ordering::Relaxed) as usize) < total {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "deliveries stalled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end_to_end = started.elapsed();
    acks.sort();
    let full_phases = Scrape::of(&server).await.since(&before_full);

    // Latency at half the delivered rate, after the backlog is delivered.
    let ack_rate = total as f64 / ack_time.as_secs_f64();
    let delivered_rate = total as f64 / end_to_end.as_secs_f64();
    let half_rate_batches = delivered_rate / 2.0 / BATCH as f64;
    let interval = Duration::from_secs_f64(CLIENTS as f64 / half_rate_batches);
    let half_total = (delivered_rate / 2.0 * 5.0) as usize; // about five seconds of traffic
    let before_half = Scrape::of(&server).await;
    let (mut half, _) = send(
        &ingest,
        &auth,
        batches(&events, half_total.max(BATCH), "half"),
        Some(interval),
    )
    .await;
    half.sort();
    let half_phases = Scrape::of(&server).await.since(&before_half);

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{total} events in batches of {BATCH} from {CLIENTS} concurrent clients, webhook batchSize {webhook_batch}, pipeline_lead {pipeline_lead}, pipeline_nice {pipeline_nice}\n"
    );
    println!("| measure | result | target |");
    println!("|---|---:|---|");
    println!(
        "| HTTP ceiling (axum handler that reads the body), events/s | {:.0} | - |",
        rate(total, ceiling_time)
    );
    println!(
        "| acknowledged (durable) by sluice, events/s | {:.0} | - |",
        rate(total, ack_time)
    );
    println!(
        "| delivered end to end (ingest, pii-filter, webhook), events/s | {:.0} | >= 25,000 |",
        rate(total, end_to_end)
    );
    println!(
        "| delivered / acknowledged (delivered by the last ack over acknowledged; rate ratio) | {:.2}; {:.2} | >= 0.9 |",
        delivered_by_last_ack as f64 / total as f64,
        delivered_rate / ack_rate
    );
    println!(
        "| ack latency per batch at full load, p50 / p99 | {:.1} / {:.1} ms | - |",
        ms(percentile(&acks, 0.5)),
        ms(percentile(&acks, 0.99))
    );
    println!(
        "| the device's fdatasync of a 100 KB append (the floor under any ack), p50 / p99 | {:.1} / {:.1} ms | - |",
        ms(floor.0),
        ms(floor.1)
    );
    println!(
        "| ack latency per batch at half the delivered rate ({:.0} events/s), p50 / p99 | {:.1} / {:.1} ms | p99 <= 10 ms |",
        delivered_rate / 2.0,
        ms(percentile(&half, 0.5)),
        ms(percentile(&half, 0.99))
    );
    print_phases("at full load", &full_phases);
    print_phases("at half the delivered rate", &half_phases);

    server.stop().await;

    // A burst ten times the delivered rate for about three seconds, on a server with the
    // default queue bound: back-pressure (429) keeps memory bounded.
    let burst = (delivered_rate * 10.0 * 3.0) as usize;
    let bodies = batches(&events, burst, "burst");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let (hook_url, _) = counter().await;
    let (ingest, auth) = pipeline(&server, &hook_url, webhook_batch).await;
    let before = rss_mib();
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_mib() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (accepted, refused) = burst_send(&ingest, &auth, bodies).await;
    sampler.abort();
    println!(
        "| burst of {burst} events (10x the delivered rate for ~3 s), default queue bound: accepted / refused 429 | {accepted} / {refused} | - |"
    );
    println!(
        "| RSS before the burst / peak during it | {before:.0} / {} MiB | bounded |",
        peak.load(Ordering::Relaxed)
    );
    server.stop().await;

    restart().await;
}

/// The bench's pipeline on `server`: a source with the `pii-filter` attached and a webhook
/// (batches of `webhook_batch`) to `hook_url`; the tracking URL and its authorization.
async fn pipeline(server: &Server, hook_url: &str, webhook_batch: u64) -> (String, String) {
    let source = server.source("bench").await;
    let key = server.write_key(&source).await;
    let wasm = STANDARD.encode(component("pii-filter"));
    let function = server
        .post(
            "/functions",
            json!({"displayName": "pii", "resourceType": "INSERT_SOURCE", "wasm": wasm}),
        )
        .await;
    let function = function.data()["function"]["id"]
        .as_str()
        .expect("function id")
        .to_string();
    server
        .post(&format!("/functions/{function}/deploy"), json!({}))
        .await;
    server
        .post(
            "/insert-function-instances",
            json!({"functionId": function, "integrationId": source, "settings": {}}),
        )
        .await;
    server
        .post(
            "/destinations",
            json!({"sourceId": source, "metadataId": "webhook", "name": "bench",
                "settings": {"url": hook_url, "batchSize": webhook_batch}}),
        )
        .await;
    let ingest = format!("{}/v1/batch", server.url);
    let auth = format!("Basic {}", STANDARD.encode(format!("{key}:")));
    (ingest, auth)
}

/// p50 and p99 of `fdatasync` after appending 100 KB (one request of 100 ~1 KB events) to a
/// file in `dir`: no durable acknowledgement can be quicker than one of these.
fn sync_floor(dir: &std::path::Path) -> (Duration, Duration) {
    use std::io::Write;
    let file = tempfile::tempfile_in(dir).expect("temp file");
    let mut file = std::io::BufWriter::new(file);
    let chunk = vec![b'x'; 100 * 1024];
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        file.write_all(&chunk).expect("write");
        file.flush().expect("flush");
        let started = Instant::now();
        file.get_ref().sync_data().expect("fdatasync");
        times.push(started.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// Resident memory of this process, MiB (the server runs in it).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Sends every body once from `CLIENTS` clients, not waiting on 429s; (accepted, refused).
async fn burst_send(url: &str, auth: &str, bodies: Vec<String>) -> (usize, usize) {
    let client = reqwest::Client::new();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let (ok, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, bodies, next, url, auth) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            url.to_string(),
            auth.to_string(),
        );
        let (ok, refused) = (ok.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                let response = client
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the request is answered");
                match response.status().as_u16() {
                    200 => ok.fetch_add(BATCH as u64, Ordering::Relaxed),
                    429 => refused.fetch_add(BATCH as u64, Ordering::Relaxed),
                    other => panic!("burst answered {other}"),
                };
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    (
        ok.load(Ordering::Relaxed) as usize,
        refused.load(Ordering::Relaxed) as usize,
    )
}

/// A data directory whose ingest log holds a million events (as after a `kill -9` with that
/// backlog): how long until the server answers `/readyz` again.
async fn restart() {
    let n: usize = std::env::var("SLUICE_BENCH_RECOVERY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    {
        use sluice_runtime::dataplane::event::{Batch, Event, EventType};
        use sluice_runtime::log::{EventLog, LogConfig, SegmentLog};
        let log = SegmentLog::open(
            dir.path().join("log").join("ingest"),
            LogConfig {
                consumers: vec!["pipeline".into()],
                ..LogConfig::default()
            },
        )
        .expect("log");
        let event = sample_events()[0].clone();
        let record = Batch {
            source_id: "gone".into(),
            events: (0..BATCH)
                .map(|i| Event {
                    message_id: format!("m-{i}"),
                    kind: EventType::Track,
                    json: event.clone().into_bytes().into(),
                })
                .collect(),
        }
        .encode();
        for _ in 0..n / BATCH / 100 {
            log.append(vec![record.clone(); 100]).await.expect("append");
        }
    }
    let started = Instant::now();
    let server = Server::start(dir.path()).await;
    let ready = format!("{}/readyz", server.url);
    while !reqwest::get(&ready)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "| restart with {n} events in the log: open to /readyz answering | {:.0} ms | <= 2,000 ms |",
        ms(started.elapsed())
    );
    server.stop().await;
}

/// A scrape of the server's ingestion histograms: per series (a phase of
/// `sluice_ingest_phase_seconds`, or `http` for `POST /v1/batch`'s whole time), its cumulative
/// bucket counts by upper bound, its sum and its count.
#[derive(Default, Clone)]
struct Scrape {
    series: std::collections::BTreeMap<String, Histogram>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

const PHASES: [&str; 5] = ["parse", "dedup", "pace", "append", "http"];

impl Scrape {
    async fn of(server: &Server) -> Scrape {
        let text = reqwest::get(format!("{}/metrics", server.url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let mut scrape = Scrape::default();
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let key = if name.starts_with("sluice_ingest_phase_seconds") {
                PHASES
                    .iter()
                    .find(|p| name.contains(&format!("phase=\"{p}\"")))
            } else if name.starts_with("sluice_http_request_duration_seconds")
                && name.contains("route=\"/v1/batch\"")
            {
                Some(&"http")
            } else {
                None
            };
            let Some(key) = key else { continue };
            let h = scrape.series.entry(key.to_string()).or_default();
            if name.contains("_bucket{") {
                let le = name.split("le=\"").nth(1).and_then(|r| r.split('"').next());
                let le = match le {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => v.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                h.buckets.push((le, value));
            } else if name.contains("_sum") {
                h.sum = value;
            } else if name.contains("_count") {
                h.count = value;
            }
        }
        scrape
    }

    /// What was recorded since `before`: per series, mean, p50 and p99 (bucket upper bounds), ms.
    fn since(&self, before: &Scrape) -> Vec<(String, f64, f64, f64)> {
        PHASES
            .iter()
            .filter_map(|p| {
                let now = self.series.get(*p)?;
                let then = before.series.get(*p).cloned().unwrap_or_default();
                let count = now.count - then.count;
                if count <= 0.0 {
                    return None;
                }
                let at = |q: f64| {
                    now.buckets
                        .iter()
                        .find(|(le, n)| {
                            let old = then
                                .buckets
                                .iter()
                                .find(|(l, _)| l == le)
                                .map_or(0.0, |(_, n)| *n);
                            n - old >= q * count
                        })
                        .map_or(f64::INFINITY, |(le, _)| le * 1e3)
                };
                Some((
                    p.to_string(),
                    (now.sum - then.sum) / count * 1e3,
                    at(0.5),
                    at(0.99),
                ))
            })
            .collect()
    }
}

fn print_phases(label: &str, phases: &[(String, f64, f64, f64)]) {
    let cells: Vec<String> = phases
        .iter()
        .map(|(p, mean, p50, p99)| format!("{p} {mean:.2} / {p50} / {p99}"))
        .collect();
    println!(
        "| {label}: server-side phases, mean / p50 <= / p99 <= (bucket bounds), ms | {} | - |",
        cells.join("; ")
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
