//! Deduplication on `messageId` per source within a window (Segment's is 24 hours): the ids
//! seen are kept in memory ([`window`]) and appended to a journal ([`journal`]) that a restart
//! reads back.
//!
//! An id is the first 128 bits of a keyed BLAKE3 hash of the source id and the `messageId`
//! (16 bytes, whatever the `messageId`'s length), under a random key kept in the journal's
//! directory, so that nobody can choose `messageId`s that collide with another's: two different
//! events share an id with a probability of about 2^-128 per pair, never in practice.
//!
//! A request's ids are claimed in memory before its record is appended to the ingest log
//! (a concurrent request with the same `messageId` is then a duplicate), written to the
//! journal once the record is stored ([`Dedup::commit`]), and released if it is not
//! ([`Dedup::forget`]), so that the client's retry is not dropped.

mod journal;
mod window;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use journal::Journal;
use window::Window;

use crate::dataplane::event::Event;
use crate::dataplane::now_ms;

/// An event's identity for deduplication: a hash of its source and `messageId`.
type Id = u128;

/// Why deduplication's state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("deduplication state at {path}: {source}")]
pub struct DedupError {
    path: PathBuf,
    source: io::Error,
}

/// The `messageId`s seen within the window. Checking a request costs a hash and at most nine
/// hash-set lookups per event under one short lock; memory is about 30 bytes per id held.
pub struct Dedup {
    key: [u8; 32],
    dir: PathBuf,
    /// Zero turns deduplication off.
    window_ms: u64,
    window: Mutex<Window>,
    journal: Mutex<Journal>,
}

/// What [`Dedup::fresh`] recorded for one request: to [`Dedup::commit`] once its record is
/// stored, or to [`Dedup::forget`] if it is not.
pub struct Claim {
    start: u64,
    ids: Vec<Id>,
}

/// Locks `m`; a thread that panicked while holding it left the sets usable (each change is
/// one insert or removal).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Dedup {
    /// Opens the state in `dir` (created if missing) for a window of `window`, holding at most
    /// about `capacity` ids (past that the oldest are forgotten early, with a warning), and
    /// reads the journal back: about 50 ms per million ids.
    ///
    /// # Errors
    /// The directory, its key or a journal file cannot be read or written.
    pub fn open(dir: &Path, window: Duration, capacity: usize) -> Result<Dedup, DedupError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DedupError { path, source }
        };
        let journal = Journal::open(dir).map_err(failed(dir))?;
        let key = key(&dir.join("key")).map_err(failed(&dir.join("key")))?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let dedup = Dedup {
            key,
            dir: dir.to_path_buf(),
            window_ms,
            window: Mutex::new(Window::new(window_ms, capacity)),
            journal: Mutex::new(journal),
        };
        dedup.restore()?;
        Ok(dedup)
    }

    /// Reads the journal's generations still within the window into memory, and deletes the
    /// others.
    fn restore(&self) -> Result<(), DedupError> {
        let now = now_ms();
        let mut journal = lock(&self.journal);
        let mut window = lock(&self.window);
        let generations = journal.generations().map_err(|e| self.failed(e))?;
        for (start, path) in generations {
            if self.window_ms == 0 || window.expired(start, now) {
                journal.delete(start).map_err(|e| self.failed(e))?;
                continue;
            }
            let ids = journal::read(&path).map_err(|source| DedupError { path, source })?;
            window.restore(start, ids.into_iter());
        }
        for dropped in window.advance(now).generations {
            journal.delete(dropped.start).map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    fn failed(&self, source: io::Error) -> DedupError {
        DedupError {
            path: self.dir.clone(),
            source,
        }
    }

    fn id(&self, source_id: &str, message_id: &str) -> Id {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        // The length first, so that no other split of the same bytes gives the same id.
        hasher.update(&(source_id.len() as u64).to_le_bytes());
        hasher.update(source_id.as_bytes());
        hasher.update(message_id.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        Id::from_le_bytes(id)
    }

    /// The `events` whose `messageId` is new for `source_id` within the window, in order
    /// (a repeat within the request counts too), and the claim on their ids.
    pub fn fresh(&self, source_id: &str, events: Vec<Event>) -> (Vec<Event>, Claim) {
        let now = now_ms();
        let mut claim = Claim {
            start: 0,
            ids: Vec::with_capacity(events.len()),
        };
        if self.window_ms == 0 {
            return (events, claim);
        }
        let ids: Vec<Id> = events
            .iter()
            .map(|e| self.id(source_id, &e.message_id))
            .collect();
        let mut fresh = Vec::with_capacity(events.len());
        let dropped = {
            let mut window = lock(&self.window);
            let dropped = window.advance(now);
            claim.start = window.newest().unwrap_or_else(|| window.start_of(now));
            for (event, id) in events.into_iter().zip(ids) {
                if window.insert(id) {
                    fresh.push(event);
                    claim.ids.push(id);
                }
            }
            dropped
        };
        if dropped.early {
            tracing::warn!(
                "deduplication holds more messageIds than its capacity: the oldest are \
                 forgotten before the window ends (raise ingest.dedup_capacity)"
            );
        }
        // The dropped sets are freed here, outside the lock.
        drop(dropped);
        (fresh, claim)
    }

    /// Writes a stored request's ids to the journal (one `write`), so a restart still knows
    /// them.
    ///
    /// # Errors
    /// The journal cannot be written: the ids stay in memory, but a restart forgets them.
    pub fn commit(&self, claim: &Claim) -> Result<(), DedupError> {
        if claim.ids.is_empty() {
            return Ok(());
        }
        lock(&self.journal)
            .append(claim.start, &claim.ids)
            .map_err(|e| self.failed(e))
    }

    /// Releases the ids of a request that was not stored, so that its retry is not a
    /// duplicate.
    pub fn forget(&self, claim: Claim) {
        lock(&self.window).remove(claim.start, &claim.ids);
    }

    /// Deletes the journal files of generations no longer in memory (expired, or dropped for
    /// the capacity); how many. Run now and then: a directory listing.
    ///
    /// # Errors
    /// The directory cannot be read or a file removed.
    pub fn expire(&self) -> Result<usize, DedupError> {
        let now = now_ms();
        let oldest_kept = {
            let mut window = lock(&self.window);
            drop(window.advance(now));
            window.oldest()
        };
        let mut journal = lock(&self.journal);
        let mut deleted = 0;
        for (start, _) in journal.generations().map_err(|e| self.failed(e))? {
            if oldest_kept.is_none_or(|oldest| start < oldest) {
                journal.delete(start).map_err(|e| self.failed(e))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// The hashing key at `path`, made from the system's random source on first use (written to
/// a temporary file and renamed, so a crash never leaves half a key).
fn key(path: &Path) -> io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the key is not 32 bytes: remove the dedup directory to start afresh",
            ));
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    getrandom::fill(&mut key).map_err(io::Error::other)?;
    let partial = path.with_extension("partial");
    std::fs::write(&partial, key)?;
    std::fs::rename(&partial, path)?;
    Ok(key)
}

#[cfg(test)]
mod tests;
