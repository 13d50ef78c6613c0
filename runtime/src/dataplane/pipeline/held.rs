//! Events held because an insert function asked for a retry: when one is due, its source's
//! whole pipeline runs on it again (a function sees the event as ingested, as on Segment's
//! runtime). What the run produces is made durable before the held record is released.

use std::sync::Arc;

use tokio::sync::watch;

use super::source;
use super::{PipelineError, persist};
use crate::dataplane::parked::{Held, when_due};
use crate::dataplane::{DataPlane, now_ms};

/// Runs until `shutdown` turns true.
pub async fn run(plane: Arc<DataPlane>, shutdown: watch::Receiver<bool>) {
    let p = plane.clone();
    when_due(&plane.events_held, shutdown, "held events", move || {
        let p = p.clone();
        async move { retry_due(&p).await }
    })
    .await;
}

/// Runs the held events that are due; when the next one will be.
async fn retry_due(plane: &Arc<DataPlane>) -> Result<Option<u64>, PipelineError> {
    let parked = plane.parked.clone();
    let (due, next) = tokio::task::spawn_blocking(move || parked.due_held(now_ms(), 256)).await??;
    for (seq, held) in due {
        retry_one(plane, seq, held).await?;
    }
    Ok(next)
}

async fn retry_one(plane: &Arc<DataPlane>, seq: u64, held: Held) -> Result<(), PipelineError> {
    let wiring = plane.wirings.get(plane, &held.source_id).await?;
    let p = plane.clone();
    let attempts = held.attempts;
    let event = held.event();
    let workers = plane.workers.clone();
    let output = workers
        .run(move || source::process(&p, &wiring, vec![event], attempts))
        .await?;
    persist(plane, &output).await?;
    let parked = plane.parked.clone();
    tokio::task::spawn_blocking(move || parked.release(seq)).await??;
    plane.backlog.adjust(&held.source_id, 0, 1);
    Ok(())
}
