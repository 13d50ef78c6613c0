//! The network engine: functions that may use outgoing HTTP (destination and source
//! functions) run here, on a second wasmtime engine whose calls are asynchronous, so that a
//! function waiting on the network suspends its fiber instead of holding an OS thread.
//!
//! Why a second engine rather than the first made async: insert functions are the hot path
//! (tens of microseconds an event, pooled instances, one blocking thread per chunk); they
//! never wait and keep their synchronous calls and their `pollable.block` that fails
//! (`blocked`). Here waiting is the point: `wasi:io/poll` suspends the fiber, the wall-clock
//! deadline is a timer around the call, fuel still bounds CPU, and the epoch yields to the
//! executor every tick so that a busy guest cannot starve the others. Instances are
//! allocated on demand (no pool to exhaust: a thousand requests in flight are a thousand
//! suspended instances, a few MiB of mostly virtual memory each).
//!
//! Cost model: [`NetEngine::new`] starts a ticker thread; [`NetEngine::compile`] is a
//! Cranelift compilation (hundreds of milliseconds); [`NetFunction::invoke`] costs an
//! instantiation when no warm instance is idle, then the guest's work and its requests.

mod function;
mod policy;
mod send;
mod state;

use std::sync::Arc;

use wasmtime::component::{Component, InstancePre, Linker};

pub use function::{NetCode, NetFunction};
pub use policy::{AllowedHost, HttpLimits, HttpPolicy, HttpRefusal, PolicyError, is_internal};
pub use state::NetState;

use super::{EngineConfig, EngineError, Script, Ticker, UploadError};

/// The asynchronous engine and its linker: WASI (nothing granted, waiting allowed),
/// `wasi:http` behind each function's [`HttpPolicy`], and sluice's host interface. One per
/// process, shared.
pub struct NetEngine {
    wasmtime: wasmtime::Engine,
    linker: Linker<NetState>,
    ticker: Ticker,
}

impl NetEngine {
    /// Starts the engine (same compiler settings as the insert-function engine, on-demand
    /// allocation) and its epoch ticker thread.
    ///
    /// # Errors
    /// wasmtime refuses the configuration, or an interface cannot be linked.
    pub fn new(config: &EngineConfig) -> Result<Arc<NetEngine>, EngineError> {
        let wasmtime = wasmtime::Engine::new(&super::wasmtime_config(config, false))
            .map_err(|e| EngineError(e.to_string()))?;
        let mut linker = Linker::new(&wasmtime);
        state::add_to_linker(&mut linker).map_err(|e| EngineError(format!("linking: {e:#}")))?;
        let ticker = Ticker::start(wasmtime.clone());
        Ok(Arc::new(NetEngine {
            wasmtime,
            linker,
            ticker,
        }))
    }

    /// Validates and compiles a component that may import `wasi:http`, and links it. Costs a
    /// Cranelift compilation.
    ///
    /// # Errors
    /// As [`super::Engine::compile`]: not a component, unknown imports, not the world.
    pub fn compile(self: &Arc<Self>, wasm: &[u8]) -> Result<NetCode, UploadError> {
        super::compile::check_header(wasm)?;
        let component = Component::new(&self.wasmtime, wasm)
            .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
        self.link(&component)
    }

    /// Links an already compiled component (see [`NetEngine::compile`]).
    ///
    /// # Errors
    /// Unknown imports, or not the insert-function world's exports.
    pub fn link(self: &Arc<Self>, component: &Component) -> Result<NetCode, UploadError> {
        let pre = self.instantiate_pre(component, is_allowed_import)?;
        NetCode::new(self.clone(), pre, None)
    }

    /// Compiles the JavaScript engine component (`wasm`, the one built into this binary) for
    /// this engine: Cranelift time, about a second; once per process.
    ///
    /// # Errors
    /// The bytes are not the engine component of this build's contract.
    pub fn javascript(self: &Arc<Self>, wasm: &[u8]) -> Result<NetJavaScript, UploadError> {
        let component = Component::new(&self.wasmtime, wasm)
            .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
        let pre = self.instantiate_pre(&component, |name| {
            is_allowed_import(name) || name.starts_with("sluice:function/script@0.1.")
        })?;
        Ok(NetJavaScript {
            engine: self.clone(),
            pre,
        })
    }

    fn instantiate_pre(
        &self,
        component: &Component,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<InstancePre<NetState>, UploadError> {
        super::compile::check_imports(&self.wasmtime, component, allowed)?;
        self.linker
            .instantiate_pre(component)
            .map_err(|e| UploadError::WrongWorld(format!("{e:#}")))
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.wasmtime
    }
}

/// The JavaScript engine component linked on the network engine: makes the [`NetCode`] of
/// destination and source functions written in JavaScript. Cheap to clone.
#[derive(Clone)]
pub struct NetJavaScript {
    engine: Arc<NetEngine>,
    pre: InstancePre<NetState>,
}

impl NetJavaScript {
    /// The code of a JavaScript function: every instance is the engine running `script`
    /// (whose bytecode, if any, must be this engine build's for its code). Costs nothing
    /// until an instance starts.
    ///
    /// # Errors
    /// The engine component lacks the exports a function needs.
    pub fn code(&self, script: Script) -> Result<NetCode, UploadError> {
        NetCode::new(self.engine.clone(), self.pre.clone(), Some(script))
    }
}

impl Drop for NetEngine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// What a network function may import: what an insert function may, plus `wasi:http`.
fn is_allowed_import(name: &str) -> bool {
    super::compile::is_allowed_import(name) || super::compile::is_http(name)
}
