//! Content-addressed storage of components, JavaScript code and compiled artifacts, and the
//! cache of loaded [`Function`]s: one per digest (compiled code, shared), and one per
//! insert-function instance (its own warm instances, never shared with another).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::Component;

use super::SharedObjects;
use crate::engine::{Engine, Function, JsCodeError, JsEngine, UploadError, digest_hex};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The component was refused.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The JavaScript code was refused (or cannot run in this build).
    #[error(transparent)]
    Script(#[from] JsCodeError),
    /// No component or code is stored under this digest.
    #[error("no component with digest {0}")]
    NotFound(String),
    /// The database failed.
    #[error("storage: {0}")]
    Db(#[from] sled::Error),
    /// A file-system failure.
    #[error("storage: {0}")]
    Io(String),
    /// The cluster's object store cannot be reached.
    #[error("the cluster's object store: {0}")]
    Cluster(String),
}

/// The result of storing a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// blake3 of the component's bytes, hex: its name from now on.
    pub digest: String,
    /// False when identical bytes were already stored (nothing was compiled or written).
    pub new: bool,
}

/// The function of one insert-function instance and what its warm instances were made for.
struct InstanceFunction {
    digest: String,
    settings: blake3::Hash,
    function: Arc<Function>,
}

/// Components by digest, their compiled artifacts by (digest, engine compatibility hash), and
/// the functions loaded from them. Cheap to share; loading a function costs one artifact
/// deserialization (about a millisecond), compiling costs Cranelift time.
pub struct ComponentStore {
    engine: Arc<Engine>,
    db: sled::Db,
    components: sled::Tree,
    scripts: sled::Tree,
    /// QuickJS bytecode of stored code, per engine build (see [`ComponentStore::bytecode_key`]).
    bytecode: sled::Tree,
    artifacts: sled::Tree,
    loaded: Mutex<HashMap<String, Arc<Function>>>,
    /// Per insert-function instance id: the function with its own warm pool, and what it was
    /// made for (a new digest or new settings get a new pool).
    instances: Mutex<HashMap<String, InstanceFunction>>,
    /// The JavaScript engine, compiled (or loaded from its artifact) on first use.
    js: OnceLock<Result<Arc<JsEngine>, String>>,
    /// In a cluster: where components, code and artifacts are shared with the other nodes.
    shared: Option<SharedObjects>,
}

impl ComponentStore {
    /// Opens the component trees of `db`.
    ///
    /// # Errors
    /// sled cannot open the trees.
    pub fn open(db: &sled::Db, engine: Arc<Engine>) -> Result<ComponentStore, StorageError> {
        Ok(ComponentStore {
            engine,
            db: db.clone(),
            components: db.open_tree("components")?,
            scripts: db.open_tree("scripts")?,
            bytecode: db.open_tree("bytecode")?,
            artifacts: db.open_tree("artifacts")?,
            loaded: Mutex::new(HashMap::new()),
            instances: Mutex::new(HashMap::new()),
            js: OnceLock::new(),
            shared: None,
        })
    }

    /// This store as a node of a cluster: what it stores is also put in `shared`, and what
    /// it lacks is looked for there (then kept locally).
    pub fn shared_through(self, shared: SharedObjects) -> ComponentStore {
        ComponentStore {
            shared: Some(shared),
            ..self
        }
    }

    /// Puts `bytes` as `name` in the cluster's object store, if this is a node of one.
    fn share(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        match &self.shared {
            Some(shared) => shared.put(name, bytes),
            None => Ok(()),
        }
    }

    /// The cluster's object `name`, if this is a node of one and the cluster has it.
    fn fetch_shared(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match &self.shared {
            Some(shared) => shared.get(name),
            None => Ok(None),
        }
    }

    /// The engine functions run on.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Validates, compiles and stores a component, durably, under its blake3 digest. Identical
    /// bytes are stored once: a second upload compiles nothing.
    ///
    /// # Errors
    /// [`StorageError::Upload`] with the engine's reason, or a database failure.
    pub fn put(&self, wasm: &[u8]) -> Result<Stored, StorageError> {
        let digest = digest_hex(wasm);
        if self.components.contains_key(digest.as_bytes())? {
            // Shared again (a no-op when the cluster has it): an earlier upload may have
            // been stored here while the cluster was unreachable.
            self.share(&format!("components/{digest}"), wasm)?;
            self.function(&digest)?;
            return Ok(Stored { digest, new: false });
        }
        let (component, pre) = self.engine.compile(wasm)?;
        self.write_artifact(&digest, &component)?;
        self.components.insert(digest.as_bytes(), wasm)?;
        self.db.flush()?;
        self.share(&format!("components/{digest}"), wasm)?;
        let function = Arc::new(Function::new(self.engine.clone(), digest.clone(), pre));
        self.cache(function);
        Ok(Stored { digest, new: true })
    }

    /// Stores a component that `check` accepted (a destination or source function, which the
    /// network engine compiles: see `engine::net`), durably, under its blake3 digest, without
    /// compiling it for insert functions. Identical bytes are checked and stored once.
    ///
    /// # Errors
    /// [`StorageError::Upload`] with `check`'s reason, or a database failure.
    pub fn put_checked(
        &self,
        wasm: &[u8],
        check: impl FnOnce(&str, &[u8]) -> Result<(), UploadError>,
    ) -> Result<Stored, StorageError> {
        let digest = digest_hex(wasm);
        check(&digest, wasm)?;
        if self.components.contains_key(digest.as_bytes())? {
            return Ok(Stored { digest, new: false });
        }
        self.components.insert(digest.as_bytes(), wasm)?;
        self.db.flush()?;
        Ok(Stored { digest, new: true })
    }

    /// Checks JavaScript code with the engine and stores it, durably, under the blake3 digest
    /// of its bytes, with its QuickJS bytecode beside it (so fresh instances do not parse it).
    /// Costs one fresh engine instance (about a millisecond), plus loading the engine's
    /// artifact the first time (or compiling it, over a second, the very first time).
    ///
    /// # Errors
    /// [`StorageError::Script`] naming the line and column of a syntax error, or a database
    /// failure.
    pub fn put_script(&self, code: &str) -> Result<Stored, StorageError> {
        let digest = crate::engine::js_digest(code);
        if self.scripts.contains_key(digest.as_bytes())? {
            // Checked when it was stored: identical code is not parsed again.
            self.share(&format!("scripts/{digest}"), code.as_bytes())?;
            self.function(&digest)?;
            return Ok(Stored { digest, new: false });
        }
        let js = self.js_engine()?;
        let (function, bytecode) = js.function_with_bytecode(code)?;
        self.write_bytecode(&js, &digest, &bytecode)?;
        self.scripts.insert(digest.as_bytes(), code.as_bytes())?;
        self.db.flush()?;
        self.share(&format!("scripts/{digest}"), code.as_bytes())?;
        self.cache(Arc::new(function));
        Ok(Stored { digest, new: true })
    }

    /// The function of stored JavaScript code: from its verified bytecode for this engine
    /// build (no instance needed), else checked and compiled again, its bytecode stored.
    fn script_function(&self, digest: &str, code: &str) -> Result<Function, StorageError> {
        let js = self.js_engine()?;
        if let Some(bytecode) = self.read_bytecode(&js, digest)? {
            return Ok(js.function_from_bytecode(code, bytecode));
        }
        let (function, bytecode) = js.function_with_bytecode(code)?;
        self.write_bytecode(&js, digest, &bytecode)?;
        Ok(function)
    }

    /// Bytecode is only valid for the engine build that wrote it: keyed by both digests.
    fn bytecode_key(js: &JsEngine, digest: &str) -> String {
        format!("{digest}:{}", js.digest())
    }

    fn write_bytecode(
        &self,
        js: &JsEngine,
        digest: &str,
        bytecode: &[u8],
    ) -> Result<(), StorageError> {
        if bytecode.is_empty() {
            return Ok(());
        }
        let mut value = Vec::with_capacity(32 + bytecode.len());
        value.extend_from_slice(blake3::hash(bytecode).as_bytes());
        value.extend_from_slice(bytecode);
        self.bytecode
            .insert(Self::bytecode_key(js, digest).as_bytes(), value)?;
        Ok(())
    }

    /// The stored bytecode, if present and matching the blake3 digest recorded beside it:
    /// QuickJS trusts bytecode, so corrupt bytes are never handed to an instance.
    fn read_bytecode(
        &self,
        js: &JsEngine,
        digest: &str,
    ) -> Result<Option<Arc<[u8]>>, StorageError> {
        let Some(value) = self
            .bytecode
            .get(Self::bytecode_key(js, digest).as_bytes())?
        else {
            return Ok(None);
        };
        if value.len() <= 32 || blake3::hash(&value[32..]).as_bytes() != &value[..32] {
            tracing::warn!(%digest, "stored bytecode fails its checksum; compiling the code again");
            return Ok(None);
        }
        Ok(Some(Arc::from(&value[32..])))
    }

    /// The JavaScript engine, from memory, from its stored artifact, or compiled now.
    ///
    /// # Errors
    /// [`JsCodeError::Unavailable`] in a build without the engine, or a refused engine.
    pub fn js_engine(&self) -> Result<Arc<JsEngine>, StorageError> {
        let loaded = self
            .js
            .get_or_init(|| self.load_js_engine().map_err(|e| e.to_string()));
        match loaded {
            Ok(js) => Ok(js.clone()),
            Err(_) if JsEngine::builtin_wasm().is_none() => {
                Err(StorageError::Script(JsCodeError::Unavailable))
            }
            Err(message) => Err(StorageError::Io(message.clone())),
        }
    }

    fn load_js_engine(&self) -> Result<Arc<JsEngine>, StorageError> {
        let wasm = JsEngine::builtin_wasm().ok_or(JsCodeError::Unavailable)?;
        let digest = digest_hex(wasm);
        if let Some(component) = self.load_artifact(&digest)? {
            return Ok(Arc::new(JsEngine::from_component(
                self.engine.clone(),
                digest,
                &component,
            )?));
        }
        let component = Component::new(self.engine.wasmtime(), wasm)
            .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
        self.engine.count_compile();
        let js = JsEngine::from_component(self.engine.clone(), digest.clone(), &component)?;
        self.write_artifact(&digest, &component)?;
        Ok(Arc::new(js))
    }

    /// Whether a component with this digest is stored.
    ///
    /// # Errors
    /// A database failure.
    pub fn contains(&self, digest: &str) -> Result<bool, StorageError> {
        Ok(self.components.contains_key(digest.as_bytes())?)
    }

    /// The stored component's WebAssembly bytes.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] or a database failure.
    pub fn wasm(&self, digest: &str) -> Result<Vec<u8>, StorageError> {
        if let Some(bytes) = self.components.get(digest.as_bytes())? {
            return Ok(bytes.to_vec());
        }
        // Another node's upload: checked against its name before it is kept.
        match self.fetch_shared(&format!("components/{digest}"))? {
            Some(bytes) if digest_hex(&bytes) == digest => {
                self.components
                    .insert(digest.as_bytes(), bytes.as_slice())?;
                Ok(bytes)
            }
            _ => Err(StorageError::NotFound(digest.to_string())),
        }
    }

    /// Stored JavaScript code, from this node or (checked against its digest) the cluster.
    /// Stored JavaScript code and its verified bytecode for this engine build (empty when
    /// there is none: instances then parse the code), for running it elsewhere than on the
    /// insert functions' engine (the network engine, which runs the same engine build).
    ///
    /// # Errors
    /// [`StorageError::NotFound`] when no code has `digest`, or a database failure.
    pub fn script_and_bytecode(&self, digest: &str) -> Result<(String, Arc<[u8]>), StorageError> {
        let code = self
            .script(digest)?
            .ok_or_else(|| StorageError::NotFound(digest.to_string()))?;
        let js = self.js_engine()?;
        let bytecode = self.read_bytecode(&js, digest)?;
        Ok((code, bytecode.unwrap_or_else(|| Arc::from([]))))
    }

    fn script(&self, digest: &str) -> Result<Option<String>, StorageError> {
        if let Some(code) = self.scripts.get(digest.as_bytes())? {
            return Ok(Some(String::from_utf8_lossy(&code).into_owned()));
        }
        let Some(bytes) = self.fetch_shared(&format!("scripts/{digest}"))? else {
            return Ok(None);
        };
        let code = String::from_utf8_lossy(&bytes).into_owned();
        if crate::engine::js_digest(&code) != digest {
            return Ok(None);
        }
        self.scripts.insert(digest.as_bytes(), code.as_bytes())?;
        Ok(Some(code))
    }

    /// The function for a stored component or JavaScript code: from memory if loaded, else
    /// from its verified artifact, else compiled again from its bytes (when the artifact is
    /// missing, corrupt, or from another wasmtime version or configuration).
    ///
    /// # Errors
    /// [`StorageError::NotFound`], a component that no longer passes the upload checks, or a
    /// database failure.
    pub fn function(&self, digest: &str) -> Result<Arc<Function>, StorageError> {
        if let Some(function) = self.loaded.lock().ok().and_then(|l| l.get(digest).cloned()) {
            return Ok(function);
        }
        if let Some(code) = self.script(digest)? {
            let function = self.script_function(digest, &code)?;
            return Ok(self.cache(Arc::new(function)));
        }
        let pre = match self.load_artifact(digest)? {
            Some(component) => self.engine.link(&component)?,
            None => {
                let wasm = self.wasm(digest)?;
                let (component, pre) = self.engine.compile(&wasm)?;
                self.write_artifact(digest, &component)?;
                pre
            }
        };
        Ok(self.cache(Arc::new(Function::new(
            self.engine.clone(),
            digest.to_string(),
            pre,
        ))))
    }

    /// The function insert-function instance `instance_id` runs: the code of `digest` (shared,
    /// loaded as by [`ComponentStore::function`]) with a warm pool that belongs to this instance
    /// and these `settings` alone. Its warm instances (a Rust component's globals, a JavaScript
    /// realm) are never reused for another instance, another source or another function, even
    /// with identical code; a change of code or settings starts a new pool. Costs a map lookup
    /// once loaded.
    ///
    /// # Errors
    /// As [`ComponentStore::function`].
    pub fn function_for(
        &self,
        instance_id: &str,
        digest: &str,
        settings: &str,
    ) -> Result<Arc<Function>, StorageError> {
        let settings = blake3::hash(settings.as_bytes());
        let cached = self.instances.lock().ok().and_then(|instances| {
            instances
                .get(instance_id)
                .filter(|i| i.digest == digest && i.settings == settings)
                .map(|i| i.function.clone())
        });
        if let Some(function) = cached {
            return Ok(function);
        }
        let function = Arc::new(self.function(digest)?.with_own_pool());
        // A poisoned lock only costs reuse: every call then gets a pool of its own.
        let Ok(mut instances) = self.instances.lock() else {
            return Ok(function);
        };
        match instances.get(instance_id) {
            // Another thread loaded it meanwhile: one pool per instance, so keep the first.
            Some(i) if i.digest == digest && i.settings == settings => Ok(i.function.clone()),
            _ => {
                let made = InstanceFunction {
                    digest: digest.to_string(),
                    settings,
                    function: function.clone(),
                };
                instances.insert(instance_id.to_string(), made);
                Ok(function)
            }
        }
    }

    /// Drops the warm pools of insert-function instances for which `live` is false (deleted
    /// ones), freeing their instances' memory. Costs one pass over the loaded instances.
    pub fn retain_instances(&self, live: impl Fn(&str) -> bool) {
        if let Ok(mut instances) = self.instances.lock() {
            instances.retain(|id, _| live(id));
        }
    }

    fn cache(&self, function: Arc<Function>) -> Arc<Function> {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded
                .entry(function.digest().to_string())
                .or_insert_with(|| function.clone());
        }
        function
    }

    fn artifact_key(&self, digest: &str) -> String {
        let compat = blake3::Hash::from_bytes(self.engine.compatibility_hash()).to_hex();
        format!("{digest}:{compat}")
    }

    fn write_artifact(&self, digest: &str, component: &Component) -> Result<(), StorageError> {
        let artifact = match component.serialize() {
            Ok(bytes) => bytes,
            Err(err) => {
                // Not fatal: the component is still stored and compiles again on next load.
                tracing::warn!(%digest, error = %err, "cannot serialize compiled component");
                return Ok(());
            }
        };
        let mut value = Vec::with_capacity(32 + artifact.len());
        value.extend_from_slice(blake3::hash(&artifact).as_bytes());
        value.extend_from_slice(&artifact);
        let key = self.artifact_key(digest);
        if let Err(e) = self.share(&format!("artifacts/{key}"), &value) {
            // Not fatal: the other nodes compile it themselves.
            tracing::warn!(%digest, error = %e, "cannot share a compiled artifact");
        }
        self.artifacts.insert(key.as_bytes(), value)?;
        Ok(())
    }

    /// The stored artifact of `digest` for this engine: this node's, or one another node
    /// compiled (kept here; verified like any before use).
    fn artifact(&self, digest: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = self.artifact_key(digest);
        if let Some(value) = self.artifacts.get(key.as_bytes())? {
            return Ok(Some(value.to_vec()));
        }
        let shared = match self.fetch_shared(&format!("artifacts/{key}")) {
            Ok(shared) => shared,
            Err(e) => {
                tracing::warn!(%digest, error = %e, "cannot read the cluster's artifact; compiling");
                None
            }
        };
        if let Some(value) = &shared {
            self.artifacts.insert(key.as_bytes(), value.as_slice())?;
        }
        Ok(shared)
    }

    fn load_artifact(&self, digest: &str) -> Result<Option<Component>, StorageError> {
        let Some(value) = self.artifact(digest)? else {
            return Ok(None);
        };
        if value.len() < 32 || blake3::hash(&value[32..]).as_bytes() != &value[..32] {
            tracing::warn!(%digest, "stored artifact fails its checksum; recompiling");
            return Ok(None);
        }
        // SAFETY: wasmtime requires that deserialized bytes come from `serialize` by a
        // compatible engine. These bytes are exactly what `write_artifact` wrote (verified
        // against the blake3 recorded beside them) under this engine's compatibility hash, and
        // wasmtime re-checks version and configuration itself, refusing a mismatch.
        match unsafe { Component::deserialize(self.engine.wasmtime(), &value[32..]) } {
            Ok(component) => Ok(Some(component)),
            Err(err) => {
                tracing::warn!(%digest, error = %err, "stored artifact unusable; recompiling");
                Ok(None)
            }
        }
    }
}
