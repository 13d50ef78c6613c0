//! Functions that may use the network (destination and source functions): the network
//! engine, started on first use, the code compiled on it per digest, and the live function
//! (warm instances, `allowedHosts` policy, requests in flight) per destination or source.
//! Shared by the destination sink and the source-function webhook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::dataplane::DataPlane;
use crate::engine::net::{HttpLimits, NetCode, NetEngine, NetFunction, NetJavaScript};
use crate::engine::{EngineConfig, FunctionKind, JsEngine, Limits, Script, UploadError};
use crate::workspace::{Function, FunctionType, Kind, Runtime, Version};

/// The bounds of one destination- or source-function invocation: Segment's 5 s timeout, and the fuel
/// of a few hundred milliseconds of guest work.
pub fn invocation_limits() -> Limits {
    Limits {
        fuel: 500_000_000,
        deadline: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// The network engine (started on first use: a ticker thread) and what runs on it, shared by
/// every destination and source function of the process.
#[derive(Default)]
pub struct NetFunctions {
    engine: OnceLock<Result<Arc<NetEngine>, String>>,
    javascript: OnceLock<Result<NetJavaScript, String>>,
    /// Compiled code by digest (`<digest>/<kind>` for JavaScript, whose kind is in its code).
    codes: Mutex<HashMap<String, NetCode>>,
    functions: Mutex<HashMap<String, Live>>,
    /// The bounds of each request (timeout, response size, requests in flight).
    pub http: HttpLimits,
}

struct Live {
    digest: String,
    settings: blake3::Hash,
    function: Arc<NetFunction>,
}

impl NetFunctions {
    /// The network engine, started now if it was not.
    ///
    /// # Errors
    /// The engine could not start.
    pub fn engine(&self) -> Result<Arc<NetEngine>, String> {
        self.engine
            .get_or_init(|| NetEngine::new(&EngineConfig::default()).map_err(|e| e.to_string()))
            .clone()
    }

    /// Checks that `wasm` is a component a destination or source function can be: compiled
    /// and linked on the network engine (Cranelift time), and keeps the compiled code.
    ///
    /// # Errors
    /// The engine's reason, as for insert functions.
    pub fn check(&self, digest: &str, wasm: &[u8]) -> Result<(), UploadError> {
        let engine = self
            .engine()
            .map_err(|e| UploadError::Invalid(format!("the network engine is unavailable: {e}")))?;
        let code = engine.compile(wasm)?;
        if let Ok(mut codes) = self.codes.lock() {
            codes.insert(digest.to_string(), code);
        }
        Ok(())
    }

    /// The live function `id` (a destination or a source) runs: the code named `key` with
    /// `settings`, the same one while neither changed; made by `make` otherwise.
    fn function_for(
        &self,
        id: &str,
        key: &str,
        settings: &str,
        make: impl FnOnce() -> Result<NetFunction, String>,
    ) -> Result<Arc<NetFunction>, String> {
        let hash = blake3::hash(settings.as_bytes());
        if let Some(live) = self.functions.lock().ok().and_then(|f| {
            f.get(id)
                .filter(|l| l.digest == key && l.settings == hash)
                .map(|l| l.function.clone())
        }) {
            return Ok(live);
        }
        let function = Arc::new(make()?);
        if let Ok(mut functions) = self.functions.lock() {
            let live = Live {
                digest: key.to_string(),
                settings: hash,
                function: function.clone(),
            };
            functions.insert(id.to_string(), live);
        }
        Ok(function)
    }

    /// The compiled code named `key`, made by `compile` when this process has none yet.
    fn code_for(
        &self,
        key: &str,
        compile: impl FnOnce() -> Result<NetCode, String>,
    ) -> Result<NetCode, String> {
        if let Some(code) = self.codes.lock().ok().and_then(|c| c.get(key).cloned()) {
            return Ok(code);
        }
        let code = compile()?;
        if let Ok(mut codes) = self.codes.lock() {
            codes.insert(key.to_string(), code.clone());
        }
        Ok(code)
    }

    /// The JavaScript engine built into this binary, compiled for the network engine on
    /// first use (Cranelift time, about a second, once per process).
    fn javascript(&self) -> Result<NetJavaScript, String> {
        self.javascript
            .get_or_init(|| {
                let wasm = JsEngine::builtin_wasm().ok_or_else(|| {
                    "this sluice was built without its JavaScript engine (run scripts/build-components, then build sluice again)".to_string()
                })?;
                self.engine()?.javascript(wasm).map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// The live function `owner` (a destination or source id) runs: the deployed version of
/// `function` with `settings` (a JSON object text), its policy from their `allowedHosts`. The
/// same one while neither the code nor the settings changed; the first call compiles the code
/// when this process has not yet (Cranelift time), later ones cost a map lookup and a hash
/// of the settings.
///
/// # Errors
/// Why it cannot run, worded for a dead letter or a webhook's answer.
pub fn load(
    plane: &DataPlane,
    owner: &str,
    function: &Function,
    settings: &str,
) -> Result<Arc<NetFunction>, String> {
    let name = &function.display_name;
    let version_id = function
        .deployed_version_id
        .as_deref()
        .ok_or_else(|| format!("the function {name:?} is not deployed"))?;
    let key = format!("{}/{version_id}", function.id);
    let version: Version = plane
        .store
        .get(Kind::FunctionVersion, &key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the deployed version of {name:?} is missing"))?;
    let kind = function.resource_type;
    plane
        .functions
        .function_for(owner, &code_key(&version, kind), settings, || {
            build(plane, &version, kind, settings)
        })
}

/// A function of its own running `version` (of a function of type `kind`) with `settings`,
/// shared with nothing but the compiled code (the test endpoint's). Costs what [`load`]'s
/// first call does.
///
/// # Errors
/// As [`load`].
pub fn build(
    plane: &DataPlane,
    version: &Version,
    kind: FunctionType,
    settings: &str,
) -> Result<NetFunction, String> {
    let functions = &plane.functions;
    let code = functions.code_for(&code_key(version, kind), || match version.runtime {
        Runtime::Wasm => {
            let wasm = plane
                .components
                .wasm(&version.digest)
                .map_err(|e| e.to_string())?;
            functions
                .engine()?
                .compile(&wasm)
                .map_err(|e| e.to_string())
        }
        Runtime::Javascript => {
            let (code, bytecode) = plane
                .components
                .script_and_bytecode(&version.digest)
                .map_err(|e| e.to_string())?;
            functions
                .javascript()?
                .code(Script::new(&code, bytecode, script_kind(kind)))
                .map_err(|e| e.to_string())
        }
    })?;
    code.function(settings, functions.http.clone())
        .map_err(|e| e.to_string())
}

/// The name compiled code is kept under: a component's digest; JavaScript's digest and kind
/// (the engine runs the same code differently as a source or a destination).
fn code_key(version: &Version, kind: FunctionType) -> String {
    match version.runtime {
        Runtime::Wasm => version.digest.clone(),
        Runtime::Javascript => format!("{}/{:?}", version.digest, script_kind(kind)),
    }
}

fn script_kind(kind: FunctionType) -> FunctionKind {
    match kind {
        FunctionType::Source => FunctionKind::Source,
        FunctionType::Destination => FunctionKind::Destination,
        _ => FunctionKind::Insert,
    }
}
