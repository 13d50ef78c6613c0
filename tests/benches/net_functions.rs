//! Destination functions that POST each event to an API (issue 16): events/s and the
//! process's threads with 1, 100 and 1,000 invocations in flight, for a JavaScript function
//! (`fetch`) and the Rust component `examples/http-post` (`wasi:http`), on the network engine.
//! The receiver on loopback answers each request after a fixed latency (an API's round trip),
//! so concurrency is what throughput comes from; the threads show that a request in flight
//! costs a suspended fiber, not a thread.
//!
//! Run: `cargo bench -p sluice-tests --bench net_functions` (`SLUICE_BENCH_LATENCY_MS`,
//! default 20, the receiver's latency; `SLUICE_BENCH_PASSES`, default 3, best pass kept).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::json;
use sluice_runtime::engine::net::{HttpLimits, NetCode, NetEngine, NetFunction};
use sluice_runtime::engine::{EngineConfig, FunctionKind, JsEngine, Limits, Outcome, Script};
use sluice_tests::{bench_passes, component, threads};

const EVENT: &str = r#"{"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1","properties":{"total":10}}"#;

const JS: &str = r#"
async function onTrack(event, settings) {
  const response = await fetch(settings.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(event),
  });
  if (!response.ok) throw new RetryError(`status ${response.status}`);
}
"#;

/// A receiver answering 200 after `latency`: its address.
async fn receiver(latency: Duration) -> std::net::SocketAddr {
    let app = Router::new().route(
        "/events",
        post(move || async move {
            tokio::time::sleep(latency).await;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Pass {
    per_second: f64,
    peak_threads: usize,
}

/// `code` as a destination sending to `addr`, allowed `in_flight` requests at once (and
/// keeping as many warm instances).
fn destination(code: &NetCode, addr: std::net::SocketAddr, in_flight: usize) -> Arc<NetFunction> {
    let settings =
        json!({"url": format!("http://{addr}/events"), "allowedHosts": [addr.to_string()]});
    // A loaded 2-core machine may hold a response longer than the default 5 s.
    let http = HttpLimits {
        max_in_flight: in_flight,
        timeout: Duration::from_secs(30),
        ..HttpLimits::default()
    };
    Arc::new(
        code.function(&settings.to_string(), http)
            .expect("valid settings"),
    )
}

/// `events` invocations of `function`, `in_flight` at a time.
async fn pass(function: &Arc<NetFunction>, in_flight: usize, events: usize) -> Pass {
    let limits = Limits {
        fuel: 500_000_000,
        deadline: Duration::from_secs(30),
        ..Limits::default()
    };
    let next = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(threads()));
    let done = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while done.load(Ordering::SeqCst) < in_flight {
                peak.fetch_max(threads(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (function, next, done, limits) =
                (function.clone(), next.clone(), done.clone(), limits.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < events {
                    let invocation = function.invoke(EVENT, &limits).await;
                    if !matches!(
                        invocation.result,
                        Ok(Outcome::Drop | Outcome::Forward { .. })
                    ) {
                        panic!("the function failed: {:?}", invocation.result);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker");
    }
    let seconds = started.elapsed().as_secs_f64();
    watcher.await.expect("the watcher");
    Pass {
        per_second: events as f64 / seconds,
        peak_threads: peak.load(Ordering::SeqCst),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let latency_ms: u64 = std::env::var("SLUICE_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let addr = receiver(Duration::from_millis(latency_ms)).await;
    let engine = NetEngine::new(&EngineConfig::default()).expect("the network engine starts");
    let wasm = JsEngine::builtin_wasm().expect("built with the JavaScript engine");
    let javascript = engine.javascript(wasm).expect("the engine links");
    let codes = [
        (
            "JavaScript (fetch)",
            javascript
                .code(Script::new(JS, Arc::from([]), FunctionKind::Destination))
                .expect("the code"),
        ),
        (
            "Rust component (wasi:http)",
            engine
                .compile(&component("http-post"))
                .expect("http-post compiles"),
        ),
    ];
    println!(
        "receiver latency {latency_ms} ms; 2 tokio workers; best of {} passes; threads before: {}",
        bench_passes(),
        threads()
    );
    for (label, code) in &codes {
        for in_flight in [1usize, 100, 1000] {
            // Enough events for each worker to make several round trips.
            let events = (in_flight * 5).max(200);
            let function = destination(code, addr, in_flight);
            // The first round instantiates `in_flight` instances: not what is measured.
            pass(&function, in_flight, in_flight).await;
            let mut best: Option<Pass> = None;
            for _ in 0..bench_passes() {
                let p = pass(&function, in_flight, events).await;
                if best.as_ref().is_none_or(|b| p.per_second > b.per_second) {
                    best = Some(p);
                }
            }
            let best = best.expect("at least one pass");
            println!(
                "{label:<28} {in_flight:>5} in flight: {:>8.0} events/s, peak threads {}",
                best.per_second, best.peak_threads
            );
        }
    }
}
