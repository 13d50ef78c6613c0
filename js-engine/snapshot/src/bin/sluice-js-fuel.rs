//! Measures the guest fuel a JavaScript function spends per event on one warm instance of an
//! engine build: the exact, noise-free counterpart of the bench's wall times (BENCHMARKS.md,
//! issue 11), without building the runtime. Uses the snapshot tool's wasmtime, so it costs no
//! build of its own beyond this file.
//!
//! Usage: `sluice-js-fuel <engine.snapshot.wasm> <events.jsonl> <code.js>...`. For each code
//! file: a fresh instance of the engine, its `check` (start-up, not counted), then `handle` on
//! every event in order, `passes` times over (`SLUICE_FUEL_PASSES`, default 1) on the same
//! instance; prints the mean fuel per event of the first pass (all events, so the first
//! events' pattern compilations are included, as in the bench), the best pass's wall time
//! per event (the same Cranelift code as the runtime's, fuel metering included; only as
//! quiet as the machine), how many calls did not return an event, and a digest of every
//! output (so two engine builds can be shown to give the same outputs). With
//! `SLUICE_FUEL_OUTPUTS=<file>`, the first pass's outputs are also written there, one line per
//! event (of the last code file given).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use sluice_host_api::js::JsEngine;
use sluice_host_api::js::sluice::function::script;
use sluice_host_api::sluice::function::host;
use sluice_host_api::sluice::function::types::Outcome;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// Fuel for one call: far above any event's, so only an endless loop runs out.
const FUEL_PER_CALL: u64 = 10_000_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [engine, events, codes @ ..] = args.as_slice() else {
        eprintln!("usage: sluice-js-fuel <engine.snapshot.wasm> <events.jsonl> <code.js>...");
        return ExitCode::from(2);
    };
    match measure_all(engine, events, codes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sluice-js-fuel: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn measure_all(engine_file: &str, events_file: &str, codes: &[String]) -> Result<()> {
    let wasm = std::fs::read(engine_file).with_context(|| format!("reading {engine_file}"))?;
    let events =
        std::fs::read_to_string(events_file).with_context(|| format!("reading {events_file}"))?;
    let events: Vec<&str> = events.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut config = Config::new();
    config.wasm_component_model(true).consume_fuel(true);
    let engine = Engine::new(&config).map_err(|e| anyhow!("{e:#}"))?;
    let component = Component::new(&engine, &wasm)
        .map_err(|e| anyhow!("{e:#}"))
        .context("compiling the engine")?;
    let mut linker = Linker::<Sandbox>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow!("{e:#}"))?;
    JsEngine::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
        .map_err(|e| anyhow!("{e:#}"))?;
    // `wasi:http` (the engine's `fetch`): an insert function's engine refuses it before
    // asking; a request would fail here.
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
        .map_err(|e| anyhow!("{e:#}"))?;
    let passes = std::env::var("SLUICE_FUEL_PASSES")
        .ok()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    println!(
        "| code | events | fuel/event | us/event (best of {passes}) | not forwarded | outputs digest |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for code_file in codes {
        let code =
            std::fs::read_to_string(code_file).with_context(|| format!("reading {code_file}"))?;
        let measured = measure(&engine, &linker, &component, code, &events, passes)
            .with_context(|| format!("running {code_file}"))?;
        let n = events.len().max(1) as f64;
        println!(
            "| {code_file} | {} | {:.0} | {:.1} | {} | {:016x} |",
            events.len(),
            measured.fuel as f64 / n,
            measured.best.as_secs_f64() * 1e6 / n,
            measured.dropped,
            measured.digest
        );
    }
    Ok(())
}

/// What [`measure`] found.
struct Measured {
    /// Fuel of the first pass over the events.
    fuel: u64,
    /// The fastest pass's wall time.
    best: Duration,
    /// Calls of the first pass that did not forward an event.
    dropped: usize,
    /// The first pass's outputs, hashed in order (SipHash with fixed keys).
    digest: u64,
}

/// `handle` over `events`, `passes` times, on one warm instance running `code`.
fn measure(
    engine: &Engine,
    linker: &Linker<Sandbox>,
    component: &Component,
    code: String,
    events: &[&str],
    passes: usize,
) -> Result<Measured> {
    let mut store = Store::new(engine, Sandbox::new(code));
    store
        .set_fuel(FUEL_PER_CALL)
        .map_err(|e| anyhow!("{e:#}"))?;
    let bindings = JsEngine::instantiate(&mut store, component, linker)
        .map_err(|e| anyhow!("{e:#}"))
        .context("instantiating the engine")?;
    bindings
        .call_check(&mut store)
        .map_err(|e| anyhow!("{e:#}"))?
        .map_err(|syntax| anyhow!("syntax error: {}", syntax.message))?;
    let mut measured = Measured {
        fuel: 0,
        best: Duration::MAX,
        dropped: 0,
        digest: 0,
    };
    let mut digest = DefaultHasher::new();
    let mut outputs = Vec::new();
    for pass in 0..passes {
        let start = Instant::now();
        for event in events {
            store
                .set_fuel(FUEL_PER_CALL)
                .map_err(|e| anyhow!("{e:#}"))?;
            let outcome = bindings
                .call_handle(&mut store, event)
                .map_err(|e| anyhow!("{e:#}"))?;
            if pass == 0 {
                measured.fuel += FUEL_PER_CALL - store.get_fuel().map_err(|e| anyhow!("{e:#}"))?;
                let output = match outcome {
                    Outcome::Forward(json) => json,
                    other => {
                        measured.dropped += 1;
                        format!("{other:?}")
                    }
                };
                output.hash(&mut digest);
                outputs.push(output);
            }
        }
        measured.best = measured.best.min(start.elapsed());
    }
    measured.digest = digest.finish();
    if let Some(path) = std::env::var_os("SLUICE_FUEL_OUTPUTS") {
        std::fs::write(&path, outputs.join("\n") + "\n").context("writing the outputs")?;
    }
    Ok(measured)
}

/// WASI granting nothing; the function's code as `script.source`, no bytecode, no settings.
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: NoRequests,
    code: String,
}

impl Sandbox {
    fn new(code: String) -> Sandbox {
        Sandbox {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NoRequests,
            code,
        }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// The future a request's completion is reported on (`wasi:http`'s hook signature).
type Completion = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;

/// `wasi:http` refused: insert functions have no network (their engine refuses `fetch`
/// before asking, so this is not reached).
struct NoRequests;

impl WasiHttpHooks for NoRequests {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Completion,
    ) -> Box<
        dyn std::future::Future<Output = Result<(http::Response<WasiBody>, Completion), HttpError>>
            + Send,
    > {
        let refused = std::io::Error::other("no network here");
        Box::new(async { Err(HttpError::Connect(refused)) })
    }
}

impl host::Host for Sandbox {
    fn log(&mut self, _level: host::Level, _message: String) {}

    fn settings(&mut self) -> String {
        "{}".to_string()
    }

    fn now_ms(&mut self) -> u64 {
        0
    }
}

impl script::Host for Sandbox {
    fn source(&mut self) -> String {
        self.code.clone()
    }

    fn bytecode(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn kind(&mut self) -> script::FunctionKind {
        script::FunctionKind::Insert
    }

    fn abort(&mut self, reason: script::AbortReason) -> wasmtime::Result<()> {
        Err(wasmtime::format_err!("the engine aborted: {reason:?}"))
    }
}

impl sluice_host_api::sluice::function::types::Host for Sandbox {}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
