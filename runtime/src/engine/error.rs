//! The engine's errors: why an upload was refused, and how an invocation failed.

use std::time::Duration;

/// Why a component upload (or load) was refused. Messages are written for the uploader.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The bytes are not WebAssembly at all.
    #[error(
        "not a WebAssembly binary (no `\\0asm` header); upload a component built for wasm32-wasip2"
    )]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build it with `--target wasm32-wasip2` \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component failed validation or compilation.
    #[error("the component is invalid: {0}")]
    Invalid(String),
    /// The component imports interfaces sluice does not provide.
    #[error("the component imports what sluice does not provide: {}", .0.join(", "))]
    UnknownImports(Vec<String>),
    /// The component does not fit the `sluice:function/insert-function` world.
    #[error("the component does not implement the sluice:function/insert-function world: {0}")]
    WrongWorld(String),
}

/// How one invocation failed. Each kind says what happened; none of them poisons the next
/// invocation, which runs on a healthy instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The function used its whole fuel budget (typically an endless loop).
    #[error("out of fuel: the function used its whole budget of {budget} fuel")]
    OutOfFuel {
        /// The budget it had.
        budget: u64,
    },
    /// The function used its deadline in CPU time (see `Limits::deadline`).
    #[error("deadline exceeded: the function ran longer than {deadline:?}")]
    DeadlineExceeded {
        /// The deadline it had.
        deadline: Duration,
    },
    /// The function tried to grow its memory past the cap.
    #[error("memory limit: the function tried to grow its memory past {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap.
        limit_bytes: usize,
    },
    /// The function tried to wait (sleep or poll), which fuel and deadlines cannot interrupt.
    #[error("blocked: the function tried to wait in `{call}`; functions may not sleep or poll")]
    Blocked {
        /// The WASI call it made.
        call: String,
    },
    /// A JavaScript handler's promise can never settle: it awaits something nothing will do
    /// (insert functions have no timers or I/O to wait for).
    #[error(
        "promise never settles: the handler's promise is still pending and nothing is left that could settle it"
    )]
    NeverSettles,
    /// The function's call stack overflowed (typically unbounded recursion).
    #[error("stack overflow: the function exhausted its call stack")]
    StackOverflow,
    /// The function returned more event text than it may.
    #[error(
        "output too large: the function returned {actual_bytes} bytes, the limit is {limit_bytes}"
    )]
    OutputTooLarge {
        /// What it returned.
        actual_bytes: usize,
        /// The limit.
        limit_bytes: usize,
    },
    /// The function broke the contract (for example, a batch result of the wrong length).
    #[error("contract violation: {0}")]
    Contract(String),
    /// Any other trap: a panic, an `unreachable`, an out-of-bounds access.
    #[error("trap: {message}{}", guest_message.as_ref().map(|m| format!(" (the function said: {m})")).unwrap_or_default())]
    Trap {
        /// Wasmtime's description of the trap.
        message: String,
        /// The last error the function logged before it died (a Rust panic message, say).
        guest_message: Option<String>,
        /// The guest's call stack at the trap, when known.
        backtrace: Option<String>,
    },
    /// The host could not set up the instance (the instance pool is exhausted, say).
    #[error("instantiation failed: {0}")]
    Instantiate(String),
}

impl InvokeError {
    /// A stable, machine-readable name for the error, for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::OutOfFuel { .. } => "out-of-fuel",
            InvokeError::DeadlineExceeded { .. } => "deadline-exceeded",
            InvokeError::MemoryLimit { .. } => "memory-limit",
            InvokeError::Blocked { .. } => "blocked",
            InvokeError::StackOverflow => "stack-overflow",
            InvokeError::NeverSettles => "promise-never-settles",
            InvokeError::OutputTooLarge { .. } => "output-too-large",
            InvokeError::Contract(_) => "contract-violation",
            InvokeError::Trap { .. } => "trap",
            InvokeError::Instantiate(_) => "instantiate-failed",
        }
    }

    /// Whether Segment's semantics retry an event that failed this way: timeouts are retried,
    /// deterministic failures are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            InvokeError::DeadlineExceeded { .. } | InvokeError::Instantiate(_)
        )
    }
}

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly engine: {0}")]
pub struct EngineError(pub String);
