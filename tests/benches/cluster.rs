//! Clustering's cost and its scaling, on real `sluice serve` processes: the same events sent
//! to one node on its local log, one node on NATS JetStream, then two and three nodes on
//! JetStream. This machine is CPU-bound (2 cores for every node, NATS and the clients), so
//! beside throughput it reports each node's CPU time per event (utime + stime from
//! `/proc/<pid>/stat`), from which BENCHMARKS.md computes what separate machines would do.
//! The bench runs its own `nats-server` (JetStream on a temporary store) so that its CPU is
//! measured too. No insert function: this measures the log, the workspace and delivery.
//!
//! Run: `cargo bench -p sluice-tests --bench cluster` (needs `nats-server` on the PATH;
//! `SLUICE_BENCH_EVENTS`, default 20,000, events per pass; `SLUICE_BENCH_PASSES`, default 2,
//! the best pass is reported).

#[path = "../tests/cluster_support/mod.rs"]
mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;
use serde_json::{Value, json};

const BATCH: usize = 100;
const CLIENTS: usize = 4;

/// Clock ticks per second of `/proc/<pid>/stat` (Linux's USER_HZ).
const TICKS: f64 = 100.0;

fn main() {
    let events: usize = std::env::var("SLUICE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let passes: usize = std::env::var("SLUICE_BENCH_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let nats = OwnNats::start();
    println!(
        "{events} events per pass (batches of {BATCH}, {CLIENTS} clients), best of {passes}; \
         CPU in microseconds per event"
    );
    for (label, nodes, cluster) in [
        ("local log, 1 node", 1, false),
        ("JetStream, 1 node", 1, true),
        ("JetStream, 2 nodes", 2, true),
        ("JetStream, 3 nodes", 3, true),
    ] {
        let best = (0..passes)
            .map(|_| run(&nats, nodes, cluster, events))
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
            .expect("at least one pass");
        let per_node: Vec<String> = best
            .node_cpu
            .iter()
            .map(|c| format!("{:.0}", c * 1e6 / events as f64))
            .collect();
        let total: f64 = best.node_cpu.iter().sum();
        println!(
            "{label:<20} {:>8.0} events/s  node CPU/event [{}] total {:.0} us  nats {:.0} us",
            events as f64 / best.seconds,
            per_node.join(", "),
            total * 1e6 / events as f64,
            best.nats_cpu * 1e6 / events as f64,
        );
    }
}

/// One pass's measurements.
struct Pass {
    seconds: f64,
    /// CPU seconds of each node during the pass.
    node_cpu: Vec<f64>,
    /// CPU seconds of the NATS server during the pass.
    nats_cpu: f64,
}

fn run(nats: &OwnNats, nodes: usize, cluster: bool, events: usize) -> Pass {
    let prefix = unique_prefix("bench");
    let dirs: Vec<_> = (0..nodes)
        .map(|_| tempfile::tempdir().expect("a dir"))
        .collect();
    let started: Vec<Node> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let name = format!("n{i}");
            if cluster {
                start_node(&name, d.path(), &nats.url(), &prefix, 30)
            } else {
                start_local(&name, d.path())
            }
        })
        .collect();
    let (hook, seen) = receiver();
    let (source, key) = source_to(&started[0], "bench", &hook);
    for node in &started {
        assert!(eventually(Duration::from_secs(5), || {
            api(node, "GET", &format!("/sources/{source}"), None).status == 200
        }));
    }
    let bodies: Vec<Value> = (0..events / BATCH)
        .map(|b| {
            let list: Vec<Value> = (0..BATCH)
                .map(|i| {
                    json!({"type": "track", "event": "Order Completed", "userId": format!("user-{i}"),
                           "messageId": format!("{prefix}-{b}-{i}"),
                           "properties": {"orderId": format!("o-{b}-{i}"), "total": 42.5, "currency": "EUR",
                                          "products": [{"sku": "a-1", "price": 20}, {"sku": "b-2", "price": 22.5}]}})
                })
                .collect();
            json!({ "batch": list })
        })
        .collect();
    let cpu_before: Vec<f64> = started.iter().map(|n| cpu_seconds(n.child.id())).collect();
    let nats_before = cpu_seconds(nats.pid());
    let clock = Instant::now();
    let addresses: Vec<String> = started.iter().map(|n| n.address.clone()).collect();
    let chunks: Vec<Vec<Value>> = (0..CLIENTS)
        .map(|c| bodies.iter().skip(c).step_by(CLIENTS).cloned().collect())
        .collect();
    let clients: Vec<_> = chunks
        .into_iter()
        .enumerate()
        .map(|(c, mine)| {
            let (addresses, auth) = (addresses.clone(), basic(&key));
            std::thread::spawn(move || {
                for (n, body) in mine.iter().enumerate() {
                    let address = &addresses[(c + n) % addresses.len()];
                    loop {
                        match call(address, "POST", "/v1/batch", &auth, Some(body)) {
                            Some(r) if r.status == 200 => break,
                            _ => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client");
    }
    let delivered = eventually(Duration::from_secs(600), || {
        seen.lock().expect("lock").times.len() >= events
    });
    assert!(delivered, "every event delivered");
    let seconds = clock.elapsed().as_secs_f64();
    let node_cpu = started
        .iter()
        .zip(cpu_before)
        .map(|(n, before)| cpu_seconds(n.child.id()) - before)
        .collect();
    let nats_cpu = cpu_seconds(nats.pid()) - nats_before;
    Pass {
        seconds,
        node_cpu,
        nats_cpu,
    }
}

/// User plus system CPU time of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its `)`).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counted from the state.
    (ticks(11) + ticks(12)) / TICKS
}
