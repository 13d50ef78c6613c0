//! The per-store state of a network function: the insert functions' [`HostState`] (WASI
//! granting nothing, settings, the bounded log, the memory limiter), `wasi:http`'s context,
//! the hooks that send through the function's [`Outbound`], and the invocation's deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::HttpPolicy;
use crate::engine::javascript::Script;
use crate::engine::{HostState, Limits};

/// What every request of one function shares: its policy and its count of requests in
/// flight (across all its instances).
pub(crate) struct Outbound {
    policy: HttpPolicy,
    in_flight: Arc<AtomicUsize>,
}

impl Outbound {
    pub(crate) fn new(policy: HttpPolicy) -> Outbound {
        Outbound {
            policy,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// A slot for one more request, or `None` at the cap. The slot is given back when the
    /// returned guard drops (with the response body, or the failed request).
    pub(crate) fn admit(&self) -> Option<Slot> {
        let cap = self.policy.limits.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.in_flight.clone()))
    }
}

/// One request's place among a function's requests in flight.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `wasi:http` hooks of one store: every request goes through [`super::send`].
pub(crate) struct Gate {
    pub(crate) outbound: Arc<Outbound>,
}

/// A network function's store data.
pub struct NetState {
    host: HostState,
    http: WasiHttpCtx,
    gate: Gate,
    deadline_at: Instant,
}

impl NetState {
    /// The state of an instance of a component, or of the JavaScript engine running
    /// `script`.
    pub(crate) fn new(outbound: Arc<Outbound>, script: Option<Script>) -> NetState {
        NetState {
            host: script.map_or_else(HostState::new, HostState::with_script),
            http: WasiHttpCtx::new(),
            gate: Gate { outbound },
            deadline_at: Instant::now(),
        }
    }

    /// Prepares for one invocation ending at `deadline_at`.
    pub(crate) fn begin(&mut self, settings: &str, limits: &Limits, deadline_at: Instant) {
        self.host.begin(settings, limits);
        self.deadline_at = deadline_at;
    }

    pub(crate) fn deadline_at(&self) -> Instant {
        self.deadline_at
    }

    pub(crate) fn host(&self) -> &HostState {
        &self.host
    }

    pub(crate) fn host_mut(&mut self) -> &mut HostState {
        &mut self.host
    }

    pub(crate) fn take_logs(&mut self) -> Vec<crate::engine::LogLine> {
        self.host.take_logs()
    }
}

impl WasiView for NetState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.host.ctx()
    }
}

impl WasiHttpView for NetState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let WasiCtxView { table, .. } = self.host.ctx();
        WasiHttpCtxView {
            hooks: &mut self.gate,
            table,
            ctx: &mut self.http,
        }
    }
}

/// WASI (asynchronous: waiting suspends the fiber), `wasi:http`, sluice's host interface and
/// the JavaScript engine's `script`.
pub(super) fn add_to_linker(linker: &mut Linker<NetState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    sluice_host_api::InsertFunction::add_to_linker::<_, HasSelf<HostState>>(
        linker,
        NetState::host_mut,
    )?;
    // For the JavaScript engine only: uploads importing `script` are refused (`link`).
    sluice_host_api::js::sluice::function::script::add_to_linker::<_, HasSelf<HostState>>(
        linker,
        NetState::host_mut,
    )?;
    Ok(())
}
