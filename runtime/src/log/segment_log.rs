//! [`SegmentLog`]: the log in a local directory of segment files; opening (with recovery of
//! the last segment), the state its writer and readers share, and its [`EventLog`] methods.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};

use super::consumers::{self, Consumers};
use super::segment::{self, MAX_PAYLOAD, Segment};
use super::writer::{Request, Writer};
use super::{
    Appended, Bytes, EventLog, LogConfig, LogError, LogFuture, LogStats, Record, io_error, reader,
};

/// A durable log in one directory of segment files (format and guarantees: the module's
/// header).
///
/// One per directory and process: a second [`SegmentLog::open`] of the same directory fails
/// with [`LogError::Locked`] while this one lives. Share it with `Arc` (or as
/// `Arc<dyn EventLog>`). Each retained segment keeps one file descriptor open. Dropping it
/// blocks until the writer has written the appends already queued (usually one group's
/// write and sync; at most [`LogConfig::queue_depth`] appends).
pub struct SegmentLog {
    shared: Arc<Shared>,
    /// Appends to the writer thread; taken on drop so the writer ends.
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    /// Holds the directory's `flock` for as long as the log is open.
    _lock: File,
}

/// What the writer thread, readers and consumers share.
pub(super) struct Shared {
    pub dir: PathBuf,
    /// Retained segments by start position; the last one is the writer's.
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    /// The durable end, published after each sync; waiters subscribe to it.
    pub tail: watch::Sender<Tail>,
    pub counters: Counters,
    pub consumers: Consumers,
}

/// The durable end of the log and whether more can come.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tail {
    pub end: u64,
    /// False once the writer stopped.
    pub open: bool,
}

/// [`LogStats`], updated by the writer and by deletions.
#[derive(Default)]
pub(super) struct Counters {
    pub syncs: AtomicU64,
    pub appends: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub segments_deleted: AtomicU64,
}

impl Shared {
    /// The segments, for reading (a poisoned lock is still consistent: every change to the
    /// map is a single insert or remove).
    pub fn segments(&self) -> RwLockReadGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        self.segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The segments, for adding or removing one.
    pub fn segments_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        self.segments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The durable end.
    pub fn end(&self) -> u64 {
        self.tail.borrow().end
    }

    /// The first retained position (there is always at least the active segment).
    pub fn first(&self) -> u64 {
        self.segments().keys().next().copied().unwrap_or(0)
    }

    /// The segment holding `position` and where its readable bytes stop (its end if sealed,
    /// else `end`).
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] if `position` is before the first retained segment or past
    /// `end`.
    pub fn locate(&self, position: u64, end: u64) -> Result<(Arc<Segment>, u64), LogError> {
        let segments = self.segments();
        let first = segments.keys().next().copied().unwrap_or(0);
        let out_of_range = LogError::OutOfRange {
            position,
            first,
            end,
        };
        if position < first || position > end {
            return Err(out_of_range);
        }
        let Some((_, segment)) = segments.range(..=position).next_back() else {
            return Err(out_of_range);
        };
        let limit = segments
            .range(position + 1..)
            .next()
            .map_or(end, |(next, _)| (*next).min(end));
        Ok((segment.clone(), limit))
    }
}

impl SegmentLog {
    /// Opens the log in `dir` (created if missing): lists the segments, checks that each
    /// sealed one ends where the next starts (one `stat` each), scans the last one and
    /// truncates a torn or corrupt tail, loads the consumers' positions, deletes segments they
    /// have all passed, and starts the writer thread.
    ///
    /// Cost: a CRC scan of the last segment (at most about [`LogConfig::segment_bytes`]);
    /// sealed segments are not read.
    ///
    /// # Errors
    /// [`LogError::Locked`] if the log is open elsewhere; [`LogError::Gap`] if a sealed
    /// segment's length does not match the next one's start; [`LogError::InvalidConsumer`];
    /// [`LogError::Io`].
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<SegmentLog, LogError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let lock = lock(&dir)?;
        let (segments, active, end) = recover(&dir)?;
        let first = segments.keys().next().copied().unwrap_or(0);
        let consumers = Consumers::load(&dir, &config.consumers, first, end)?;
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            segments: RwLock::new(segments),
            tail: watch::Sender::new(Tail { end, open: true }),
            counters: Counters::default(),
            consumers,
        });
        consumers::trim_passed(&shared)?;
        let (requests, queue) = mpsc::channel(config.queue_depth.max(1));
        let writer = Writer::new(shared.clone(), queue, active, end, &config);
        let writer = std::thread::Builder::new()
            .name("sluice-log-writer".into())
            .spawn(move || writer.run())
            .map_err(io_error(&dir))?;
        Ok(SegmentLog {
            shared,
            requests: Some(requests),
            writer: Some(writer),
            _lock: lock,
        })
    }

    /// [`EventLog::read`] on the calling thread: blocking file I/O, for callers already on a
    /// blocking thread (the async method wraps this in `spawn_blocking`).
    ///
    /// # Errors
    /// As [`EventLog::read`].
    pub fn read_blocking(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, LogError> {
        reader::read(&self.shared, from, max_records, max_bytes)
    }

    /// [`EventLog::commit`] on the calling thread (blocking file I/O).
    ///
    /// # Errors
    /// As [`EventLog::commit`].
    pub fn commit_blocking(&self, consumer: &str, position: u64) -> Result<(), LogError> {
        consumers::commit(&self.shared, consumer, position)
    }

    /// Counters since open (atomic loads).
    pub fn stats(&self) -> LogStats {
        let c = &self.shared.counters;
        LogStats {
            syncs: c.syncs.load(Ordering::Relaxed),
            appends: c.appends.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            segments_deleted: c.segments_deleted.load(Ordering::Relaxed),
        }
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued and end.
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            // A panicked writer has already answered nothing more; nothing to do about it here.
            let _ = writer.join();
        }
    }
}

impl EventLog for SegmentLog {
    fn append(&self, records: Vec<Bytes>) -> LogFuture<'_, Appended> {
        Box::pin(async move {
            if let Some(big) = records.iter().find(|r| r.len() > MAX_PAYLOAD) {
                return Err(LogError::TooLarge {
                    len: big.len(),
                    max: MAX_PAYLOAD,
                });
            }
            if records.is_empty() {
                return Ok(Appended {
                    positions: Vec::new(),
                    next: self.shared.end(),
                });
            }
            let requests = self.requests.as_ref().ok_or(LogError::Closed)?;
            let (reply, answer) = oneshot::channel();
            requests
                .send(Request { records, reply })
                .await
                .map_err(|_| LogError::Closed)?;
            answer.await.map_err(|_| LogError::Closed)?
        })
    }

    fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> LogFuture<'_, Vec<Record>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || reader::read(&shared, from, max_records, max_bytes))
                .await
                // The task panicked or the runtime is shutting down: the log cannot answer.
                .map_err(|_| LogError::Closed)?
        })
    }

    fn first(&self) -> u64 {
        self.shared.first()
    }

    fn end(&self) -> u64 {
        self.shared.end()
    }

    fn wait_beyond(&self, position: u64) -> LogFuture<'_, u64> {
        let mut tail = self.shared.tail.subscribe();
        Box::pin(async move {
            let now = *tail
                .wait_for(|t| t.end > position || !t.open)
                .await
                .map_err(|_| LogError::Closed)?;
            if now.end > position {
                Ok(now.end)
            } else {
                Err(LogError::Closed)
            }
        })
    }

    fn commit<'a>(&'a self, consumer: &'a str, position: u64) -> LogFuture<'a, ()> {
        let shared = self.shared.clone();
        let consumer = consumer.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || consumers::commit(&shared, &consumer, position))
                .await
                .map_err(|_| LogError::Closed)?
        })
    }

    fn position(&self, consumer: &str) -> Result<u64, LogError> {
        self.shared.consumers.position(consumer)
    }
}

/// Takes the directory's lock file, exclusively, without waiting.
fn lock(dir: &Path) -> Result<File, LogError> {
    let path = dir.join("lock");
    let file = File::create(&path).map_err(io_error(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error(&path)(e)),
    }
}

/// The retained segments by start, the active (last) one, and the durable end.
type Recovered = (BTreeMap<u64, Arc<Segment>>, Arc<Segment>, u64);

/// Opens every segment in `dir` (creating the first if there is none): sealed segments must
/// end where the next starts; the last is scanned and cut after its last valid record.
fn recover(dir: &Path) -> Result<Recovered, LogError> {
    let mut starts = segment::list(dir)?;
    let Some(last) = starts.pop() else {
        let first = Arc::new(Segment::open(dir, 0, true)?);
        segment::sync_dir(dir)?;
        return Ok((BTreeMap::from([(0, first.clone())]), first, 0));
    };
    let mut segments = BTreeMap::new();
    for (i, &start) in starts.iter().enumerate() {
        let segment = Segment::open(dir, start, false)?;
        let next = starts.get(i + 1).copied().unwrap_or(last);
        let ends = start + segment.len()?;
        if ends != next {
            return Err(LogError::Gap {
                path: segment.path,
                ends,
                next,
            });
        }
        segments.insert(start, Arc::new(segment));
    }
    let active = Arc::new(Segment::open(dir, last, false)?);
    let end = last + cut_tail(&active)?;
    segments.insert(last, active.clone());
    Ok((segments, active, end))
}

/// Truncates `segment` after its last valid record (synced, so a later crash cannot bring
/// the tail back) and returns its valid length.
fn cut_tail(segment: &Segment) -> Result<u64, LogError> {
    let valid = segment::scan(segment)?;
    let len = segment.len()?;
    if valid < len {
        tracing::warn!(
            path = %segment.path.display(),
            valid,
            dropped = len - valid,
            "log: truncating a torn or corrupt tail"
        );
        segment
            .file
            .set_len(valid)
            .and_then(|()| segment.file.sync_all())
            .map_err(io_error(&segment.path))?;
    }
    Ok(valid)
}
