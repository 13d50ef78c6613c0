//! The state a function's store carries: WASI with nothing granted, the host interface, the
//! bounded log and the memory limiter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sluice_host_api::js::sluice::function::script::{self, AbortReason};
use sluice_host_api::sluice::function::host::{self, Level};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::javascript::Script;
use super::wasi::NoNetwork;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// One line a function logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// What the function said.
    pub message: String,
}

/// Per-store state. Lives as long as the instance; the per-invocation parts are reset by
/// [`HostState::begin`].
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    settings: String,
    logs: Vec<LogLine>,
    log_bytes: usize,
    logs_dropped: usize,
    log_line_cap: usize,
    log_byte_cap: usize,
    last_error_line: Option<String>,
    memory_cap: usize,
    /// The JavaScript code (and bytecode) a JavaScript function's engine instance runs; `None`
    /// for components.
    script: Option<Script>,
    /// The thread's CPU time when the invocation began, and the CPU time it may use
    /// ([`super::cpu_clock`]: the deadline counts CPU time, not the wall clock).
    cpu_started: Duration,
    cpu_deadline: Duration,
    /// Set when the limiter refused a growth, so that the trap that usually follows (a Rust
    /// allocation failure aborts) is reported as what it is: the memory limit.
    pub(crate) memory_refused: bool,
    /// `wasi:http` for the JavaScript engine, every request refused ([`NoNetwork`]).
    http: WasiHttpCtx,
    no_network: NoNetwork,
}

impl HostState {
    /// A state with WASI granting nothing: no preopened directories, no environment, no
    /// arguments, no network, stdin closed, stdout and stderr discarded.
    pub fn new() -> HostState {
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            settings: String::from("{}"),
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            log_line_cap: 0,
            log_byte_cap: 0,
            last_error_line: None,
            memory_cap: usize::MAX,
            script: None,
            cpu_started: Duration::ZERO,
            cpu_deadline: Duration::MAX,
            memory_refused: false,
            http: WasiHttpCtx::new(),
            no_network: NoNetwork,
        }
    }

    /// A state for an instance of the JavaScript engine that runs `script`.
    pub(crate) fn with_script(script: Script) -> HostState {
        HostState {
            script: Some(script),
            ..HostState::new()
        }
    }

    /// Prepares for one invocation: its settings, its log bounds and its memory cap.
    pub(crate) fn begin(&mut self, settings: &str, limits: &super::Limits) {
        settings.clone_into(&mut self.settings);
        self.logs.clear();
        self.log_bytes = 0;
        self.logs_dropped = 0;
        self.log_line_cap = limits.log_lines;
        self.log_byte_cap = limits.log_bytes;
        self.last_error_line = None;
        self.memory_cap = limits.memory_bytes;
        self.memory_refused = false;
        self.cpu_started = super::cpu_clock::thread_cpu_time();
        self.cpu_deadline = limits.deadline;
    }

    /// The CPU time the invocation has left, or `None` once it has used its deadline. Called
    /// from the epoch callback, on the thread that runs the guest.
    pub(crate) fn cpu_left(&self) -> Option<Duration> {
        let used = super::cpu_clock::thread_cpu_time().saturating_sub(self.cpu_started);
        self.cpu_deadline
            .checked_sub(used)
            .filter(|left| !left.is_zero())
    }

    /// Takes the invocation's log, with a closing line saying how many lines were dropped.
    pub(crate) fn take_logs(&mut self) -> Vec<LogLine> {
        let mut logs = std::mem::take(&mut self.logs);
        if self.logs_dropped > 0 {
            logs.push(LogLine {
                level: "warn",
                message: format!(
                    "{} more log lines were dropped (log limit)",
                    self.logs_dropped
                ),
            });
        }
        logs
    }

    /// The last error-level line the function logged (its panic message, for a Rust function).
    pub(crate) fn last_error_line(&self) -> Option<&str> {
        self.last_error_line.as_deref()
    }
}

impl Default for HostState {
    fn default() -> HostState {
        HostState::new()
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        if level == "error" {
            let mut kept = message.clone();
            truncate_at_char(&mut kept, 1024);
            self.last_error_line = Some(kept);
        }
        if self.logs.len() >= self.log_line_cap || self.log_bytes >= self.log_byte_cap {
            self.logs_dropped += 1;
            return;
        }
        let mut message = message;
        truncate_at_char(&mut message, self.log_byte_cap - self.log_bytes);
        self.log_bytes += message.len();
        self.logs.push(LogLine { level, message });
    }

    fn settings(&mut self) -> String {
        self.settings.clone()
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a transform needs a few thousand at most.
        Ok(desired <= 100_000)
    }
}

/// The JavaScript engine gave up on an invocation (see the `script.abort` import); carried as
/// the trap's error so that the invocation is reported under its own name.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the JavaScript engine aborted: {0:?}")]
pub(crate) struct ScriptAbort(pub(crate) AbortReason);

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.no_network,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl script::Host for HostState {
    fn source(&mut self) -> String {
        self.script
            .as_ref()
            .map(|s| s.code.to_string())
            .unwrap_or_default()
    }

    fn bytecode(&mut self) -> Vec<u8> {
        self.script
            .as_ref()
            .map(|s| s.bytecode.to_vec())
            .unwrap_or_default()
    }

    fn kind(&mut self) -> script::FunctionKind {
        self.script
            .as_ref()
            .map_or(script::FunctionKind::Insert, |s| s.kind)
    }

    fn abort(&mut self, reason: AbortReason) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(ScriptAbort(reason)))
    }
}

// The `types` interface has no functions; the bindings still ask the store to implement it.
impl sluice_host_api::sluice::function::types::Host for HostState {}
