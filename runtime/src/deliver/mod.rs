//! Delivery: sends the queued deliveries that are due to their destinations, concurrently,
//! grouped per destination into batches as large as the destination takes (a webhook's
//! `batchSize`), and settles each: delivered records leave the queue; retryable failures are
//! rescheduled with backoff until the maximum age; permanent failures and exhausted retries
//! become dead letters. A batch shares one verdict: the receiver took all of it or none.
//!
//! - [`retry`]: the classifier and the backoff.

pub mod retry;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::api::AppState;
use crate::api::destinations::Destination;
use crate::api::store::Kind;
use crate::observe::Count;
use crate::queue::{Delivery, now_ms};
use retry::Verdict;

/// Runs until `shutdown` turns true; attempts in flight are then abandoned (their records stay
/// queued).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let plane = state.data_plane.clone();
    let client = match reqwest::Client::builder()
        .timeout(plane.config.webhook_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; no deliveries");
            return;
        }
    };
    let in_flight: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(plane.config.delivery_concurrency.max(1)));
    let mut attempts = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            attempts.shutdown().await;
            return;
        }
        while attempts.try_join_next().is_some() {}
        let (due, next_due) = plane.queue.due(now_ms(), 10_000);
        for (destination_id, batch) in claim(&state, &in_flight, due) {
            let destination = match state
                .store
                .get::<Destination>(Kind::Destination, &destination_id)
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = ?e, "cannot read a destination; will retry");
                    continue;
                }
            };
            let size = destination
                .as_ref()
                .map_or(usize::MAX, crate::destinations::batch_size);
            let mut batch = batch.into_iter().peekable();
            while batch.peek().is_some() {
                let chunk: Vec<Claimed> = batch.by_ref().take(size).collect();
                let permit = tokio::select! {
                    p = slots.clone().acquire_owned() => p,
                    _ = shutdown.changed() => {
                        attempts.shutdown().await;
                        return;
                    }
                };
                let Ok(permit) = permit else {
                    return;
                };
                let (state, client, destination) =
                    (state.clone(), client.clone(), destination.clone());
                attempts.spawn(async move {
                    attempt(&state, &client, destination, chunk).await;
                    drop(permit);
                });
            }
        }
        let wait = match next_due {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms()).clamp(5, 500)),
            None => Duration::from_millis(500),
        };
        tokio::select! {
            _ = tokio::time::timeout(wait, plane.queued.notified()) => {}
            _ = shutdown.changed() => {
                attempts.shutdown().await;
                return;
            }
        }
    }
}

/// A due delivery this loop has taken: no other attempt touches it until `_guard` drops.
struct Claimed {
    seq: u64,
    delivery: Delivery,
    _guard: InFlight,
}

/// Takes the due deliveries that no attempt holds and that are still queued and due (one may
/// have been settled or rescheduled since it was listed), grouped by destination in due order.
fn claim(
    state: &AppState,
    in_flight: &Arc<Mutex<HashSet<u64>>>,
    due: Vec<u64>,
) -> Vec<(String, Vec<Claimed>)> {
    let queue = &state.data_plane.queue;
    let now = now_ms();
    let mut groups: Vec<(String, Vec<Claimed>)> = Vec::new();
    for seq in due {
        let fresh = in_flight.lock().map(|mut f| f.insert(seq)).unwrap_or(false);
        if !fresh {
            continue;
        }
        // Frees the record for another attempt however this one ends (a panic included).
        let guard = InFlight {
            set: in_flight.clone(),
            seq,
        };
        let delivery = match queue.delivery(seq) {
            Ok(Some(current)) if current.next_at_ms <= now => current,
            // Gone: drop it from the schedule too.
            Ok(None) => {
                let _ = queue.delivered(seq, "");
                continue;
            }
            _ => continue,
        };
        let claimed = Claimed {
            seq,
            delivery,
            _guard: guard,
        };
        match groups
            .iter_mut()
            .find(|(id, _)| *id == claimed.delivery.destination_id)
        {
            Some((_, batch)) => batch.push(claimed),
            None => groups.push((claimed.delivery.destination_id.clone(), vec![claimed])),
        }
    }
    groups
}

/// A delivery being attempted; dropped when the attempt ends.
struct InFlight {
    set: Arc<Mutex<HashSet<u64>>>,
    seq: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut f) = self.set.lock() {
            f.remove(&self.seq);
        }
    }
}

/// One attempt at a batch of deliveries to one destination, and what follows from it for
/// each of them.
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    destination: Option<Destination>,
    batch: Vec<Claimed>,
) {
    let plane = &state.data_plane;
    let Some(destination) = destination.filter(|d| d.enabled) else {
        // Deleted or disabled since: nothing to deliver to.
        for c in &batch {
            plane
                .observe
                .count(&c.delivery.destination_id, Count::Dropped);
            settle(plane.queue.delivered(c.seq, &c.delivery.source_id));
        }
        plane.queued.notify_one();
        return;
    };
    let events: Vec<&serde_json::Value> = batch.iter().map(|c| &c.delivery.event).collect();
    let (verdict, error) = crate::destinations::send(plane, client, &destination, &events).await;
    let error = error.unwrap_or_default();
    for Claimed {
        seq,
        mut delivery,
        _guard,
    } in batch
    {
        // `_guard` holds the record until it is settled.
        delivery.attempts += 1;
        settle_one(state, &destination, seq, delivery, &verdict, &error);
    }
    plane.queued.notify_one();
}

fn settle(result: Result<(), crate::queue::QueueError>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot settle a delivery; it will be attempted again");
    }
}

/// What `verdict` means for one delivery: done, retried later, or a dead letter.
fn settle_one(
    state: &AppState,
    destination: &Destination,
    seq: u64,
    mut delivery: Delivery,
    verdict: &Verdict,
    error: &str,
) {
    let plane = &state.data_plane;
    let message_id = delivery.event["messageId"].as_str().unwrap_or_default();
    let trace = |status: &str, extra: serde_json::Value| {
        plane.observe.stage(
            &delivery.source_id,
            message_id,
            "deliver",
            status,
            json!({"destinationId": destination.id, "attempt": delivery.attempts, "detail": extra}),
        );
    };
    match verdict {
        Verdict::Success => {
            plane.observe.count(&destination.id, Count::Delivered);
            trace("delivered", serde_json::Value::Null);
            settle(plane.queue.delivered(seq, &delivery.source_id));
        }
        Verdict::Retry { after } => {
            let delay = after.unwrap_or_else(|| {
                retry::backoff(
                    delivery.attempts,
                    plane.config.backoff_base,
                    plane.config.backoff_max,
                )
            });
            let next = now_ms().saturating_add(delay.as_millis() as u64);
            let age_limit = delivery
                .first_at_ms
                .saturating_add(plane.config.max_age.as_millis() as u64);
            if next > age_limit {
                plane.observe.count(&destination.id, Count::Failed);
                trace("failed", json!(format!("retries exhausted: {error}")));
                settle(
                    plane
                        .queue
                        .bury(seq, &delivery, &format!("retries exhausted: {error}")),
                );
            } else {
                plane.observe.count(&destination.id, Count::Retried);
                trace("retrying", json!(error));
                delivery.next_at_ms = next;
                delivery.last_error = Some(error.to_string());
                settle(plane.queue.reschedule(seq, &delivery));
            }
        }
        Verdict::GiveUp => {
            plane.observe.count(&destination.id, Count::Failed);
            trace("failed", json!(error));
            settle(plane.queue.bury(seq, &delivery, error));
        }
    }
}
