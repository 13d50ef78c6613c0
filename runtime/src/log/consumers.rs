//! Named consumers' committed positions (one small file each, replaced atomically by rename,
//! not synced per commit) and the deletion of segments every consumer has passed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use super::segment::sync_dir;
use super::segment_log::Shared;
use super::{LogError, io_error};

/// The registered consumers and their committed positions. One mutex serialises commits and
/// deletions, so a commit never lands in a segment being deleted.
pub(super) struct Consumers {
    committed: Mutex<BTreeMap<String, u64>>,
}

impl Consumers {
    /// Reads each consumer's file in `dir`. A missing file means position `first`; a file that
    /// is unreadable (a commit's rename survived a crash but its data did not) or points
    /// outside `first..=end` is replaced by the nearest safe position, with a warning:
    /// `first` (replay) or `end`.
    pub fn load(dir: &Path, names: &[String], first: u64, end: u64) -> Result<Consumers, LogError> {
        let mut committed = BTreeMap::new();
        for name in names {
            check_name(name)?;
            let path = file(dir, name);
            let stored = match std::fs::read(&path) {
                Ok(bytes) => decode(&bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(first),
                Err(e) => return Err(io_error(&path)(e)),
            };
            let position = match stored {
                Some(p) if (first..=end).contains(&p) => p,
                other => {
                    let safe = other.map_or(first, |p| p.clamp(first, end));
                    tracing::warn!(consumer = %name, stored = ?other, safe, "log: consumer position unusable; using the nearest safe one");
                    safe
                }
            };
            committed.insert(name.clone(), position);
        }
        Ok(Consumers {
            committed: Mutex::new(committed),
        })
    }

    /// `consumer`'s committed position.
    pub fn position(&self, consumer: &str) -> Result<u64, LogError> {
        self.lock()
            .get(consumer)
            .copied()
            .ok_or_else(|| LogError::UnknownConsumer(consumer.to_string()))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        // Every change is one insert after its file was written: still consistent if poisoned.
        self.committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Stores `position` for `consumer` (write a temporary file, rename it over the old one), then
/// deletes the segments every consumer has now passed.
pub(super) fn commit(shared: &Shared, consumer: &str, position: u64) -> Result<(), LogError> {
    let mut committed = shared.consumers.lock();
    let Some(slot) = committed.get_mut(consumer) else {
        return Err(LogError::UnknownConsumer(consumer.to_string()));
    };
    let (first, end) = (shared.first(), shared.end());
    if !(first..=end).contains(&position) {
        return Err(LogError::OutOfRange {
            position,
            first,
            end,
        });
    }
    store(&shared.dir, consumer, position)?;
    *slot = position;
    trim(shared, &committed)
}

/// Deletes the segments that every consumer has passed (at open, after positions loaded).
pub(super) fn trim_passed(shared: &Shared) -> Result<(), LogError> {
    let committed = shared.consumers.lock();
    trim(shared, &committed)
}

/// Deletes every sealed segment that ends at or before the lowest committed position. The
/// consumer files and the directory are synced first: a segment must not be gone while a
/// commit that passed it could still be lost.
fn trim(shared: &Shared, committed: &BTreeMap<String, u64>) -> Result<(), LogError> {
    let Some(&lowest) = committed.values().min() else {
        return Ok(());
    };
    let passed: Vec<_> = {
        let segments = shared.segments();
        segments
            .values()
            .zip(segments.keys().skip(1))
            .filter(|(_, next)| **next <= lowest)
            .map(|(segment, _)| segment.clone())
            .collect()
    };
    if passed.is_empty() {
        return Ok(());
    }
    for name in committed.keys() {
        sync_file(&file(&shared.dir, name))?;
    }
    sync_dir(&shared.dir)?;
    let mut segments = shared.segments_mut();
    for segment in passed {
        segments.remove(&segment.start);
        // Readers holding the segment keep reading the unlinked file until they let go.
        std::fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
        // Oldest first, each deletion durable before the next: a crash leaves the remaining
        // segments a contiguous run (never a hole that open would refuse as a gap).
        sync_dir(&shared.dir)?;
        shared
            .counters
            .segments_deleted
            .fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Consumer names become file names: keep them plain.
fn check_name(name: &str) -> Result<(), LogError> {
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if plain {
        Ok(())
    } else {
        Err(LogError::InvalidConsumer(name.to_string()))
    }
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.consumer"))
}

/// The position, then the CRC32 of its 8 bytes.
fn encode(position: u64) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&position.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..8]);
    bytes[8..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<u64> {
    let position: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let crc: [u8; 4] = bytes.get(8..12)?.try_into().ok()?;
    (bytes.len() == 12 && crc32fast::hash(&position) == u32::from_le_bytes(crc))
        .then(|| u64::from_le_bytes(position))
}

/// Replaces `name`'s file atomically: a reader sees the old position or the new one.
fn store(dir: &Path, name: &str, position: u64) -> Result<(), LogError> {
    let path = file(dir, name);
    let tmp = dir.join(format!("{name}.consumer.tmp"));
    std::fs::write(&tmp, encode(position)).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_error(&path))
}

/// Syncs a consumer file if it exists (one that never committed has none).
fn sync_file(path: &Path) -> Result<(), LogError> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_all().map_err(io_error(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}
