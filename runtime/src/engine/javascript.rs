//! JavaScript functions: one engine component (QuickJS built for `wasm32-wasip2`, see
//! `js-engine/`) compiled to machine code once per host, plus each function's code, handed to
//! every instance through the `script` interface.
//!
//! Why not a component per function (pre-initialized with its code)? Each would need its own
//! Cranelift compilation of the whole engine (over a second); here uploading code costs one
//! parse-and-run of its top level in a fresh instance (about a millisecond), which also
//! compiles it to QuickJS bytecode: the store keeps that beside the code, and fresh instances
//! (of the engine's build-time snapshot, QuickJS already set up) load it instead of parsing.

use std::sync::Arc;
use std::time::Duration;

pub use sluice_host_api::js::sluice::function::script::FunctionKind;
use sluice_host_api::js::sluice::function::script::SyntaxError;
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
    /// by `digest_of(code)`, whose instances run the bytecode compiled here. Costs one fresh
    /// instance: the code's parse and top level plus writing its bytecode, about a
    /// millisecond for a small function.
    ///
    /// # Errors
    /// [`JsCodeError::Syntax`] with where and why, or how the check failed in the sandbox.
    pub fn function(&self, code: &str) -> Result<Function, JsCodeError> {
        Ok(self.function_with_bytecode(code)?.0)
    }

    /// As [`JsEngine::function`], also giving the bytecode (for the store: see
    /// [`JsEngine::function_from_bytecode`]). Empty if the engine could not write it; its
    /// instances then parse the code.
    ///
    /// # Errors
    /// As [`JsEngine::function`].
    pub fn function_with_bytecode(&self, code: &str) -> Result<(Function, Arc<[u8]>), JsCodeError> {
        let bytecode: Arc<[u8]> = Arc::from(self.compile_code(code)?);
        let script = Script::insert(code, bytecode.clone());
        Ok((self.function_of(code, script), bytecode))
    }

    /// The function of `code` whose instances run `bytecode` without checking anything: costs
    /// no instance. `bytecode` must be what [`JsEngine::function_with_bytecode`] gave for this
    /// `code` with this engine (same [`JsEngine::digest`]): QuickJS does not verify bytecode,
    /// so bytes from anywhere else can crash or subvert the function's own sandbox.
    pub fn function_from_bytecode(&self, code: &str, bytecode: Arc<[u8]>) -> Function {
        self.function_of(code, Script::insert(code, bytecode))
    }

    fn function_of(&self, code: &str, script: Script) -> Function {
        Function::script(
            self.engine.clone(),
            digest_of(code),
            self.pre.clone(),
            script,
        )
    }

    /// Runs the engine's `check` export on `code` in a fresh instance.
    ///
    /// # Errors
    /// As [`JsEngine::function`].
    pub fn check(&self, code: &str) -> Result<(), JsCodeError> {
        let (mut store, bindings) = self.fresh(code)?;
        let checked = bindings.call_check(&mut store);
        settle(checked, &store)
    }

    /// Runs the engine's `compile` export on `code` in a fresh instance: its bytecode.
    fn compile_code(&self, code: &str) -> Result<Vec<u8>, JsCodeError> {
        let (mut store, bindings) = self.fresh(code)?;
        let compiled = bindings.call_compile(&mut store);
        settle(compiled, &store)
    }

    /// A fresh instance for code that is being checked, under [`check_limits`].
    fn fresh(&self, code: &str) -> Result<(Store<HostState>, JsBindings), JsCodeError> {
        let limits = check_limits();
        let ticks = limits.deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        let script = Script::insert(code, Arc::from([]));
        let mut store = new_store(&self.engine, HostState::with_script(script), &limits, ticks);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
        Ok((store, bindings))
    }
}

/// What a JavaScript function's engine instances are given through the `script` interface:
/// the code and, when the store has it, its bytecode, and which of Segment's models it
/// follows. Cheap to clone.
#[derive(Clone)]
pub struct Script {
    /// The code as uploaded.
    pub(crate) code: Arc<str>,
    /// Its bytecode from this engine build's `compile`, or empty (the engine then parses).
    pub(crate) bytecode: Arc<[u8]>,
    /// Insert, destination or source function.
    pub(crate) kind: FunctionKind,
}

impl Script {
    /// The code of an insert function (bytecode may be empty).
    pub(crate) fn insert(code: &str, bytecode: Arc<[u8]>) -> Script {
        Script::new(code, bytecode, FunctionKind::Insert)
    }

    /// The code of a function of `kind`; `bytecode` must be this engine build's for `code`,
    /// or empty.
    pub fn new(code: &str, bytecode: Arc<[u8]>, kind: FunctionKind) -> Script {
        Script {
            code: Arc::from(code),
            bytecode,
            kind,
        }
    }
}

/// The result of a `check` or `compile` call, with the code's syntax error by name.
fn settle<T>(
    called: wasmtime::Result<Result<T, SyntaxError>>,
    store: &Store<HostState>,
) -> Result<T, JsCodeError> {
    match called {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(syntax)) => Err(JsCodeError::Syntax {
            line: syntax.line,
            column: syntax.column,
            message: syntax.message,
        }),
        Err(err) => Err(classify(&err, store.data(), &check_limits()).into()),
    }
}

/// A new engine instance running `script`, started: its code loaded and its top level run
/// (the `check` export), under `limits` and `ticks`.
///
/// # Errors
/// [`JsCodeError::Syntax`] for code that does not compile, [`JsCodeError::Invoke`] for a
/// failed instantiation or a trap while starting.
pub(crate) fn start(
    engine: &Engine,
    pre: &JsEnginePre<HostState>,
    script: Script,
    limits: &Limits,
    ticks: u64,
) -> Result<(Store<HostState>, JsBindings), JsCodeError> {
    let mut store = new_store(engine, HostState::with_script(script), limits, ticks);
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
