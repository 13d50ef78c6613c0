//! Delivery: reads the deliveries log in chunks, groups each chunk's events per destination
//! into batches as large as the destination takes (a webhook's `batchSize`), sends them
//! concurrently, and settles each event: delivered; a retryable failure is parked for a
//! retry with backoff ([`retries`]); a permanent one becomes a dead letter. The chunk's
//! position is committed once every event of it is settled. A batch shares one verdict (the
//! receiver took all of it or none) unless the sink gives each event its own (a destination
//! function's `onBatch` reporting a status per event).
//!
//! - [`retry`]: the one classifier and the backoff, used by delivery and the pipeline;
//! - [`retries`]: parked deliveries, attempted again when due.

pub mod retries;
pub mod retry;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::destinations::Sink;
use super::event::{Delivery, RecordError, decode_deliveries};
use super::observe::{Count, Status};
use super::parked::{ParkedError, Retry};
use super::{DELIVER, DataPlane, now_ms};
use crate::log::{LogError, Record};
use retry::Verdict;

/// Chunks being delivered at once.
const IN_FLIGHT: usize = 4;
const CHUNK_RECORDS: usize = 16;
const CHUNK_BYTES: usize = 4 << 20;

/// Why a chunk could not be settled; it is then delivered again.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The deliveries log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A record is not a list of deliveries.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A retry or dead letter could not be written.
    #[error(transparent)]
    Parked(#[from] ParkedError),
    /// A wiring could not be built.
    #[error(transparent)]
    Wiring(#[from] super::pipeline::wiring::WiringError),
    /// A delivery task failed.
    #[error("a delivery task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs until `shutdown` turns true; attempts in flight are then abandoned (their chunk is
/// not committed, so it is delivered again at the next start).
pub async fn run(plane: Arc<DataPlane>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(plane.config.delivery_concurrency.max(1)));
    loop {
        match consume(&plane, &slots, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "delivery failed; retrying from the last committed position");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

async fn consume(
    plane: &Arc<DataPlane>,
    slots: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), DeliverError> {
    let log = plane.delivery_log.clone();
    let mut read_at = log.position(DELIVER)?;
    let mut in_flight: VecDeque<(u64, JoinHandle<Result<(), DeliverError>>)> = VecDeque::new();
    let result = loop {
        if *shutdown.borrow() {
            break Ok(());
        }
        if in_flight.len() < IN_FLIGHT {
            let records = log.read(read_at, CHUNK_RECORDS, CHUNK_BYTES).await?;
            if let Some(last) = records.last() {
                read_at = last.next;
                let task = tokio::spawn(deliver_chunk(plane.clone(), slots.clone(), records));
                in_flight.push_back((read_at, task));
                continue;
            }
        }
        let Some((next, task)) = in_flight.front_mut() else {
            tokio::select! {
                r = log.wait_beyond(read_at) => { r?; }
                _ = shutdown.changed() => break Ok(()),
            }
            continue;
        };
        let next = *next;
        let settled = tokio::select! {
            r = task => r,
            _ = shutdown.changed() => break Ok(()),
        };
        in_flight.pop_front();
        if let Err(e) = settled.map_err(DeliverError::from).and_then(|r| r) {
            break Err(e);
        }
        log.commit(DELIVER, next).await?;
    };
    // Attempts in flight are abandoned (not committed: delivered again at the next start),
    // and awaited so that nothing holds the data plane after a stop.
    for (_, task) in in_flight {
        task.abort();
        let _ = task.await;
    }
    result
}

/// Delivers every event of `records` and settles each.
async fn deliver_chunk(
    plane: Arc<DataPlane>,
    slots: Arc<Semaphore>,
    records: Vec<Record>,
) -> Result<(), DeliverError> {
    let mut groups: Vec<(String, String, Vec<Delivery>)> = Vec::new();
    for record in records {
        for d in decode_deliveries(record.payload)? {
            // By destination and source: the source's wiring decides where its events go, and
            // its backlog counts them.
            match groups
                .iter_mut()
                .find(|(dest, src, _)| *dest == d.destination_id && *src == d.source_id)
            {
                Some((_, _, list)) => list.push(d),
                None => groups.push((d.destination_id.clone(), d.source_id.clone(), vec![d])),
            }
        }
    }
    let mut attempts = JoinSet::new();
    for (destination_id, source_id, deliveries) in groups {
        let wiring = plane.wirings.get(&plane, &source_id).await?;
        let Some(route) = wiring.route(&destination_id) else {
            // Deleted or disabled since: nothing to deliver to.
            plane.observe.count(&destination_id, Count::Dropped);
            plane.backlog.adjust(&source_id, 0, deliveries.len());
            continue;
        };
        let sink = route.sink.clone();
        let size = sink.batch_size().max(1);
        let mut rest = deliveries;
        while !rest.is_empty() {
            let batch: Vec<Delivery> = rest.drain(..size.min(rest.len())).collect();
            let permit = slots.clone().acquire_owned().await;
            let (plane, sink) = (plane.clone(), sink.clone());
            attempts.spawn(async move {
                let result = first_attempt(&plane, sink.as_ref(), batch).await;
                drop(permit);
                result
            });
        }
    }
    while let Some(result) = attempts.join_next().await {
        result??;
    }
    Ok(())
}

/// One attempt at `batch` (one destination's), then each event settled.
async fn first_attempt(
    plane: &DataPlane,
    sink: &dyn Sink,
    batch: Vec<Delivery>,
) -> Result<(), DeliverError> {
    let events: Vec<_> = batch.iter().map(|d| d.event.clone()).collect();
    let attempt = sink.send(&events).await;
    let now = now_ms();
    let mut parked = Vec::new();
    if attempt.verdict == Verdict::Success {
        trace(plane, &batch, 1, Status::Delivered, None);
        if let Some(first) = batch.first() {
            let n = batch.len();
            plane
                .observe
                .count_many(&first.destination_id, Count::Delivered, n as u64);
            plane.backlog.adjust(&first.source_id, 0, n);
        }
        return Ok(());
    }
    for (index, d) in batch.iter().enumerate() {
        let attempt = attempt.of(index);
        let error = attempt.error.as_deref().unwrap_or_default();
        match &attempt.verdict {
            Verdict::Success => {
                trace(plane, std::slice::from_ref(d), 1, Status::Delivered, None);
                plane.observe.count(&d.destination_id, Count::Delivered);
                plane.backlog.adjust(&d.source_id, 0, 1);
            }
            Verdict::Retry { after } => match next_attempt(plane, now, 1, *after) {
                Some(at) => {
                    trace(
                        plane,
                        std::slice::from_ref(d),
                        1,
                        Status::Retrying,
                        Some(error),
                    );
                    plane.observe.count(&d.destination_id, Count::Retried);
                    parked.push(Retry::first(d, now, at, error));
                }
                None => {
                    let error = format!("retries exhausted: {error}");
                    trace(
                        plane,
                        std::slice::from_ref(d),
                        1,
                        Status::Failed,
                        Some(&error),
                    );
                    plane.observe.count(&d.destination_id, Count::Failed);
                    bury(plane, None, d, 1, &error).await?;
                }
            },
            Verdict::GiveUp => {
                trace(
                    plane,
                    std::slice::from_ref(d),
                    1,
                    Status::Failed,
                    Some(error),
                );
                plane.observe.count(&d.destination_id, Count::Failed);
                bury(plane, None, d, 1, error).await?;
            }
        }
    }
    if !parked.is_empty() {
        let p = plane.parked.clone();
        tokio::task::spawn_blocking(move || p.park_retries(&parked)).await??;
        plane.retries_parked.notify_one();
    }
    Ok(())
}

/// When attempt `attempts + 1` of a delivery first tried at `first_at_ms` is due (the
/// receiver's `after`, or backoff), or `None` when that is past the maximum age.
pub fn next_attempt(
    plane: &DataPlane,
    first_at_ms: u64,
    attempts: u32,
    after: Option<Duration>,
) -> Option<u64> {
    let delay = after.unwrap_or_else(|| {
        retry::backoff(
            attempts,
            plane.config.backoff_base,
            plane.config.backoff_max,
        )
    });
    let next = now_ms().saturating_add(delay.as_millis() as u64);
    let limit = first_at_ms.saturating_add(plane.config.max_age.as_millis() as u64);
    (next <= limit).then_some(next)
}

/// Moves `delivery` (retry `seq`, if parked) to the dead letters.
pub async fn bury(
    plane: &DataPlane,
    seq: Option<u64>,
    delivery: &Delivery,
    attempts: u32,
    error: &str,
) -> Result<(), DeliverError> {
    let (p, d, e) = (plane.parked.clone(), delivery.clone(), error.to_string());
    tokio::task::spawn_blocking(move || p.bury(seq, &d, attempts, &e)).await??;
    plane.backlog.adjust(&delivery.source_id, 0, 1);
    Ok(())
}

/// The debugger's `deliver` stage for one attempt at `batch` (one source's events to one
/// destination).
pub fn trace(
    plane: &DataPlane,
    batch: &[Delivery],
    attempt_no: u32,
    status: Status,
    error: Option<&str>,
) {
    let Some(first) = batch.first() else {
        return;
    };
    let ids: Vec<&str> = batch.iter().map(|d| d.event.message_id.as_str()).collect();
    let destination_id = &first.destination_id;
    plane
        .observe
        .delivery(&first.source_id, destination_id, status, &ids, || {
            let detail = error.map_or(serde_json::Value::Null, |e| json!(e));
            json!({"destinationId": destination_id, "attempt": attempt_no, "detail": detail})
        });
}
