//! Insert functions in flight: runs a chain of instances (a source's, or a destination's) on a
//! batch of events, instance by instance, with Segment's treatment of each outcome: forward,
//! drop, fan out; `retry-error` and retryable engine errors ask for the event to be retried;
//! other errors discard the event, counted under their reason. What functions log is kept,
//! per event. Runs on the chunk's blocking thread (the engine is synchronous).
//!
//! Each event is its own invocation on the instance's warm instance, not one `invoke_batch`
//! per instance: a batch call costs the same per event (BENCHMARKS.md: 21.6 us/event batched,
//! 21.1 us one by one), and one by one keeps what `invoke_batch` cannot tell apart: which
//! event logged a line, and the fuel and time of each event.

use std::sync::Arc;

use serde_json::{Value, json};

use super::output::{self, InvalidOutput};
use crate::dataplane::DataPlane;
use crate::dataplane::event::Event;
use crate::dataplane::observe::changes;
use crate::dataplane::observe::{FunctionLog, StageName, Status};
use crate::engine::{Function, Invocation, InvokeError, Limits, Outcome};
use crate::workspace::InsertFunctionInstance;

/// Why an instance cannot run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// The function was deleted.
    #[error("the function was deleted")]
    Deleted,
    /// The function was never deployed.
    #[error("the function has no deployed version")]
    NotDeployed,
    /// Its deployed version record is gone.
    #[error("the deployed version is missing")]
    VersionMissing,
    /// Its code could not be loaded or compiled.
    #[error("cannot load the function: {0}")]
    Load(String),
}

/// One instance of a chain, ready to run.
pub struct Step {
    /// The instance.
    pub instance: InsertFunctionInstance,
    /// Its settings as JSON text.
    pub settings: String,
    /// The deployed version's code, or why it cannot run.
    pub function: Result<Arc<Function>, Unavailable>,
}

/// What a chain made of one event.
#[derive(Debug)]
pub enum Fate {
    /// These events go on (none when a function dropped it).
    Events(Vec<Event>),
    /// Discarded, with the reason (an error kind or engine error code).
    Discarded(String),
    /// A function asked for a retry (`retry-error`, a deadline; the reason's code): hold the
    /// event and run the chain again later.
    Retry(String),
}

/// Where a chain runs, for the debugger.
#[derive(Debug, Clone, Copy)]
pub enum ChainStage {
    /// The source's insert functions.
    Source,
    /// A destination's insert functions.
    Destination,
}

impl ChainStage {
    fn name(self) -> StageName {
        match self {
            ChainStage::Source => StageName::Function,
            ChainStage::Destination => StageName::DestinationFunction,
        }
    }
}

/// How a chain's run is reported.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The source whose events these are.
    pub source_id: &'a str,
    /// Whose chain it is.
    pub stage: ChainStage,
    /// Whether a retryable failure ends the event (its attempts are used up): the debugger
    /// then shows `error`, else `retrying`.
    pub last_try: bool,
}

/// Runs `events` through `chain`; one fate per event, in order.
pub fn run(plane: &DataPlane, chain: &[Step], events: Vec<Event>, run: Run<'_>) -> Vec<Fate> {
    let Run {
        source_id, stage, ..
    } = run;
    // Each input event's current outputs; `None` once it is decided otherwise.
    let mut fates: Vec<Fate> = events.into_iter().map(|e| Fate::Events(vec![e])).collect();
    for step in chain {
        let function = match &step.function {
            Ok(f) => f,
            Err(reason) => {
                for fate in fates.iter_mut() {
                    if let Fate::Events(events) = fate {
                        for e in events.iter() {
                            let at = (source_id, e.message_id.as_str());
                            record(plane, at, stage, step, Status::Error, || {
                                json!(reason.to_string())
                            });
                        }
                        *fate = Fate::Discarded("function-unavailable".into());
                    }
                }
                return fates;
            }
        };
        apply(plane, step, function, &mut fates, run);
    }
    fates
}

/// One instance over every event still going on.
fn apply(plane: &DataPlane, step: &Step, function: &Function, fates: &mut [Fate], run: Run<'_>) {
    let limits = Limits::default();
    let isolation = step.instance.isolation.engine();
    for fate in fates.iter_mut() {
        let Fate::Events(events) = fate else {
            continue;
        };
        let mut out = Vec::with_capacity(events.len());
        for input in std::mem::take(events) {
            let invocation = function.invoke(input.text(), &step.settings, &limits, isolation);
            keep_logs(plane, step, &invocation, &input.message_id);
            match settle(plane, run, step, &input, invocation.result) {
                Ok(events) => out.extend(events),
                Err(other) => {
                    *fate = other;
                    break;
                }
            }
        }
        if let Fate::Events(events) = fate {
            *events = out;
        }
    }
}

/// What one event's outcome means: its outputs, or its fate.
fn settle(
    plane: &DataPlane,
    run: Run<'_>,
    step: &Step,
    input: &Event,
    result: Result<Outcome, InvokeError>,
) -> Result<Vec<Event>, Fate> {
    let at = (run.source_id, input.message_id.as_str());
    let note = |status: Status, extra: &dyn Fn() -> Value| {
        record(plane, at, run.stage, step, status, extra)
    };
    let failed = if run.last_try {
        Status::Error
    } else {
        Status::Retrying
    };
    let outputs = match result {
        Ok(Outcome::Forward { event }) => vec![event],
        Ok(Outcome::FanOut { events }) => events,
        Ok(Outcome::Drop) => {
            note(Status::Drop, &|| Value::Null);
            return Ok(Vec::new());
        }
        Ok(Outcome::Error { kind, message }) => {
            let status = if kind == "retry-error" {
                failed
            } else {
                Status::Error
            };
            note(status, &|| json!({"kind": kind, "message": message}));
            return match kind {
                "drop-event" => Ok(Vec::new()),
                "retry-error" => Err(Fate::Retry(kind.to_string())),
                other => Err(Fate::Discarded(other.to_string())),
            };
        }
        Err(err) => {
            let status = if err.is_retryable() {
                failed
            } else {
                Status::Error
            };
            note(
                status,
                &|| json!({"kind": err.code(), "message": err.to_string()}),
            );
            return Err(if err.is_retryable() {
                Fate::Retry(err.code().to_string())
            } else {
                Fate::Discarded(err.code().to_string())
            });
        }
    };
    let fanned = outputs.len() > 1;
    match output::check(input, outputs) {
        Ok(events) => {
            if fanned {
                note(Status::FanOut, &|| json!(events.len()));
            } else {
                // What the function changed, built only when the debugger keeps it.
                note(Status::Forward, &|| {
                    let after = events.first().map(|e| &e.json[..]).unwrap_or_default();
                    json!({"changes": changes::between_bytes(&input.json, after)})
                });
            }
            Ok(events)
        }
        Err(InvalidOutput(why)) => {
            note(
                Status::Error,
                &|| json!({"kind": "invalid-output", "message": why}),
            );
            Err(Fate::Discarded("invalid-output".into()))
        }
    }
}

/// The debugger's stage for the event at `(source_id, message_id)`; `result` is built only
/// when the debugger keeps it.
fn record(
    plane: &DataPlane,
    (source_id, message_id): (&str, &str),
    stage: ChainStage,
    step: &Step,
    status: Status,
    result: impl FnOnce() -> Value,
) {
    plane
        .observe
        .stage(source_id, message_id, stage.name(), status, || {
            json!({"instanceId": step.instance.id, "functionId": step.instance.function_id, "result": result()})
        });
}

/// The invocation's metrics and log lines.
fn keep_logs(plane: &DataPlane, step: &Step, invocation: &Invocation, message_id: &str) {
    let function_id = &step.instance.function_id;
    plane.observe.invoked(function_id, invocation);
    if invocation.logs.is_empty() {
        return;
    }
    let at = crate::workspace::now();
    plane.observe.log(
        function_id,
        invocation
            .logs
            .iter()
            .map(|l| FunctionLog {
                at: at.clone(),
                instance_id: step.instance.id.clone(),
                message_id: message_id.to_string(),
                level: l.level.to_string(),
                message: l.message.clone(),
            })
            .collect(),
    );
}
