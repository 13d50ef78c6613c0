//! The JavaScript functions benchmark. In one run, over the sample events: a regex-based PII
//! scrub written as Segment users write one (`examples/pii-scrub-js`) in three phases
//! (pass-through `return event`, the walk over every string without the regular expressions,
//! the whole scrub) and the port of the Rust scanners (`examples/pii-filter-js`), each on a
//! warm sluice instance and, with the same code and events, in isolated-vm (V8, as RudderStack
//! and Jitsu run user JavaScript); the ratio, mean fuel per event, and whether the outputs are
//! identical. Then a fresh instance per event, the Rust PII filter, the one-time compilation
//! of the engine and the upload of new code until it is ready to run.
//!
//! Run: `scripts/build-components && cargo bench -p sluice-tests --bench javascript`
//! (`SLUICE_BENCH_PASSES`, default 3: each mode keeps its best pass; `SLUICE_BENCH_JS_ENGINE`,
//! a js-engine component file to measure instead of the built-in one). isolated-vm is installed
//! into `tests/benches/isolated-vm/node_modules` (git-ignored) on the first run; it needs `node`
//! and `npm` (its native module is built with `npm_config_nodedir=/usr`). Without them the V8
//! columns say why they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_runtime::engine::{Function, Isolation, JsEngine, Limits, Outcome};
use sluice_runtime::storage::{ComponentStore, open_db};
use sluice_tests::{
    bench_passes, engine, example_js, function, median, sample_events, workspace_root,
};

/// The scrub with `scrubString` made the identity: what is left is the walk over every string.
const WALK_ONLY: &str = "\n// bench: the walk without the regular expressions\n\
                         function scrubString(text) { return text; }\n";

/// A handler per event type that forwards the event unchanged.
const PASS_THROUGH: &str = "function onTrack(event) { return event; }\n\
    function onIdentify(event) { return event; }\nfunction onPage(event) { return event; }\n\
    function onScreen(event) { return event; }\nfunction onGroup(event) { return event; }\n\
    function onAlias(event) { return event; }\n";

/// One JavaScript case measured in sluice and in V8.
struct Case {
    name: &'static str,
    code: String,
    /// The target for sluice's warm time, as a ratio to V8's or in us/event.
    target: Target,
}

enum Target {
    None,
    RatioToV8(f64),
    MicrosPerEvent(f64),
}

/// What one case measured.
struct Measured {
    sluice_us: f64,
    fuel: f64,
    outputs: Vec<String>,
}

fn main() {
    let passes = bench_passes();
    let events = sample_events();
    let n = events.len();
    let bytes: usize = events.iter().map(String::len).sum();
    // A busy machine must not turn a slow event into a deadline error: fuel still bounds it.
    let limits = Limits {
        deadline: Duration::from_secs(5),
        ..Limits::default()
    };
    let engine = engine();
    let scrub = example_js("pii-scrub-js");

    // `SLUICE_BENCH_JS_ENGINE=<component.wasm>` measures another build of the engine (say, with
    // another allocator) without rebuilding the runtime that embeds one.
    let other = std::env::var_os("SLUICE_BENCH_JS_ENGINE")
        .map(|path| std::fs::read(&path).expect("the SLUICE_BENCH_JS_ENGINE file"));
    let start = Instant::now();
    let js = match &other {
        Some(wasm) => JsEngine::compile(engine.clone(), wasm).expect("a js-engine component"),
        None => JsEngine::builtin(engine.clone()).expect("the runtime has its JavaScript engine"),
    };
    let engine_compile = start.elapsed();
    let size = other
        .as_deref()
        .or(JsEngine::builtin_wasm())
        .map_or(0, <[u8]>::len);

    let cases = [
        Case {
            name: "pass-through (`return event`)",
            code: PASS_THROUGH.to_string(),
            target: Target::None,
        },
        Case {
            name: "pii-scrub-js, walk without regexes",
            code: format!("{scrub}{WALK_ONLY}"),
            target: Target::None,
        },
        Case {
            name: "pii-scrub-js, whole scrub",
            code: scrub.clone(),
            target: Target::RatioToV8(3.0),
        },
        Case {
            name: "pii-filter-js",
            code: example_js("pii-filter-js"),
            target: Target::MicrosPerEvent(150.0),
        },
    ];
    let scratch = tempfile::tempdir().expect("temp dir");
    let events_file = scratch.path().join("events.jsonl");
    std::fs::write(&events_file, events.join("\n") + "\n").expect("events file");
    let v8 = IsolatedVm::ready();

    println!(
        "{n} events, {:.0} bytes/event on average, best of {passes} passes\n",
        bytes as f64 / n as f64
    );
    println!(
        "| warm instance | sluice us/event | fuel/event | isolated-vm (V8) us/event | ratio | outputs identical | target | met? |"
    );
    println!("|---|---:|---:|---:|---:|---|---|---|");
    let mut whole_scrub_outputs = None;
    for (index, case) in cases.iter().enumerate() {
        let f = js.function(&case.code).expect("compiles");
        let measured = warm(&f, &events, &limits, passes);
        let v8_run = v8.as_ref().map_err(Clone::clone).and_then(|v8| {
            let code_file = scratch.path().join(format!("case{index}.js"));
            std::fs::write(&code_file, &case.code).map_err(|e| e.to_string())?;
            v8.run(&code_file, &events_file, passes)
        });
        report(case, &measured, v8_run);
        if case.code == scrub {
            whole_scrub_outputs = Some(measured.outputs);
        }
    }

    // `handle-batch` (what `sluice run` calls): one call per BATCH events instead of one per
    // event, so the per-call cost (the host's call into the instance) shows as the difference.
    let scrub_fn = js.function(&scrub).expect("compiles");
    let batched = warm_batched(&scrub_fn, &events, &limits, passes);
    let same = whole_scrub_outputs.as_ref() == Some(&batched.outputs);
    println!(
        "| pii-scrub-js, whole scrub, `handle-batch` of {BATCH} | {:.1} | {:.0} | | | {} | | |",
        batched.sluice_us,
        batched.fuel,
        if same {
            "same as one by one"
        } else {
            "**no**: differs from one by one"
        }
    );

    let fresh_events = &events[..500.min(n)];
    let mut fresh = Duration::MAX;
    for _ in 0..passes {
        let start = Instant::now();
        for event in fresh_events {
            let run = scrub_fn.invoke(event, "{}", &limits, Isolation::Fresh);
            assert!(matches!(run.result, Ok(Outcome::Forward { .. })));
        }
        fresh = fresh.min(start.elapsed());
    }
    let rust_fn = function(&engine, "pii-filter");
    let rust = warm(&rust_fn, &events, &limits, passes);
    let upload = upload_to_ready(&engine, &scrub, &events[0], &limits);

    println!("\n| measure | result | target | met? |");
    println!("|---|---:|---|---|");
    println!(
        "| Rust pii-filter (component), warm instance, us/event | {:.1} | - | |",
        rust.sluice_us
    );
    let fresh_ms = fresh.as_secs_f64() * 1e3 / fresh_events.len() as f64;
    println!(
        "| pii-scrub-js, fresh instance per event (start, load code, run), ms/event | {fresh_ms:.2} | <= 1 | {} |",
        met(fresh_ms <= 1.0)
    );
    let upload_ms = upload.as_secs_f64() * 1e3;
    println!(
        "| upload new code to ready-to-run (check, store, load, first event), ms | {upload_ms:.1} | <= 11.8 (unchanged) | {} |",
        met(upload_ms <= 11.8)
    );
    println!(
        "| engine component ({} KiB) compiled with Cranelift, once per host, ms | {:.0} | - | |",
        size / 1024,
        engine_compile.as_secs_f64() * 1e3
    );
}

/// Events per `handle-batch` call in the batched row.
const BATCH: usize = 100;

/// As [`warm`], with the events handed over [`BATCH`] at a time through `handle-batch`.
fn warm_batched(f: &Function, events: &[String], limits: &Limits, passes: usize) -> Measured {
    let mut best = Duration::MAX;
    let mut fuel = 0;
    let mut outputs = Vec::with_capacity(events.len());
    for _ in 0..passes {
        outputs.clear();
        fuel = 0;
        let start = Instant::now();
        for chunk in events.chunks(BATCH) {
            let run = f.invoke_batch(chunk, "{}", limits, Isolation::default());
            fuel += run.fuel_used;
            outputs.extend(run.results.into_iter().map(shown));
        }
        best = best.min(start.elapsed());
    }
    Measured {
        sluice_us: best.as_secs_f64() * 1e6 / events.len() as f64,
        fuel: fuel as f64 / events.len() as f64,
        outputs,
    }
}

/// An invocation's result as the comparison reads it: the forwarded JSON, `drop`, or
/// `error: ...`.
fn shown<E: std::fmt::Debug>(result: Result<Outcome, E>) -> String {
    match result {
        Ok(Outcome::Forward { event }) => event,
        Ok(Outcome::Drop) => "drop".to_string(),
        other => format!("error: {other:?}"),
    }
}

fn met(yes: bool) -> &'static str {
    if yes { "yes" } else { "**no**" }
}

/// Runs every event through `f` on one warm instance; the best pass's time per event, the mean
/// fuel, and the outputs (forwarded JSON, `drop`, or `error: ...`).
fn warm(f: &Function, events: &[String], limits: &Limits, passes: usize) -> Measured {
    let mut best = Duration::MAX;
    let mut fuel = 0;
    let mut outputs = Vec::with_capacity(events.len());
    for _ in 0..passes {
        outputs.clear();
        fuel = 0;
        let start = Instant::now();
        for event in events {
            let run = f.invoke(event, "{}", limits, Isolation::default());
            fuel += run.fuel_used;
            outputs.push(shown(run.result));
        }
        best = best.min(start.elapsed());
    }
    Measured {
        sluice_us: best.as_secs_f64() * 1e6 / events.len() as f64,
        fuel: fuel as f64 / events.len() as f64,
        outputs,
    }
}

fn report(case: &Case, measured: &Measured, v8: Result<(f64, Vec<String>), String>) {
    let (v8_us, ratio, identical) = match &v8 {
        Ok((us, outputs)) => {
            let mut pairs = outputs
                .iter()
                .zip(&measured.outputs)
                .filter(|(a, b)| a != b);
            if let Some((v8, sluice)) = pairs.clone().next() {
                eprintln!(
                    "{}: first difference\n  V8:     {v8}\n  sluice: {sluice}",
                    case.name
                );
            }
            let differ = pairs.by_ref().count() + outputs.len().abs_diff(measured.outputs.len());
            let identical = if differ == 0 {
                "yes".to_string()
            } else {
                format!("**no** ({differ} differ)")
            };
            (
                format!("{us:.1}"),
                format!("{:.1}x", measured.sluice_us / us),
                identical,
            )
        }
        Err(why) => (format!("unavailable: {why}"), "-".into(), "-".into()),
    };
    let (target, ok) = match case.target {
        Target::None => ("-".to_string(), String::new()),
        Target::RatioToV8(max) => (
            format!("<= {max:.1}x V8"),
            v8.as_ref()
                .map(|(us, _)| met(measured.sluice_us / us <= max).to_string())
                .unwrap_or_default(),
        ),
        Target::MicrosPerEvent(max) => (
            format!("<= {max:.0} us"),
            met(measured.sluice_us <= max).to_string(),
        ),
    };
    println!(
        "| {} | {:.1} | {:.0} | {v8_us} | {ratio} | {identical} | {target} | {ok} |",
        case.name, measured.sluice_us, measured.fuel
    );
}

/// Upload to ready-to-run: new code each time (so nothing is deduplicated), on a store whose
/// engine artifact is already in place, as on a running server. The median of 10.
fn upload_to_ready(
    engine: &std::sync::Arc<sluice_runtime::engine::Engine>,
    code: &str,
    event: &str,
    limits: &Limits,
) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path()).expect("db");
    let store = ComponentStore::open(&db, engine.clone()).expect("store");
    store.js_engine().expect("engine");
    median(
        (0..10)
            .map(|i| {
                let variant = format!("{code}\n// upload {i}\n");
                let start = Instant::now();
                let stored = store.put_script(&variant).expect("stored");
                let f = store.function(&stored.digest).expect("ready");
                let run = f.invoke(event, "{}", limits, Isolation::default());
                assert!(matches!(run.result, Ok(Outcome::Forward { .. })));
                start.elapsed()
            })
            .collect(),
    )
}

/// The isolated-vm runner (`tests/benches/isolated-vm/run.js`), installed.
struct IsolatedVm {
    dir: PathBuf,
}

impl IsolatedVm {
    /// Installs isolated-vm when missing; `Err` says why V8 cannot be measured.
    fn ready() -> Result<IsolatedVm, String> {
        let dir = workspace_root().join("tests/benches/isolated-vm");
        if !dir
            .join("node_modules/isolated-vm/out/isolated_vm.node")
            .exists()
        {
            eprintln!("installing isolated-vm into {} ...", dir.display());
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .env("npm_config_nodedir", "/usr")
                .current_dir(&dir)
                .status()
                .map_err(|e| format!("cannot run npm: {e}"))?;
            if !status.success() {
                return Err(format!("npm install failed ({status})"));
            }
        }
        Ok(IsolatedVm { dir })
    }

    /// Runs `code` over the events: V8's best us/event and the outputs.
    fn run(&self, code: &Path, events: &Path, passes: usize) -> Result<(f64, Vec<String>), String> {
        let out = code.with_extension("out.jsonl");
        let output = Command::new("node")
            .arg(self.dir.join("run.js"))
            .arg(code)
            .arg(events)
            .arg(&out)
            .arg(passes.to_string())
            .output()
            .map_err(|e| format!("cannot run node: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
        let us = report["usPerEvent"]
            .as_f64()
            .ok_or("no usPerEvent in the runner's report")?;
        let outputs = std::fs::read_to_string(&out)
            .map_err(|e| e.to_string())?
            .lines()
            .map(str::to_string)
            .collect();
        Ok((us, outputs))
    }
}
