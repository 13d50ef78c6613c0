//! The append-only durable log that carries events between the data plane's stages.
//!
//! # Design constraints
//! - **Durable before acknowledged.** [`EventLog::append`] resolves only after an
//!   `fdatasync` that covers its records. One writer thread takes every append queued at that
//!   moment, writes them with one `write`, calls `sync_data` once and answers them all: concurrent
//!   appends share one sync (group commit).
//! - **Only durable records are read.** A reader never sees bytes that a sync did not cover, so
//!   nothing read can later vanish in a crash.
//! - **A crash never yields garbage.** Every record carries a CRC; at open the active (last)
//!   segment is scanned and a torn or corrupt tail is truncated at the last whole record. Sealed
//!   segments were synced before the next one was created, so they are trusted at open (not
//!   scanned: reopening ~1 GB must take well under 2 s) but every read checks the CRC and
//!   returns [`LogError::Corrupt`] rather than bad bytes.
//! - **At least once.** Consumers commit the position they have processed up to; a commit lost
//!   in a crash replays records, never skips them. A segment is deleted only when every
//!   registered consumer has committed past its end, and those commits are synced first.
//!
//! # On-disk format
//! A log is one directory:
//!
//! | file | content |
//! |---|---|
//! | `<start>.log` | a segment: records back to back; `<start>` is its first position, 20 decimal digits, zero-padded |
//! | `<consumer>.consumer` | a consumer's committed position: u64 LE, then the CRC32 of those 8 bytes, u32 LE |
//! | `<consumer>.consumer.tmp` | a commit being written (renamed over the `.consumer` file when complete) |
//! | `lock` | held with an exclusive `flock` while the log is open (one process at a time) |
//!
//! Positions are global byte positions, like a WAL's LSN: a record at position `P` lives in the
//! segment with the greatest start `<= P`, at file offset `P - start`, so reading from a position
//! needs no index. A segment starts where the previous one ended. A record is a frame:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | payload length `n`, u32 LE |
//! | 4 | CRC32 (IEEE, as `crc32fast`) of the 4 length bytes then the payload, u32 LE |
//! | `n` | the payload |
//!
//! The CRC covers the length, so a run of zeros (a file extended but never written) is not a
//! valid empty record. The writer moves to a new segment when the next group of appends would
//! take the active one past [`LogConfig::segment_bytes`]; an append (and so a record) is never
//! split across segments. There is no per-file header: a future format would use another file
//! extension.
//!
//! # Where the costs are
//! An append costs a copy of its bytes into the writer's buffer, a CRC over them, and a share
//! of one `write` and one `fdatasync` (the disk's latency is the floor: `cargo bench -p
//! sluice-tests --bench log` measures both). A read costs one `pread` per segment it touches
//! and a CRC over what it returns. Opening costs one `stat` per segment and a CRC scan of the
//! last segment only (at most [`LogConfig::segment_bytes`], or one larger group). Each retained
//! segment keeps a file descriptor open.

mod consumers;
mod jetstream;
mod reader;
mod segment;
mod segment_log;
mod writer;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// Cheaply cloneable, shared bytes: what records are made of (re-exported so callers need not
/// depend on `bytes` themselves).
pub use bytes::Bytes;
pub use jetstream::JetStreamLog;
pub use segment_log::SegmentLog;

/// The future a [`EventLog`] method returns (boxed, so the trait stays dyn-compatible).
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LogError>> + Send + 'a>>;

/// A durable, ordered log of records with named consumers: what the data plane's stages read
/// and write. [`SegmentLog`] keeps it in local files; [`JetStreamLog`] on a NATS JetStream
/// stream shared by the nodes of a cluster.
///
/// Positions are opaque, increasing `u64`s: continue reading from [`Record::next`] and commit
/// it; do not compute positions. On [`JetStreamLog`] they are the reading node's own (the
/// records it fetched, numbered from 0 at each start), and an [`Appended`]'s positions are
/// stream sequences, not positions to read from.
pub trait EventLog: Send + Sync {
    /// Appends `records` in order; resolves once they are durable, with their positions.
    ///
    /// Cost ([`SegmentLog`]): a copy of the records into the writer's buffer and a share of one
    /// `write` and one `fdatasync` with every append queued at the same time. If the future is
    /// dropped after it was first polled, the records may still be written (at least once).
    ///
    /// # Errors
    /// [`LogError::TooLarge`] for a record above the frame's limit (nothing is written);
    /// [`LogError::Io`] if the write or sync failed (the log then closes: reopen to recover);
    /// [`LogError::Closed`] if the log is closed.
    fn append(&self, records: Vec<Bytes>) -> LogFuture<'_, Appended>;

    /// Up to `max_records` durable records from position `from` (a position a record starts
    /// at: [`EventLog::first`], a [`Record::next`], an [`Appended`] position or a committed
    /// one), oldest first. `max_bytes` bounds the bytes read (frames included) but the first
    /// record is always returned whole. Empty when `from` is [`EventLog::end`]; wait with
    /// [`EventLog::wait_beyond`].
    ///
    /// Cost ([`SegmentLog`]): one `pread` per segment touched, on a blocking thread
    /// (`spawn_blocking`), and a CRC over the records returned; payloads share the buffer read.
    ///
    /// # Errors
    /// [`LogError::OutOfRange`] if `from` is before the first retained record (its segment
    /// was deleted) or after the end; [`LogError::Corrupt`] if a record fails its CRC (or
    /// `from` is not where a record starts); [`LogError::Io`].
    fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> LogFuture<'_, Vec<Record>>;

    /// The position of the oldest retained record. Cost: a read lock.
    fn first(&self) -> u64;

    /// The position after the last durable record (where the next append goes). Cost: a read
    /// lock.
    fn end(&self) -> u64;

    /// Resolves once the durable end is past `position`, with the new end: how a consumer
    /// that has read everything waits for more without polling. Cost: none while waiting; the
    /// writer wakes waiters once per sync.
    ///
    /// # Errors
    /// [`LogError::Closed`] when the log closes first (dropped, or its writer failed).
    fn wait_beyond(&self, position: u64) -> LogFuture<'_, u64>;

    /// Records that `consumer` has processed every record before `position`. Exactly
    /// `position` is stored (a lost commit replays records; never one beyond it). Moving back
    /// is allowed, within the retained records.
    ///
    /// Cost ([`SegmentLog`]): a small file written and renamed, not synced, on a blocking
    /// thread; when this commit lets segments go, the consumer files and the directory are
    /// synced and the segments deleted (once per segment).
    ///
    /// # Errors
    /// [`LogError::UnknownConsumer`]; [`LogError::OutOfRange`] if `position` is not within
    /// [`EventLog::first`]`..=`[`EventLog::end`]; [`LogError::Io`].
    fn commit<'a>(&'a self, consumer: &'a str, position: u64) -> LogFuture<'a, ()>;

    /// The position `consumer` committed last ([`EventLog::first`] if it never committed, or
    /// if what it committed was deleted). Cost: a mutex.
    ///
    /// # Errors
    /// [`LogError::UnknownConsumer`].
    fn position(&self, consumer: &str) -> Result<u64, LogError>;

    /// The largest record [`EventLog::append`] takes: writers with more to say split it into
    /// several records. Cost: none.
    fn max_record(&self) -> usize {
        segment::MAX_PAYLOAD
    }
}

/// One record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it starts.
    pub position: u64,
    /// Where the next record starts: read on from here, and commit this once it is processed.
    pub next: u64,
    /// What was appended.
    pub payload: Bytes,
}

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Each record's position, in the order given.
    pub positions: Vec<u64>,
    /// The position after the last of them.
    pub next: u64,
}

/// How a [`SegmentLog`] is laid out and who consumes it.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A segment is closed and a new one started when the next group would take it past this
    /// size (a single group larger than this gets a segment of its own). Also bounds the scan
    /// at open. Default 64 MiB.
    pub segment_bytes: u64,
    /// The writer stops adding queued appends to a group once it holds this many bytes (the
    /// append that crosses it is included whole). Default 8 MiB.
    pub max_group_bytes: usize,
    /// Appends queued for the writer before [`EventLog::append`] waits for room
    /// (back-pressure). Default 1024.
    pub queue_depth: usize,
    /// The consumers whose commits decide when a segment may be deleted: names of letters,
    /// digits, `-`, `_` and `.`. With none, nothing is ever deleted. Default none.
    pub consumers: Vec<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 << 20,
            max_group_bytes: 8 << 20,
            queue_depth: 1024,
            consumers: Vec::new(),
        }
    }
}

/// Counters of a [`SegmentLog`] since it was opened: how well group commit is grouping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// `fdatasync` calls made by the writer (one per group).
    pub syncs: u64,
    /// Appends made durable.
    pub appends: u64,
    /// Records made durable.
    pub records: u64,
    /// Bytes written, frames included.
    pub bytes: u64,
    /// Segments deleted because every consumer had passed them.
    pub segments_deleted: u64,
}

/// Why the log could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("log file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said (shared: one failed sync fails every append of its group).
        #[source]
        source: Arc<io::Error>,
    },
    /// A record failed its CRC or its frame runs past its segment.
    #[error("corrupt record at position {position} in {path}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the record starts.
        position: u64,
    },
    /// A position before the first retained record or after the end.
    #[error("position {position} is outside the log, which holds {first}..{end}")]
    OutOfRange {
        /// The position asked for.
        position: u64,
        /// The first retained position.
        first: u64,
        /// The durable end.
        end: u64,
    },
    /// A sealed segment does not end where the next one starts (a file was changed by hand).
    #[error("segment {path} ends at position {ends}, but the next segment starts at {next}")]
    Gap {
        /// The segment.
        path: PathBuf,
        /// Where its bytes end.
        ends: u64,
        /// Where the next segment starts.
        next: u64,
    },
    /// A record longer than a frame can hold.
    #[error("a record of {len} bytes is over the log's limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A consumer name that was not registered in [`LogConfig::consumers`].
    #[error("unknown log consumer {0:?}")]
    UnknownConsumer(String),
    /// A consumer name that cannot be a file name.
    #[error("invalid log consumer name {0:?}: use letters, digits, '-', '_' and '.'")]
    InvalidConsumer(String),
    /// Another process (or another handle in this one) has the log open.
    #[error("the log at {0} is already open")]
    Locked(PathBuf),
    /// The log was closed, or its writer stopped after an I/O error.
    #[error("the log is closed")]
    Closed,
    /// The cluster's log (NATS JetStream) cannot be reached now; retry later.
    #[error("the cluster's event log is unavailable: {0}")]
    Unavailable(String),
}

/// Maps an I/O error on `path` to [`LogError::Io`].
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source: Arc::new(source),
    }
}
