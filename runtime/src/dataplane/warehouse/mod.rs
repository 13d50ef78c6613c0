//! Warehouses: connected sources' events loaded into Segment's relational schema, in
//! PostgreSQL or an embedded DuckDB file. A warehouse is fed like a destination: the
//! pipeline's wiring gives each source a route per connected warehouse whose sink is a
//! [`stage::Stager`] (delivery appends the events to the warehouse's staging log under
//! `<data>/warehouses/<id>/staging/`, with delivery's retries and dead letters). A sync loop
//! per warehouse ([`sync`]) reads that log every sync interval in chunks ([`chunk`]),
//! flattens the events ([`flatten`], [`naming`], [`types`]), plans them against the tables
//! it read when it started ([`catalog`], [`plan`]), encodes them for the database's bulk
//! path ([`columnar`], [`copy`]), loads them in one transaction per source ([`duck`],
//! [`postgres`], through [`sql`]) and commits its staging position only after the load
//! committed, so a crash replays the load and the dedup on `id` makes it harmless.
//!
//! - [`report`]: the sync reports and the tables each source has loaded.
//! - [`tls`]: TLS to PostgreSQL, by `sslmode`.

pub mod catalog;
pub mod chunk;
pub mod columnar;
pub mod copy;
pub mod duck;
pub mod flatten;
pub mod link;
pub mod load;
pub mod naming;
pub mod plan;
pub mod planner;
pub mod postgres;
pub mod report;
pub mod sql;
pub mod stage;
pub mod sync;
pub mod tls;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::pipeline::workers::{WorkerLost, Workers};
use super::{DataPlane, OpenError};
use crate::log::{LogConfig, LogError, SegmentLog};
use crate::workspace::{Kind, StoreError, Warehouse};
use load::LoadError;
use report::{Reports, SyncReport};

/// The staging log's consumer: the sync loop.
pub const CONSUMER: &str = "sync";

/// What the API asks of a warehouse's sync loop.
pub enum Command {
    /// Sync now; answers with the reports.
    Sync(oneshot::Sender<Result<Vec<SyncReport>, SyncError>>),
    /// Connect and answer whether that worked.
    Check(oneshot::Sender<Result<(), LoadError>>),
}

/// Why a sync (or a check) could not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The staging log failed.
    #[error("the staging log: {0}")]
    Log(#[from] LogError),
    /// A staging record does not decode.
    #[error(transparent)]
    Malformed(#[from] stage::Malformed),
    /// The workspace could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The reports could not be written.
    #[error("the sync reports: {0}")]
    Reports(#[from] sled::Error),
    /// The warehouse is disabled.
    #[error(
        "warehouse `{0}` is disabled: enable it (PATCH /warehouses/{0} {{\"enabled\": true}}) to sync"
    )]
    Disabled(String),
    /// The warehouse was deleted.
    #[error("warehouse `{0}` not found")]
    Gone(String),
    /// The server is stopping (or its data plane is not running).
    #[error("the data plane is not running")]
    Stopped,
    /// Flattening a chunk failed on its thread (a panic); nothing was loaded.
    #[error("flattening the staged events failed: {0}")]
    Flatten(#[from] WorkerLost),
}

/// The warehouses' shared state: their staging logs (each opened once: a log is locked by the
/// handle that opened it), their sync loops' inboxes, and the reports.
pub struct Warehouses {
    dir: PathBuf,
    logs: Mutex<HashMap<String, Arc<SegmentLog>>>,
    loops: Mutex<HashMap<String, mpsc::Sender<Command>>>,
    stop: Mutex<Option<watch::Receiver<bool>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Sync reports and loaded collections.
    pub reports: Reports,
    /// The threads syncs flatten and load on (DuckDB's own threads start from them).
    pub workers: Workers,
}

/// The nice value of the sync threads ([`Warehouses::workers`]): the lowest, below the
/// pipeline's function threads ([`super::pipeline::workers::NICE`]), so that a sync (minutes of
/// CPU, never urgent) takes only the CPU that ingestion, the pipeline and the deliveries leave,
/// and they are not slowed while it runs (BENCHMARKS.md, issue 15).
pub const SYNC_NICE: i32 = 19;

/// Sync threads: a load and the next chunk's flattening (or planning) in parts at once, for
/// two warehouses.
const SYNC_THREADS: usize = 2 * (1 + chunk::MAX_PARTS);

impl Warehouses {
    /// Over `<data_dir>/warehouses/` and the reports' trees in `db`.
    ///
    /// # Errors
    /// sled cannot open a tree, or the sync threads cannot start.
    pub fn open(db: &sled::Db, data_dir: &Path) -> Result<Warehouses, OpenError> {
        Ok(Warehouses {
            workers: Workers::named("sluice-warehouse", SYNC_THREADS, SYNC_NICE)?,
            dir: data_dir.join("warehouses"),
            logs: Mutex::new(HashMap::new()),
            loops: Mutex::new(HashMap::new()),
            stop: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            reports: Reports::open(db)?,
        })
    }

    /// `id`'s staging log, opened at first use (blocking: opening scans the last segment).
    ///
    /// # Errors
    /// The log cannot open.
    pub fn staging(&self, id: &str) -> Result<Arc<SegmentLog>, LogError> {
        let mut logs = self.logs.lock().map_err(|_| LogError::Closed)?;
        if let Some(log) = logs.get(id) {
            return Ok(log.clone());
        }
        let config = LogConfig {
            consumers: vec![CONSUMER.to_string()],
            ..LogConfig::default()
        };
        let log = Arc::new(SegmentLog::open(self.dir.join(id).join("staging"), config)?);
        logs.insert(id.to_string(), log.clone());
        Ok(log)
    }

    /// The DuckDB file of embedded warehouse `id`.
    pub fn file(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("warehouse.duckdb")
    }

    fn inbox(&self, id: &str) -> Option<mpsc::Sender<Command>> {
        let loops = self.loops.lock().ok()?;
        loops.get(id).filter(|tx| !tx.is_closed()).cloned()
    }
}

/// `id`'s sync loop, started if it is not running.
fn ensure(plane: &Arc<DataPlane>, id: &str) -> Result<mpsc::Sender<Command>, SyncError> {
    if let Some(tx) = plane.warehouses.inbox(id) {
        return Ok(tx);
    }
    let stop = plane
        .warehouses
        .stop
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .ok_or(SyncError::Stopped)?;
    let (tx, rx) = mpsc::channel(8);
    let mut loops = plane
        .warehouses
        .loops
        .lock()
        .map_err(|_| SyncError::Stopped)?;
    if let Some(running) = loops.get(id).filter(|t| !t.is_closed()) {
        return Ok(running.clone());
    }
    loops.insert(id.to_string(), tx.clone());
    let task = tokio::spawn(sync::run(plane.clone(), id.to_string(), rx, stop));
    if let Ok(mut tasks) = plane.warehouses.tasks.lock() {
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
    Ok(tx)
}

/// Syncs warehouse `id` now (after the sync in progress, if any), answering with its reports.
///
/// # Errors
/// [`SyncError`]: disabled, deleted, the data plane stopping, the staging log failing.
pub async fn sync_now(plane: &Arc<DataPlane>, id: &str) -> Result<Vec<SyncReport>, SyncError> {
    let (reply, answer) = oneshot::channel();
    ensure(plane, id)?
        .send(Command::Sync(reply))
        .await
        .map_err(|_| SyncError::Stopped)?;
    answer.await.map_err(|_| SyncError::Stopped)?
}

/// Connects to warehouse `id` (between syncs, so never beside a load of the same file).
///
/// # Errors
/// The outer error when the loop cannot be reached; the inner one is the database's.
pub async fn check(plane: &Arc<DataPlane>, id: &str) -> Result<Result<(), LoadError>, SyncError> {
    let (reply, answer) = oneshot::channel();
    ensure(plane, id)?
        .send(Command::Check(reply))
        .await
        .map_err(|_| SyncError::Stopped)?;
    answer.await.map_err(|_| SyncError::Stopped)
}

/// Keeps one sync loop per warehouse until `stop` turns true: started for each stored
/// warehouse every second (a loop ends on its own once its warehouse is deleted). On stop it
/// waits for the loops (a load in progress finishes) so that the state is released.
pub async fn run(plane: Arc<DataPlane>, mut stop: watch::Receiver<bool>) {
    if let Ok(mut slot) = plane.warehouses.stop.lock() {
        *slot = Some(stop.clone());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match plane.store.list::<Warehouse>(Kind::Warehouse, "") {
            Ok(all) => {
                for w in all {
                    if let Err(e) = ensure(&plane, &w.id) {
                        tracing::warn!(warehouse = %w.id, error = %e, "cannot start its sync loop");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list warehouses"),
        }
    }
    if let Ok(mut slot) = plane.warehouses.stop.lock() {
        *slot = None;
    }
    let tasks: Vec<_> = plane
        .warehouses
        .tasks
        .lock()
        .map(|mut t| t.drain(..).collect())
        .unwrap_or_default();
    for task in tasks {
        let _ = task.await;
    }
}
