//! The writer thread: group commit. It takes every append queued, writes their frames with one
//! `write` at the end of the active segment, calls `fdatasync` once, publishes the new durable
//! end and answers every append of the group.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::segment::{self, Segment, encode, frame_len, write_all_at};
use super::segment_log::Shared;
use super::{Appended, Bytes, LogConfig, LogError, io_error};

/// One append waiting for the writer.
pub(super) struct Request {
    pub records: Vec<Bytes>,
    pub reply: oneshot::Sender<Result<Appended, LogError>>,
}

impl Request {
    /// The bytes its frames take.
    fn len(&self) -> u64 {
        self.records.iter().map(|r| frame_len(r)).sum()
    }
}

/// The writer's state; lives on its own thread (see [`Writer::run`]).
pub(super) struct Writer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<Request>,
    /// The segment appended to (the last one).
    active: Arc<Segment>,
    /// Its durable length.
    len: u64,
    segment_bytes: u64,
    max_group_bytes: u64,
    /// A group's frames, reused.
    buf: Vec<u8>,
}

/// Marks the log closed when the writer ends, however it ends (a panic included), so that
/// waiters stop waiting.
struct Closing(Arc<Shared>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.tail.send_modify(|t| t.open = false);
    }
}

impl Writer {
    /// A writer appending to `active`, whose durable data ends at log position `end`.
    pub fn new(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<Request>,
        active: Arc<Segment>,
        end: u64,
        config: &LogConfig,
    ) -> Writer {
        Writer {
            shared,
            requests,
            len: end - active.start,
            active,
            segment_bytes: config.segment_bytes,
            max_group_bytes: config.max_group_bytes as u64,
            buf: Vec::new(),
        }
    }

    /// Serves groups until every sender is gone (the log was dropped) or a write or sync
    /// fails: after a failure the file's state past the durable end is unknown, so the writer
    /// stops and appends fail with [`LogError::Closed`] until the log is reopened (which cuts
    /// whatever was half written).
    pub fn run(mut self) {
        let _closing = Closing(self.shared.clone());
        while let Some(first) = self.requests.blocking_recv() {
            let group = self.gather(first);
            match self.commit(&group) {
                Ok(answers) => {
                    for (request, answer) in group.into_iter().zip(answers) {
                        // An append whose caller went away is durable all the same.
                        let _ = request.reply.send(Ok(answer));
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "log: write failed; the log is closed until reopened");
                    for request in group {
                        let _ = request.reply.send(Err(error.clone()));
                    }
                    return;
                }
            }
        }
    }

    /// `first` and whatever else is queued, up to about `max_group_bytes`.
    fn gather(&mut self, first: Request) -> Vec<Request> {
        let mut bytes = first.len();
        let mut group = vec![first];
        while bytes < self.max_group_bytes {
            match self.requests.try_recv() {
                Ok(request) => {
                    bytes += request.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        group
    }

    /// Writes and syncs `group`, moving to a new segment first if it would not fit; returns
    /// each request's answer.
    fn commit(&mut self, group: &[Request]) -> Result<Vec<Appended>, LogError> {
        let total: u64 = group.iter().map(Request::len).sum();
        if self.len > 0 && self.len + total > self.segment_bytes {
            self.rotate()?;
        }
        let buf = &mut self.buf;
        buf.clear();
        let mut position = self.active.start + self.len;
        let answers: Vec<Appended> = group
            .iter()
            .map(|request| {
                let positions = request
                    .records
                    .iter()
                    .map(|record| {
                        let at = position;
                        encode(buf, record);
                        position += frame_len(record);
                        at
                    })
                    .collect();
                Appended {
                    positions,
                    next: position,
                }
            })
            .collect();
        let file = &self.active.file;
        write_all_at(file, buf, self.len)
            .and_then(|()| file.sync_data())
            .map_err(io_error(&self.active.path))?;
        self.len += total;
        self.count(group, total);
        self.shared.tail.send_modify(|t| t.end = position);
        if self.buf.capacity() as u64 > 2 * self.max_group_bytes.max(1 << 20) {
            // One huge append should not pin its buffer for the life of the log.
            self.buf = Vec::new();
        }
        Ok(answers)
    }

    fn count(&self, group: &[Request], bytes: u64) {
        let c = &self.shared.counters;
        c.syncs.fetch_add(1, Ordering::Relaxed);
        c.appends.fetch_add(group.len() as u64, Ordering::Relaxed);
        let records: usize = group.iter().map(|r| r.records.len()).sum();
        c.records.fetch_add(records as u64, Ordering::Relaxed);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Starts a new segment where the active one ends. The active one's records are all
    /// synced, so it is sealed; the new file's directory entry is synced before any record
    /// goes into it.
    fn rotate(&mut self) -> Result<(), LogError> {
        let start = self.active.start + self.len;
        let next = Arc::new(Segment::open(&self.shared.dir, start, true)?);
        segment::sync_dir(&self.shared.dir)?;
        self.shared.segments_mut().insert(start, next.clone());
        self.active = next;
        self.len = 0;
        Ok(())
    }
}
