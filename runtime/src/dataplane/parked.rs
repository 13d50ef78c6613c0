//! Events parked off the hot path, in sled: deliveries waiting for a retry after a failed
//! attempt, events whose insert function asked to be retried, and dead letters. The durable
//! logs carry every event once; only the few that fail come here, so sled's per-record cost
//! is paid for failures, not for traffic.
//!
//! On-disk format (trees of the database at `<data-dir>/db`):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `dp.retries` | sequence, u64 big-endian (sled's `generate_id`) | JSON [`Retry`] |
//! | `dp.function_retries` | sequence, u64 big-endian | JSON [`Held`] |
//! | `dp.dead_letters` | `<destination id>/<sequence as 16 hex digits>` | JSON [`DeadLetter`] |
//!
//! Each write is flushed before the caller goes on (a parked event must survive the log
//! offset that is committed past it).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::event::{Delivery, Event, EventType};
use super::now_ms;

/// Runs `attempt` until `shutdown` turns true: again when the time it returned (the next
/// record's due time) comes, when `woken` is notified, and at least every 500 ms. `what` names
/// the records in the log line of a failed attempt (which is retried after 500 ms).
pub async fn when_due<F, E>(
    woken: &tokio::sync::Notify,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    what: &str,
    mut attempt: impl FnMut() -> F,
) where
    F: std::future::Future<Output = Result<Option<u64>, E>>,
    E: std::fmt::Display,
{
    let most = std::time::Duration::from_millis(500);
    loop {
        let next = match attempt().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "cannot retry {what}; trying again");
                None
            }
        };
        let wait = next.map_or(most, |at| {
            std::time::Duration::from_millis(at.saturating_sub(now_ms()).clamp(5, 500))
        });
        tokio::select! {
            _ = tokio::time::timeout(wait, woken.notified()) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A delivery waiting for its next attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// The destination.
    pub destination_id: String,
    /// The source the event came from.
    pub source_id: String,
    /// The event's `messageId`.
    pub message_id: String,
    /// The event's `type`.
    pub kind: String,
    /// The event, JSON text as the destination receives it.
    pub event: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first attempt was made, ms since the epoch (the retry age counts from here).
    pub first_at_ms: u64,
    /// When the next attempt is due, ms since the epoch.
    pub next_at_ms: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

impl Retry {
    /// A first failure of `delivery` at `now`, due again at `next_at_ms`.
    pub fn first(delivery: &Delivery, now: u64, next_at_ms: u64, error: &str) -> Retry {
        Retry {
            destination_id: delivery.destination_id.clone(),
            source_id: delivery.source_id.clone(),
            message_id: delivery.event.message_id.clone(),
            kind: delivery.event.kind.as_str().to_string(),
            event: delivery.event.text().to_string(),
            attempts: 1,
            first_at_ms: now,
            next_at_ms,
            last_error: Some(error.to_string()),
        }
    }

    /// The delivery it retries.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            destination_id: self.destination_id.clone(),
            source_id: self.source_id.clone(),
            event: Event {
                message_id: self.message_id.clone(),
                kind: EventType::parse(&self.kind).unwrap_or(EventType::Track),
                json: Bytes::from(self.event.clone()),
            },
        }
    }
}

/// An event held because an insert function of its source asked to be retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// The source.
    pub source_id: String,
    /// `messageId`.
    pub message_id: String,
    /// `type`.
    pub kind: String,
    /// The event as ingested (JSON text); the whole chain runs again on it.
    pub event: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is due again, ms since the epoch.
    pub next_at_ms: u64,
}

impl Held {
    /// The event it holds.
    pub fn event(&self) -> Event {
        Event {
            message_id: self.message_id.clone(),
            kind: EventType::parse(&self.kind).unwrap_or(EventType::Track),
            json: Bytes::from(self.event.clone()),
        }
    }
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

/// Why a parked record could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ParkedError {
    /// sled failed.
    #[error("parked events storage: {0}")]
    Storage(#[from] sled::Error),
    /// A record did not (de)serialize.
    #[error("parked event record: {0}")]
    Record(#[from] serde_json::Error),
}

fn flatten(e: sled::transaction::TransactionError<ParkedError>) -> ParkedError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => ParkedError::Storage(e),
    }
}

/// When each parked record is next due, in memory (rebuilt at open), so that the retry
/// loops find due records without reading every record.
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

    fn due(&self, now: u64, max: usize) -> (Vec<u64>, Option<u64>) {
        let due = self
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .map(|(_, seq)| *seq)
            .collect();
        let next = self
            .by_time
            .range((now.saturating_add(1), 0)..)
            .next()
            .map(|(at, _)| *at);
        (due, next)
    }
}

/// Held events with their keys.
pub type KeyedHeld = Vec<(u64, Held)>;

/// Handle on the parked trees. Cheap to clone.
#[derive(Clone)]
pub struct Parked {
    db: sled::Db,
    retries: sled::Tree,
    held: sled::Tree,
    dead: sled::Tree,
    retry_schedule: Arc<Mutex<Schedule>>,
    held_schedule: Arc<Mutex<Schedule>>,
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn key_seq(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if key.len() == 8 {
        b.copy_from_slice(key);
    }
    u64::from_be_bytes(b)
}

impl Parked {
    /// Opens (creating) the trees; returns the handle and the records parked per source (for
    /// back-pressure).
    ///
    /// # Errors
    /// sled cannot open a tree or a stored record does not parse.
    pub fn open(db: &sled::Db) -> Result<(Parked, HashMap<String, usize>), ParkedError> {
        let retries = db.open_tree("dp.retries")?;
        let held = db.open_tree("dp.function_retries")?;
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut retry_schedule = Schedule::default();
        for item in retries.iter() {
            let (k, v) = item?;
            let record: Retry = serde_json::from_slice(&v)?;
            retry_schedule.set(key_seq(&k), record.next_at_ms);
            *pending.entry(record.source_id).or_default() += 1;
        }
        let mut held_schedule = Schedule::default();
        for item in held.iter() {
            let (k, v) = item?;
            let record: Held = serde_json::from_slice(&v)?;
            held_schedule.set(key_seq(&k), record.next_at_ms);
            *pending.entry(record.source_id).or_default() += 1;
        }
        let parked = Parked {
            db: db.clone(),
            retries,
            held,
            dead: db.open_tree("dp.dead_letters")?,
            retry_schedule: Arc::new(Mutex::new(retry_schedule)),
            held_schedule: Arc::new(Mutex::new(held_schedule)),
        };
        Ok((parked, pending))
    }

    fn flush(&self) -> Result<(), ParkedError> {
        self.db.flush()?;
        Ok(())
    }

    /// Parks deliveries for a retry, durably (one flush for all).
    ///
    /// # Errors
    /// A storage failure; nothing is known to be parked.
    pub fn park_retries(&self, retries: &[Retry]) -> Result<(), ParkedError> {
        if retries.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(retries.len());
        for r in retries {
            let seq = self.db.generate_id()?;
            self.retries.insert(seq_key(seq), serde_json::to_vec(r)?)?;
            rows.push((seq, r.next_at_ms));
        }
        self.flush()?;
        if let Ok(mut s) = self.retry_schedule.lock() {
            for (seq, at) in rows {
                s.set(seq, at);
            }
        }
        Ok(())
    }

    /// Retries due at `now` (at most `max`, earliest first), and when the next one that is not
    /// yet due will be.
    pub fn due_retries(&self, now: u64, max: usize) -> (Vec<u64>, Option<u64>) {
        self.retry_schedule
            .lock()
            .map(|s| s.due(now, max))
            .unwrap_or_default()
    }

    /// Retry `seq`, if it is still parked.
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn retry(&self, seq: u64) -> Result<Option<Retry>, ParkedError> {
        match self.retries.get(seq_key(seq))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Removes retry `seq` (delivered, or dropped on purpose).
    ///
    /// # Errors
    /// A storage failure.
    pub fn delivered(&self, seq: u64) -> Result<(), ParkedError> {
        self.retries.remove(seq_key(seq))?;
        if let Ok(mut s) = self.retry_schedule.lock() {
            s.remove(seq);
        }
        Ok(())
    }

    /// Rewrites retry `seq` after another failed attempt that will be retried.
    ///
    /// # Errors
    /// A storage failure.
    pub fn reschedule(&self, seq: u64, retry: &Retry) -> Result<(), ParkedError> {
        self.retries
            .insert(seq_key(seq), serde_json::to_vec(retry)?)?;
        self.flush()?;
        if let Ok(mut s) = self.retry_schedule.lock() {
            s.set(seq, retry.next_at_ms);
        }
        Ok(())
    }

    /// The retries parked for `destination_id`, with their keys. Reads every parked retry:
    /// for the rare question "what is queued for this destination" (before deleting it).
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn retries_of(&self, destination_id: &str) -> Result<Vec<(u64, Retry)>, ParkedError> {
        let mut found = Vec::new();
        for item in self.retries.iter() {
            let (k, v) = item?;
            let retry: Retry = serde_json::from_slice(&v)?;
            if retry.destination_id == destination_id {
                found.push((key_seq(&k), retry));
            }
        }
        Ok(found)
    }

    /// Writes a dead letter for `delivery` (after `attempts`), removing retry `seq` if it came
    /// from one, atomically and durably.
    ///
    /// # Errors
    /// A storage failure.
    pub fn bury(
        &self,
        seq: Option<u64>,
        delivery: &Delivery,
        attempts: u32,
        error: &str,
    ) -> Result<(), ParkedError> {
        let letter_seq = match seq {
            Some(s) => s,
            None => self.db.generate_id()?,
        };
        let id = format!("{}/{letter_seq:016x}", delivery.destination_id);
        let letter = DeadLetter {
            id: id.clone(),
            destination_id: delivery.destination_id.clone(),
            source_id: delivery.source_id.clone(),
            event: serde_json::from_slice(&delivery.event.json).unwrap_or(Value::Null),
            attempts,
            last_error: error.to_string(),
            failed_at: crate::workspace::now(),
        };
        let bytes = serde_json::to_vec(&letter)?;
        (&self.retries, &self.dead)
            .transaction(|(retries, dead)| {
                if let Some(seq) = seq {
                    retries.remove(&seq_key(seq))?;
                }
                dead.insert(id.as_bytes(), bytes.as_slice())?;
                Ok::<_, ConflictableTransactionError<ParkedError>>(())
            })
            .map_err(flatten)?;
        self.flush()?;
        if let (Some(seq), Ok(mut s)) = (seq, self.retry_schedule.lock()) {
            s.remove(seq);
        }
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
    ) -> Result<Vec<DeadLetter>, ParkedError> {
        self.dead
            .scan_prefix(format!("{destination_id}/").as_bytes())
            .take(max)
            .map(|item| {
                let (_, v) = item?;
                Ok(serde_json::from_slice(&v)?)
            })
            .collect()
    }

    /// Puts every dead letter of `destination_id` back as a retry due now (attempts reset),
    /// atomically per letter; returns the source of each one replayed.
    ///
    /// # Errors
    /// A storage failure.
    pub fn replay(&self, destination_id: &str) -> Result<Vec<String>, ParkedError> {
        let mut sources = Vec::new();
        for letter in self.dead_letters(destination_id, usize::MAX)? {
            let now = now_ms();
            let retry = Retry {
                destination_id: letter.destination_id.clone(),
                source_id: letter.source_id.clone(),
                message_id: letter.event["messageId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                kind: letter.event["type"].as_str().unwrap_or("track").to_string(),
                event: letter.event.to_string(),
                attempts: 0,
                first_at_ms: now,
                next_at_ms: now,
                last_error: None,
            };
            let seq = self.db.generate_id()?;
            let bytes = serde_json::to_vec(&retry)?;
            (&self.retries, &self.dead)
                .transaction(|(retries, dead)| {
                    dead.remove(letter.id.as_bytes())?;
                    retries.insert(&seq_key(seq), bytes.as_slice())?;
                    Ok::<_, ConflictableTransactionError<ParkedError>>(())
                })
                .map_err(flatten)?;
            if let Ok(mut s) = self.retry_schedule.lock() {
                s.set(seq, now);
            }
            sources.push(letter.source_id);
        }
        self.flush()?;
        Ok(sources)
    }

    /// Holds events for a function retry, durably.
    ///
    /// # Errors
    /// A storage failure; nothing is known to be held.
    pub fn hold(&self, held: &[Held]) -> Result<(), ParkedError> {
        if held.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(held.len());
        for h in held {
            let seq = self.db.generate_id()?;
            self.held.insert(seq_key(seq), serde_json::to_vec(h)?)?;
            rows.push((seq, h.next_at_ms));
        }
        self.flush()?;
        if let Ok(mut s) = self.held_schedule.lock() {
            for (seq, at) in rows {
                s.set(seq, at);
            }
        }
        Ok(())
    }

    /// Held events due at `now` (at most `max`) with their keys, and when the next one will be.
    ///
    /// # Errors
    /// A storage failure or an unreadable record.
    pub fn due_held(&self, now: u64, max: usize) -> Result<(KeyedHeld, Option<u64>), ParkedError> {
        let (due, next) = self
            .held_schedule
            .lock()
            .map(|s| s.due(now, max))
            .unwrap_or_default();
        let mut out = Vec::with_capacity(due.len());
        for seq in due {
            match self.held.get(seq_key(seq))? {
                Some(v) => out.push((seq, serde_json::from_slice(&v)?)),
                None => {
                    if let Ok(mut s) = self.held_schedule.lock() {
                        s.remove(seq);
                    }
                }
            }
        }
        Ok((out, next))
    }

    /// Releases held event `seq` (its retry ran and what it produced is durable).
    ///
    /// # Errors
    /// A storage failure.
    pub fn release(&self, seq: u64) -> Result<(), ParkedError> {
        self.held.remove(seq_key(seq))?;
        if let Ok(mut s) = self.held_schedule.lock() {
            s.remove(seq);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            destination_id: "d".into(),
            source_id: "s".into(),
            event: Event {
                message_id: "m".into(),
                kind: EventType::Track,
                json: Bytes::from_static(br#"{"messageId":"m","type":"track"}"#),
            },
        }
    }

    #[test]
    fn retries_dead_letters_and_holds_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let (p, _) = Parked::open(&db).unwrap();
            p.park_retries(&[Retry::first(&delivery(), 0, 500, "503")])
                .unwrap();
            assert_eq!(p.due_retries(1, 10).0, Vec::<u64>::new());
            let (due, _) = p.due_retries(500, 10);
            assert_eq!(due.len(), 1);
            let r = p.retry(due[0]).unwrap().unwrap();
            assert_eq!(r.delivery(), delivery());
            p.bury(Some(due[0]), &r.delivery(), 2, "400").unwrap();
            assert!(p.due_retries(u64::MAX, 10).0.is_empty());
            assert_eq!(p.dead_letters("d", 10).unwrap()[0].last_error, "400");
            p.hold(&[Held {
                source_id: "s".into(),
                message_id: "m".into(),
                kind: "track".into(),
                event: "{}".into(),
                attempts: 1,
                next_at_ms: 7,
            }])
            .unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let (p, pending) = Parked::open(&db).unwrap();
        assert_eq!(pending.get("s"), Some(&1));
        let (held, _) = p.due_held(7, 10).unwrap();
        assert_eq!(held.len(), 1);
        p.release(held[0].0).unwrap();
        assert_eq!(p.replay("d").unwrap(), vec!["s".to_string()]);
        assert!(p.dead_letters("d", 10).unwrap().is_empty());
        assert_eq!(p.due_retries(u64::MAX, 10).0.len(), 1);
    }
}
