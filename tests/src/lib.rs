//! Shared helpers for the integration tests: where the built components and the sample events
//! are.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_runtime::engine::{Engine, EngineConfig, Function, JsEngine, digest_hex};

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The bytes of an example component built by `scripts/build-components`.
///
/// # Panics
/// When the component was not built: the message says how to build it.
pub fn component(example: &str) -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target
        .join("wasm32-wasip2")
        .join("wasm")
        .join(format!("{}.wasm", example.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the example components first with scripts/build-components \
             (scripts/test does it for you)",
            path.display()
        )
    })
}

/// The sample events (`../shared/data/events.jsonl`, or `$SLUICE_EVENTS`), one JSON text each.
///
/// # Panics
/// When the file is missing.
pub fn sample_events() -> Vec<String> {
    let path = std::env::var_os("SLUICE_EVENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data/events.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read sample events at {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A fresh engine with default settings.
pub fn engine() -> Arc<Engine> {
    Engine::new(&EngineConfig::default()).expect("the engine starts")
}

/// Compiles an example into a ready function on `engine`.
pub fn function(engine: &Arc<Engine>, example: &str) -> Function {
    let wasm = component(example);
    let (_, pre) = engine.compile(&wasm).expect("the example compiles");
    Function::new(engine.clone(), digest_hex(&wasm), pre)
}

/// The code of a JavaScript example (`examples/<name>/index.js`).
///
/// # Panics
/// When the file is missing.
pub fn example_js(name: &str) -> String {
    let path = workspace_root()
        .join("examples")
        .join(name)
        .join("index.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The JavaScript engine built into the runtime, compiled on `engine`.
///
/// # Panics
/// When the runtime was built without it (run scripts/build-components first).
pub fn js_engine(engine: &Arc<Engine>) -> JsEngine {
    JsEngine::builtin(engine.clone()).unwrap_or_else(|e| panic!("{e}"))
}

/// The median of `samples` (for benchmarks).
///
/// # Panics
/// When `samples` is empty.
pub fn median(mut samples: Vec<std::time::Duration>) -> std::time::Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// How many passes a benchmark makes: `$SLUICE_BENCH_PASSES`, default 3 (each mode keeps its
/// best pass, so a slow moment on a shared machine does not decide the result).
pub fn bench_passes() -> usize {
    std::env::var("SLUICE_BENCH_PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3)
}

/// This process's threads now (`/proc/self/status`; 0 where it cannot be read).
pub fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
