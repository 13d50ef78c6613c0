//! A warehouse's sync loop: every sync interval (and when asked), it takes what is staged,
//! in chunks, flattens each chunk per source and loads each source in one transaction, then
//! commits the staging position. A failed load leaves the position where it was: the next
//! attempt (after a backoff that doubles from 1 s up to a minute, or the interval if it is
//! shorter) loads the same events again, and rows loaded before the failure are skipped by
//! id. One loop per warehouse, so two loads of one warehouse never run at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::flatten::{Json, Names, rows, wanted_by};
use super::load::{LoadError, Loaded, SourceBatch};
use super::report::{SyncReport, SyncStatus};
use super::{CONSUMER, Command, SyncError, duck, naming, postgres, stage};
use crate::dataplane::DataPlane;
use crate::dataplane::deliver::retry::backoff;
use crate::log::{EventLog, Record, SegmentLog};
use crate::workspace::{Kind, Source, Warehouse, now};

/// Staging records per load (each holds up to 1,000 events). Each load has a cost of its own
/// (the stored columns read, each table's statements, the merge's scan of the stored ids), so
/// fewer, larger loads are faster: 200 took 100,000 sample events in 3.0 s against 3.5 s for
/// 50 (BENCHMARKS.md, issue 15). Memory stays bounded by [`CHUNK_BYTES`] either way.
const CHUNK_RECORDS: usize = 200;
/// The most staged bytes per load (two chunks are in memory at once: one loading, one read
/// ahead).
const CHUNK_BYTES: usize = 64 << 20;
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
                        let _ = reply.send(connect(&plane, &warehouse).await);
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

/// Connects to the warehouse as a load would.
async fn connect(plane: &DataPlane, warehouse: &Warehouse) -> Result<(), LoadError> {
    if is_postgres(warehouse) {
        return postgres::connect(&warehouse.settings).await.map(drop);
    }
    let path = plane.warehouses.file(&warehouse.id);
    tokio::task::spawn_blocking(move || duck::connect(&path).map(drop)).await?
}

fn is_postgres(warehouse: &Warehouse) -> bool {
    warehouse.metadata.id == "postgres"
}

/// One sync: everything staged when it starts, chunk by chunk; one report per source met.
/// A failed load ends it (the rest waits for the next attempt). The next chunk is read and
/// flattened (on a sync thread) while the current one loads, so that on two cores the
/// flattening and the database's work run at once.
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
    let started = Instant::now();
    let start = now();
    let mut reports: BTreeMap<String, SyncReport> = BTreeMap::new();
    let mut ahead = None;
    let loaded = load_staged(plane, warehouse, &staging, &mut reports, &start, &mut ahead).await;
    // A chunk read ahead but not loaded (a load failed) is waited for, not left queued: its
    // job holds the data plane, and a stopped server must release its data directory once
    // its loops have returned (seen: a restart in a test found the directory still locked).
    if let Some(task) = ahead {
        let _ = task.await;
    }
    loaded?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out: Vec<SyncReport> = reports.into_values().collect();
    for report in &mut out {
        report.finish(seconds);
        plane.warehouses.reports.record(report)?;
    }
    Ok(out)
}

type Ahead = tokio::task::JoinHandle<Result<Option<Chunk>, SyncError>>;

/// Loads the staging log from the committed position to the end it had at the start,
/// committing after each chunk; stops at the first failed load. The chunk being read ahead
/// is left in `ahead` for the caller to wait for.
async fn load_staged(
    plane: &Arc<DataPlane>,
    warehouse: &Warehouse,
    staging: &Arc<SegmentLog>,
    reports: &mut BTreeMap<String, SyncReport>,
    start: &str,
    ahead: &mut Option<Ahead>,
) -> Result<(), SyncError> {
    let end = staging.end();
    let position = staging.position(CONSUMER)?;
    *ahead = (position < end).then(|| prepare(plane, warehouse, staging, position, HashMap::new()));
    while let Some(task) = ahead.take() {
        let Some(chunk) = task.await.map_err(|_| SyncError::Stopped)?? else {
            break;
        };
        if chunk.next < end {
            let slugs = chunk.slugs.clone();
            *ahead = Some(prepare(plane, warehouse, staging, chunk.next, slugs));
        }
        if !load_chunk(plane, warehouse, chunk.batches, reports, start).await? {
            // The chunk read ahead is not loaded: the next attempt reads it again.
            break;
        }
        staging.commit(CONSUMER, chunk.next).await?;
    }
    Ok(())
}

/// A chunk of the staging log, read and flattened.
struct Chunk {
    /// Source -> (events taken, batch).
    batches: BTreeMap<String, (u64, SourceBatch)>,
    /// The staging position after it (committed once it is loaded).
    next: u64,
    /// Source id -> slug, as known so far in this sync (each source is looked up once).
    slugs: HashMap<String, String>,
}

/// Reads the chunk at `from` and flattens it, on a sync thread (low priority): a second of
/// CPU that on a runtime worker would hold up the requests and deliveries queued behind it,
/// and at a normal priority would compete with them. `None` when nothing is staged there.
fn prepare(
    plane: &Arc<DataPlane>,
    warehouse: &Warehouse,
    staging: &Arc<SegmentLog>,
    from: u64,
    mut slugs: HashMap<String, String>,
) -> Ahead {
    let (plane, warehouse, staging) = (plane.clone(), warehouse.clone(), staging.clone());
    let workers = plane.warehouses.workers.clone();
    // Spawned so that it starts now, while the current chunk loads.
    tokio::spawn(async move {
        workers
            .run(move || -> Result<Option<Chunk>, SyncError> {
                let records = staging.read_blocking(from, CHUNK_RECORDS, CHUNK_BYTES)?;
                let Some(next) = records.last().map(|r| r.next) else {
                    return Ok(None);
                };
                let batches = batches(&plane, &warehouse, records, &mut slugs)?;
                Ok(Some(Chunk {
                    batches,
                    next,
                    slugs,
                }))
            })
            .await?
    })
}

/// Loads a chunk's batches, one source after another, into `reports`; false when a load
/// failed (the sources after it are reported as not loaded).
async fn load_chunk(
    plane: &Arc<DataPlane>,
    warehouse: &Warehouse,
    batches: BTreeMap<String, (u64, SourceBatch)>,
    reports: &mut BTreeMap<String, SyncReport>,
    start: &str,
) -> Result<bool, SyncError> {
    let mut failed = false;
    for (source_id, (count, batch)) in batches {
        let report = reports
            .entry(source_id.clone())
            .or_insert_with(|| SyncReport::new(&warehouse.id, &source_id, start));
        report.count += count;
        if failed {
            report.status = SyncStatus::Failed;
            report.notice("error", "not loaded: an earlier load of this sync failed");
            continue;
        }
        match load(plane, warehouse, batch).await {
            Ok(loaded) => note(plane, warehouse, report, loaded)?,
            Err(e) => {
                failed = true;
                report.status = SyncStatus::Failed;
                report.notice("error", e.to_string());
                tracing::warn!(warehouse = %warehouse.id, source = %source_id, error = %e, "warehouse load failed");
            }
        }
    }
    Ok(!failed)
}

/// Adds a load's outcome to `report`, remembers the tables loaded.
fn note(
    plane: &DataPlane,
    warehouse: &Warehouse,
    report: &mut SyncReport,
    loaded: Loaded,
) -> Result<(), SyncError> {
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
        .add_collections(&warehouse.id, &report.source_id, &loaded.columns)?;
    Ok(())
}

async fn load(
    plane: &DataPlane,
    warehouse: &Warehouse,
    batch: SourceBatch,
) -> Result<Loaded, LoadError> {
    let workers = &plane.warehouses.workers;
    if is_postgres(warehouse) {
        return postgres::load(&warehouse.settings, workers, batch).await;
    }
    let path = plane.warehouses.file(&warehouse.id);
    workers.run(move || duck::load(&path, batch)).await?
}

/// A chunk's events per source, flattened, with selective sync and the per-event
/// `Warehouses` switch applied: source -> (events taken, batch).
fn batches(
    plane: &DataPlane,
    warehouse: &Warehouse,
    records: Vec<Record>,
    slugs: &mut HashMap<String, String>,
) -> Result<BTreeMap<String, (u64, SourceBatch)>, SyncError> {
    let prefix = warehouse.setting("schemaPrefix").unwrap_or("");
    let mut out: BTreeMap<String, (u64, SourceBatch)> = BTreeMap::new();
    let mut names = Names::default();
    for record in records {
        let (source_id, events) = stage::decode(record.payload)?;
        if !slugs.contains_key(&source_id) {
            let slug = plane
                .store
                .get::<Source>(Kind::Source, &source_id)?
                .map_or_else(|| format!("source_{source_id}"), |s| s.slug);
            slugs.insert(source_id.clone(), slug);
        }
        let entry = out.entry(source_id.clone()).or_insert_with(|| {
            let slug = slugs.get(&source_id).map_or("", String::as_str);
            (
                0,
                SourceBatch {
                    schema: naming::schema(prefix, slug),
                    tables: BTreeMap::new(),
                },
            )
        });
        entry.0 += events.len() as u64;
        if !warehouse.syncs(&source_id, None, None) {
            continue;
        }
        for json in events {
            let Some(event) = Json::event(&json) else {
                continue;
            };
            if !wanted_by(&event, &warehouse.id) {
                continue;
            }
            add(warehouse, &source_id, &event, &mut names, &mut entry.1);
        }
    }
    Ok(out)
}

fn add(
    warehouse: &Warehouse,
    source_id: &str,
    event: &Json<'_>,
    names: &mut Names,
    batch: &mut SourceBatch,
) {
    let selective = warehouse
        .sync_overrides
        .iter()
        .any(|o| o.source_id == source_id);
    for (table, mut row) in rows(event, names) {
        if selective {
            if !warehouse.syncs(source_id, Some(table.as_str()), None) {
                continue;
            }
            row.cells
                .retain(|c| c == "id" || warehouse.syncs(source_id, Some(table.as_str()), Some(c)));
        }
        batch.tables.entry(table).or_default().push(row);
    }
}
