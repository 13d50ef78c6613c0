//! JavaScript functions: one engine component (QuickJS built for `wasm32-wasip2`, see
//! `js-engine/`) compiled to machine code once per host, plus each function's code, handed to
//! every instance through the `script` interface.
//!
//! Why not a component per function (pre-initialized with its code)? Each would need its own
//! Cranelift compilation of the whole engine (over a second); here uploading code costs one
//! parse-and-run of its top level in a fresh instance (about a millisecond).

use std::sync::Arc;
use std::time::Duration;

use sluice_host_api::js::{JsEngine as JsBindings, JsEnginePre};
use wasmtime::Store;
use wasmtime::component::Component;

use super::function::{classify, new_store};
use super::{EPOCH_TICK, Engine, Function, HostState, InvokeError, Limits, UploadError};

/// The engine component built into this binary (by `scripts/build-components`, before the
/// runtime is compiled), or `None` when it was not built.
#[cfg(sluice_js_engine)]
const BUILTIN: Option<&[u8]> = Some(include_bytes!(env!("SLUICE_JS_ENGINE_WASM")));
#[cfg(not(sluice_js_engine))]
const BUILTIN: Option<&[u8]> = None;

/// Bounds for checking uploaded code: its top level runs once, like any handler would.
fn check_limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(500),
        ..Limits::default()
    }
}

/// Why JavaScript code was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum JsCodeError {
    /// The code does not parse, or its top level throws.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line in the code.
        line: u32,
        /// 1-based column in the code.
        column: u32,
        /// The parser's message.
        message: String,
    },
    /// Checking the code failed in the sandbox (its top level ran out of fuel, say).
    #[error("the code's top level failed: {0}")]
    Invoke(#[from] InvokeError),
    /// The engine component itself was refused (a build of it for another contract).
    #[error("the built-in JavaScript engine is unusable: {0}")]
    Engine(#[from] UploadError),
    /// This binary was built without the engine component.
    #[error(
        "this sluice was built without its JavaScript engine: run scripts/build-components, then build sluice again"
    )]
    Unavailable,
}

/// The JavaScript engine component, compiled and linked: makes [`Function`]s from code.
/// Cheap to share; [`JsEngine::function`] costs one fresh instance that parses the code.
pub struct JsEngine {
    engine: Arc<Engine>,
    digest: String,
    pre: JsEnginePre<HostState>,
}

impl JsEngine {
    /// The engine component built into this binary, if any (about 1 MB of WebAssembly).
    pub fn builtin_wasm() -> Option<&'static [u8]> {
        BUILTIN
    }

    /// Compiles the engine component built into this binary with Cranelift (over a second; see
    /// [`crate::storage::ComponentStore`] for the stored artifact that avoids it).
    ///
    /// # Errors
    /// [`JsCodeError::Unavailable`] without a built-in engine, [`JsCodeError::Engine`] if it
    /// does not fit this host's contract.
    pub fn builtin(engine: Arc<Engine>) -> Result<JsEngine, JsCodeError> {
        let wasm = Self::builtin_wasm().ok_or(JsCodeError::Unavailable)?;
        Ok(Self::compile(engine, wasm)?)
    }

    /// Compiles an engine component from its bytes.
    ///
    /// # Errors
    /// The bytes are not a component of the `js-engine` world.
    pub fn compile(engine: Arc<Engine>, wasm: &[u8]) -> Result<JsEngine, UploadError> {
        let component = Component::new(engine.wasmtime(), wasm)
            .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
        engine.count_compile();
        Self::from_component(engine, super::digest_hex(wasm), &component)
    }

    /// An engine from an already compiled component (a stored artifact) whose bytes have
    /// `digest`.
    ///
    /// # Errors
    /// The component is not of the `js-engine` world.
    pub fn from_component(
        engine: Arc<Engine>,
        digest: String,
        component: &Component,
    ) -> Result<JsEngine, UploadError> {
        let pre = engine.link_js(component)?;
        Ok(JsEngine {
            engine,
            digest,
            pre,
        })
    }

    /// The blake3 digest (hex) of the engine component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Checks `code` (it must parse and its top level must run) and makes it a function named
    /// by `digest_of(code)`. Costs one fresh instance: the engine's start plus the code's
    /// parse, about a millisecond for a small function.
    ///
    /// # Errors
    /// [`JsCodeError::Syntax`] with where and why, or how the check failed in the sandbox.
    pub fn function(&self, code: &str) -> Result<Function, JsCodeError> {
        self.check(code)?;
        Ok(Function::script(
            self.engine.clone(),
            digest_of(code),
            self.pre.clone(),
            Arc::from(code),
        ))
    }

    /// Runs the engine's `check` export on `code` in a fresh instance.
    ///
    /// # Errors
    /// As [`JsEngine::function`].
    pub fn check(&self, code: &str) -> Result<(), JsCodeError> {
        let limits = check_limits();
        let ticks = limits.deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        start(&self.engine, &self.pre, Arc::from(code), &limits, ticks).map(|_| ())
    }
}

/// A new engine instance running `code`, started: its code parsed and its top level run (the
/// `check` export), under `limits` and `ticks`.
///
/// # Errors
/// [`JsCodeError::Syntax`] for code that does not compile, [`JsCodeError::Invoke`] for a
/// failed instantiation or a trap while starting.
pub(crate) fn start(
    engine: &Engine,
    pre: &JsEnginePre<HostState>,
    code: Arc<str>,
    limits: &Limits,
    ticks: u64,
) -> Result<(Store<HostState>, JsBindings), JsCodeError> {
    let mut store = new_store(engine, HostState::with_script(code), limits, ticks);
    let bindings = pre
        .instantiate(&mut store)
        .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
    match bindings.call_check(&mut store) {
        Ok(Ok(())) => Ok((store, bindings)),
        Ok(Err(syntax)) => Err(JsCodeError::Syntax {
            line: syntax.line,
            column: syntax.column,
            message: syntax.message,
        }),
        Err(err) => Err(classify(&err, store.data(), limits).into()),
    }
}

/// The name of JavaScript code in storage: blake3 of its UTF-8 bytes, hex.
pub fn digest_of(code: &str) -> String {
    super::digest_hex(code.as_bytes())
}
