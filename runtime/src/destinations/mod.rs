//! Destinations: what sluice delivers to, one module per type, each turning an event into
//! one attempt and a [`Verdict`](crate::deliver::retry::Verdict).
//!
//! - [`webhook`]: POSTs JSON to a URL, signed with HMAC-SHA256;
//! - [`file`]: appends JSON lines to a file under the data directory, rotated by size.

pub mod file;
pub mod webhook;

use serde_json::Value;

use crate::api::destinations::Destination;
use crate::deliver::retry::Verdict;
use crate::topology::DataPlane;

/// One attempt to deliver `event` to `destination`: the verdict and, when it failed, why.
pub async fn send(
    plane: &DataPlane,
    client: &reqwest::Client,
    destination: &Destination,
    event: &Value,
) -> (Verdict, Option<String>) {
    match destination.metadata.id.as_str() {
        "webhook" => webhook::send(client, &destination.settings, event).await,
        "file" => file::send(plane, &destination.settings, event).await,
        other => (
            Verdict::GiveUp,
            Some(format!("sluice cannot deliver to {other:?} destinations")),
        ),
    }
}
