//! A network function: a component linked on the [`NetEngine`], given one function's
//! settings and [`HttpPolicy`], invoked asynchronously. Each invocation runs on a fiber; a
//! request in flight suspends it, so waiting costs memory, not a thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_host_api::sluice::function::types::Outcome as WitOutcome;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Func, InstancePre};

use sluice_host_api::js::sluice::function::script::SyntaxError;

use super::state::{NetState, Outbound};
use super::{HttpLimits, HttpPolicy, NetEngine, PolicyError};
use crate::engine::function::{classify, outcome_from_wit, within_output};
use crate::engine::{
    BatchInvocation, Invocation, InvokeError, Limits, LogLine, Script, UploadError,
};

/// Idle instances kept per function at least; more are made when more invocations run at
/// once, and up to the function's cap on requests in flight are kept (each holds its memory:
/// a few MiB for the JavaScript engine), so that a function kept busy by that many requests
/// does not instantiate again for every event.
const WARM_PER_FUNCTION: usize = 16;

/// A component compiled and linked on the network engine; shared by every function made
/// from the same code. Cheap to clone.
#[derive(Clone)]
pub struct NetCode {
    engine: Arc<NetEngine>,
    pre: InstancePre<NetState>,
    handle: ComponentExportIndex,
    handle_batch: ComponentExportIndex,
    /// The JavaScript engine's code and its `check` export (which loads the code), for a
    /// JavaScript function; `None` for a component.
    script: Option<(Script, ComponentExportIndex)>,
}

impl NetCode {
    pub(super) fn new(
        engine: Arc<NetEngine>,
        pre: InstancePre<NetState>,
        script: Option<Script>,
    ) -> Result<NetCode, UploadError> {
        let export = |name: &str| {
            pre.component()
                .get_export_index(None, name)
                .ok_or_else(|| UploadError::WrongWorld(format!("no `{name}` export")))
        };
        let script = match script {
            Some(script) => Some((script, export("check")?)),
            None => None,
        };
        Ok(NetCode {
            handle: export("handle")?,
            handle_batch: export("handle-batch")?,
            engine,
            pre,
            script,
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
    handle_batch: Func,
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
            Err(err) => return Invocation::failed(err, start),
        };
        self.begin(&mut warm, limits, start);
        let called = call(&mut warm, event, limits.deadline).await;
        let (result, fuel_used, logs) = self.end(warm, called, limits);
        let result = result.and_then(|outcome| within_output(outcome_from_wit(outcome), limits));
        Invocation {
            result,
            fuel_used,
            duration: start.elapsed(),
            logs,
        }
    }

    /// Runs the function's `handle-batch` on `events` in one call under `limits` (fuel and
    /// deadline for the whole batch): one result per event, in order, sharing the call's
    /// fuel, duration and logs. A failed call is every event's error.
    pub async fn invoke_batch(&self, events: &[String], limits: &Limits) -> BatchInvocation {
        let start = Instant::now();
        let mut warm = match self.acquire(limits, start).await {
            Ok(warm) => warm,
            Err(err) => return BatchInvocation::failed(err, events.len(), start),
        };
        self.begin(&mut warm, limits, start);
        let called = call_batch(&mut warm, events, limits.deadline).await;
        let (result, fuel_used, logs) = self.end(warm, called, limits);
        let results = match result {
            Ok(outcomes) if outcomes.len() == events.len() => outcomes
                .into_iter()
                .map(|o| within_output(outcome_from_wit(o), limits))
                .collect(),
            Ok(outcomes) => {
                let err = InvokeError::Contract(format!(
                    "handle-batch returned {} outcomes for {} events",
                    outcomes.len(),
                    events.len()
                ));
                vec![Err(err); events.len()]
            }
            Err(err) => vec![Err(err); events.len()],
        };
        BatchInvocation {
            results,
            fuel_used,
            duration: start.elapsed(),
            logs,
        }
    }

    /// Gives `warm` this invocation's settings, deadline and fuel.
    fn begin(&self, warm: &mut Warm, limits: &Limits, start: Instant) {
        warm.store
            .data_mut()
            .begin(&self.settings, limits, start + limits.deadline);
        // `set_fuel` only fails on an engine without fuel metering, which ours never is.
        let _ = warm.store.set_fuel(limits.fuel);
    }

    /// What a call left: its result, the fuel it used and its logs; the instance goes back
    /// to the pool unless the call failed (after a trap its state cannot be trusted).
    fn end<T>(
        &self,
        mut warm: Warm,
        called: Result<T, Failure>,
        limits: &Limits,
    ) -> (Result<T, InvokeError>, u64, Vec<LogLine>) {
        let fuel_used = limits
            .fuel
            .saturating_sub(warm.store.get_fuel().unwrap_or(0));
        let logs = warm.store.data_mut().take_logs();
        let result = match called {
            Ok(value) => {
                warm.uses += 1;
                self.release(warm, limits);
                Ok(value)
            }
            Err(Failure::Deadline) => Err(InvokeError::DeadlineExceeded {
                deadline: limits.deadline,
            }),
            Err(Failure::Trap(err)) => Err(classify(&err, warm.store.data().host(), limits)),
        };
        (result, fuel_used, logs)
    }

    /// An idle instance, or a new one whose start-up runs under the invocation's bounds.
    async fn acquire(&self, limits: &Limits, start: Instant) -> Result<Warm, InvokeError> {
        if let Some(warm) = self.warm.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(warm);
        }
        let script = self.code.script.as_ref().map(|(script, _)| script.clone());
        let state = NetState::new(self.outbound.clone(), script);
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
        let export = |store: &mut Store<NetState>, index, name: &str| {
            instance
                .get_func(store, index)
                .ok_or_else(|| InvokeError::Contract(format!("no `{name}` export")))
        };
        let handle = export(&mut store, self.code.handle, "handle")?;
        let handle_batch = export(&mut store, self.code.handle_batch, "handle-batch")?;
        if let Some((_, check)) = &self.code.script {
            let check = export(&mut store, *check, "check")?;
            load_script(&mut store, check, limits).await?;
        }
        Ok(Warm {
            store,
            handle,
            handle_batch,
            uses: 0,
        })
    }

    fn release(&self, warm: Warm, limits: &Limits) {
        let _ = limits;
        if warm.uses >= 10_000 {
            return;
        }
        if let Ok(mut pool) = self.warm.lock()
            && pool.len() < WARM_PER_FUNCTION.max(self.outbound.policy().limits.max_in_flight)
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

/// Calls `handle-batch(events)` on `warm`, as [`call`].
async fn call_batch(
    warm: &mut Warm,
    events: &[String],
    deadline: Duration,
) -> Result<Vec<WitOutcome>, Failure> {
    let typed = warm
        .handle_batch
        .typed::<(&[String],), (Vec<WitOutcome>,)>(&warm.store)
        .map_err(Failure::Trap)?;
    let called = typed.call_async(&mut warm.store, (events,));
    match tokio::time::timeout(deadline, called).await {
        Ok(Ok((outcomes,))) => Ok(outcomes),
        Ok(Err(err)) => Err(Failure::Trap(err)),
        Err(_) => Err(Failure::Deadline),
    }
}

/// Starts a JavaScript instance: the engine's `check` loads the code and runs its top level
/// (under the invocation's bounds, which the event then gets afresh).
async fn load_script(
    store: &mut Store<NetState>,
    check: Func,
    limits: &Limits,
) -> Result<(), InvokeError> {
    let typed = check
        .typed::<(), (Result<(), SyntaxError>,)>(&*store)
        .map_err(|e| InvokeError::Contract(format!("{e:#}")))?;
    match tokio::time::timeout(limits.deadline, typed.call_async(&mut *store, ())).await {
        Ok(Ok((Ok(()),))) => Ok(()),
        Ok(Ok((Err(syntax),))) => Err(InvokeError::Contract(format!(
            "the function's code does not compile: {} at line {}, column {}",
            syntax.message, syntax.line, syntax.column
        ))),
        Ok(Err(err)) => Err(classify(&err, store.data().host(), limits)),
        Err(_) => Err(InvokeError::DeadlineExceeded {
            deadline: limits.deadline,
        }),
    }
}
