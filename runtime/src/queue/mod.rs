//! The durable queues between the data plane's stages, in sled, with group commit.
//!
//! Design constraints:
//! - An event is acknowledged (`200`) only after it is on disk: [`Queue::enqueue`] writes it,
//!   then [`Queue::commit`] waits for a flush. Flushes are shared (group commit): each caller
//!   takes a ticket after writing; one flush at a time runs, covering every ticket taken before
//!   it started, so callers that queued up behind a flush are served by the next single one.
//! - A record leaves a queue only when its stage is done, in the same sled transaction that
//!   writes what the stage produced (the pipeline removes an ingested event and inserts its
//!   deliveries atomically; a delivery is removed only after the destination accepted it). A
//!   crash at any point therefore replays the unfinished stage: delivery is at least once.
//!
//! On-disk format (trees of the database at `<data-dir>/db`):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `dp.ingest` | `<source id>/` then the sequence, u64 big-endian (sled's `generate_id`, monotonic across restarts) | JSON [`Ingested`] |
//! | `dp.dedup` | `<source id>\n<messageId>` | first-seen time, ms since the epoch, u64 big-endian |
//! | `dp.deliveries` | sequence, u64 big-endian | JSON [`Delivery`] |
//! | `dp.dead_letters` | `<destination id>/<sequence as 16 hex digits>` | JSON [`DeadLetter`] |
//!
//! Big-endian sequences make key order arrival order, so each queue is read oldest first; the
//! source prefix of `dp.ingest` lets each source's pipeline read only its own events.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

/// An event accepted by ingestion, waiting for the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    /// The source it was sent to.
    pub source_id: String,
    /// The normalised event.
    pub event: Value,
}

/// An event waiting to be delivered to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The destination.
    pub destination_id: String,
    /// The source the event came from (for back-pressure and the debugger).
    pub source_id: String,
    /// The event as the destination receives it.
    pub event: Value,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first attempt was due, ms since the epoch (the retry age counts from here).
    pub first_at_ms: u64,
    /// When the next attempt is due, ms since the epoch.
    pub next_at_ms: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// A delivery that was given up: a permanent refusal or retries exhausted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Its key in `dp.dead_letters` (the id used to replay it).
    pub id: String,
    /// The destination.
    pub destination_id: String,
    /// The source.
    pub source_id: String,
    /// The event.
    #[schema(value_type = Object)]
    pub event: Value,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
    /// When it was given up, RFC 3339.
    pub failed_at: String,
}

/// Why the queue could not take or give a record.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// sled failed.
    #[error("queue storage: {0}")]
    Storage(#[from] sled::Error),
    /// A record did not (de)serialize.
    #[error("queue record: {0}")]
    Record(#[from] serde_json::Error),
}

/// When each delivery is next due, in memory (rebuilt from `dp.deliveries` at open), so that
/// the delivery loop finds due records without reading every record.
#[derive(Default)]
struct Schedule {
    by_time: BTreeSet<(u64, u64)>,
    at: HashMap<u64, u64>,
}

impl Schedule {
    fn set(&mut self, seq: u64, at: u64) {
        if let Some(old) = self.at.insert(seq, at) {
            self.by_time.remove(&(old, seq));
        }
        self.by_time.insert((at, seq));
    }

    fn remove(&mut self, seq: u64) {
        if let Some(old) = self.at.remove(&seq) {
            self.by_time.remove(&(old, seq));
        }
    }
}

/// Group commit's shared state.
#[derive(Default)]
struct Commits {
    /// Tickets handed out (one per [`Queue::commit`] call, taken after its writes).
    requested: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
}

/// Handle on the queues. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    db: sled::Db,
    ingest: sled::Tree,
    dedup: sled::Tree,
    deliveries: sled::Tree,
    dead: sled::Tree,
    /// Records pending per source (ingested plus deliveries), for back-pressure.
    pending: Arc<Mutex<HashMap<String, usize>>>,
    /// Ingested records per source not yet through the pipeline.
    waiting: Arc<Mutex<HashMap<String, usize>>>,
    /// When each delivery is due.
    schedule: Arc<Mutex<Schedule>>,
    commits: Arc<Commits>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn flatten(e: sled::transaction::TransactionError<QueueError>) -> QueueError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => QueueError::Storage(e),
    }
}

impl Queue {
    /// Opens (creating) the trees and counts what is pending per source.
    ///
    /// # Errors
    /// sled cannot open a tree or a stored record does not parse.
    pub fn open(db: &sled::Db) -> Result<Queue, QueueError> {
        let ingest = db.open_tree("dp.ingest")?;
        let deliveries = db.open_tree("dp.deliveries")?;
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut waiting: HashMap<String, usize> = HashMap::new();
        let mut schedule = Schedule::default();
        for item in ingest.iter() {
            let (_, v) = item?;
            let record: Ingested = serde_json::from_slice(&v)?;
            *waiting.entry(record.source_id.clone()).or_default() += 1;
            *pending.entry(record.source_id).or_default() += 1;
        }
        for item in deliveries.iter() {
            let (k, v) = item?;
            let k = key_seq(&k);
            let record: Delivery = serde_json::from_slice(&v)?;
            schedule.set(k, record.next_at_ms);
            *pending.entry(record.source_id).or_default() += 1;
        }
        Ok(Queue {
            db: db.clone(),
            ingest,
            dedup: db.open_tree("dp.dedup")?,
            deliveries,
            dead: db.open_tree("dp.dead_letters")?,
            pending: Arc::new(Mutex::new(pending)),
            waiting: Arc::new(Mutex::new(waiting)),
            schedule: Arc::new(Mutex::new(schedule)),
            commits: Arc::default(),
        })
    }

    /// Records pending for `source_id` (ingested, not yet through the pipeline, plus
    /// deliveries not yet done).
    pub fn pending(&self, source_id: &str) -> usize {
        self.pending
            .lock()
            .map(|p| p.get(source_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn schedule(&self, f: impl FnOnce(&mut Schedule)) {
        if let Ok(mut s) = self.schedule.lock() {
            f(&mut s);
        }
    }

    /// Deliveries due at `now` (at most `max`, earliest first), and when the next one that is
    /// not yet due will be.
    pub fn due(&self, now: u64, max: usize) -> (Vec<u64>, Option<u64>) {
        let Ok(s) = self.schedule.lock() else {
            return (Vec::new(), None);
        };
        let due = s
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .map(|(_, seq)| *seq)
            .collect();
        let next = s
            .by_time
            .range((now.saturating_add(1), 0)..)
            .next()
            .map(|(at, _)| *at);
        (due, next)
    }

    /// The sources with ingested records waiting for the pipeline.
    pub fn sources_waiting(&self) -> Vec<String> {
        self.waiting
            .lock()
            .map(|w| {
                w.iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(s, _)| s.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn wait(&self, source_id: &str, add: usize, remove: usize) {
        if let Ok(mut w) = self.waiting.lock() {
            let n = w.entry(source_id.to_string()).or_default();
            *n = (*n + add).saturating_sub(remove);
            if *n == 0 {
                w.remove(source_id);
            }
        }
    }

    fn adjust(&self, source_id: &str, add: usize, remove: usize) {
        if let Ok(mut p) = self.pending.lock() {
            let n = p.entry(source_id.to_string()).or_default();
            *n = (*n + add).saturating_sub(remove);
        }
    }

    /// Writes `events` for `source_id`, skipping those whose `messageId` was seen for this
    /// source within `dedup_window`, in one transaction; returns the events written (not yet
    /// flushed: await [`Queue::commit`] before acknowledging).
    ///
    /// # Errors
    /// A storage failure; nothing was written.
    pub fn enqueue(
        &self,
        source_id: &str,
        events: Vec<Value>,
        dedup_window: Duration,
    ) -> Result<Vec<Value>, QueueError> {
        let now = now_ms();
        let window = dedup_window.as_millis() as u64;
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let seq = self.db.generate_id()?;
            let message_id = event["messageId"].as_str().unwrap_or_default().to_string();
            let bytes = serde_json::to_vec(&Ingested {
                source_id: source_id.to_string(),
                event: event.clone(),
            })?;
            records.push((seq, message_id, bytes, event));
        }
        let accepted = (&self.ingest, &self.dedup)
            .transaction(|(ingest, dedup)| {
                let mut accepted = Vec::new();
                for (i, (seq, message_id, bytes, _)) in records.iter().enumerate() {
                    let key = format!("{source_id}\n{message_id}");
                    if let Some(seen) = dedup.get(key.as_bytes())? {
                        let mut at = [0u8; 8];
                        if seen.len() == 8 {
                            at.copy_from_slice(&seen);
                        }
                        if now.saturating_sub(u64::from_be_bytes(at)) < window {
                            continue;
                        }
                    }
                    dedup.insert(key.as_bytes(), &now.to_be_bytes())?;
                    ingest.insert(ingest_key(source_id, *seq), bytes.as_slice())?;
                    accepted.push(i);
                }
                Ok(accepted)
            })
            .map_err(flatten)?;
        self.adjust(source_id, accepted.len(), 0);
        self.wait(source_id, accepted.len(), 0);
        let mut events: Vec<Option<Value>> = records.into_iter().map(|r| Some(r.3)).collect();
        Ok(accepted
            .into_iter()
            .filter_map(|i| events.get_mut(i).and_then(Option::take))
            .collect())
    }

    /// Waits until everything written so far is on disk. Concurrent callers share one flush.
    ///
    /// # Errors
    /// The flush failed.
    pub async fn commit(&self) -> Result<(), QueueError> {
        let c = &self.commits;
        let ticket = c.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = c.flushing.lock().await;
        if c.durable.load(Ordering::SeqCst) >= ticket {
            // A flush that started after our writes has finished.
            return Ok(());
        }
        // Every ticket taken so far belongs to writes made before this flush starts.
        let covered = c.requested.load(Ordering::SeqCst);
        self.db.flush_async().await?;
        c.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    /// Up to `max` of `source_id`'s ingested records, oldest first, with their sequence
    /// numbers.
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn next_ingested(
        &self,
        source_id: &str,
        max: usize,
    ) -> Result<Vec<(u64, Ingested)>, QueueError> {
        let prefix = format!("{source_id}/");
        let mut out = Vec::new();
        for item in self.ingest.scan_prefix(prefix.as_bytes()).take(max) {
            let (k, v) = item?;
            let seq = key_seq(k.get(prefix.len()..).unwrap_or_default());
            out.push((seq, serde_json::from_slice(&v)?));
        }
        Ok(out)
    }

    /// Finishes the pipeline stage of ingested record `seq`: removes it, writes its deliveries
    /// and the events it forwards to other sources (violations), atomically.
    ///
    /// # Errors
    /// A storage failure; nothing changed, so the record is processed again.
    pub fn complete_ingested(
        &self,
        seq: u64,
        source_id: &str,
        deliveries: &[Delivery],
        forwarded: &[Ingested],
    ) -> Result<(), QueueError> {
        let mut rows = Vec::new();
        for d in deliveries {
            rows.push((self.db.generate_id()?, serde_json::to_vec(d)?, d.next_at_ms));
        }
        let mut fwd = Vec::new();
        for f in forwarded {
            fwd.push((
                ingest_key(&f.source_id, self.db.generate_id()?),
                serde_json::to_vec(f)?,
            ));
        }
        let key = ingest_key(source_id, seq);
        (&self.ingest, &self.deliveries)
            .transaction(|(ingest, del)| {
                ingest.remove(key.as_slice())?;
                for (s, bytes, _) in &rows {
                    del.insert(&seq_key(*s), bytes.as_slice())?;
                }
                for (k, bytes) in &fwd {
                    ingest.insert(k.as_slice(), bytes.as_slice())?;
                }
                Ok(())
            })
            .map_err(flatten)?;
        self.adjust(source_id, deliveries.len(), 1);
        self.wait(source_id, 0, 1);
        self.schedule(|s| {
            for (seq, _, at) in &rows {
                s.set(*seq, *at);
            }
        });
        for f in forwarded {
            self.adjust(&f.source_id, 1, 0);
            self.wait(&f.source_id, 1, 0);
        }
        Ok(())
    }

    /// Every delivery record, oldest first (the delivery loop picks the due ones).
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn deliveries(&self) -> Result<Vec<(u64, Delivery)>, QueueError> {
        self.deliveries
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((key_seq(&k), serde_json::from_slice(&v)?))
            })
            .collect()
    }

    /// Delivery `seq`, if it is still queued.
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn delivery(&self, seq: u64) -> Result<Option<Delivery>, QueueError> {
        match self.deliveries.get(seq_key(seq))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Removes delivery `seq` (delivered, or dropped on purpose).
    ///
    /// # Errors
    /// A storage failure.
    pub fn delivered(&self, seq: u64, source_id: &str) -> Result<(), QueueError> {
        if self.deliveries.remove(seq_key(seq))?.is_some() {
            self.adjust(source_id, 0, 1);
        }
        self.schedule(|s| s.remove(seq));
        Ok(())
    }

    /// Rewrites delivery `seq` after a failed attempt that will be retried.
    ///
    /// # Errors
    /// A storage failure or a record that does not serialize.
    pub fn reschedule(&self, seq: u64, delivery: &Delivery) -> Result<(), QueueError> {
        self.deliveries
            .insert(seq_key(seq), serde_json::to_vec(delivery)?)?;
        self.schedule(|s| s.set(seq, delivery.next_at_ms));
        Ok(())
    }

    /// Moves delivery `seq` to the dead letters, atomically.
    ///
    /// # Errors
    /// A storage failure or a record that does not serialize.
    pub fn bury(&self, seq: u64, delivery: &Delivery, error: &str) -> Result<(), QueueError> {
        let id = format!("{}/{seq:016x}", delivery.destination_id);
        let letter = DeadLetter {
            id: id.clone(),
            destination_id: delivery.destination_id.clone(),
            source_id: delivery.source_id.clone(),
            event: delivery.event.clone(),
            attempts: delivery.attempts,
            last_error: error.to_string(),
            failed_at: crate::api::now(),
        };
        let bytes = serde_json::to_vec(&letter)?;
        (&self.deliveries, &self.dead)
            .transaction(|(del, dead)| {
                del.remove(&seq_key(seq))?;
                dead.insert(id.as_bytes(), bytes.as_slice())?;
                Ok::<_, ConflictableTransactionError<QueueError>>(())
            })
            .map_err(flatten)?;
        self.adjust(&delivery.source_id, 0, 1);
        self.schedule(|s| s.remove(seq));
        Ok(())
    }

    /// The dead letters of `destination_id`, oldest first, at most `max`.
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn dead_letters(
        &self,
        destination_id: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        self.dead
            .scan_prefix(format!("{destination_id}/").as_bytes())
            .take(max)
            .map(|item| {
                let (_, v) = item?;
                Ok(serde_json::from_slice(&v)?)
            })
            .collect()
    }

    /// Puts every dead letter of `destination_id` back on its delivery queue (attempts reset),
    /// atomically per letter; returns how many.
    ///
    /// # Errors
    /// A storage failure.
    pub fn replay(&self, destination_id: &str) -> Result<usize, QueueError> {
        let mut n = 0;
        for letter in self.dead_letters(destination_id, usize::MAX)? {
            let now = now_ms();
            let delivery = Delivery {
                destination_id: letter.destination_id.clone(),
                source_id: letter.source_id.clone(),
                event: letter.event.clone(),
                attempts: 0,
                first_at_ms: now,
                next_at_ms: now,
                last_error: None,
            };
            let seq = self.db.generate_id()?;
            let bytes = serde_json::to_vec(&delivery)?;
            (&self.deliveries, &self.dead)
                .transaction(|(del, dead)| {
                    dead.remove(letter.id.as_bytes())?;
                    del.insert(&seq_key(seq), bytes.as_slice())?;
                    Ok::<_, ConflictableTransactionError<QueueError>>(())
                })
                .map_err(flatten)?;
            self.adjust(&letter.source_id, 1, 0);
            self.schedule(|s| s.set(seq, now));
            n += 1;
        }
        Ok(n)
    }

    /// Removes deduplication entries older than `window` (run now and then).
    ///
    /// # Errors
    /// A storage failure.
    pub fn expire_dedup(&self, window: Duration) -> Result<usize, QueueError> {
        let now = now_ms();
        let window = window.as_millis() as u64;
        let mut n = 0;
        for item in self.dedup.iter() {
            let (k, v) = item?;
            let mut at = [0u8; 8];
            if v.len() == 8 {
                at.copy_from_slice(&v);
            }
            if now.saturating_sub(u64::from_be_bytes(at)) >= window {
                self.dedup.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

fn ingest_key(source_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(source_id.len() + 9);
    key.extend_from_slice(source_id.as_bytes());
    key.push(b'/');
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn key_seq(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if key.len() == 8 {
        b.copy_from_slice(key);
    }
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn enqueue_dedups_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let q = Queue::open(&db).unwrap();
            let events = vec![json!({"messageId": "a"}), json!({"messageId": "b"})];
            let window = Duration::from_secs(60);
            assert_eq!(q.enqueue("s", events, window).unwrap().len(), 2);
            let again = q
                .enqueue("s", vec![json!({"messageId": "a"})], window)
                .unwrap();
            assert!(again.is_empty());
            // Another source has its own window.
            let other = q
                .enqueue("t", vec![json!({"messageId": "a"})], window)
                .unwrap();
            assert_eq!(other.len(), 1);
            // Concurrent commits share flushes and all return once durable.
            let (a, b, c) = tokio::join!(q.commit(), q.commit(), q.commit());
            assert!(a.is_ok() && b.is_ok() && c.is_ok());
            assert_eq!(q.pending("s"), 2);
        }
        let db = sled::open(dir.path()).unwrap();
        let q = Queue::open(&db).unwrap();
        assert_eq!(q.pending("s"), 2);
        let mut waiting = q.sources_waiting();
        waiting.sort();
        assert_eq!(waiting, ["s", "t"]);
        let next = q.next_ingested("s", 10).unwrap();
        assert_eq!(next.len(), 2);
        assert_eq!(q.next_ingested("t", 10).unwrap().len(), 1);
        assert_eq!(next[0].1.event["messageId"], "a");
        let (seq, record) = &next[0];
        let d = Delivery {
            destination_id: "d".into(),
            source_id: "s".into(),
            event: record.event.clone(),
            attempts: 0,
            first_at_ms: 0,
            next_at_ms: 0,
            last_error: None,
        };
        q.complete_ingested(*seq, "s", std::slice::from_ref(&d), &[])
            .unwrap();
        assert_eq!(q.next_ingested("s", 10).unwrap().len(), 1);
        let deliveries = q.deliveries().unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(q.due(1, 10), (vec![deliveries[0].0], None));
        let mut later = d.clone();
        later.next_at_ms = 500;
        q.reschedule(deliveries[0].0, &later).unwrap();
        assert_eq!(q.due(1, 10), (vec![], Some(500)));
        assert_eq!(q.due(500, 10).0.len(), 1);
        q.bury(deliveries[0].0, &d, "400").unwrap();
        assert_eq!(q.dead_letters("d", 10).unwrap()[0].last_error, "400");
        assert_eq!(q.replay("d").unwrap(), 1);
        assert!(q.dead_letters("d", 10).unwrap().is_empty());
        assert_eq!(q.deliveries().unwrap().len(), 1);
        assert_eq!(q.due(u64::MAX, 10).0.len(), 1);
    }
}
