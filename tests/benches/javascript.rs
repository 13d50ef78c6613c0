//! The JavaScript functions benchmark: the JavaScript PII filter (`examples/pii-filter-js`) on
//! a warm instance and on a fresh instance per event, next to the Rust PII filter; the one-time
//! compilation of the engine; and the upload of new code until it is ready to run.
//!
//! Run: `scripts/build-components && cargo bench -p sluice-tests --bench javascript`
//! (`SLUICE_BENCH_PASSES`, default 3: each mode keeps its best pass).

use std::time::{Duration, Instant};

use sluice_runtime::engine::{Isolation, JsEngine, Limits, Outcome};
use sluice_runtime::storage::{ComponentStore, open_db};
use sluice_tests::{bench_passes, engine, example_js, function, median, sample_events};

fn main() {
    let passes = bench_passes();
    let events = sample_events();
    let n = events.len();
    let bytes: usize = events.iter().map(String::len).sum();
    let limits = Limits::default();
    let engine = engine();
    let code = example_js("pii-filter-js");

    let start = Instant::now();
    let js = JsEngine::builtin(engine.clone()).expect("the runtime has its JavaScript engine");
    let engine_compile = start.elapsed();
    let size = JsEngine::builtin_wasm().map_or(0, <[u8]>::len);

    // Upload to ready-to-run: new code each time (so nothing is deduplicated), on a store whose
    // engine artifact is already in place, as on a running server.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path()).expect("db");
    let store = ComponentStore::open(&db, engine.clone()).expect("store");
    store.js_engine().expect("engine");
    let upload = median(
        (0..10)
            .map(|i| {
                let variant = format!("{code}\n// upload {i}\n");
                let start = Instant::now();
                let stored = store.put_script(&variant).expect("stored");
                let f = store.function(&stored.digest).expect("ready");
                let run = f.invoke(&events[0], "{}", &limits, Isolation::default());
                assert!(matches!(run.result, Ok(Outcome::Forward { .. })));
                start.elapsed()
            })
            .collect(),
    );

    let js_fn = js.function(&code).expect("compiles");
    let rust_fn = function(&engine, "pii-filter");
    let fresh_events = &events[..500.min(n)];
    let mut best = [Duration::MAX; 3];
    for _ in 0..passes {
        for (slot, f) in [(0, &rust_fn), (1, &js_fn)] {
            let start = Instant::now();
            for event in &events {
                let run = f.invoke(event, "{}", &limits, Isolation::default());
                assert!(
                    matches!(run.result, Ok(Outcome::Forward { .. })),
                    "{:?}",
                    run.result
                );
            }
            best[slot] = best[slot].min(start.elapsed());
        }
        let start = Instant::now();
        for event in fresh_events {
            let run = js_fn.invoke(event, "{}", &limits, Isolation::Fresh);
            assert!(
                matches!(run.result, Ok(Outcome::Forward { .. })),
                "{:?}",
                run.result
            );
        }
        best[2] = best[2].min(start.elapsed());
    }
    let [rust_warm, js_warm, js_fresh] = best;
    let us = |d: Duration, k: usize| d.as_secs_f64() * 1e6 / k as f64;
    println!(
        "{n} events, {:.0} bytes/event on average, best of {passes} passes\n",
        bytes as f64 / n as f64
    );
    println!("| measure | result | target | met? |");
    println!("|---|---:|---|---|");
    println!(
        "| Rust pii-filter, warm instance, us/event | {:.1} | - | |",
        us(rust_warm, n)
    );
    let warm = us(js_warm, n);
    println!(
        "| JavaScript pii-filter-js, warm instance, us/event | {warm:.1} | <= 40 | {} |",
        if warm <= 40.0 { "yes" } else { "**no**" }
    );
    let fresh = us(js_fresh, fresh_events.len()) / 1e3;
    println!(
        "| JavaScript, fresh instance per event (start, parse, run), ms/event | {fresh:.2} | <= 5 | {} |",
        if fresh <= 5.0 { "yes" } else { "**no**" }
    );
    let upload_ms = upload.as_secs_f64() * 1e3;
    println!(
        "| upload new code to ready-to-run (check, store, load, first event), ms | {upload_ms:.1} | <= 1000 | {} |",
        if upload_ms <= 1000.0 { "yes" } else { "**no**" }
    );
    println!(
        "| engine component ({} KiB) compiled with Cranelift, once per host, ms | {:.0} | - | |",
        size / 1024,
        engine_compile.as_secs_f64() * 1e3
    );
}
