//! Destinations: what sluice delivers to, one module per type, each turning a batch of events
//! (usually of one) into one attempt and a [`Verdict`](crate::deliver::retry::Verdict) that
//! holds for every event of the batch.
//!
//! - [`webhook`]: POSTs JSON to a URL (one event, or `{"batch": [...]}`), signed with HMAC-SHA256;
//! - [`file`]: appends JSON lines to a file under the data directory, rotated by size.

pub mod file;
pub mod webhook;

use serde_json::Value;

use crate::api::destinations::Destination;
use crate::deliver::retry::Verdict;
use crate::topology::DataPlane;

/// How many due events one attempt at `destination` may carry: a webhook's `batchSize`
/// (default 1), and for a file as many as are due (appending is cheaper in bulk, and a
/// file's lines are separate events either way).
pub fn batch_size(destination: &Destination) -> usize {
    match destination.metadata.id.as_str() {
        "webhook" => destination
            .settings
            .get("batchSize")
            .and_then(Value::as_u64)
            .map_or(1, |n| n.clamp(1, 1000) as usize),
        "file" => 1000,
        _ => 1,
    }
}

/// One attempt to deliver `events` (at most [`batch_size`]) to `destination`: the verdict
/// and, when it failed, why.
pub async fn send(
    plane: &DataPlane,
    client: &reqwest::Client,
    destination: &Destination,
    events: &[&Value],
) -> (Verdict, Option<String>) {
    match destination.metadata.id.as_str() {
        "webhook" => webhook::send(client, &destination.settings, events).await,
        "file" => file::send(plane, &destination.settings, events).await,
        other => (
            Verdict::GiveUp,
            Some(format!("sluice cannot deliver to {other:?} destinations")),
        ),
    }
}
