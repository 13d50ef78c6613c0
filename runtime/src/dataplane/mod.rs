//! The data plane: events in from the tracking API, through each source's pipeline, out to
//! destinations; durably and at least once. Stages, in the order events flow:
//!
//! - [`ingest`]: Segment's tracking API; normalises each event once into an [`event::Event`]
//!   (envelope plus JSON bytes) and appends one record per request to the ingest log;
//! - [`pipeline`]: reads the ingest log in chunks; per source, the wiring built once per
//!   configuration version ([`pipeline::wiring`]): enforce, insert functions,
//!   route, destination functions; appends what to deliver to the deliveries log;
//! - [`deliver`]: reads the deliveries log, batches per destination, sends through
//!   [`destinations`]; failures are [`parked`] (retries, dead letters) off the hot path;
//! - [`observe`]: the debugger, metrics and function logs;
//! - [`warehouse`]: connected sources' events staged by delivery, loaded on a sync interval.
//!
//! The logs are [`crate::log`]; the records they carry are [`event`]'s.

pub mod backlog;
pub mod deliver;
pub mod destinations;
pub mod event;
pub mod ingest;
pub mod lead;
pub mod net_functions;
pub mod observe;
pub mod parked;
pub mod pipeline;
pub mod warehouse;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};

use crate::log::{EventLog, LogConfig, LogError, SegmentLog};
use crate::storage::ComponentStore;
use crate::workspace::Store;
use backlog::Backlog;
use ingest::dedup::{Dedup, DedupError};
use lead::Lead;
use observe::Observe;
use parked::{Parked, ParkedError};
use pipeline::enforce::Validators;
use pipeline::wiring::Wirings;
use pipeline::workers::Workers;
use warehouse::Warehouses;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The consumer of the ingest log.
pub const PIPELINE: &str = "pipeline";
/// The consumer of the deliveries log.
pub const DELIVER: &str = "deliver";
/// The longest a tracking request waits for the pipeline to catch up (see
/// [`DataPlaneConfig::pipeline_lead`]); past it the request is stored anyway.
pub const PIPELINE_WAIT: Duration = Duration::from_secs(1);

/// Why the data plane could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A log could not open.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The parked events could not be read.
    #[error(transparent)]
    Parked(#[from] ParkedError),
    /// sled failed.
    #[error("data plane storage: {0}")]
    Storage(#[from] sled::Error),
    /// The pipeline's threads could not start.
    #[error("cannot start the pipeline's threads: {0}")]
    Threads(#[from] std::io::Error),
    /// The HTTP client for webhooks could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The deduplication journal could not be read.
    #[error(transparent)]
    Dedup(#[from] DedupError),
}

/// The data plane's knobs. Every default is what `sluice serve` runs with.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// Window in which a repeated `messageId` from the same source is dropped. Default 24 h.
    pub dedup_window: Duration,
    /// `messageId`s deduplication holds in memory (about 30 bytes each); past it the oldest
    /// are forgotten before the window ends. Default 20 million (~600 MB: a day at ~230
    /// events/s).
    pub dedup_capacity: usize,
    /// Records pending per source (not yet through the pipeline, plus deliveries not yet done)
    /// past which ingestion answers 429. Default 100,000.
    pub queue_bound: usize,
    /// Requests (ingest log records) the pipeline may be behind before a new request waits
    /// for it, up to [`PIPELINE_WAIT`]; 0 never waits. Default 48 (three of its chunks).
    pub pipeline_lead: u64,
    /// The nice value of the threads functions run on (`pipeline::workers`), so that
    /// acknowledging a request comes before the pipeline's work; 0 runs them as normal
    /// threads. Default 10.
    pub pipeline_nice: i32,
    /// The `Retry-After` sent with that 429, in seconds. Default 1.
    pub retry_after_secs: u64,
    /// First retry delay of a failed delivery; it doubles per attempt. Default 1 s.
    pub backoff_base: Duration,
    /// The longest delay between two delivery attempts. Default 10 min.
    pub backoff_max: Duration,
    /// How long a delivery is retried, counted from its first attempt, before it becomes a
    /// dead letter. Default 4 h (Segment's).
    pub max_age: Duration,
    /// Timeout of one webhook request. Default 10 s.
    pub webhook_timeout: Duration,
    /// Deliveries in flight at once, all destinations together. Default 64.
    pub delivery_concurrency: usize,
    /// Attempts of a source or destination insert function that failed with `retry-error` or
    /// a retryable engine error (a deadline) before the event is discarded. Default 5.
    pub function_attempts: u32,
    /// Size past which a `file` destination's file is rotated. Default 64 MiB.
    pub file_rotate_bytes: u64,
    /// Recent events kept per source for the debugger. Default 200.
    pub debugger_events: usize,
    /// Log lines kept per function. Default 1,000.
    pub function_log_lines: usize,
}

impl Default for DataPlaneConfig {
    fn default() -> DataPlaneConfig {
        DataPlaneConfig {
            dedup_window: Duration::from_secs(24 * 3600),
            dedup_capacity: 20_000_000,
            queue_bound: 100_000,
            pipeline_lead: 48,
            pipeline_nice: pipeline::workers::NICE,
            retry_after_secs: 1,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            max_age: Duration::from_secs(4 * 3600),
            webhook_timeout: Duration::from_secs(10),
            delivery_concurrency: 64,
            function_attempts: 5,
            file_rotate_bytes: 64 << 20,
            debugger_events: 200,
            function_log_lines: 1000,
        }
    }
}

/// The two logs between the stages.
pub struct Logs {
    /// Read by the pipeline ([`PIPELINE`]).
    pub ingest: Arc<dyn EventLog>,
    /// Read by delivery ([`DELIVER`]).
    pub deliveries: Arc<dyn EventLog>,
}

/// What the stages share. One per process.
pub struct DataPlane {
    /// The workspace's records (sources, destinations, functions...).
    pub store: Store,
    /// Function components and the engine that runs them.
    pub components: Arc<ComponentStore>,
    /// Ingested events, one record per accepted request: consumed by the pipeline.
    pub ingest_log: Arc<dyn EventLog>,
    /// What the pipeline routed, one record per processed chunk: consumed by delivery.
    pub delivery_log: Arc<dyn EventLog>,
    /// Retries, held events and dead letters.
    pub parked: Parked,
    /// `messageId`s seen per source.
    pub dedup: Dedup,
    /// Events not yet settled, per source (back-pressure).
    pub backlog: Backlog,
    /// Ingest log records not yet through the pipeline (ingestion's pacing).
    pub lead: Lead,
    /// The debugger, metrics and function logs.
    pub observe: Observe,
    /// Compiled tracking plan rules.
    pub validators: Validators,
    /// Each source's pipeline, built once per configuration version.
    pub wirings: Wirings,
    /// Settings.
    pub config: DataPlaneConfig,
    /// Woken when deliveries are parked for a retry (or replayed).
    pub retries_parked: Notify,
    /// Signalled each time the pipeline commits a chunk (ingestion waiting on its lead).
    pub pipeline_advanced: Notify,
    /// Woken when events are held for a function retry.
    pub events_held: Notify,
    /// The HTTP client webhooks are sent with (one connection pool for all).
    pub http: reqwest::Client,
    /// Where `file` destinations write (the data directory).
    pub data_dir: PathBuf,
    /// Turns true when the server shuts down, ending live streams so that it can.
    pub closing: watch::Sender<bool>,
    /// The warehouses' staging logs, sync loops and reports.
    pub warehouses: Warehouses,
    /// The low-priority threads the pipeline runs functions on.
    pub workers: Workers,
    /// Destination and source functions: the network engine and the functions running on it.
    pub functions: net_functions::NetFunctions,
}

impl DataPlane {
    /// Over the workspace `store` and `db`, with its logs under `<data_dir>/log/`.
    ///
    /// # Errors
    /// A log or the parked events cannot be opened or read.
    pub fn open(
        db: &sled::Db,
        store: Store,
        components: Arc<ComponentStore>,
        data_dir: &Path,
        config: DataPlaneConfig,
    ) -> Result<DataPlane, OpenError> {
        let log = |name: &str, consumer: &str| -> Result<Arc<dyn EventLog>, LogError> {
            let config = LogConfig {
                consumers: vec![consumer.to_string()],
                ..LogConfig::default()
            };
            Ok(Arc::new(SegmentLog::open(
                data_dir.join("log").join(name),
                config,
            )?))
        };
        let logs = Logs {
            ingest: log("ingest", PIPELINE)?,
            deliveries: log("deliveries", DELIVER)?,
        };
        DataPlane::with_logs(db, store, components, data_dir, config, logs)
    }

    /// Like [`DataPlane::open`], on the given logs (a cluster's, shared by its nodes).
    ///
    /// # Errors
    /// The parked events cannot be read.
    pub fn with_logs(
        db: &sled::Db,
        store: Store,
        components: Arc<ComponentStore>,
        data_dir: &Path,
        config: DataPlaneConfig,
        logs: Logs,
    ) -> Result<DataPlane, OpenError> {
        let (parked, pending) = Parked::open(db)?;
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .build()?;
        let workers = Workers::start(pipeline::IN_FLIGHT, config.pipeline_nice)?;
        Ok(DataPlane {
            store,
            components,
            ingest_log: logs.ingest,
            delivery_log: logs.deliveries,
            parked,
            dedup: open_dedup(db, data_dir, &config)?,
            backlog: Backlog::new(pending),
            lead: Lead::new(config.pipeline_lead > 0),
            observe: Observe::new(config.debugger_events, config.function_log_lines),
            validators: Validators::default(),
            wirings: Wirings::default(),
            config,
            retries_parked: Notify::new(),
            pipeline_advanced: Notify::new(),
            events_held: Notify::new(),
            http,
            data_dir: data_dir.to_path_buf(),
            closing: watch::channel(false).0,
            warehouses: Warehouses::open(db, data_dir)?,
            workers,
            functions: net_functions::NetFunctions::default(),
        })
    }
}

/// Deduplication's state under `<data_dir>/dedup/`. Versions before it kept the ids in sled's
/// tree `dp.dedup`, which is dropped (its ids are forgotten once, on the upgrade).
fn open_dedup(
    db: &sled::Db,
    data_dir: &Path,
    config: &DataPlaneConfig,
) -> Result<Dedup, OpenError> {
    db.drop_tree("dp.dedup")?;
    let dir = data_dir.join("dedup");
    Ok(Dedup::open(
        &dir,
        config.dedup_window,
        config.dedup_capacity,
    )?)
}

/// The running stages. [`Running::stop`] stops them and waits until they released the state
/// (what they had not finished stays queued for the next start).
pub struct Running {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Signals every stage to stop and waits for them.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the pipeline, the deliveries, their retry loops and the deduplication sweeper on
/// the current runtime.
pub fn start(plane: &Arc<DataPlane>) -> Running {
    let (shutdown, stopped) = watch::channel(false);
    let plane = plane.clone();
    let mut tasks = vec![
        tokio::spawn(pipeline::run(plane.clone(), stopped.clone())),
        tokio::spawn(pipeline::held::run(plane.clone(), stopped.clone())),
        tokio::spawn(deliver::run(plane.clone(), stopped.clone())),
        tokio::spawn(deliver::retries::run(plane.clone(), stopped.clone())),
        tokio::spawn(warehouse::run(plane.clone(), stopped.clone())),
    ];
    let mut stop = stopped;
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = plane.dedup.expire() {
                tracing::warn!(error = %e, "cannot expire deduplication entries");
            }
        }
    }));
    Running { shutdown, tasks }
}
