//! The sandbox that runs functions: one wasmtime [`Engine`] per process, components compiled
//! and checked against the host contract, and [`Function`]s that invoke them under [`Limits`].
//!
//! Cost model: an [`Engine`] is created once (it starts a 1 ms epoch ticker thread and may
//! reserve the pooling allocator's address space); compiling a component costs Cranelift time
//! (hundreds of milliseconds), so compiled artifacts are kept by
//! [`crate::storage::ComponentStore`]; a [`Function`] is cheap to invoke once warm.

mod compile;
mod cpu_clock;
mod error;
mod function;
mod javascript;
mod limits;
pub mod net;
mod sandbox;
mod wasi;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use compile::digest_hex;
pub use error::{EngineError, InvokeError, UploadError};
pub use function::{BatchInvocation, Function, Invocation, Outcome};
pub use javascript::{FunctionKind, JsCodeError, JsEngine, Script, digest_of as js_digest};
pub use limits::{Isolation, Limits};
pub use sandbox::{HostState, LogLine};

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Process-wide settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Use the pooling allocator (falls back to on-demand allocation when the pool's address
    /// space cannot be reserved). Default true.
    pub pooling: bool,
    /// Instances the pool holds at most at once, across all functions. Default 256.
    pub pool_instances: u32,
    /// The largest memory any function may ask for; per-function caps must stay below it.
    /// Default 64 MiB.
    pub max_memory_bytes: usize,
    /// The guest's call-stack limit. Default 512 KiB.
    pub max_wasm_stack: usize,
    /// Bytes of each pooled memory kept resident between instances (reset in place rather
    /// than returned to the kernel); with PAGEMAP_SCAN only the dirty ones are rewritten. Default 256 KiB.
    pub keep_resident_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            pooling: true,
            pool_instances: 256,
            max_memory_bytes: 64 << 20,
            max_wasm_stack: 512 << 10,
            keep_resident_bytes: 256 << 10,
        }
    }
}

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots, copy-on-write memory images: instantiation in microseconds.
    Pooling,
    /// `mmap` per instance: the fallback where the pool cannot be reserved.
    OnDemand,
}

/// The process's WebAssembly engine: compiler settings, the host linker and the epoch ticker.
/// Create one per process and share it (`Arc`); it lives as long as the process.
pub struct Engine {
    wasmtime: wasmtime::Engine,
    linker: Linker<HostState>,
    allocation: Allocation,
    max_memory_bytes: usize,
    compat: [u8; 32],
    compiles: AtomicU64,
    ticker: Ticker,
}

impl Engine {
    /// Starts the engine: fuel metering, epoch interruption (a ticker thread), the component
    /// model, and the pooling allocator where it can be reserved.
    ///
    /// # Errors
    /// The configuration is rejected by wasmtime, or the host interface cannot be linked.
    pub fn new(config: &EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let (wasmtime, allocation) = if config.pooling {
            match wasmtime::Engine::new(&wasmtime_config(config, true)) {
                Ok(engine) => (engine, Allocation::Pooling),
                Err(err) => {
                    tracing::warn!(error = %err, "pooling allocator unavailable, using on-demand allocation");
                    (build(config, false)?, Allocation::OnDemand)
                }
            }
        } else {
            (build(config, false)?, Allocation::OnDemand)
        };
        let mut linker = Linker::new(&wasmtime);
        wasi::add_to_linker(&mut linker).map_err(|e| EngineError(format!("linking WASI: {e}")))?;
        sluice_host_api::InsertFunction::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| EngineError(format!("linking the host interface: {e}")))?;
        // Linked for every component, but only the JavaScript engine may import it (see
        // `Engine::link`): a stranger's component has no use for another function's code.
        sluice_host_api::js::sluice::function::script::add_to_linker::<
            _,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |state| state)
        .map_err(|e| EngineError(format!("linking the script interface: {e}")))?;
        // Likewise: the JavaScript engine imports `wasi:http` for `fetch`; here it refuses.
        wasi::add_refused_http_to_linker(&mut linker)
            .map_err(|e| EngineError(format!("linking wasi:http: {e}")))?;
        let compat = compile::compatibility_hash(&wasmtime);
        let ticker = Ticker::start(wasmtime.clone());
        Ok(Arc::new(Engine {
            wasmtime,
            linker,
            allocation,
            max_memory_bytes: config.max_memory_bytes,
            compat,
            compiles: AtomicU64::new(0),
            ticker,
        }))
    }

    /// How this engine allocates instances.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// How many components this engine has compiled with Cranelift since it started (loading a
    /// stored artifact does not count). Lets tests and metrics see compilation happen.
    pub fn compile_count(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// A digest of everything that makes a compiled artifact usable by this engine (wasmtime
    /// version, compiler and tunables); artifacts are stored under it.
    pub fn compatibility_hash(&self) -> [u8; 32] {
        self.compat
    }

    /// The largest per-function memory cap this engine supports.
    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.wasmtime
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    pub(crate) fn count_compile(&self) {
        self.compiles.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

fn build(config: &EngineConfig, pooling: bool) -> Result<wasmtime::Engine, EngineError> {
    wasmtime::Engine::new(&wasmtime_config(config, pooling)).map_err(|e| EngineError(e.to_string()))
}

fn wasmtime_config(config: &EngineConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(32))
        .parallel_compilation(true);
    if pooling {
        let instances = config.pool_instances;
        let mut pool = PoolingAllocationConfig::new();
        // A Rust wasip2 component instantiates a handful of core modules (its code plus the
        // small shims that the component model's lowering needs).
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .max_core_instances_per_component(16)
            .total_memories(instances * 2)
            .max_memories_per_component(4)
            .total_tables(instances * 8)
            .max_tables_per_component(16)
            .max_memory_size(config.max_memory_bytes)
            // Reset a returned slot by rewriting only its dirty pages (PAGEMAP_SCAN, Linux
            // 6.7+) instead of unmapping them, so the next instance does not page-fault its
            // stack and heap back in. Where the ioctl is missing, the first bytes are memset.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .table_keep_resident(64 << 10);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so that deadlines can interrupt guests.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Ticker { stop, thread }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
