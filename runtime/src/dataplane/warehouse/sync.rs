//! A warehouse's sync loop: every sync interval (and when asked), it takes what is staged,
//! in chunks, flattens each chunk per source and loads each source in one transaction, then
//! commits the staging position. A failed load leaves the position where it was: the next
//! attempt (after a backoff that doubles from 1 s up to a minute, or the interval if it is
//! shorter) loads the same events again, and rows loaded before the failure are skipped by
//! id. One loop per warehouse, so two loads of one warehouse never run at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::chunk::{self, CHUNK_BYTES, CHUNK_RECORDS, Chunk, prepare};
use super::link::Link;
use super::load::{LoadError, Loaded};
use super::planner::{Planner, Share};
use super::report::{SyncReport, SyncStatus};
use super::{CONSUMER, Command, SyncError, stage};
use crate::dataplane::DataPlane;
use crate::dataplane::deliver::retry::backoff;
use crate::log::{EventLog, SegmentLog};
use crate::workspace::{Kind, Warehouse, now};
/// The longest wait between two attempts of a failing warehouse.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs warehouse `id`'s loop until `stop` turns true, the warehouse is deleted, or every
/// sender of `inbox` is gone.
pub async fn run(
    plane: Arc<DataPlane>,
    id: String,
    mut inbox: mpsc::Receiver<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    let mut next = Instant::now() + interval(&plane, &id).unwrap_or(MAX_BACKOFF);
    loop {
        let wait = tokio::time::sleep_until(next.into());
        tokio::select! {
            _ = wait => {
                let Some(warehouse) = current(&plane, &id) else { return };
                if !warehouse.enabled {
                    next = Instant::now() + warehouse_interval(&warehouse);
                    continue;
                }
                let ok = matches!(sync(&plane, &warehouse).await, Ok(r) if succeeded(&r));
                failures = if ok { 0 } else { failures + 1 };
                let wait = if ok {
                    warehouse_interval(&warehouse)
                } else {
                    backoff(failures, Duration::from_secs(1), MAX_BACKOFF.min(warehouse_interval(&warehouse)))
                };
                next = Instant::now() + wait;
            }
            command = inbox.recv() => {
                let Some(command) = command else { return };
                let Some(warehouse) = current(&plane, &id) else {
                    answer_gone(command, &id);
                    return;
                };
                match command {
                    Command::Sync(reply) => {
                        let result = if warehouse.enabled {
                            sync(&plane, &warehouse).await
                        } else {
                            Err(SyncError::Disabled(id.clone()))
                        };
                        let _ = reply.send(result);
                    }
                    Command::Check(reply) => {
                        let link = Link::of(&plane, &warehouse);
                        let _ = reply.send(link.check().await);
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

fn answer_gone(command: Command, id: &str) {
    match command {
        Command::Sync(reply) => {
            let _ = reply.send(Err(SyncError::Gone(id.to_string())));
        }
        Command::Check(reply) => {
            let _ = reply.send(Err(LoadError::Connect(format!(
                "warehouse `{id}` not found"
            ))));
        }
    }
}

fn succeeded(reports: &[SyncReport]) -> bool {
    reports.iter().all(|r| r.status == SyncStatus::Success)
}

fn current(plane: &DataPlane, id: &str) -> Option<Warehouse> {
    plane.store.get(Kind::Warehouse, id).ok().flatten()
}

fn interval(plane: &DataPlane, id: &str) -> Option<Duration> {
    current(plane, id).map(|w| warehouse_interval(&w))
}

fn warehouse_interval(w: &Warehouse) -> Duration {
    Duration::from_secs(w.sync_interval_secs())
}

/// One sync: everything staged when it starts, chunk by chunk; one report per source met.
/// A failed load ends it (the rest waits for the next attempt). The warehouse's tables are
/// read once ([`Catalog`]); then the next chunk is read, flattened, planned and encoded (on a
/// sync thread) while the current one loads, so that on two cores our work and the
/// database's run at once.
///
/// # Errors
/// The staging log, the store or the reports failed; a failed load is a `FAILED` report.
pub async fn sync(
    plane: &Arc<DataPlane>,
    warehouse: &Warehouse,
) -> Result<Vec<SyncReport>, SyncError> {
    let staging = {
        let warehouses = plane.clone();
        let id = warehouse.id.clone();
        tokio::task::spawn_blocking(move || warehouses.warehouses.staging(&id))
            .await
            .map_err(|_| SyncError::Stopped)??
    };
    let (end, position) = (staging.end(), staging.position(CONSUMER)?);
    if position >= end {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let link = Link::of(plane, warehouse);
    let mut run = Run {
        plane,
        warehouse: Arc::new(warehouse.clone()),
        link: &link,
        staging: &staging,
        start: now(),
        reports: BTreeMap::new(),
    };
    let mut ahead = None;
    let loaded = run.load_staged(position, end, &mut ahead).await;
    // A chunk read ahead but not loaded (a load failed) is waited for, not left queued: its
    // job holds the data plane, and a stopped server must release its data directory once
    // its loops have returned (seen: a restart in a test found the directory still locked).
    if let Some(task) = ahead {
        let _ = task.await;
    }
    link.close(&plane.warehouses.workers).await;
    loaded?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out: Vec<SyncReport> = run.reports.into_values().collect();
    for report in &mut out {
        report.finish(seconds);
        plane.warehouses.reports.record(report)?;
    }
    Ok(out)
}

/// One sync in progress.
struct Run<'a> {
    plane: &'a Arc<DataPlane>,
    /// Shared with the sync threads that prepare the chunks.
    warehouse: Arc<Warehouse>,
    link: &'a Link,
    staging: &'a Arc<SegmentLog>,
    /// When it started (the reports' `startedAt`).
    start: String,
    /// Source -> its report.
    reports: BTreeMap<String, SyncReport>,
}

type Ahead = tokio::task::JoinHandle<Result<Option<Chunk>, SyncError>>;

impl Run<'_> {
    /// Reads the catalog, then loads the chunks from `position` up to the staging log's
    /// `end` as the sync started, committing after each chunk; stops at the first failed
    /// load. The chunk being read ahead is left in `ahead` for the caller to wait for.
    async fn load_staged(
        &mut self,
        position: u64,
        end: u64,
        ahead: &mut Option<Ahead>,
    ) -> Result<(), SyncError> {
        let catalog = match self.link.catalog(&self.plane.warehouses.workers).await {
            Ok(catalog) => catalog,
            Err(e) => return self.unreachable(position, e).await,
        };
        let planner = Planner::new(catalog, self.link.encoding(), chunk::parts());
        *ahead = Some(self.prepare(position, planner));
        while let Some(task) = ahead.take() {
            let Some(chunk) = task.await.map_err(|_| SyncError::Stopped)?? else {
                break;
            };
            if chunk.next < end {
                *ahead = Some(self.prepare(chunk.next, chunk.planner));
            }
            if !self.load_chunk(chunk.batches).await? {
                // The chunk read ahead is not loaded: the next attempt reads it again.
                break;
            }
            self.staging.commit(CONSUMER, chunk.next).await?;
        }
        Ok(())
    }

    /// When the warehouse cannot be read: the first chunk's sources are reported `FAILED`
    /// with the reason, and nothing is loaded.
    async fn unreachable(&mut self, from: u64, error: LoadError) -> Result<(), SyncError> {
        tracing::warn!(warehouse = %self.warehouse.id, error = %error, "warehouse unreachable");
        let staging = self.staging.clone();
        let counts = self
            .plane
            .warehouses
            .workers
            .run(move || -> Result<BTreeMap<String, u64>, SyncError> {
                let mut counts = BTreeMap::new();
                for record in staging.read_blocking(from, CHUNK_RECORDS, CHUNK_BYTES)? {
                    let (source_id, events) = stage::decode(record.payload)?;
                    *counts.entry(source_id).or_default() += events.len() as u64;
                }
                Ok(counts)
            })
            .await??;
        for (source_id, count) in counts {
            let report = self.report(&source_id);
            report.count += count;
            report.status = SyncStatus::Failed;
            report.notice("error", error.to_string());
        }
        Ok(())
    }

    /// `source_id`'s report, started at its first chunk.
    fn report(&mut self, source_id: &str) -> &mut SyncReport {
        let (id, start) = (&self.warehouse.id, &self.start);
        self.reports
            .entry(source_id.to_string())
            .or_insert_with(|| SyncReport::new(id, source_id, start))
    }

    /// Prepares the chunk at `from` ([`prepare`]), spawned so that it starts now, while the
    /// current chunk loads.
    fn prepare(&self, from: u64, planner: Planner) -> Ahead {
        let (plane, warehouse) = (self.plane.clone(), self.warehouse.clone());
        tokio::spawn(prepare(
            plane,
            warehouse,
            self.staging.clone(),
            from,
            planner,
        ))
    }

    /// Loads a chunk's batches, one source after another, into the reports; false when a
    /// load failed (the sources after it are reported as not loaded).
    async fn load_chunk(&mut self, batches: BTreeMap<String, Share>) -> Result<bool, SyncError> {
        let mut failed = false;
        for (source_id, (count, batch)) in batches {
            self.report(&source_id).count += count;
            if failed {
                let report = self.report(&source_id);
                report.status = SyncStatus::Failed;
                report.notice("error", "not loaded: an earlier load of this sync failed");
                continue;
            }
            let loaded = match batch {
                Ok(batch) => self.link.load(&self.plane.warehouses.workers, batch).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(loaded) => self.note(&source_id, loaded)?,
                Err(e) => {
                    failed = true;
                    tracing::warn!(warehouse = %self.warehouse.id, source = %source_id, error = %e, "warehouse load failed");
                    let report = self.report(&source_id);
                    report.status = SyncStatus::Failed;
                    report.notice("error", e.to_string());
                }
            }
        }
        Ok(!failed)
    }

    /// Adds a load's outcome to `source_id`'s report, remembers the tables loaded.
    fn note(&mut self, source_id: &str, loaded: Loaded) -> Result<(), SyncError> {
        let (plane, id) = (self.plane.clone(), self.warehouse.id.clone());
        let report = self.report(source_id);
        if let Some(n) = loaded.tables.get(super::plan::DISCARDS).filter(|n| **n > 0) {
            report.notice(
                "warning",
                format!("{n} values did not fit their columns: they are in the `discards` table"),
            );
        }
        for (table, rows) in &loaded.tables {
            *report.tables.entry(table.clone()).or_default() += rows;
        }
        plane
            .warehouses
            .reports
            .add_collections(&id, source_id, &loaded.columns)?;
        Ok(())
    }
}
