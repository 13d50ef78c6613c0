//! `POST /functions/{id}/test`: runs a function version on sample events in the real sandbox,
//! with the real limits, touching no pipeline, and reports per event what happened (forwarded
//! with the changes it made, dropped, fanned out, or which error and why), with the function's
//! logs, fuel and time.

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, CommonErrors};
use super::extract::{Json, Path};
use super::functions::{SettingDecl, SettingType, load, version};
use super::resource::Reply;
use super::{AppState, Data, ok};
use crate::dataplane::observe::changes::{self, Change};
use crate::engine::{Invocation, Isolation, Limits, Outcome};
use crate::workspace::{FunctionType, Version};

/// Most events one test call may run.
pub const MAX_EVENTS: usize = 100;

/// `POST /functions/{id}/test`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestInput {
    /// Sample events (1 to 100 JSON objects), run one by one, each on a fresh instance.
    pub events: Vec<Value>,
    /// Setting values, as an instance would give them (checked against the declared settings).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// The version to run; default the deployed one, else the latest.
    pub version_id: Option<String>,
    /// Tighter or looser bounds than the defaults (fuel 50M, 50 ms, 16 MiB).
    #[serde(default, deserialize_with = "super::extract::optional_object")]
    pub limits: Option<TestLimits>,
}

/// Per-invocation bounds for a test run.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestLimits {
    /// Fuel per event (1 to 1,000,000,000).
    #[serde(default, deserialize_with = "crate::workspace::whole::optional")]
    pub fuel: Option<u64>,
    /// Wall-clock deadline per event, in milliseconds (1 to 5,000).
    #[serde(default, deserialize_with = "crate::workspace::whole::optional")]
    pub deadline_ms: Option<u64>,
    /// Memory cap, in MiB (1 to the engine's maximum).
    #[serde(default, deserialize_with = "crate::workspace::whole::optional")]
    pub memory_mib: Option<usize>,
}

/// The whole test run.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    /// The function.
    pub function_id: String,
    /// The version that ran.
    pub version_id: String,
    /// Its component's digest.
    pub digest: String,
    /// One result per event, in order.
    pub results: Vec<EventResult>,
    /// Totals.
    pub summary: Summary,
}

/// Totals over the run.
#[derive(Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Events run.
    pub events: usize,
    /// Events forwarded.
    pub forwarded: usize,
    /// Events dropped on purpose.
    pub dropped: usize,
    /// Events fanned out into several.
    pub fanned_out: usize,
    /// Events that ended in an error.
    pub errors: usize,
    /// Fuel over all events.
    pub fuel_used: u64,
    /// Time over all events, in microseconds.
    pub duration_us: u64,
}

/// What the function made of one event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResult {
    /// Position in `events`.
    pub index: usize,
    /// `forward`, `drop`, `fan-out` or `error`.
    pub outcome: &'static str,
    /// The forwarded event.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub event: Option<Value>,
    /// The events of a fan-out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub events: Option<Vec<Value>>,
    /// What the function changed in a forwarded event, field by field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<Change>>,
    /// Why the event failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TestError>,
    /// What the function logged.
    pub logs: Vec<TestLog>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Time, in microseconds (instantiation included).
    pub duration_us: u64,
}

/// An error outcome.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestError {
    /// `function` (the function refused the event) or `sandbox` (the sandbox stopped it).
    pub origin: &'static str,
    /// Segment's kind (`validation-error`, `drop-event`, ...) or the sandbox's (`out-of-fuel`,
    /// `deadline-exceeded`, `memory-limit`, `trap`, ...).
    pub kind: String,
    /// What happened.
    pub message: String,
    /// Whether a pipeline would retry the event.
    pub retryable: bool,
}

/// A log line.
#[derive(Serialize, ToSchema)]
pub struct TestLog {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

/// Checks setting values against declarations: required ones present, types right, no unknown
/// keys (`field` is the input's path).
///
/// # Errors
/// 422 naming the setting.
pub fn check_values(
    decls: &[SettingDecl],
    values: &Map<String, Value>,
    field: &str,
) -> Result<(), ApiError> {
    for d in decls {
        let path = format!("{field}.{}", d.name);
        match values.get(&d.name) {
            None | Some(Value::Null) if d.required => {
                return Err(ApiError::invalid(
                    path,
                    format!("setting `{}` is required", d.name),
                ));
            }
            None | Some(Value::Null) => {}
            Some(v) => {
                let fits = match d.kind {
                    SettingType::String => v.is_string(),
                    SettingType::Boolean => v.is_boolean(),
                    SettingType::Array => {
                        v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                    }
                    SettingType::TextMap => v
                        .as_object()
                        .is_some_and(|o| o.values().all(Value::is_string)),
                };
                if !fits {
                    let want = match d.kind {
                        SettingType::String => "a string",
                        SettingType::Boolean => "true or false",
                        SettingType::Array => "an array of strings",
                        SettingType::TextMap => "an object of strings",
                    };
                    return Err(ApiError::invalid(
                        path,
                        format!("setting `{}` must be {want}", d.name),
                    ));
                }
            }
        }
    }
    if let Some(unknown) = values.keys().find(|k| !decls.iter().any(|d| d.name == **k)) {
        return Err(ApiError::invalid(
            format!("{field}.{unknown}"),
            format!("the function declares no setting `{unknown}`"),
        ));
    }
    Ok(())
}

/// The most fuel one test event may have.
pub const MAX_FUEL: u64 = 1_000_000_000;
/// The longest deadline one test event may have, in milliseconds.
pub const MAX_DEADLINE_MS: u64 = 5_000;

fn limits(
    input: Option<&TestLimits>,
    max_memory: usize,
    network: bool,
) -> Result<Limits, ApiError> {
    // A network function's defaults are the pipeline's (Segment's 5 s), waiting included.
    let mut limits = match network {
        true => crate::dataplane::net_functions::invocation_limits(),
        false => Limits::default(),
    };
    let Some(l) = input else { return Ok(limits) };
    if let Some(fuel) = l.fuel {
        if !(1..=MAX_FUEL).contains(&fuel) {
            return Err(ApiError::invalid(
                "limits.fuel",
                "`limits.fuel` must be 1 to 1,000,000,000",
            ));
        }
        limits.fuel = fuel;
    }
    if let Some(ms) = l.deadline_ms {
        if !(1..=MAX_DEADLINE_MS).contains(&ms) {
            return Err(ApiError::invalid(
                "limits.deadlineMs",
                "`limits.deadlineMs` must be 1 to 5000",
            ));
        }
        limits.deadline = Duration::from_millis(ms);
    }
    if let Some(mib) = l.memory_mib {
        let bytes = mib
            .checked_mul(1 << 20)
            .filter(|b| (1..=max_memory).contains(b));
        let Some(bytes) = bytes else {
            let max = max_memory >> 20;
            return Err(ApiError::invalid(
                "limits.memoryMib",
                format!("`limits.memoryMib` must be 1 to {max}"),
            ));
        };
        limits.memory_bytes = bytes;
    }
    Ok(limits)
}

/// Test a function on sample events.
///
/// Runs a version (default: the deployed one, else the latest) on each sample event in the real
/// sandbox with the real limits, without touching any pipeline. Per event you get the outcome:
/// the forwarded event with a field-by-field list of what the function changed, a drop, a
/// fan-out, or an error (the function's own, such as `validation-error`, or the sandbox's, such as
/// `out-of-fuel`, with whether a pipeline would retry it), plus the function's logs, the fuel it
/// used and the time it took. Test before you deploy.
#[utoipa::path(post, path = "/functions/{id}/test", operation_id = "testFunction", tag = "Functions", params(("id" = String, Path, description = "Function id")),
    request_body = TestInput, responses((status = 200, body = Data<TestReport>), CommonErrors))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<TestInput>,
) -> Reply<TestReport> {
    let f = load(&state, &caller, &id, false)?;
    let vid = input
        .version_id
        .clone()
        .or_else(|| f.deployed_version_id.clone())
        .unwrap_or_else(|| f.version_id.clone());
    let v = version(&state, &f, &vid)
        .map_err(|_| ApiError::missing("versionId", format!("no version `{vid}`")))?;
    if input.events.is_empty() || input.events.len() > MAX_EVENTS {
        return Err(ApiError::invalid(
            "events",
            format!("give 1 to {MAX_EVENTS} events"),
        ));
    }
    if let Some(i) = input.events.iter().position(|e| !e.is_object()) {
        return Err(ApiError::invalid(
            format!("events[{i}]"),
            "each event must be a JSON object",
        ));
    }
    let network = matches!(
        f.resource_type,
        FunctionType::Destination | FunctionType::Source
    );
    let mut declared = input.settings.clone();
    if network {
        check_allowed_hosts(declared.remove("allowedHosts"))?;
    }
    check_values(&v.settings, &declared, "settings")?;
    let limits = limits(
        input.limits.as_ref(),
        state.components.engine().max_memory_bytes(),
        network,
    )?;
    if network {
        let results = network_results(&state, &v, f.resource_type, input, &limits).await?;
        return Ok(ok(summarised(f.id, vid, v.digest, results)));
    }
    let components = state.components.clone();
    let digest = v.digest.clone();
    let settings = Value::Object(input.settings).to_string();
    let events = input.events;
    let results = tokio::task::spawn_blocking(move || -> Result<Vec<EventResult>, ApiError> {
        let function = components
            .function(&digest)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(events
            .iter()
            .enumerate()
            // A fresh instance per event: a test run shares no state with pipelines or other runs.
            .map(|(index, event)| {
                report(
                    index,
                    event,
                    function.invoke(&event.to_string(), &settings, &limits, Isolation::Fresh),
                )
            })
            .collect())
    })
    .await??;
    Ok(ok(summarised(f.id, vid, v.digest, results)))
}

/// The report of a run: its results and their totals.
fn summarised(
    function_id: String,
    version_id: String,
    digest: String,
    results: Vec<EventResult>,
) -> TestReport {
    let mut summary = Summary {
        events: results.len(),
        ..Summary::default()
    };
    for r in &results {
        match r.outcome {
            "forward" => summary.forwarded += 1,
            "drop" => summary.dropped += 1,
            "fan-out" => summary.fanned_out += 1,
            _ => summary.errors += 1,
        }
        summary.fuel_used += r.fuel_used;
        summary.duration_us += r.duration_us;
    }
    TestReport {
        function_id,
        version_id,
        digest,
        results,
        summary,
    }
}

/// A destination or source function's run, on the network engine with the test's
/// `allowedHosts`: each event (for a source function, each sample webhook body, sent as a
/// JSON POST) on an instance of its own.
async fn network_results(
    state: &AppState,
    v: &Version,
    kind: FunctionType,
    input: TestInput,
    limits: &Limits,
) -> Result<Vec<EventResult>, ApiError> {
    let settings = Value::Object(input.settings).to_string();
    let mut results = Vec::with_capacity(input.events.len());
    for (index, event) in input.events.iter().enumerate() {
        let plane = &state.data_plane;
        let function = crate::dataplane::net_functions::build(plane, v, kind, &settings)
            .map_err(ApiError::Internal)?;
        let text = match kind {
            FunctionType::Source => webhook_request(event),
            _ => event.to_string(),
        };
        let invocation = function.invoke(&text, limits).await;
        results.push(report(index, event, invocation));
    }
    Ok(results)
}

/// A sample body as the webhook request a source function gets (see `docs/functions.md`).
fn webhook_request(body: &Value) -> String {
    serde_json::json!({
        "method": "POST",
        "url": "http://localhost/v1/functions/test",
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
    .to_string()
}

/// `allowedHosts` in test settings: absent, or an array of strings (checked again, entry by
/// entry, when the function's policy is made).
fn check_allowed_hosts(value: Option<Value>) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "settings.allowedHosts",
            "`allowedHosts` must be an array of `host` or `host:port` strings",
        )),
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn report(index: usize, input: &Value, invocation: Invocation) -> EventResult {
    let mut result = EventResult {
        index,
        outcome: "error",
        event: None,
        events: None,
        changes: None,
        error: None,
        logs: invocation
            .logs
            .into_iter()
            .map(|l| TestLog {
                level: l.level.to_string(),
                message: l.message,
            })
            .collect(),
        fuel_used: invocation.fuel_used,
        duration_us: u64::try_from(invocation.duration.as_micros()).unwrap_or(u64::MAX),
    };
    match invocation.result {
        Ok(Outcome::Forward { event }) => {
            let event = parse(&event);
            let changes = changes::between(input, &event);
            result.outcome = "forward";
            result.changes = Some(changes);
            result.event = Some(event);
        }
        Ok(Outcome::Drop) => result.outcome = "drop",
        Ok(Outcome::FanOut { events }) => {
            result.outcome = "fan-out";
            result.events = Some(events.iter().map(|e| parse(e)).collect());
        }
        Ok(Outcome::Error { kind, message }) => {
            result.error = Some(TestError {
                origin: "function",
                kind: kind.into(),
                message,
                retryable: kind == "retry-error",
            });
        }
        Err(err) => {
            result.error = Some(TestError {
                origin: "sandbox",
                kind: err.code().into(),
                message: err.to_string(),
                retryable: err.is_retryable(),
            });
        }
    }
    result
}
