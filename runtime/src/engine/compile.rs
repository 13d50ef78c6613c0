//! The upload path's checks: is it a component, does it import only what the host provides,
//! does it export the insert-function world; and the digests that name components and
//! artifacts.

use std::hash::{Hash, Hasher};

use sluice_host_api::InsertFunctionPre;
use sluice_host_api::js::JsEnginePre;
use wasmtime::component::{Component, InstancePre};

use super::{Engine, HostState, UploadError};

/// Interface namespaces a component may import: the WASI that a `wasm32-wasip2` standard
/// library links (granting nothing, see [`HostState::new`]) and sluice's own host interface.
const ALLOWED_WASI: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// The blake3 digest of a component's bytes, as lowercase hex: the component's name in storage.
pub fn digest_hex(wasm: &[u8]) -> String {
    blake3::hash(wasm).to_hex().to_string()
}

impl Engine {
    /// Validates and compiles a component with Cranelift, and checks it against the host
    /// contract. Costs a full compilation (hundreds of milliseconds for a typical function).
    ///
    /// # Errors
    /// [`UploadError`] naming what is wrong: not WebAssembly, a core module, invalid, unknown
    /// imports, or not the insert-function world.
    pub fn compile(
        &self,
        wasm: &[u8],
    ) -> Result<(Component, InsertFunctionPre<HostState>), UploadError> {
        check_header(wasm)?;
        let component = Component::new(self.wasmtime(), wasm)
            .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
        self.count_compile();
        let pre = self.link(&component)?;
        Ok((component, pre))
    }

    /// Checks a compiled component's imports and exports against the host and prepares it for
    /// cheap instantiation.
    ///
    /// # Errors
    /// [`UploadError::UnknownImports`] or [`UploadError::WrongWorld`].
    pub fn link(&self, component: &Component) -> Result<InsertFunctionPre<HostState>, UploadError> {
        let pre = self.instantiate_pre(component, is_allowed_import)?;
        InsertFunctionPre::new(pre).map_err(|e| UploadError::WrongWorld(format!("{e:#}")))
    }

    /// Like [`Engine::link`], for the JavaScript engine component, which may also import the
    /// `script` interface.
    ///
    /// # Errors
    /// [`UploadError::UnknownImports`] or [`UploadError::WrongWorld`].
    pub(crate) fn link_js(
        &self,
        component: &Component,
    ) -> Result<JsEnginePre<HostState>, UploadError> {
        check_imports(self.wasmtime(), component, |name| {
            is_allowed_import(name) || is_script_import(name) || is_http(name)
        })?;
        // The engine imports `wasi:http` for the `fetch` of destination and source functions
        // (which run it on the network engine); here every request is refused (`NoNetwork`).
        let pre = self
            .linker()
            .instantiate_pre(component)
            .map_err(|e| UploadError::WrongWorld(format!("{e:#}")))?;
        JsEnginePre::new(pre).map_err(|e| UploadError::WrongWorld(format!("{e:#}")))
    }

    fn instantiate_pre(
        &self,
        component: &Component,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<InstancePre<HostState>, UploadError> {
        check_imports(self.wasmtime(), component, allowed)?;
        self.linker()
            .instantiate_pre(component)
            .map_err(|e| UploadError::WrongWorld(format!("{e:#}")))
    }
}

/// Refuses a component importing anything `allowed` does not accept, naming each import.
/// Shared by both engines' upload checks.
pub(super) fn check_imports(
    engine: &wasmtime::Engine,
    component: &Component,
    allowed: impl Fn(&str) -> bool,
) -> Result<(), UploadError> {
    let unknown: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !allowed(name))
        .collect();
    if !unknown.is_empty() {
        return Err(UploadError::UnknownImports(unknown));
    }
    Ok(())
}

/// `wasi:http` 0.2.x, which only functions on the network engine may use.
pub(super) fn is_http(name: &str) -> bool {
    name.starts_with("wasi:http/") && name.contains("@0.2.")
}

fn is_script_import(name: &str) -> bool {
    name.strip_prefix("sluice:function/script@")
        .is_some_and(|version| version.starts_with("0.1."))
}

pub(super) fn is_allowed_import(name: &str) -> bool {
    // `types` carries only type definitions; importing it grants nothing.
    for own in ["sluice:function/host@", "sluice:function/types@"] {
        if let Some(version) = name.strip_prefix(own) {
            return version.starts_with("0.1.");
        }
    }
    ALLOWED_WASI.iter().any(|prefix| name.starts_with(prefix)) && name.contains("@0.2.")
}

pub(super) fn check_header(wasm: &[u8]) -> Result<(), UploadError> {
    if wasm.len() < 8 || &wasm[0..4] != b"\0asm" {
        return Err(UploadError::NotWasm);
    }
    // Bytes 4..8: version 1 with layer 0 is a core module; components use layer 1.
    if wasm[6..8] == [0, 0] {
        return Err(UploadError::CoreModule);
    }
    Ok(())
}

/// Feeds `Hash` output into blake3, so a hashable value gets a stable 32-byte digest.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let digest = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }
}

pub(super) fn compatibility_hash(engine: &wasmtime::Engine) -> [u8; 32] {
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    *hasher.0.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_modules_from_components() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(UploadError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(UploadError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn only_host_and_wasi_imports_are_allowed() {
        assert!(is_allowed_import("sluice:function/host@0.1.0"));
        assert!(is_allowed_import("wasi:io/streams@0.2.6"));
        assert!(!is_allowed_import("wasi:http/outgoing-handler@0.2.0"));
        assert!(!is_allowed_import("acme:secrets/vault@1.0.0"));
        assert!(!is_allowed_import("sluice:function/host@0.2.0"));
        assert!(!is_allowed_import("sluice:function/script@0.1.0"));
        assert!(is_script_import("sluice:function/script@0.1.0"));
    }
}
