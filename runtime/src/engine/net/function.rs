//! A network function: a component linked on the [`NetEngine`], given one function's
//! settings and [`HttpPolicy`], invoked asynchronously. Each invocation runs on a fiber; a
//! request in flight suspends it, so waiting costs memory, not a thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_host_api::sluice::function::types::Outcome as WitOutcome;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Func, InstancePre};

use super::state::{NetState, Outbound};
use super::{HttpLimits, HttpPolicy, NetEngine, PolicyError};
use crate::engine::function::{classify, outcome_from_wit, within_output};
use crate::engine::{Invocation, InvokeError, Limits, UploadError};

/// Idle instances kept per function; more are made when more invocations run at once.
const WARM_PER_FUNCTION: usize = 16;

/// A component compiled and linked on the network engine; shared by every function made
/// from the same code. Cheap to clone.
#[derive(Clone)]
pub struct NetCode {
    engine: Arc<NetEngine>,
    pre: InstancePre<NetState>,
    handle: ComponentExportIndex,
}

impl NetCode {
    pub(super) fn new(
        engine: Arc<NetEngine>,
        pre: InstancePre<NetState>,
    ) -> Result<NetCode, UploadError> {
        let handle = pre
            .component()
            .get_export_index(None, "handle")
            .ok_or_else(|| UploadError::WrongWorld("no `handle` export".to_string()))?;
        Ok(NetCode {
            engine,
            pre,
            handle,
        })
    }

    /// A function running this code with `settings` (a JSON object text), its policy read
    /// from their `allowedHosts` under `limits`. Costs parsing the settings.
    ///
    /// # Errors
    /// `allowedHosts` is malformed.
    pub fn function(&self, settings: &str, limits: HttpLimits) -> Result<NetFunction, PolicyError> {
        let value: serde_json::Value =
            serde_json::from_str(settings).unwrap_or(serde_json::Value::Null);
        let policy = HttpPolicy::from_settings(&value, limits)?;
        Ok(NetFunction {
            code: self.clone(),
            settings: settings.to_string(),
            outbound: Arc::new(Outbound::new(policy)),
            warm: Mutex::new(Vec::new()),
        })
    }
}

struct Warm {
    store: Store<NetState>,
    handle: Func,
    uses: u32,
}

/// One function (a destination, a source): its code, settings, policy and warm instances.
/// Safe to share; invocations may run concurrently, each on an instance of its own.
pub struct NetFunction {
    code: NetCode,
    settings: String,
    outbound: Arc<Outbound>,
    warm: Mutex<Vec<Warm>>,
}

impl NetFunction {
    /// Requests this function has in flight now, across its instances.
    pub fn in_flight(&self) -> usize {
        self.outbound.in_flight()
    }

    /// The policy its requests run under.
    pub fn policy(&self) -> &HttpPolicy {
        self.outbound.policy()
    }

    /// Runs the function's `handle` on one event (JSON text) under `limits`: fuel bounds its
    /// CPU, `limits.deadline` the whole invocation's wall-clock time, requests included.
    /// Never panics; a failed instance is dropped.
    pub async fn invoke(&self, event: &str, limits: &Limits) -> Invocation {
        let start = Instant::now();
        let mut warm = match self.acquire(limits, start).await {
            Ok(warm) => warm,
            Err(err) => {
                return Invocation {
                    result: Err(err),
                    fuel_used: 0,
                    duration: start.elapsed(),
                    logs: Vec::new(),
                };
            }
        };
        warm.store
            .data_mut()
            .begin(&self.settings, limits, start + limits.deadline);
        // `set_fuel` only fails on an engine without fuel metering, which ours never is.
        let _ = warm.store.set_fuel(limits.fuel);
        let called = call(&mut warm, event, limits.deadline).await;
        let fuel_used = limits
            .fuel
            .saturating_sub(warm.store.get_fuel().unwrap_or(0));
        let logs = warm.store.data_mut().take_logs();
        let result = match called {
            Ok(outcome) => {
                warm.uses += 1;
                self.release(warm, limits);
                Ok(outcome_from_wit(outcome))
            }
            Err(Failure::Deadline) => Err(InvokeError::DeadlineExceeded {
                deadline: limits.deadline,
            }),
            // The instance is dropped: after a trap its state cannot be trusted.
            Err(Failure::Trap(err)) => Err(classify(&err, warm.store.data().host(), limits)),
        };
        let result = result.and_then(|outcome| within_output(outcome, limits));
        Invocation {
            result,
            fuel_used,
            duration: start.elapsed(),
            logs,
        }
    }

    /// An idle instance, or a new one whose start-up runs under the invocation's bounds.
    async fn acquire(&self, limits: &Limits, start: Instant) -> Result<Warm, InvokeError> {
        if let Some(warm) = self.warm.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(warm);
        }
        let state = NetState::new(self.outbound.clone());
        let mut store = Store::new(self.code.engine.wasmtime(), state);
        store
            .data_mut()
            .begin("{}", limits, start + limits.deadline);
        store.limiter(|state| state.host_mut());
        // Past the deadline the guest is interrupted; before it, it yields to the executor
        // at every tick so that a busy guest cannot hold a worker thread.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline_at() {
                Ok(wasmtime::UpdateDeadline::Interrupt)
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let _ = store.set_fuel(limits.fuel);
        let instantiate = self.code.pre.instantiate_async(&mut store);
        let instance = match tokio::time::timeout(limits.deadline, instantiate).await {
            Ok(Ok(instance)) => instance,
            Ok(Err(e)) => return Err(InvokeError::Instantiate(format!("{e:#}"))),
            Err(_) => {
                return Err(InvokeError::DeadlineExceeded {
                    deadline: limits.deadline,
                });
            }
        };
        let handle = instance
            .get_func(&mut store, self.code.handle)
            .ok_or_else(|| InvokeError::Contract("no `handle` export".to_string()))?;
        Ok(Warm {
            store,
            handle,
            uses: 0,
        })
    }

    fn release(&self, warm: Warm, limits: &Limits) {
        let _ = limits;
        if warm.uses >= 10_000 {
            return;
        }
        if let Ok(mut pool) = self.warm.lock()
            && pool.len() < WARM_PER_FUNCTION
        {
            pool.push(warm);
        }
    }
}

enum Failure {
    Deadline,
    Trap(wasmtime::Error),
}

/// Calls `handle(event)` on `warm`, ended by the timer at `deadline` if it still waits then.
async fn call(warm: &mut Warm, event: &str, deadline: Duration) -> Result<WitOutcome, Failure> {
    let typed = warm
        .handle
        .typed::<(&str,), (WitOutcome,)>(&warm.store)
        .map_err(Failure::Trap)?;
    match tokio::time::timeout(deadline, typed.call_async(&mut warm.store, (event,))).await {
        Ok(Ok((outcome,))) => Ok(outcome),
        Ok(Err(err)) => Err(Failure::Trap(err)),
        Err(_) => Err(Failure::Deadline),
    }
}
