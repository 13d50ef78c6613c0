//! Pre-initialises the JavaScript engine component: instantiates it, calls its
//! `wizer-initialize` export (QuickJS runtime, context, prelude, RegExp and JSON natives; no
//! user code), and writes a component whose memory and globals start in that state
//! (wasmtime-wizer). `scripts/build-components` runs it after the build.
//!
//! Usage: `sluice-js-snapshot <engine.wasm> <snapshot.wasm>`. Costs two Cranelift
//! compilations of the engine (a few seconds), once per build of the engine.

use std::future::Future;
use std::pin::pin;
use std::process::ExitCode;
use std::task::{Context, Poll, Waker};

use anyhow::{Context as _, Result, anyhow};
use sluice_host_api::js::sluice::function::script;
use sluice_host_api::sluice::function::host;
use wasmtime::component::{Component, HasSelf, Instance, Linker, ResourceTable, WasmList};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The export the snapshot is taken after (world `js-engine-build`).
const INIT: &str = "wizer-initialize";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: sluice-js-snapshot <engine.wasm> <snapshot.wasm>");
        return ExitCode::from(2);
    };
    match snapshot_file(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sluice-js-snapshot: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn snapshot_file(input: &str, output: &str) -> Result<()> {
    let wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let snapshot = snapshot(&wasm)?;
    // Written beside and renamed, so a concurrent build never embeds half a file.
    let partial = format!("{output}.partial");
    std::fs::write(&partial, &snapshot).with_context(|| format!("writing {partial}"))?;
    std::fs::rename(&partial, output).with_context(|| format!("renaming to {output}"))?;
    Ok(())
}

/// The engine component `wasm`, snapshotted after its `wizer-initialize`.
fn snapshot(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut wizer = Wizer::new();
    // Removing the export breaks wizer 48's rewrite of a component (the lifted function still
    // names the core export it drops); kept, it is a no-op on the snapshot (see the engine's
    // `initialize`), and the host never calls it.
    wizer.keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(wasm)
        .map_err(|e| anyhow!("{e:#}"))
        .context("instrumenting the engine component")?;
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).map_err(|e| anyhow!("{e:#}"))?;
    let component = Component::new(&engine, &instrumented)
        .map_err(|e| anyhow!("{e:#}"))
        .context("compiling the instrumented engine")?;
    let mut linker = Linker::<Sandbox>::new(&engine);
    // QuickJS reads the clock and Rust's HashMap a seed while setting up; nothing else is
    // granted. The engine's own imports (`host`, `script`) must not be called during set-up:
    // they fail here (see `Sandbox`).
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow!("{e:#}"))?;
    sluice_host_api::js::JsEngine::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
        .map_err(|e| anyhow!("{e:#}"))?;
    // `wasi:http` (the engine's `fetch`) must not be used during set-up: it fails here.
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
        .map_err(|e| anyhow!("{e:#}"))?;
    let mut store = Store::new(&engine, Sandbox::new());
    let instance = linker
        .instantiate(&mut store, &component)
        .map_err(|e| anyhow!("{e:#}"))
        .context("instantiating the engine")?;
    let init = instance
        .get_typed_func::<(), ()>(&mut store, INIT)
        .map_err(|e| anyhow!("{e:#}"))
        .with_context(|| format!("the engine has no `{INIT}` export (world js-engine-build)"))?;
    init.call(&mut store, ())
        .map_err(|e| anyhow!("{e:#}"))
        .with_context(|| format!("the engine's `{INIT}` trapped"))?;
    let mut state = Access {
        store: &mut store,
        instance,
    };
    block_on(wizer.snapshot_component(&cx, &mut state))
        .map_err(|e| anyhow!("{e:#}"))
        .context("snapshotting the engine")
}

/// WASI granting nothing (no files, environment, network or stdio).
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: NoRequests,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            wasi: WasiCtxBuilder::new()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NoRequests,
        }
    }
}

/// The engine's set-up must not ask for the function's code, settings or log: it would
/// capture one function's state in every instance. Each of these fails the snapshot.
impl host::Host for Sandbox {
    fn log(&mut self, _level: host::Level, message: String) {
        panic!("the engine logged during set-up: {message}");
    }

    fn settings(&mut self) -> String {
        panic!("the engine read settings during set-up");
    }

    fn now_ms(&mut self) -> u64 {
        panic!("the engine read the host clock during set-up");
    }
}

impl script::Host for Sandbox {
    fn source(&mut self) -> String {
        panic!("the engine read the code during set-up");
    }

    fn bytecode(&mut self) -> Vec<u8> {
        panic!("the engine read the bytecode during set-up");
    }

    fn kind(&mut self) -> script::FunctionKind {
        panic!("the engine read its function's kind during set-up");
    }

    fn abort(&mut self, reason: script::AbortReason) -> wasmtime::Result<()> {
        Err(wasmtime::format_err!(
            "the engine aborted during set-up: {reason:?}"
        ))
    }
}

impl sluice_host_api::sluice::function::types::Host for Sandbox {}

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

/// `wasi:http` during set-up: a request fails the snapshot, like the engine's other imports.
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
        panic!("the engine sent an HTTP request during set-up");
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What wizer reads the initialised state through: the accessor functions its
/// instrumentation exported, called synchronously.
struct Access<'a> {
    store: &'a mut Store<Sandbox>,
    instance: Instance,
}

impl Access<'_> {
    /// Calls `instance#func`, a `() -> R` accessor. The accessors are wizer's own exports of
    /// the instrumented component, so a missing one or a trap is a bug in wizer: panic.
    fn call<R>(&mut self, instance: &str, func: &str) -> R
    where
        R: wasmtime::component::ComponentType + wasmtime::component::Lift + Send + Sync + 'static,
    {
        let store = &mut *self.store;
        let (_, exported) = self
            .instance
            .get_export(&mut *store, None, instance)
            .unwrap_or_else(|| panic!("wizer's instrumentation exports {instance}"));
        let (_, index) = self
            .instance
            .get_export(&mut *store, Some(&exported), func)
            .unwrap_or_else(|| panic!("wizer's instrumentation exports {instance}#{func}"));
        let typed = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *store, index)
            .unwrap_or_else(|e| panic!("{instance}#{func} has wizer's type: {e}"));
        let (ret,) = typed
            .call(&mut *store, ())
            .unwrap_or_else(|e| panic!("{instance}#{func} trapped: {e}"));
        ret
    }
}

impl ComponentInstanceState for Access<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let list: WasmList<u8> = self.call(instance, func);
        contents(list.as_le_slice(&*self.store));
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).to_bits()
    }
}

/// Runs a future that never waits (every call above is synchronous) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
