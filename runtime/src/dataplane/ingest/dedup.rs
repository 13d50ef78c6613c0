//! Deduplication on `messageId` per source within a window (Segment's is 24 hours), in sled:
//! one compare-and-swap per event, not flushed on its own (sled writes it out within half a
//! second). A crash may forget the last moments' ids, so a client's retry of a request
//! acknowledged just before the crash can be delivered twice: at least once, never lost.
//!
//! Tree `dp.dedup`: key `<source id>\n<messageId>`, value the first-seen time, ms since the
//! epoch, u64 big-endian.

use std::time::Duration;

use crate::dataplane::event::Event;
use crate::dataplane::now_ms;

/// The seen `messageId`s. Cheap to clone.
#[derive(Clone)]
pub struct Dedup {
    seen: sled::Tree,
}

fn age(value: &[u8], now: u64) -> u64 {
    let mut at = [0u8; 8];
    if value.len() == 8 {
        at.copy_from_slice(value);
    }
    now.saturating_sub(u64::from_be_bytes(at))
}

impl Dedup {
    /// Opens (creating) the tree.
    ///
    /// # Errors
    /// sled cannot open it.
    pub fn open(db: &sled::Db) -> Result<Dedup, sled::Error> {
        Ok(Dedup {
            seen: db.open_tree("dp.dedup")?,
        })
    }

    /// Whether `message_id` is new for `source_id` within `window`; records it if so. One
    /// sled compare-and-swap (two when an old entry is replaced).
    ///
    /// # Errors
    /// sled failed.
    pub fn first_time(
        &self,
        source_id: &str,
        message_id: &str,
        window: Duration,
    ) -> Result<bool, sled::Error> {
        let key = format!("{source_id}\n{message_id}");
        let now = now_ms();
        let stamp = now.to_be_bytes();
        let mut current = None;
        loop {
            let swapped =
                self.seen
                    .compare_and_swap(key.as_bytes(), current.as_ref(), Some(&stamp[..]))?;
            match swapped {
                Ok(()) => return Ok(true),
                Err(conflict) => match conflict.current {
                    Some(seen) if age(&seen, now) < window.as_millis() as u64 => {
                        return Ok(false);
                    }
                    // An expired entry: take its place (or retry a vanished one).
                    other => current = other,
                },
            }
        }
    }

    /// The `events` whose `messageId` is new for `source_id` within `window`, in order; records
    /// them. One compare-and-swap each (~26 us of wall time per event at half load, measured:
    /// BENCHMARKS.md), on the calling thread: on a multi-thread runtime's worker through
    /// `block_in_place` (the worker's other tasks move to another thread meanwhile, since sled
    /// may read from disk), so the request waits for no other thread to be scheduled; inline on
    /// any other thread.
    ///
    /// # Errors
    /// sled failed.
    pub fn fresh(
        &self,
        source_id: &str,
        events: Vec<Event>,
        window: Duration,
    ) -> Result<Vec<Event>, sled::Error> {
        let check = move || {
            let mut fresh = Vec::with_capacity(events.len());
            for event in events {
                if self.first_time(source_id, &event.message_id, window)? {
                    fresh.push(event);
                }
            }
            Ok(fresh)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(check)
            }
            _ => check(),
        }
    }

    /// Forgets `message_ids` of `source_id`: their request was refused after they were
    /// recorded (the log could not store it), so a retry is not a duplicate. One removal each.
    ///
    /// # Errors
    /// sled failed.
    pub fn forget(&self, source_id: &str, message_ids: &[String]) -> Result<(), sled::Error> {
        for id in message_ids {
            self.seen.remove(format!("{source_id}\n{id}").as_bytes())?;
        }
        Ok(())
    }

    /// Removes entries older than `window` (run now and then); how many.
    ///
    /// # Errors
    /// sled failed.
    pub fn expire(&self, window: Duration) -> Result<usize, sled::Error> {
        let now = now_ms();
        let window = window.as_millis() as u64;
        let mut n = 0;
        for item in self.seen.iter() {
            let (k, v) = item?;
            if age(&v, now) >= window {
                self.seen.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_new_once_per_source_and_window() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let d = Dedup::open(&db).unwrap();
        let day = Duration::from_secs(86_400);
        assert!(d.first_time("s", "a", day).unwrap());
        assert!(!d.first_time("s", "a", day).unwrap());
        assert!(d.first_time("t", "a", day).unwrap());
        // Past the window the id is new again.
        assert!(d.first_time("s", "a", Duration::ZERO).unwrap());
        assert_eq!(d.expire(Duration::ZERO).unwrap(), 2);
    }
}
