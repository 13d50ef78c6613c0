//! The compiled-code cache of `sluice run`: a component compiled by Cranelift (the JavaScript
//! engine takes about 2 s) is kept on disk, content-addressed and verified like the server's
//! stored artifacts, so that the next run loads it in milliseconds.
//!
//! Layout: `<cache dir>/artifacts/<blake3 of the wasm>-<engine compatibility hash>.cwasm`,
//! each file the blake3 of the artifact (32 bytes) followed by the artifact. The cache dir is
//! `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`; with none of
//! them (or an unwritable one), nothing is cached and every run compiles.

use std::path::PathBuf;

use wasmtime::component::Component;

use crate::engine::{Engine, UploadError, digest_hex};

/// The component of `wasm`: from the cache when a verified artifact is there, else compiled
/// (and then cached). A cache that cannot be read or written only costs the compilation.
///
/// # Errors
/// The bytes are not a valid component.
pub(super) fn component(engine: &Engine, wasm: &[u8]) -> Result<Component, UploadError> {
    let file = dir().map(|d| {
        let compat = blake3::Hash::from_bytes(engine.compatibility_hash()).to_hex();
        d.join("artifacts")
            .join(format!("{}-{compat}.cwasm", digest_hex(wasm)))
    });
    if let Some(component) = file.as_ref().and_then(|f| load(engine, f)) {
        return Ok(component);
    }
    let component = Component::new(engine.wasmtime(), wasm)
        .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
    engine.count_compile();
    if let Some(file) = file {
        store(&component, &file);
    }
    Ok(component)
}

/// Where artifacts are cached, if anywhere.
fn dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("SLUICE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("sluice")))
        .or_else(|| var("HOME").map(|d| PathBuf::from(d).join(".cache/sluice")))
}

/// The cached component in `file`, if it is there, intact and usable by this engine.
fn load(engine: &Engine, file: &std::path::Path) -> Option<Component> {
    let bytes = std::fs::read(file).ok()?;
    if bytes.len() < 32 || blake3::hash(&bytes[32..]).as_bytes() != &bytes[..32] {
        return None;
    }
    // SAFETY: wasmtime requires that deserialized bytes come from `serialize` by a compatible
    // engine. These bytes are what `store` wrote (verified against the blake3 recorded before
    // them) under this engine's compatibility hash (in the file name), and wasmtime re-checks
    // its version and configuration itself, refusing a mismatch.
    unsafe { Component::deserialize(engine.wasmtime(), &bytes[32..]) }.ok()
}

/// Writes `component` to `file` (through a temporary file and a rename, so that a reader
/// never sees half of it); failures are ignored: the cache is an optimisation.
fn store(component: &Component, file: &std::path::Path) {
    let Ok(artifact) = component.serialize() else {
        return;
    };
    let Some(parent) = file.parent() else {
        return;
    };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let mut bytes = Vec::with_capacity(32 + artifact.len());
    bytes.extend_from_slice(blake3::hash(&artifact).as_bytes());
    bytes.extend_from_slice(&artifact);
    let temporary = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&temporary, &bytes).is_ok() && std::fs::rename(&temporary, file).is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}
