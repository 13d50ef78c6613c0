//! Parked deliveries attempted again when due, grouped per destination into batches, each
//! settled as on a first attempt: delivered (the record goes), retried later with backoff
//! until the maximum age, or a dead letter.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::retry::Verdict;
use super::{DeliverError, bury, next_attempt, trace};
use crate::dataplane::destinations::Sink;
use crate::dataplane::observe::{Count, Status};
use crate::dataplane::parked::{Retry, when_due};
use crate::dataplane::{DataPlane, now_ms};

/// Parked retries with their keys.
type Keyed = Vec<(u64, Retry)>;

/// Runs until `shutdown` turns true.
pub async fn run(plane: Arc<DataPlane>, shutdown: watch::Receiver<bool>) {
    let p = plane.clone();
    when_due(&plane.retries_parked, shutdown, "deliveries", move || {
        let p = p.clone();
        async move { attempt_due(&p).await }
    })
    .await;
}

/// Attempts the due retries; when the next one will be due.
async fn attempt_due(plane: &Arc<DataPlane>) -> Result<Option<u64>, DeliverError> {
    let (due, next) = plane.parked.due_retries(now_ms(), 1000);
    // Per destination: its source and its due retries, in due order.
    let mut groups: Vec<(String, String, Keyed)> = Vec::new();
    for seq in due {
        let Some(retry) = plane.parked.retry(seq)? else {
            continue;
        };
        match groups
            .iter_mut()
            .find(|(d, _, _)| *d == retry.destination_id)
        {
            Some((_, _, list)) => list.push((seq, retry)),
            None => groups.push((
                retry.destination_id.clone(),
                retry.source_id.clone(),
                vec![(seq, retry)],
            )),
        }
    }
    let mut attempts = JoinSet::new();
    for (destination_id, source_id, retries) in groups {
        let wiring = plane.wirings.get(plane, &source_id).await?;
        let Some(route) = wiring.route(&destination_id) else {
            for (seq, retry) in retries {
                plane.observe.count(&destination_id, Count::Dropped);
                plane.parked.delivered(seq)?;
                plane.backlog.adjust(&retry.source_id, 0, 1);
            }
            continue;
        };
        let sink = route.sink.clone();
        let size = sink.batch_size().max(1);
        let mut rest = retries;
        while !rest.is_empty() {
            let batch: Keyed = rest.drain(..size.min(rest.len())).collect();
            let (plane, sink) = (plane.clone(), sink.clone());
            attempts.spawn(async move { again(&plane, sink.as_ref(), batch).await });
        }
    }
    while let Some(result) = attempts.join_next().await {
        result??;
    }
    Ok(next)
}

/// One more attempt at `batch`, and what follows for each.
async fn again(plane: &DataPlane, sink: &dyn Sink, batch: Keyed) -> Result<(), DeliverError> {
    let deliveries: Vec<_> = batch.iter().map(|(_, r)| r.delivery()).collect();
    let events: Vec<_> = deliveries.iter().map(|d| d.event.clone()).collect();
    let sent = sink.send(&events).await;
    for (index, ((seq, mut retry), delivery)) in batch.into_iter().zip(deliveries).enumerate() {
        let attempt = sent.of(index);
        let error = attempt.error.clone().unwrap_or_default();
        retry.attempts += 1;
        let n = retry.attempts;
        let id = delivery.destination_id.clone();
        match attempt.verdict {
            Verdict::Success => {
                trace(
                    plane,
                    std::slice::from_ref(&delivery),
                    n,
                    Status::Delivered,
                    None,
                );
                plane.observe.count(&id, Count::Delivered);
                plane.parked.delivered(seq)?;
                plane.backlog.adjust(&delivery.source_id, 0, 1);
            }
            Verdict::Retry { after } => match next_attempt(plane, retry.first_at_ms, n, after) {
                Some(at) => {
                    trace(
                        plane,
                        std::slice::from_ref(&delivery),
                        n,
                        Status::Retrying,
                        Some(&error),
                    );
                    plane.observe.count(&id, Count::Retried);
                    retry.next_at_ms = at;
                    retry.last_error = Some(error.clone());
                    plane.parked.reschedule(seq, &retry)?;
                }
                None => {
                    let error = format!("retries exhausted: {error}");
                    trace(
                        plane,
                        std::slice::from_ref(&delivery),
                        n,
                        Status::Failed,
                        Some(&error),
                    );
                    plane.observe.count(&id, Count::Failed);
                    bury(plane, Some(seq), &delivery, n, &error).await?;
                }
            },
            Verdict::GiveUp => {
                trace(
                    plane,
                    std::slice::from_ref(&delivery),
                    n,
                    Status::Failed,
                    Some(&error),
                );
                plane.observe.count(&id, Count::Failed);
                bury(plane, Some(seq), &delivery, n, &error).await?;
            }
        }
    }
    Ok(())
}
