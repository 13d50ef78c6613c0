//! A compiled function ready to run: its pre-linked component, its pool of warm instances,
//! and invocation under [`Limits`] with every failure mapped to a named [`InvokeError`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sluice_host_api::sluice::function::types::{self as wit, ErrorKind};
use sluice_host_api::{InsertFunction, InsertFunctionPre};
use wasmtime::{Store, Trap, WasmBacktrace};

use super::{EPOCH_TICK, Engine, HostState, InvokeError, Isolation, Limits, LogLine};

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

struct Warm {
    store: Store<HostState>,
    bindings: InsertFunction,
    uses: u32,
}

/// A function ready to run: cheap to invoke, safe to share between threads. Instances are
/// reused only by this function, never across functions.
pub struct Function {
    engine: Arc<Engine>,
    digest: String,
    pre: InsertFunctionPre<HostState>,
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
            pre,
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
            bindings.call_handle(store, event).map(Outcome::from_wit)
        });
        let result = run.result.and_then(|outcome| {
            let bytes = outcome.output_bytes();
            if bytes > limits.output_bytes {
                return Err(InvokeError::OutputTooLarge {
                    actual_bytes: bytes,
                    limit_bytes: limits.output_bytes,
                });
            }
            Ok(outcome)
        });
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
            bindings.call_handle_batch(store, events).map(|outcomes| {
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
        call: impl FnOnce(&InsertFunction, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Run<R> {
        let start = Instant::now();
        let ticks = limits.deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        let mut warm = match self.acquire(isolation, limits.fuel, ticks.max(1)) {
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

    /// A warm instance of this function, or a new one instantiated under `fuel` and `ticks`
    /// (a guest's start-up code runs during instantiation and must be bounded too).
    fn acquire(&self, isolation: Isolation, fuel: u64, ticks: u64) -> Result<Warm, InvokeError> {
        if let Isolation::Pooled { .. } = isolation
            && let Some(warm) = self.warm.lock().ok().and_then(|mut pool| pool.pop())
        {
            return Ok(warm);
        }
        let mut store = Store::new(self.engine.wasmtime(), HostState::new());
        store.limiter(|state| state);
        store.epoch_deadline_trap();
        let _ = store.set_fuel(fuel);
        store.set_epoch_deadline(ticks);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
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

/// Names what went wrong in a failed call.
fn classify(err: &wasmtime::Error, state: &HostState, limits: &Limits) -> InvokeError {
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
