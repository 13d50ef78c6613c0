//! Destination functions: a deployed function of `resourceType: DESTINATION` connected to a
//! source like any destination (its `metadataId` is the function's id), written as a
//! component or in JavaScript (`onTrack` ... with `fetch`). Each event is one invocation of
//! the function's `handle` on the network engine (with `batchSize` above 1, a batch is one
//! `handle-batch`: JavaScript's `onBatch`), whose requests pass the destination's
//! `allowedHosts` policy; what it returns for each event is read through the one retry
//! classifier:
//!
//! - forwarded, dropped, fanned out, `event-not-supported`, `drop-event`: delivered (Segment
//!   drops unsupported events without an error);
//! - `retry-error`: retried with backoff; a message holding `retry-after=<seconds>` (how a
//!   function passes on the API's `Retry-After`) sets the delay;
//! - a deadline or an instance that could not start: retried;
//! - any other error (the function's own, a trap, fuel): a dead letter with the message.
//!
//! The compiled code and the live functions are `net_functions`'s, kept per destination and
//! settings: a change of either starts afresh.

use std::sync::Arc;
use std::time::Duration;

use super::{Attempt, Sending, Sink};
use crate::dataplane::DataPlane;
use crate::dataplane::deliver::retry::Verdict;
use crate::dataplane::event::Event;
use crate::dataplane::net_functions::{self, invocation_limits};
use crate::engine::net::NetFunction;
use crate::engine::{InvokeError, Limits, Outcome};
use crate::workspace::{Destination, Function, FunctionType, Kind};

/// Whether `destination` is a destination function's instance: its catalog id names a
/// function of `resourceType: DESTINATION`.
pub fn function_of(plane: &DataPlane, destination: &Destination) -> Option<Function> {
    let function: Function = plane
        .store
        .get(Kind::Function, &destination.metadata.id)
        .ok()??;
    (function.resource_type == FunctionType::Destination).then_some(function)
}

/// The sink of a destination function's instance; one that refuses every attempt (dead
/// letters naming why) when the function cannot run.
pub fn sink(plane: &DataPlane, destination: &Destination, function: &Function) -> Arc<dyn Sink> {
    let settings = serde_json::to_string(&destination.settings).unwrap_or_else(|_| "{}".into());
    let batch_size = destination
        .settings
        .get("batchSize")
        .and_then(serde_json::Value::as_u64)
        .map_or(1, |n| n.clamp(1, 1000) as usize);
    match net_functions::load(plane, &destination.id, function, &settings) {
        Ok(function) => Arc::new(FunctionSink {
            function,
            limits: invocation_limits(),
            batch_size,
        }),
        Err(why) => Arc::new(Broken(why)),
    }
}

/// A destination function ready to deliver: one invocation per event, or per batch of up
/// to `batch_size` events (`onBatch`) when its `batchSize` setting is above 1.
struct FunctionSink {
    function: Arc<NetFunction>,
    limits: Limits,
    batch_size: usize,
}

impl Sink for FunctionSink {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn send<'a>(&'a self, events: &'a [Event]) -> Sending<'a> {
        Box::pin(async move {
            if let [event] = events {
                let text = String::from_utf8_lossy(&event.json);
                let invocation = self.function.invoke(&text, &self.limits).await;
                return attempt(&invocation.result);
            }
            let texts: Vec<String> = events
                .iter()
                .map(|e| String::from_utf8_lossy(&e.json).into_owned())
                .collect();
            let batch = self.function.invoke_batch(&texts, &self.limits).await;
            Attempt::per_event(batch.results.iter().map(attempt).collect())
        })
    }
}

/// What an invocation's result means for the delivery (see the module's list).
pub fn attempt(result: &Result<Outcome, InvokeError>) -> Attempt {
    match result {
        Ok(Outcome::Forward { .. } | Outcome::Drop | Outcome::FanOut { .. }) => Attempt::success(),
        Ok(Outcome::Error { kind, message }) => match *kind {
            "event-not-supported" | "drop-event" => Attempt::success(),
            "retry-error" => Attempt::failed(
                Verdict::Retry {
                    after: retry_after(message),
                },
                format!("retry-error: {message}"),
            ),
            other => Attempt::failed(Verdict::GiveUp, format!("{other}: {message}")),
        },
        Err(err) if err.is_retryable() => {
            Attempt::failed(Verdict::Retry { after: None }, err.to_string())
        }
        Err(err) => Attempt::failed(Verdict::GiveUp, err.to_string()),
    }
}

/// The delay a `retry-error` message asks for with `retry-after=<seconds>`.
fn retry_after(message: &str) -> Option<Duration> {
    let (_, rest) = message.split_once("retry-after=")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Duration::from_secs)
}

/// A destination function that cannot run: every attempt is a dead letter saying why.
struct Broken(String);

impl Sink for Broken {
    fn batch_size(&self) -> usize {
        1000
    }

    fn send<'a>(&'a self, _events: &'a [Event]) -> Sending<'a> {
        let error = self.0.clone();
        Box::pin(async move { Attempt::failed(Verdict::GiveUp, error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(result: Result<Outcome, InvokeError>) -> Result<Outcome, InvokeError> {
        result
    }

    fn error(kind: &'static str, message: &str) -> Result<Outcome, InvokeError> {
        Ok(Outcome::Error {
            kind,
            message: message.to_string(),
        })
    }

    #[test]
    fn outcomes_meet_the_retry_classifier() {
        assert_eq!(attempt(&invocation(Ok(Outcome::Drop))), Attempt::success());
        assert_eq!(
            attempt(&error("event-not-supported", "no onAlias")),
            Attempt::success()
        );
        assert_eq!(
            attempt(&error("retry-error", "status 503 retry-after=7")).verdict,
            Verdict::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            attempt(&error("retry-error", "busy")).verdict,
            Verdict::Retry { after: None }
        );
        let bad = attempt(&error("unknown", "status 400: nope"));
        assert_eq!(bad.verdict, Verdict::GiveUp);
        assert_eq!(bad.error.as_deref(), Some("unknown: status 400: nope"));
        let late = invocation(Err(InvokeError::DeadlineExceeded {
            deadline: Duration::from_secs(5),
        }));
        assert_eq!(attempt(&late).verdict, Verdict::Retry { after: None });
        let fuel = invocation(Err(InvokeError::OutOfFuel { budget: 1 }));
        assert_eq!(attempt(&fuel).verdict, Verdict::GiveUp);
    }
}
