//! Insert functions in flight: runs the enabled instances attached to a source or a
//! destination, in order, on the engine, with Segment's treatment of each outcome (forward,
//! drop, fan out; `retry-error` and retryable engine errors retried with backoff; other errors
//! discard the event, counted under their reason). What functions log is kept.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::functions::{Function as FunctionRecord, Version};
use crate::api::insert_functions::InsertFunctionInstance;
use crate::api::store::Kind;
use crate::engine::{Function, Limits, Outcome};
use crate::observe::FunctionLog;

/// An instance ready to run.
pub struct Ready {
    /// The instance.
    pub instance: InsertFunctionInstance,
    /// Its settings as JSON text.
    pub settings: String,
    /// The deployed version's code, or why it cannot run.
    pub function: Result<Arc<Function>, String>,
}

/// The enabled instances attached to `integration_id`, in order, with their functions loaded.
pub async fn instances(state: &AppState, integration_id: &str) -> Vec<Ready> {
    let all: Vec<InsertFunctionInstance> = match state.store.list(Kind::InsertFunction, "") {
        Ok(all) => all,
        Err(e) => {
            tracing::error!(error = ?e, "cannot list insert function instances");
            Vec::new()
        }
    };
    // Deleted instances' warm pools go (security: pools are per instance, see `function_for`).
    let live: HashSet<&str> = all.iter().map(|i| i.id.as_str()).collect();
    state.components.retain_instances(|id| live.contains(id));
    let mut mine: Vec<InsertFunctionInstance> = all
        .into_iter()
        .filter(|i| i.enabled && i.integration_id == integration_id)
        .collect();
    mine.sort_by_key(|i| i.order);
    let mut ready = Vec::with_capacity(mine.len());
    for instance in mine {
        let settings = serde_json::to_string(&instance.settings).unwrap_or_else(|_| "{}".into());
        let function = load(state, &instance, &settings).await;
        ready.push(Ready {
            settings,
            instance,
            function,
        });
    }
    ready
}

/// The function `instance` runs, with warm instances of its own (never shared with another
/// instance, whatever the code).
async fn load(
    state: &AppState,
    instance: &InsertFunctionInstance,
    settings: &str,
) -> Result<Arc<Function>, String> {
    let function_id = &instance.function_id;
    let record: FunctionRecord = state
        .store
        .get(Kind::Function, function_id)
        .map_err(|e| format!("{e:?}"))?
        .ok_or("the function was deleted")?;
    let version_id = record
        .deployed_version_id
        .ok_or("the function has no deployed version")?;
    let version: Version = state
        .store
        .get(
            Kind::FunctionVersion,
            &format!("{function_id}/{version_id}"),
        )
        .map_err(|e| format!("{e:?}"))?
        .ok_or("the deployed version is missing")?;
    let components = state.components.clone();
    let (instance_id, settings) = (instance.id.clone(), settings.to_string());
    tokio::task::spawn_blocking(move || {
        components.function_for(&instance_id, &version.digest, &settings)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// What a chain of instances made of one event.
pub enum Chain {
    /// These events go on (none when a function dropped it).
    Events(Vec<Value>),
    /// Discarded, with the reason (an error kind or engine error code).
    Discarded(String),
}

/// Runs `event` through `chain`, recording each step for the debugger under `stage`.
pub async fn run(
    state: &AppState,
    chain: &[Ready],
    event: Value,
    source_id: &str,
    message_id: &str,
    stage: &str,
) -> Chain {
    let plane = &state.data_plane;
    let mut events = vec![event];
    for ready in chain {
        let function = match &ready.function {
            Ok(f) => f.clone(),
            Err(reason) => {
                plane.observe.stage(
                    source_id,
                    message_id,
                    stage,
                    "error",
                    json!({"instanceId": ready.instance.id, "error": reason}),
                );
                return Chain::Discarded("function-unavailable".into());
            }
        };
        let mut next = Vec::new();
        for e in events {
            let text = e.to_string();
            let mut attempt = 0;
            let outcome = loop {
                attempt += 1;
                let f = function.clone();
                let settings = ready.settings.clone();
                let input = text.clone();
                let isolation = ready.instance.isolation.engine();
                let invocation = tokio::task::spawn_blocking(move || {
                    f.invoke(&input, &settings, &Limits::default(), isolation)
                })
                .await;
                let invocation = match invocation {
                    Ok(i) => i,
                    Err(e) => break Err(("unknown".to_string(), e.to_string())),
                };
                plane
                    .observe
                    .invoked(&ready.instance.function_id, &invocation);
                let at = crate::api::now();
                plane.observe.log(
                    &ready.instance.function_id,
                    invocation
                        .logs
                        .iter()
                        .map(|l| FunctionLog {
                            at: at.clone(),
                            instance_id: ready.instance.id.clone(),
                            message_id: message_id.to_string(),
                            level: l.level.to_string(),
                            message: l.message.clone(),
                        })
                        .collect(),
                );
                let retry = match &invocation.result {
                    Ok(Outcome::Error { kind, .. }) => *kind == "retry-error",
                    Err(err) => err.is_retryable(),
                    Ok(_) => false,
                };
                if retry && attempt < plane.config.function_attempts {
                    let delay = crate::deliver::retry::backoff(
                        attempt,
                        plane.config.backoff_base,
                        plane.config.backoff_max,
                    );
                    tokio::time::sleep(delay.min(Duration::from_secs(30))).await;
                    continue;
                }
                break match invocation.result {
                    Ok(outcome) => Ok(outcome),
                    Err(err) => Err((err.code().to_string(), err.to_string())),
                };
            };
            let detail = |status: &str, extra: Value| {
                plane.observe.stage(
                    source_id,
                    message_id,
                    stage,
                    status,
                    json!({"instanceId": ready.instance.id, "functionId": ready.instance.function_id, "result": extra}),
                );
            };
            match outcome {
                Ok(Outcome::Forward { event }) => match serde_json::from_str(&event) {
                    Ok(v) => {
                        detail("forward", Value::Null);
                        next.push(v);
                    }
                    Err(e) => {
                        detail(
                            "error",
                            json!(format!("the function returned invalid JSON: {e}")),
                        );
                        return Chain::Discarded("invalid-output".into());
                    }
                },
                Ok(Outcome::Drop) => detail("drop", Value::Null),
                Ok(Outcome::FanOut { events }) => {
                    detail("fan-out", json!(events.len()));
                    for text in events {
                        match serde_json::from_str(&text) {
                            Ok(v) => next.push(v),
                            Err(_) => return Chain::Discarded("invalid-output".into()),
                        }
                    }
                }
                Ok(Outcome::Error { kind, message }) => {
                    detail("error", json!({"kind": kind, "message": message}));
                    if kind == "drop-event" {
                        continue;
                    }
                    return Chain::Discarded(kind.to_string());
                }
                Err((code, message)) => {
                    detail("error", json!({"kind": code, "message": message}));
                    return Chain::Discarded(code);
                }
            }
        }
        events = next;
    }
    Chain::Events(events)
}
