//! Delivery: sends each queued delivery to its destination, concurrently, and settles it:
//! delivered records leave the queue; retryable failures are rescheduled with backoff until
//! the maximum age; permanent failures and exhausted retries become dead letters.
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
        for seq in due {
            let fresh = in_flight.lock().map(|mut f| f.insert(seq)).unwrap_or(false);
            if !fresh {
                continue;
            }
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
            let state = state.clone();
            let client = client.clone();
            // Frees the record for another attempt however this one ends (a panic included).
            let guard = InFlight {
                set: in_flight.clone(),
                seq,
            };
            attempts.spawn(async move {
                let _guard = guard;
                // Settled or rescheduled since it was listed? Attempt only what is still
                // queued and due.
                match state.data_plane.queue.delivery(seq) {
                    Ok(Some(current)) if current.next_at_ms <= now_ms() => {
                        attempt(&state, &client, seq, current).await;
                    }
                    // Gone: drop it from the schedule too.
                    Ok(None) => {
                        let _ = state.data_plane.queue.delivered(seq, "");
                    }
                    _ => {}
                }
                drop(permit);
            });
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

/// One attempt at one delivery, and what follows from it.
async fn attempt(state: &AppState, client: &reqwest::Client, seq: u64, mut delivery: Delivery) {
    let plane = &state.data_plane;
    let message_id = delivery.event["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let destination: Option<Destination> =
        match state.store.get(Kind::Destination, &delivery.destination_id) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = ?e, "cannot read a destination; will retry");
                return;
            }
        };
    let settle = |result: Result<(), crate::queue::QueueError>| {
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot settle a delivery; it will be attempted again");
        }
    };
    let Some(destination) = destination.filter(|d| d.enabled) else {
        // Deleted or disabled since: nothing to deliver to.
        plane
            .observe
            .count(&delivery.destination_id, Count::Dropped);
        settle(plane.queue.delivered(seq, &delivery.source_id));
        return;
    };
    let (verdict, error) =
        crate::destinations::send(plane, client, &destination, &delivery.event).await;
    delivery.attempts += 1;
    let error = error.unwrap_or_default();
    let trace = |status: &str, extra: serde_json::Value| {
        plane.observe.stage(
            &delivery.source_id,
            &message_id,
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
                delivery.last_error = Some(error);
                settle(plane.queue.reschedule(seq, &delivery));
            }
        }
        Verdict::GiveUp => {
            plane.observe.count(&destination.id, Count::Failed);
            trace("failed", json!(error));
            settle(plane.queue.bury(seq, &delivery, &error));
        }
    }
    plane.queued.notify_one();
}
