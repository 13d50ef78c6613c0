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

use super::catalog::Catalog;
use super::flatten::{Json, Names, rows, wanted_by};
use super::link::Link;
use super::load::{Encoding, LoadError, Loaded, SourceBatch, SourceLoad, TableBatch, now_micros};
use super::report::{SyncReport, SyncStatus};
use super::{CONSUMER, Command, SyncError, naming, stage};
use crate::dataplane::DataPlane;
use crate::dataplane::deliver::retry::backoff;
use crate::log::{EventLog, Record, SegmentLog};
use crate::workspace::{Kind, Source, Warehouse, now};

/// Staging records per load (each holds up to 1,000 events); [`CHUNK_BYTES`] is usually
/// reached first.
const CHUNK_RECORDS: usize = 200;
/// The most staged bytes per load (two chunks are in memory at once: one loading, one read
/// ahead). Small enough that the chunks pipeline (the first chunk's preparation and the last
/// one's load overlap nothing): 100,000 sample events loaded into PostgreSQL in 2.9 s in
/// 16 MiB chunks against 3.8 s in 64 MiB ones (BENCHMARKS.md, issue 15); since the DuckDB
/// file checkpoints once per sync, not per load, smaller loads cost DuckDB little more.
const CHUNK_BYTES: usize = 16 << 20;
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
        warehouse,
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
    warehouse: &'a Warehouse,
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
        let planner = Planner {
            catalog,
            encoding: self.link.encoding(),
            slugs: HashMap::new(),
            names: Names::default(),
        };
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

    /// Reads the chunk at `from`, flattens, plans and encodes it, on a sync thread (low
    /// priority): seconds of CPU that on a runtime worker would hold up the requests and
    /// deliveries queued behind it, and at a normal priority would compete with them. `None`
    /// when nothing is staged there.
    fn prepare(&self, from: u64, mut planner: Planner) -> Ahead {
        let (plane, warehouse) = (self.plane.clone(), self.warehouse.clone());
        let staging = self.staging.clone();
        let workers = plane.warehouses.workers.clone();
        // Spawned so that it starts now, while the current chunk loads.
        tokio::spawn(async move {
            workers
                .run(move || -> Result<Option<Chunk>, SyncError> {
                    let records = staging.read_blocking(from, CHUNK_RECORDS, CHUNK_BYTES)?;
                    let Some(next) = records.last().map(|r| r.next) else {
                        return Ok(None);
                    };
                    let flat = planner.flatten(&plane, &warehouse, records)?;
                    let now = now_micros();
                    let batches = flat
                        .into_iter()
                        .enumerate()
                        .map(|(i, (source, (count, batch)))| {
                            let share = planner.plan(batch, now, &format!("{from}-{i}"));
                            (source, (count, share))
                        })
                        .collect();
                    Ok(Some(Chunk {
                        batches,
                        next,
                        planner,
                    }))
                })
                .await?
        })
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

/// What plans the chunks of one sync, handed from each chunk to the next: the chunks are
/// planned in order, each against the tables as the ones before it leave them.
struct Planner {
    /// The warehouse's tables, as the chunks planned so far leave them.
    catalog: Catalog,
    /// How the loads take their rows.
    encoding: Encoding,
    /// Source id -> slug, as known so far in this sync (each source is looked up once).
    slugs: HashMap<String, String>,
    /// Column names worked out so far.
    names: Names,
}

/// A source's share of a chunk: the events taken, and what loads them (or why nothing can).
type Share = (u64, Result<SourceLoad, LoadError>);

/// A chunk of the staging log, read, flattened, planned and encoded.
struct Chunk {
    /// Source -> its share.
    batches: BTreeMap<String, Share>,
    /// The staging position after it (committed once it is loaded).
    next: u64,
    /// What plans the next chunk.
    planner: Planner,
}

impl Planner {
    /// A chunk's events per source, flattened, with selective sync and the per-event
    /// `Warehouses` switch applied: source -> (events taken, batch).
    fn flatten(
        &mut self,
        plane: &DataPlane,
        warehouse: &Warehouse,
        records: Vec<Record>,
    ) -> Result<BTreeMap<String, (u64, SourceBatch)>, SyncError> {
        let prefix = warehouse.setting("schemaPrefix").unwrap_or("");
        let mut out: BTreeMap<String, (u64, SourceBatch)> = BTreeMap::new();
        for record in records {
            let (source_id, events) = stage::decode(record.payload)?;
            let slug = self.slug(plane, &source_id)?;
            let entry = out.entry(source_id.clone()).or_insert_with(|| {
                let batch = SourceBatch {
                    schema: naming::schema(prefix, slug),
                    tables: BTreeMap::new(),
                };
                (0, batch)
            });
            entry.0 += events.len() as u64;
            if !warehouse.syncs(&source_id, None, None) {
                continue;
            }
            for json in events {
                let Some(event) = Json::event(&json) else {
                    continue;
                };
                if wanted_by(&event, &warehouse.id) {
                    add(warehouse, &source_id, &event, &mut self.names, &mut entry.1);
                }
            }
        }
        Ok(out)
    }

    /// `source_id`'s slug (looked up once per sync).
    fn slug(&mut self, plane: &DataPlane, source_id: &str) -> Result<&str, SyncError> {
        if !self.slugs.contains_key(source_id) {
            let slug = plane
                .store
                .get::<Source>(Kind::Source, source_id)?
                .map_or_else(|| format!("source_{source_id}"), |s| s.slug);
            self.slugs.insert(source_id.to_string(), slug);
        }
        Ok(self.slugs.get(source_id).map_or("", String::as_str))
    }

    /// A source's batch planned against the catalog and encoded; `name` tells its CSV files'
    /// directory from the other batches'.
    fn plan(
        &mut self,
        mut batch: SourceBatch,
        now: i64,
        name: &str,
    ) -> Result<SourceLoad, LoadError> {
        let (plans, assumed) = self.catalog.plan(&mut batch, now);
        let encoding = match &self.encoding {
            Encoding::Csv(dir) => {
                let dir = dir.join(name);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    LoadError::Database(format!("cannot create {}: {e}", dir.display()))
                })?;
                Encoding::Csv(dir)
            }
            Encoding::Copy => Encoding::Copy,
        };
        let tables = plans
            .into_iter()
            .enumerate()
            .map(|(n, plan)| TableBatch::encode(plan, &encoding, n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SourceLoad {
            schema: batch.schema,
            assumed,
            tables,
        })
    }
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
