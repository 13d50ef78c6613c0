//! Functions that may use the network (destination and source functions): the network
//! engine, started on first use, the code compiled on it per digest, and the live function
//! (warm instances, `allowedHosts` policy, requests in flight) per destination or source.
//! Shared by the destination sink and the source-function webhook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::dataplane::DataPlane;
use crate::engine::net::{HttpLimits, NetCode, NetEngine, NetFunction};
use crate::engine::{EngineConfig, Limits, UploadError};
use crate::workspace::{Function, Kind, Runtime, Version};

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

    /// The function `id` (a destination or a source) runs: code `digest` (bytes from `wasm` when not yet
    /// compiled) with `settings`; the same one while neither changed.
    fn function_for(
        &self,
        id: &str,
        digest: &str,
        settings: &str,
        wasm: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Arc<NetFunction>, String> {
        let hash = blake3::hash(settings.as_bytes());
        if let Some(live) = self.functions.lock().ok().and_then(|f| {
            f.get(id)
                .filter(|l| l.digest == digest && l.settings == hash)
                .map(|l| l.function.clone())
        }) {
            return Ok(live);
        }
        let cached = self.codes.lock().ok().and_then(|c| c.get(digest).cloned());
        let code = match cached {
            Some(code) => code,
            None => {
                let engine = self.engine()?;
                let code = engine.compile(&wasm()?).map_err(|e| e.to_string())?;
                if let Ok(mut codes) = self.codes.lock() {
                    codes.insert(digest.to_string(), code.clone());
                }
                code
            }
        };
        let function = Arc::new(
            code.function(settings, self.http.clone())
                .map_err(|e| e.to_string())?,
        );
        if let Ok(mut functions) = self.functions.lock() {
            functions.insert(
                id.to_string(),
                Live {
                    digest: digest.to_string(),
                    settings: hash,
                    function: function.clone(),
                },
            );
        }
        Ok(function)
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
        .ok_or_else(|| format!("the destination function {name:?} is not deployed"))?;
    let key = format!("{}/{version_id}", function.id);
    let version: Version = plane
        .store
        .get(Kind::FunctionVersion, &key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the deployed version of {name:?} is missing"))?;
    if version.runtime != Runtime::Wasm {
        return Err(format!(
            "{name:?} is JavaScript: JavaScript destination and source functions need `fetch`, which this \
             build does not have yet; upload a component (wasi:http) instead"
        ));
    }
    plane
        .functions
        .function_for(owner, &version.digest, settings, || {
            plane
                .components
                .wasm(&version.digest)
                .map_err(|e| e.to_string())
        })
}
