//! Destination functions' `onBatch` result: Segment ignores what it returns unless it is an
//! array with one `{status, errormessage}` per event (a partial failure), read here per event:
//! 2xx delivered, 429 and 5xx retried (`retry-error`), anything else failed with its message.

use rquickjs::{Object, Value};

use crate::bindings::sluice::function::types::{ErrorKind, Outcome};
use crate::outcome::{Reporter, Settled, error};

/// The per-event outcomes of a destination's settled `onBatch` over `count` events.
pub fn delivered<'js>(
    reporter: &Reporter<'js>,
    settled: Settled<'js>,
    count: usize,
) -> Vec<Outcome> {
    let value = match settled {
        Settled::Returned(value) => value,
        other => return vec![reporter.settled(other, "onBatch"); count],
    };
    let statuses = value.as_array().filter(|items| items.len() == count);
    let Some(statuses) = statuses else {
        return vec![Outcome::Drop; count];
    };
    (0..count)
        .map(|index| match statuses.get::<Value>(index) {
            Ok(item) => status_outcome(item.as_object()),
            Err(err) => reporter.failure(err),
        })
        .collect()
}

/// One event's `{status, errormessage}`; anything without a numeric status counts as delivered.
fn status_outcome(item: Option<&Object<'_>>) -> Outcome {
    let Some(item) = item else {
        return Outcome::Drop;
    };
    let Ok(Some(status)) = item.get::<_, Option<f64>>("status") else {
        return Outcome::Drop;
    };
    let message: String = item
        .get::<_, Option<String>>("errormessage")
        .ok()
        .flatten()
        .unwrap_or_default();
    match status as u32 {
        200..=299 => Outcome::Drop,
        429 | 500..=599 => error(ErrorKind::RetryError, format!("status {status}: {message}")),
        _ => error(ErrorKind::Unknown, format!("status {status}: {message}")),
    }
}
