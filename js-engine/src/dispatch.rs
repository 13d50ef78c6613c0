//! Events in, outcomes out: parses each event, picks the handler by its `type`, calls it with
//! the settings, settles a returned promise, and reports the result. `onBatch` takes a whole
//! batch when the code defines it. Source functions' requests are `source.rs`'s.

use rquickjs::{Array, Ctx, Function, Object, Value};

use crate::bindings::sluice::function::script::{self, AbortReason, FunctionKind, SyntaxError};
use crate::bindings::sluice::function::types::{ErrorKind, Outcome};
use crate::engine::{EVENT_HANDLERS, Engine, Loaded, drain_jobs, run_job};
use crate::outcome::{Reporter, Settled, error};

/// Handles one event.
pub fn handle(engine: &mut Engine, event: String) -> Outcome {
    let Engine {
        loaded, context, ..
    } = engine;
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(err) => return does_not_compile(err),
    };
    context.with(|ctx| {
        let reporter = match loaded.reporter(&ctx) {
            Ok(reporter) => reporter,
            Err(err) => {
                return error(
                    ErrorKind::Unknown,
                    format!("JavaScript engine error: {err}"),
                );
            }
        };
        let settings = loaded.settings.current(&ctx);
        let outcome = match loaded.kind {
            FunctionKind::Source => {
                crate::source::request(&ctx, loaded, &reporter, &settings, event)
            }
            _ => one_event(&ctx, loaded, &reporter, &settings, event),
        };
        end_invocation(&ctx, loaded);
        outcome
    })
}

/// Handles a batch: one outcome per event, in order.
pub fn handle_batch(engine: &mut Engine, events: Vec<String>) -> Vec<Outcome> {
    let Engine {
        loaded, context, ..
    } = engine;
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(err) => return events.iter().map(|_| does_not_compile(err)).collect(),
    };
    if events.is_empty() {
        return Vec::new();
    }
    context.with(|ctx| {
        let reporter = match loaded.reporter(&ctx) {
            Ok(reporter) => reporter,
            Err(err) => {
                let outcome = error(
                    ErrorKind::Unknown,
                    format!("JavaScript engine error: {err}"),
                );
                return events.iter().map(|_| outcome.clone()).collect();
            }
        };
        let settings = loaded.settings.current(&ctx);
        let outcomes = match &loaded.handlers.batch {
            Some(on_batch) => match on_batch.clone().restore(&ctx) {
                Ok(on_batch) => batch(&ctx, loaded, &reporter, on_batch, &settings, events),
                Err(err) => {
                    let outcome = reporter.failed(err);
                    events.iter().map(|_| outcome.clone()).collect()
                }
            },
            None => events
                .into_iter()
                .map(|event| {
                    let outcome = one_event(&ctx, loaded, &reporter, &settings, event);
                    end_invocation(&ctx, loaded);
                    outcome
                })
                .collect(),
        };
        end_invocation(&ctx, loaded);
        outcomes
    })
}

/// After a handler settled: the promise jobs it left run, and (in functions that may use the
/// network) the requests and timers it left are forgotten.
fn end_invocation(ctx: &Ctx<'_>, loaded: &Loaded) {
    drain_jobs(ctx);
    if loaded.kind != FunctionKind::Insert
        && let Ok(reset) = loaded.prelude.reset.clone().restore(ctx)
        && reset.call::<_, ()>(()).is_err()
    {
        drop(ctx.catch());
    }
}

/// The outcome of every event when the code did not compile.
fn does_not_compile(err: &SyntaxError) -> Outcome {
    error(
        ErrorKind::Unknown,
        format!(
            "the function's code does not compile: {} at line {}, column {}",
            err.message, err.line, err.column
        ),
    )
}

/// One event through its type's handler.
fn one_event<'js>(
    ctx: &Ctx<'js>,
    loaded: &Loaded,
    reporter: &Reporter<'js>,
    settings: &Value<'js>,
    event: String,
) -> Outcome {
    let event = match parse_event(ctx, event) {
        Ok(event) => event,
        Err(outcome) => return outcome,
    };
    let event_type: Option<String> = match event.get("type") {
        Ok(t) => t,
        Err(_) => {
            let _ = ctx.catch();
            None
        }
    };
    let Some(event_type) = event_type else {
        return error(
            ErrorKind::InvalidEventPayload,
            "the event has no \"type\" string",
        );
    };
    let Some(index) = EVENT_HANDLERS.iter().position(|(t, _)| *t == event_type) else {
        return error(
            ErrorKind::EventNotSupported,
            format!("unsupported event type \"{event_type}\""),
        );
    };
    let name = EVENT_HANDLERS[index].1;
    let Some(handler) = &loaded.handlers.by_type[index] else {
        return error(ErrorKind::EventNotSupported, format!("no {name} handler"));
    };
    let handler = match handler.clone().restore(ctx) {
        Ok(handler) => handler,
        Err(err) => return reporter.failed(err),
    };
    let settled = call(ctx, loaded, reporter, &handler, (event, settings.clone()));
    match (loaded.kind, settled) {
        // A destination function's result is that it did not throw (Segment ignores the value).
        (FunctionKind::Destination, Settled::Returned(_)) => Outcome::Drop,
        (_, settled) => reporter.settled(settled, name),
    }
}

/// Parses an event's JSON text (in Rust, see `json_in`; QuickJS's parser for what that one
/// leaves, e.g. to word the error); it must be an object.
fn parse_event<'js>(ctx: &Ctx<'js>, event: String) -> Result<Object<'js>, Outcome> {
    let parsed = match crate::json_in::parse(ctx, &event) {
        Some(value) => Ok(value),
        None => ctx.json_parse(event),
    };
    match parsed {
        Ok(value) => match value.into_object() {
            Some(object) if !object.is_array() => Ok(object),
            _ => Err(error(
                ErrorKind::InvalidEventPayload,
                "the event is not a JSON object",
            )),
        },
        Err(err) => {
            let detail = if err.is_exception() {
                let thrown = ctx.catch();
                thrown
                    .as_object()
                    .and_then(|o| o.get::<_, Option<String>>("message").ok().flatten())
                    .unwrap_or_default()
            } else {
                err.to_string()
            };
            Err(error(
                ErrorKind::InvalidEventPayload,
                format!("the event is not valid JSON: {detail}"),
            ))
        }
    }
}

/// `onBatch(events, settings)`: one result per event that parsed, each read like a single
/// handler's return value; a throw (or a result of the wrong shape) applies to all of them.
fn batch<'js>(
    ctx: &Ctx<'js>,
    loaded: &Loaded,
    reporter: &Reporter<'js>,
    on_batch: Function<'js>,
    settings: &Value<'js>,
    events: Vec<String>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(events.len());
    // Index in `outcomes` of each event handed to onBatch.
    let mut passed: Vec<usize> = Vec::with_capacity(events.len());
    let array = match Array::new(ctx.clone()) {
        Ok(array) => array,
        Err(err) => {
            let outcome = reporter.failure(err);
            return events.iter().map(|_| outcome.clone()).collect();
        }
    };
    for (index, event) in events.into_iter().enumerate() {
        match parse_event(ctx, event) {
            Ok(event) => {
                if let Err(err) = array.set(passed.len(), event) {
                    outcomes.push(Some(reporter.failure(err)));
                    continue;
                }
                passed.push(index);
                outcomes.push(None);
            }
            Err(outcome) => outcomes.push(Some(outcome)),
        }
    }
    if !passed.is_empty() {
        let settled = call(ctx, loaded, reporter, &on_batch, (array, settings.clone()));
        let results = match loaded.kind {
            FunctionKind::Destination => {
                crate::destination::delivered(reporter, settled, passed.len())
            }
            _ => batch_results(reporter, settled, passed.len()),
        };
        for (slot, outcome) in passed.into_iter().zip(results) {
            outcomes[slot] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| error(ErrorKind::Unknown, "onBatch gave no result")))
        .collect()
}

/// The per-event outcomes of a settled `onBatch` call over `count` events.
fn batch_results<'js>(
    reporter: &Reporter<'js>,
    settled: Settled<'js>,
    count: usize,
) -> Vec<Outcome> {
    let all = |outcome: Outcome| vec![outcome; count];
    let value = match settled {
        Settled::Returned(value) => value,
        other => return all(reporter.settled(other, "onBatch")),
    };
    let Some(results) = value.as_array() else {
        return all(error(
            ErrorKind::Unknown,
            format!("onBatch must return an array with one result per event ({count})"),
        ));
    };
    if results.len() != count {
        return all(error(
            ErrorKind::Unknown,
            format!(
                "onBatch returned {} results for {count} events; it must return one per event, in order",
                results.len()
            ),
        ));
    }
    (0..count)
        .map(|index| match results.get::<Value>(index) {
            Ok(result) => reporter.returned(result, "onBatch"),
            Err(err) => reporter.failure(err),
        })
        .collect()
}

/// Calls `f` and settles its result: a returned promise is driven through QuickJS's job queue,
/// and when that is empty through the web globals' timers and requests (`pump`), until it
/// resolves or rejects.
pub fn call<'js, A>(
    ctx: &Ctx<'js>,
    loaded: &Loaded,
    reporter: &Reporter<'js>,
    f: &Function<'js>,
    args: A,
) -> Settled<'js>
where
    A: rquickjs::function::IntoArgs<'js>,
{
    let value: Value = match f.call(args) {
        Ok(value) => value,
        Err(err) if err.is_exception() => return Settled::Threw(ctx.catch()),
        Err(err) => return Settled::Failed(err),
    };
    let Some(promise) = value.as_promise() else {
        return Settled::Returned(value);
    };
    loop {
        match promise.result::<Value>() {
            None => {
                if !run_job(ctx, Some(reporter)) && !pump(ctx, loaded) {
                    // Pending with nothing left that could settle it (awaiting a promise
                    // nobody resolves, with no timer or request left to wait for).
                    script::abort(AbortReason::PromiseNeverSettles);
                    std::process::abort();
                }
            }
            Some(Ok(value)) => return Settled::Returned(value),
            Some(Err(err)) if err.is_exception() => return Settled::Threw(ctx.catch()),
            Some(Err(err)) => return Settled::Failed(err),
        }
    }
}

/// One step on the web globals' timers and requests; `false` when none is left.
fn pump(ctx: &Ctx<'_>, loaded: &Loaded) -> bool {
    let Ok(pump) = loaded.prelude.pump.clone().restore(ctx) else {
        return false;
    };
    match pump.call::<_, bool>(()) {
        Ok(progressed) => progressed,
        Err(_) => {
            drop(ctx.catch());
            false
        }
    }
}
