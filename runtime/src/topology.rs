//! Wires the data plane's stages together: its settings, the handle every stage shares, and
//! the tasks that run the pipeline and the deliveries (started by [`crate::api::run`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::api::AppState;
use crate::observe::Observe;
use crate::pipeline::enforce::Validators;
use crate::queue::Queue;

/// The data plane's knobs. Every default is what `sluice serve` runs with.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// Window in which a repeated `messageId` from the same source is dropped. Default 24 h.
    pub dedup_window: Duration,
    /// Records pending per source (not yet through the pipeline, plus deliveries not yet done)
    /// past which ingestion answers 429. Default 100,000.
    pub queue_bound: usize,
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
            queue_bound: 100_000,
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

/// What the stages share. One per process; cheap to clone through its `Arc`.
pub struct DataPlane {
    /// The durable queues.
    pub queue: Queue,
    /// The debugger, metrics and function logs.
    pub observe: Observe,
    /// Compiled tracking plan rules.
    pub validators: Validators,
    /// Settings.
    pub config: DataPlaneConfig,
    /// Woken when events are ingested.
    pub ingested: Notify,
    /// Woken when deliveries are queued.
    pub queued: Notify,
    /// Where `file` destinations write (the data directory).
    pub data_dir: std::path::PathBuf,
    /// Turns true when the server shuts down, ending live streams so that it can.
    pub closing: watch::Sender<bool>,
}

impl DataPlane {
    /// Over `db`, with `config`.
    ///
    /// # Errors
    /// The queue's trees cannot be opened or read.
    pub fn open(
        db: &sled::Db,
        data_dir: &std::path::Path,
        config: DataPlaneConfig,
    ) -> Result<DataPlane, crate::queue::QueueError> {
        Ok(DataPlane {
            queue: Queue::open(db)?,
            observe: Observe::new(config.debugger_events, config.function_log_lines),
            validators: Validators::default(),
            config,
            ingested: Notify::new(),
            queued: Notify::new(),
            data_dir: data_dir.to_path_buf(),
            closing: watch::channel(false).0,
        })
    }
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

/// Starts the pipeline, the deliveries and the deduplication sweeper on the current runtime.
pub fn start(state: &AppState) -> Running {
    let (shutdown, stopped) = watch::channel(false);
    let plane: Arc<DataPlane> = state.data_plane.clone();
    let mut tasks = vec![
        tokio::spawn(crate::pipeline::run(state.clone(), stopped.clone())),
        tokio::spawn(crate::deliver::run(state.clone(), stopped.clone())),
    ];
    let mut stop = stopped;
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = plane.queue.expire_dedup(plane.config.dedup_window) {
                tracing::warn!(error = %e, "cannot expire deduplication entries");
            }
        }
    }));
    Running { shutdown, tasks }
}
