//! The pipeline: reads the ingest log in chunks and runs each chunk's events, grouped by
//! source, through that source's wiring on a low-priority worker thread; two chunks are in flight at
//! once so that both cores work. Results are made durable in log order (the deliveries log,
//! held events, forwarded events) before the chunk's position is committed, so a crash
//! replays a chunk at worst (at least once, never lost).
//!
//! Order: events of one request stay in order through to each destination's first delivery
//! attempt, and chunks are committed in log order; nothing else is promised (Segment does
//! not promise order either): a retried event arrives after later ones.
//!
//! - [`wiring`]: each source's pipeline, built once per configuration version;
//! - [`source`]: what a batch of one source's events goes through;
//! - [`enforce`]: tracking plan enforcement;
//! - [`functions`]: insert functions in flight, a batch per call;
//! - [`output`]: what a function hands back is checked;
//! - [`route`]: the `integrations` object;
//! - [`held`]: events whose function asked for a retry, run again when due;
//! - [`workers`]: the low-priority threads functions run on.

pub mod enforce;
pub mod functions;
pub mod held;
pub mod output;
pub mod route;
pub mod source;
pub mod wiring;
pub mod workers;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::event::{Batch, encode_deliveries};
use super::{DataPlane, PIPELINE};
use crate::log::{Bytes, LogError, Record};
use source::Output;
use wiring::WiringError;

/// Chunks processed at once (one [`workers`] thread each).
pub const IN_FLIGHT: usize = 2;
/// Records read per chunk, and the bytes that bound it.
const CHUNK_RECORDS: usize = 16;
const CHUNK_BYTES: usize = 2 << 20;

/// Why a chunk could not be processed; it is then processed again.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A log could not be read, appended to or committed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A source's wiring could not be built.
    #[error(transparent)]
    Wiring(#[from] WiringError),
    /// Held events could not be parked.
    #[error(transparent)]
    Parked(#[from] super::parked::ParkedError),
    /// A processing task failed.
    #[error("a pipeline task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A worker did not return a chunk's results.
    #[error(transparent)]
    Worker(#[from] workers::WorkerLost),
    /// A record of the ingest log is not a batch.
    #[error(transparent)]
    Record(#[from] super::event::RecordError),
}

/// A chunk being processed: the position after it, and its results.
type InFlight = (u64, JoinHandle<Result<Chunk, PipelineError>>);

/// A processed chunk.
struct Chunk {
    output: Output,
    /// Events taken off the log, per source (back-pressure accounting).
    taken: Vec<(String, usize)>,
}

/// Runs until `shutdown` turns true. Stopping in the middle of a chunk is safe: its position
/// is not committed, so it is processed again at the next start.
pub async fn run(plane: Arc<DataPlane>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match consume(&plane, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "pipeline failed; retrying from the last committed position");
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
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let log = plane.ingest_log.clone();
    let mut read_at = log.position(PIPELINE)?;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let result = pump(plane, &log, &mut read_at, &mut in_flight, shutdown).await;
    // What is in flight finishes (it is bounded work) so that nothing holds the data plane
    // after a stop; it is not committed, so it runs again at the next start.
    for (_, task) in in_flight {
        let _ = task.await;
    }
    result
}

async fn pump(
    plane: &Arc<DataPlane>,
    log: &Arc<dyn crate::log::EventLog>,
    read_at: &mut u64,
    in_flight: &mut VecDeque<InFlight>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if in_flight.len() < IN_FLIGHT {
            let records = log.read(*read_at, CHUNK_RECORDS, CHUNK_BYTES).await?;
            if let Some(last) = records.last() {
                *read_at = last.next;
                let p = plane.clone();
                in_flight.push_back((*read_at, tokio::spawn(process(p, records))));
                continue;
            }
        }
        let Some((next, task)) = in_flight.front_mut() else {
            tokio::select! {
                r = log.wait_beyond(*read_at) => { r?; }
                _ = shutdown.changed() => return Ok(()),
            }
            continue;
        };
        let next = *next;
        let processed = tokio::select! {
            c = task => c,
            _ = shutdown.changed() => return Ok(()),
        };
        in_flight.pop_front();
        finish(plane, processed??).await?;
        log.commit(PIPELINE, next).await?;
        plane.pipeline_advanced.notify_waiters();
    }
}

/// One chunk: its batches grouped by source, each through its source's wiring.
async fn process(plane: Arc<DataPlane>, records: Vec<Record>) -> Result<Chunk, PipelineError> {
    let mut groups: Vec<Batch> = Vec::new();
    for record in records {
        let batch = Batch::decode(record.payload)?;
        match groups.iter_mut().find(|g| g.source_id == batch.source_id) {
            Some(group) => group.events.extend(batch.events),
            None => groups.push(batch),
        }
    }
    let mut work = Vec::with_capacity(groups.len());
    for group in groups {
        let wiring = plane.wirings.get(&plane, &group.source_id).await?;
        work.push((wiring, group));
    }
    let p = plane.clone();
    let chunk = p.workers.run(move || {
        let mut chunk = Chunk {
            output: Output::default(),
            taken: Vec::new(),
        };
        for (wiring, group) in work {
            chunk.taken.push((group.source_id, group.events.len()));
            let out = source::process(&plane, &wiring, group.events, 0);
            chunk.output.extend(out);
        }
        chunk
    });
    Ok(chunk.await?)
}

/// Makes a chunk's results durable and accounts for them.
async fn finish(plane: &DataPlane, chunk: Chunk) -> Result<(), PipelineError> {
    persist(plane, &chunk.output).await?;
    for (source_id, n) in &chunk.taken {
        plane.backlog.adjust(source_id, 0, *n);
    }
    Ok(())
}

/// Appends what `output` delivers and forwards, and parks what it holds; returns once all of
/// it is durable. Shared with the held events' loop.
///
/// # Errors
/// A log append or the parking failed; nothing is committed past it.
pub async fn persist(plane: &DataPlane, output: &Output) -> Result<(), PipelineError> {
    if !output.deliveries.is_empty() {
        for d in &output.deliveries {
            plane.backlog.adjust(&d.source_id, 1, 0);
        }
        let records = deliveries_records(&output.deliveries, plane.delivery_log.max_record());
        plane.delivery_log.append(records).await?;
    }
    if !output.held.is_empty() {
        for h in &output.held {
            plane.backlog.adjust(&h.source_id, 1, 0);
        }
        let parked = plane.parked.clone();
        let held = output.held.clone();
        tokio::task::spawn_blocking(move || parked.hold(&held)).await??;
        plane.events_held.notify_one();
    }
    let forwarded: Vec<_> = output
        .forwarded
        .iter()
        .filter(|b| !b.events.is_empty())
        .collect();
    if !forwarded.is_empty() {
        for batch in &forwarded {
            plane
                .backlog
                .adjust(&batch.source_id, batch.events.len(), 0);
            plane.observe.ingested(&batch.source_id, &batch.events);
        }
        let records = forwarded.iter().map(|b| b.encode()).collect();
        let appended = plane.ingest_log.append(records).await?;
        plane.lead.appended(&appended.positions);
    }
    Ok(())
}

/// `deliveries` as records of at most about `limit` bytes each: one record unless the log
/// limits records (a cluster's log does, to NATS's message size). Costs a sum of lengths.
fn deliveries_records(deliveries: &[super::event::Delivery], limit: usize) -> Vec<Bytes> {
    // Generous per-delivery overhead (ids, type, framing), so an estimate never exceeds it.
    let size = |d: &super::event::Delivery| {
        d.event.json.len()
            + d.event.message_id.len()
            + d.destination_id.len()
            + d.source_id.len()
            + 64
    };
    let total: usize = deliveries.iter().map(size).sum();
    if total < limit {
        return vec![encode_deliveries(deliveries)];
    }
    let mut records = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, d) in deliveries.iter().enumerate() {
        if i > start && bytes + size(d) >= limit {
            records.push(encode_deliveries(&deliveries[start..i]));
            (start, bytes) = (i, 0);
        }
        bytes += size(d);
    }
    records.push(encode_deliveries(&deliveries[start..]));
    records
}
