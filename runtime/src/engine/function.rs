//! A compiled function ready to run: its pre-linked component, its pool of warm instances,
//! and invocation under [`Limits`] with every failure mapped to a named [`InvokeError`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sluice_host_api::js::sluice::function::script::AbortReason;
use sluice_host_api::js::{JsEngine as JsBindings, JsEnginePre};
use sluice_host_api::sluice::function::types::{self as wit, ErrorKind};
use sluice_host_api::{InsertFunction, InsertFunctionPre};
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

use super::javascript::Script;
use super::sandbox::ScriptAbort;
use super::{EPOCH_TICK, Engine, HostState, InvokeError, Isolation, JsCodeError, Limits, LogLine};

/// Warm instances kept per function; more than the cores that can use them at once is waste.
const WARM_PER_FUNCTION: usize = 4;

/// What a function made of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Send this event (JSON text) on.
    Forward {
        /// The event.
        event: String,
    },
    /// Nothing to send; not an error.
    Drop,
    /// Send these events (JSON texts) instead.
    FanOut {
        /// The events.
        events: Vec<String>,
    },
    /// The function refused the event with one of Segment's error kinds.
    Error {
        /// `event-not-supported`, `invalid-event-payload`, `validation-error`, `retry-error`,
        /// `drop-event` or `unknown`.
        kind: &'static str,
        /// The function's message.
        message: String,
    },
}

impl Outcome {
    fn from_wit(outcome: wit::Outcome) -> Outcome {
        match outcome {
            wit::Outcome::Forward(event) => Outcome::Forward { event },
            wit::Outcome::Drop => Outcome::Drop,
            wit::Outcome::FanOut(events) => Outcome::FanOut { events },
            wit::Outcome::Error(err) => Outcome::Error {
                kind: match err.kind {
                    ErrorKind::EventNotSupported => "event-not-supported",
                    ErrorKind::InvalidEventPayload => "invalid-event-payload",
                    ErrorKind::ValidationError => "validation-error",
                    ErrorKind::RetryError => "retry-error",
                    ErrorKind::DropEvent => "drop-event",
                    ErrorKind::Unknown => "unknown",
                },
                message: err.message,
            },
        }
    }

    fn output_bytes(&self) -> usize {
        match self {
            Outcome::Forward { event } => event.len(),
            Outcome::FanOut { events } => events.iter().map(String::len).sum(),
            Outcome::Drop => 0,
            Outcome::Error { message, .. } => message.len(),
        }
    }
}

/// `outcome`, or `OutputTooLarge` if the events it hands back are over `limits.output_bytes`.
pub(crate) fn within_output(outcome: Outcome, limits: &Limits) -> Result<Outcome, InvokeError> {
    let bytes = outcome.output_bytes();
    if bytes > limits.output_bytes {
        return Err(InvokeError::OutputTooLarge {
            actual_bytes: bytes,
            limit_bytes: limits.output_bytes,
        });
    }
    Ok(outcome)
}

/// The outcome of the contract's `outcome` as the host names it (for the network engine).
pub(crate) fn outcome_from_wit(outcome: wit::Outcome) -> Outcome {
    Outcome::from_wit(outcome)
}

/// One invocation's result and what it cost.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The outcome, or how the invocation failed.
    pub result: Result<Outcome, InvokeError>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time, instantiation included when there was one.
    pub duration: Duration,
    /// What the function logged.
    pub logs: Vec<LogLine>,
}

impl Invocation {
    /// An invocation that failed before the function ran (no instance could start).
    pub(crate) fn failed(err: InvokeError, start: std::time::Instant) -> Invocation {
        Invocation {
            result: Err(err),
            fuel_used: 0,
            duration: start.elapsed(),
            logs: Vec::new(),
        }
    }
}

/// A batch invocation's results (one per event, in order) and what the batch cost.
#[derive(Debug, Clone)]
pub struct BatchInvocation {
    /// One result per input event, in input order.
    pub results: Vec<Result<Outcome, InvokeError>>,
    /// Fuel consumed by the whole batch.
    pub fuel_used: u64,
    /// Wall-clock time of the whole batch.
    pub duration: Duration,
    /// What the function logged.
    pub logs: Vec<LogLine>,
}

impl BatchInvocation {
    /// A batch that failed before the function ran: `err` for each of its `count` events.
    pub(crate) fn failed(err: InvokeError, count: usize, start: std::time::Instant) -> Self {
        BatchInvocation {
            results: vec![Err(err); count],
            fuel_used: 0,
            duration: start.elapsed(),
            logs: Vec::new(),
        }
    }
}

/// What instances of a function are made from: immutable, shared by every [`Function`] made
/// with [`Function::with_own_pool`].
#[derive(Clone)]
enum Pre {
    /// A component of the insert-function world.
    Component(InsertFunctionPre<HostState>),
    /// The JavaScript engine component, given `code` through the `script` interface.
    Script {
        pre: JsEnginePre<HostState>,
        script: Script,
    },
}

/// One instance's exports; both worlds export the same `handle` and `handle-batch`.
enum Bindings {
    Component(InsertFunction),
    Script(JsBindings),
}

impl Bindings {
    fn handle(&self, store: &mut Store<HostState>, event: &str) -> wasmtime::Result<wit::Outcome> {
        match self {
            Bindings::Component(b) => b.call_handle(store, event),
            Bindings::Script(b) => b.call_handle(store, event),
        }
    }

    fn handle_batch(
        &self,
        store: &mut Store<HostState>,
        events: &[String],
    ) -> wasmtime::Result<Vec<wit::Outcome>> {
        match self {
            Bindings::Component(b) => b.call_handle_batch(store, events),
            Bindings::Script(b) => b.call_handle_batch(store, events),
        }
    }
}

struct Warm {
    store: Store<HostState>,
    bindings: Bindings,
    uses: u32,
}

/// A function ready to run: cheap to invoke, safe to share between threads. Instances are
/// reused only by this function, never across functions.
pub struct Function {
    engine: Arc<Engine>,
    digest: String,
    pre: Pre,
    warm: Mutex<Vec<Warm>>,
}

struct Run<R> {
    result: Result<R, InvokeError>,
    fuel_used: u64,
    duration: Duration,
    logs: Vec<LogLine>,
}

impl Function {
    /// A function for a compiled, linked component (see [`Engine::compile`]).
    pub fn new(engine: Arc<Engine>, digest: String, pre: InsertFunctionPre<HostState>) -> Function {
        Function {
            engine,
            digest,
            pre: Pre::Component(pre),
            warm: Mutex::new(Vec::new()),
        }
    }

    /// A JavaScript function: the shared engine component running `script` (whose code's
    /// digest is `digest`). Each instance loads the code when it is created, from its bytecode
    /// when the script has it.
    pub(crate) fn script(
        engine: Arc<Engine>,
        digest: String,
        pre: JsEnginePre<HostState>,
        script: Script,
    ) -> Function {
        Function {
            engine,
            digest,
            pre: Pre::Script { pre, script },
            warm: Mutex::new(Vec::new()),
        }
    }

    /// The same function (its pre-linked component, or the JavaScript engine and code, shared)
    /// with a warm pool of its own, empty: instances made for one insert-function instance are
    /// then never reused for another. Costs a few reference-count increments.
    pub fn with_own_pool(&self) -> Function {
        Function {
            engine: self.engine.clone(),
            digest: self.digest.clone(),
            pre: self.pre.clone(),
            warm: Mutex::new(Vec::new()),
        }
    }

    /// The blake3 digest (hex) of the component this function runs.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Runs the function on one event (JSON text) with the instance's settings (a JSON object
    /// text). Never panics and never poisons later invocations: a failed instance is dropped.
    pub fn invoke(
        &self,
        event: &str,
        settings: &str,
        limits: &Limits,
        isolation: Isolation,
    ) -> Invocation {
        let run = self.run(settings, limits, isolation, |bindings, store| {
            bindings.handle(store, event).map(Outcome::from_wit)
        });
        let result = run
            .result
            .and_then(|outcome| within_output(outcome, limits));
        Invocation {
            result,
            fuel_used: run.fuel_used,
            duration: run.duration,
            logs: run.logs,
        }
    }

    /// Runs the function on a batch of events in one call: one result per event, in order.
    /// The fuel budget and deadline apply to the whole batch. If the batch call itself fails
    /// (a trap on one event), each event is run again on its own so that only the events that
    /// fail get an error.
    pub fn invoke_batch(
        &self,
        events: &[String],
        settings: &str,
        limits: &Limits,
        isolation: Isolation,
    ) -> BatchInvocation {
        let run = self.run(settings, limits, isolation, |bindings, store| {
            bindings.handle_batch(store, events).map(|outcomes| {
                outcomes
                    .into_iter()
                    .map(Outcome::from_wit)
                    .collect::<Vec<_>>()
            })
        });
        match run.result {
            Ok(outcomes) if outcomes.len() == events.len() => {
                let bytes: usize = outcomes.iter().map(Outcome::output_bytes).sum();
                let results = if bytes > limits.output_bytes {
                    let err = InvokeError::OutputTooLarge {
                        actual_bytes: bytes,
                        limit_bytes: limits.output_bytes,
                    };
                    vec![Err(err); events.len()]
                } else {
                    outcomes.into_iter().map(Ok).collect()
                };
                BatchInvocation {
                    results,
                    fuel_used: run.fuel_used,
                    duration: run.duration,
                    logs: run.logs,
                }
            }
            Ok(outcomes) => {
                let err = InvokeError::Contract(format!(
                    "handle-batch returned {} results for {} events",
                    outcomes.len(),
                    events.len()
                ));
                BatchInvocation {
                    results: vec![Err(err); events.len()],
                    fuel_used: run.fuel_used,
                    duration: run.duration,
                    logs: run.logs,
                }
            }
            Err(_) if events.len() > 1 => {
                let mut batch = BatchInvocation {
                    results: Vec::with_capacity(events.len()),
                    fuel_used: run.fuel_used,
                    duration: run.duration,
                    logs: run.logs,
                };
                for event in events {
                    let one = self.invoke(event, settings, limits, isolation);
                    batch.results.push(one.result);
                    batch.fuel_used += one.fuel_used;
                    batch.duration += one.duration;
                    batch.logs.extend(one.logs);
                }
                batch
            }
            Err(err) => BatchInvocation {
                results: vec![Err(err); events.len()],
                fuel_used: run.fuel_used,
                duration: run.duration,
                logs: run.logs,
            },
        }
    }

    /// Warm instances currently idle in this function's pool.
    pub fn warm_instances(&self) -> usize {
        self.warm.lock().map(|warm| warm.len()).unwrap_or(0)
    }

    fn run<R>(
        &self,
        settings: &str,
        limits: &Limits,
        isolation: Isolation,
        call: impl FnOnce(&Bindings, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Run<R> {
        let start = Instant::now();
        let ticks = limits.deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        let mut warm = match self.acquire(isolation, limits, ticks.max(1)) {
            Ok(warm) => warm,
            Err(err) => {
                return Run {
                    result: Err(err),
                    fuel_used: 0,
                    duration: start.elapsed(),
                    logs: Vec::new(),
                };
            }
        };
        let store = &mut warm.store;
        store.data_mut().begin(settings, limits);
        // Instantiation (the guest's start-up code) is not charged to the event. `set_fuel`
        // only fails on an engine without fuel metering, which ours never is.
        let _ = store.set_fuel(limits.fuel);
        store.set_epoch_deadline(ticks.max(1));
        let outcome = call(&warm.bindings, store);
        let duration = start.elapsed();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let logs = store.data_mut().take_logs();
        let result = match outcome {
            Ok(value) => {
                warm.uses += 1;
                self.release(warm, isolation);
                Ok(value)
            }
            // The instance is dropped here: after a trap its state cannot be trusted.
            Err(err) => Err(classify(&err, warm.store.data(), limits)),
        };
        Run {
            result,
            fuel_used,
            duration,
            logs,
        }
    }

    /// A warm instance of this function, or a new one instantiated under the invocation's fuel
    /// and `ticks` (a guest's start-up code, and a JavaScript function's compilation of its
    /// code, run before the event and must be bounded too).
    fn acquire(
        &self,
        isolation: Isolation,
        limits: &Limits,
        ticks: u64,
    ) -> Result<Warm, InvokeError> {
        if let Isolation::Pooled { .. } = isolation
            && let Some(warm) = self.warm.lock().ok().and_then(|mut pool| pool.pop())
        {
            return Ok(warm);
        }
        let instantiate = |e: wasmtime::Error| InvokeError::Instantiate(format!("{e:#}"));
        let (store, bindings) = match &self.pre {
            Pre::Component(pre) => {
                let mut store = new_store(&self.engine, HostState::new(), limits, ticks);
                let bindings = pre.instantiate(&mut store).map_err(instantiate)?;
                (store, Bindings::Component(bindings))
            }
            Pre::Script { pre, script } => {
                match super::javascript::start(&self.engine, pre, script.clone(), limits, ticks) {
                    Ok((store, bindings)) => (store, Bindings::Script(bindings)),
                    // Checked at upload, so only a different engine build can get here.
                    Err(JsCodeError::Syntax {
                        line,
                        column,
                        message,
                    }) => {
                        return Err(InvokeError::Contract(format!(
                            "the function's code does not compile: {message} (line {line}, column {column})"
                        )));
                    }
                    Err(JsCodeError::Invoke(err)) => return Err(err),
                    Err(other) => return Err(InvokeError::Instantiate(other.to_string())),
                }
            }
        };
        Ok(Warm {
            store,
            bindings,
            uses: 0,
        })
    }

    fn release(&self, warm: Warm, isolation: Isolation) {
        let Isolation::Pooled { max_uses } = isolation else {
            return;
        };
        if warm.uses >= max_uses {
            return;
        }
        if let Ok(mut pool) = self.warm.lock()
            && pool.len() < WARM_PER_FUNCTION
        {
            pool.push(warm);
        }
    }
}

/// A store for one new instance, bounded by `limits` (memory, fuel) and `ticks` (deadline).
pub(crate) fn new_store(
    engine: &Engine,
    state: HostState,
    limits: &Limits,
    ticks: u64,
) -> Store<HostState> {
    let mut store = Store::new(engine.wasmtime(), state);
    store.data_mut().begin("{}", limits);
    store.limiter(|state| state);
    // The epoch deadline comes due in wall-clock ticks; the invocation is interrupted only
    // once its thread has used its deadline in CPU time (see `cpu_clock` for why).
    store.epoch_deadline_callback(|store| {
        Ok(match store.data().cpu_left() {
            Some(left) => UpdateDeadline::Continue(ticks_for(left)),
            None => UpdateDeadline::Interrupt,
        })
    });
    // `set_fuel` only fails on an engine without fuel metering, which ours never is.
    let _ = store.set_fuel(limits.fuel);
    store.set_epoch_deadline(ticks);
    store
}

/// Epoch ticks (at least one) covering `time`.
pub(crate) fn ticks_for(time: Duration) -> u64 {
    (time.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64).max(1)
}

/// Names what went wrong in a failed call.
pub(crate) fn classify(err: &wasmtime::Error, state: &HostState, limits: &Limits) -> InvokeError {
    let trap = err.downcast_ref::<Trap>().copied();
    match trap {
        Some(Trap::OutOfFuel) => {
            return InvokeError::OutOfFuel {
                budget: limits.fuel,
            };
        }
        Some(Trap::Interrupt) => {
            return InvokeError::DeadlineExceeded {
                deadline: limits.deadline,
            };
        }
        Some(Trap::StackOverflow) => return InvokeError::StackOverflow,
        _ => {}
    }
    if let Some(ScriptAbort(reason)) = err.downcast_ref::<ScriptAbort>() {
        return match reason {
            AbortReason::StackOverflow => InvokeError::StackOverflow,
            AbortReason::OutOfMemory => InvokeError::MemoryLimit {
                limit_bytes: limits.memory_bytes,
            },
            AbortReason::PromiseNeverSettles => InvokeError::NeverSettles,
        };
    }
    if let Some(blocked) = err.downcast_ref::<super::wasi::BlockingForbidden>() {
        return InvokeError::Blocked {
            call: blocked.0.to_string(),
        };
    }
    // A refused growth usually surfaces as the guest's allocator aborting.
    if state.memory_refused {
        return InvokeError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    InvokeError::Trap {
        message: match trap {
            Some(trap) => trap.to_string(),
            None => format!("{err:#}"),
        },
        guest_message: state.last_error_line().map(str::to_string),
        backtrace: err.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string()),
    }
}
