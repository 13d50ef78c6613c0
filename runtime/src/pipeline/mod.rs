//! The pipeline: takes ingested events off the durable queue, oldest first, and for each one
//! enforces the source's tracking plan, runs the source's insert functions, routes the results
//! to the source's enabled destinations (through each destination's insert function) and
//! queues the deliveries, removing the ingested record in the same transaction.
//!
//! - [`enforce`]: tracking plan enforcement;
//! - [`functions`]: insert functions in flight;
//! - [`route`]: the `integrations` object.

pub mod enforce;
pub mod functions;
pub mod route;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::AppState;
use crate::api::destinations::Destination;
use crate::api::sources::Source;
use crate::api::store::Kind;
use crate::observe::Count;
use crate::queue::{Delivery, Ingested, now_ms};
use functions::Chain;

/// Runs until `shutdown` turns true: one worker per source with events waiting, so that a
/// slow source (a function being retried, say) does not hold the others up. Stopping in the
/// middle of an event is safe: it stays queued and is processed again at the next start.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let plane = state.data_plane.clone();
    let mut workers: JoinSet<()> = JoinSet::new();
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        for source_id in plane.queue.sources_waiting() {
            let fresh = active
                .lock()
                .map(|mut a| a.insert(source_id.clone()))
                .unwrap_or(false);
            if fresh {
                let state = state.clone();
                let shutdown = shutdown.clone();
                // Frees the source for a new worker however this one ends (a panic included).
                let guard = Active {
                    set: active.clone(),
                    source_id,
                };
                workers.spawn(async move {
                    work(&state, &guard.source_id, shutdown).await;
                });
            }
        }
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_millis(500), plane.ingested.notified()) => {}
            Some(_) = workers.join_next() => {}
            _ = shutdown.changed() => {
                workers.shutdown().await;
                return;
            }
        }
    }
}

/// A source with a running worker; dropped when the worker ends.
struct Active {
    set: Arc<Mutex<HashSet<String>>>,
    source_id: String,
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Ok(mut a) = self.set.lock() {
            a.remove(&self.source_id);
        }
    }
}

/// Processes `source_id`'s waiting events, oldest first, until there are none.
async fn work(state: &AppState, source_id: &str, mut shutdown: watch::Receiver<bool>) {
    let plane = &state.data_plane;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let batch = match plane.queue.next_ingested(source_id, 256) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, source_id, "cannot read the ingest queue");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if batch.is_empty() {
            return;
        }
        // The configuration is read once per batch: changes apply from the next batch on.
        let wiring = tokio::select! {
            w = wiring(state, source_id) => w,
            _ = shutdown.changed() => return,
        };
        let wiring = match wiring {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, source_id, "cannot read a source's configuration");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for (seq, record) in batch {
            let result = tokio::select! {
                r = process(state, &wiring, seq, record) => r,
                _ = shutdown.changed() => return,
            };
            if let Err(e) = result {
                tracing::error!(error = %e, source_id, "pipeline stage failed; the event stays queued");
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
        }
    }
}

/// A source's configuration as the pipeline needs it.
struct Wiring {
    /// The source (`None` once deleted).
    source: Option<Source>,
    /// Its insert functions, in order.
    chain: Vec<functions::Ready>,
    /// Its enabled destinations, each with its own insert functions.
    destinations: Vec<(Destination, Vec<functions::Ready>)>,
}

async fn wiring(state: &AppState, source_id: &str) -> Result<Wiring, String> {
    let source: Option<Source> = state
        .store
        .get(Kind::Source, source_id)
        .map_err(|e| format!("{e:?}"))?;
    if source.is_none() {
        return Ok(Wiring {
            source,
            chain: Vec::new(),
            destinations: Vec::new(),
        });
    }
    let chain = functions::instances(state, source_id).await;
    let mut destinations = Vec::new();
    for destination in state
        .store
        .list::<Destination>(Kind::Destination, "")
        .map_err(|e| format!("{e:?}"))?
        .into_iter()
        .filter(|d| d.enabled && d.source_id == source_id)
    {
        let chain = functions::instances(state, &destination.id).await;
        destinations.push((destination, chain));
    }
    Ok(Wiring {
        source,
        chain,
        destinations,
    })
}

/// Everything that happens to one ingested event.
async fn process(
    state: &AppState,
    wiring: &Wiring,
    seq: u64,
    record: Ingested,
) -> Result<(), String> {
    let plane = &state.data_plane;
    let source_id = record.source_id.clone();
    let message_id = record.event["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(source) = &wiring.source else {
        // The source was deleted: nothing to do with its events.
        return complete(state, seq, &source_id, Vec::new(), Vec::new());
    };
    let mut forwarded = Vec::new();
    let enforced = enforce::enforce(
        &state.store,
        &plane.validators,
        &source_id,
        &source.schema_settings,
        record.event,
    )
    .map_err(|e| format!("{e:?}"))?;
    let settings = &source.schema_settings;
    if let Some(target) = settings.forwarding_violations_to.as_deref()
        && target != source_id
        && !enforced.violations.is_empty()
        // Violations of violation reports are not reported again (no loops between sources).
        && enforced.original["event"] != "Violation Generated"
    {
        for event in enforce::violation_events(&enforced, &source_id) {
            forwarded.push(Ingested {
                source_id: target.to_string(),
                event,
            });
        }
    }
    let detail = json!({"violations": enforced.violations, "omitted": enforced.omitted});
    let Some(event) = enforced.event else {
        plane
            .observe
            .stage(&source_id, &message_id, "enforce", "blocked", detail);
        if let Some(target) = settings.forwarding_blocked_events_to.as_deref()
            && target != source_id
        {
            forwarded.push(Ingested {
                source_id: target.to_string(),
                event: enforced.original,
            });
        }
        return complete(state, seq, &source_id, Vec::new(), forwarded);
    };
    let status = if enforced.violations.is_empty() {
        "validated"
    } else {
        "violations"
    };
    plane
        .observe
        .stage(&source_id, &message_id, "enforce", status, detail);

    let events = match functions::run(
        state,
        &wiring.chain,
        event,
        &source_id,
        &message_id,
        "function",
    )
    .await
    {
        Chain::Events(events) => events,
        Chain::Discarded(reason) => {
            plane.observe.discarded(&source_id, &reason);
            return complete(state, seq, &source_id, Vec::new(), forwarded);
        }
    };

    let mut deliveries = Vec::new();
    for (destination, chain) in &wiring.destinations {
        for event in &events {
            if !route::wants(event, destination) {
                plane.observe.count(&destination.id, Count::Filtered);
                plane.observe.stage(
                    &source_id,
                    &message_id,
                    "route",
                    "filtered",
                    json!({"destinationId": destination.id}),
                );
                continue;
            }
            let out = match functions::run(
                state,
                chain,
                event.clone(),
                &source_id,
                &message_id,
                "destination-function",
            )
            .await
            {
                Chain::Events(out) => out,
                Chain::Discarded(_) => Vec::new(),
            };
            if out.is_empty() {
                plane.observe.count(&destination.id, Count::Dropped);
            }
            for e in out {
                plane.observe.stage(
                    &source_id,
                    &message_id,
                    "route",
                    "routed",
                    json!({"destinationId": destination.id}),
                );
                let now = now_ms();
                deliveries.push(Delivery {
                    destination_id: destination.id.clone(),
                    source_id: source_id.clone(),
                    event: e,
                    attempts: 0,
                    first_at_ms: now,
                    next_at_ms: now,
                    last_error: None,
                });
            }
        }
    }
    complete(state, seq, &source_id, deliveries, forwarded)
}

fn complete(
    state: &AppState,
    seq: u64,
    source_id: &str,
    deliveries: Vec<Delivery>,
    forwarded: Vec<Ingested>,
) -> Result<(), String> {
    let plane = &state.data_plane;
    plane
        .queue
        .complete_ingested(seq, source_id, &deliveries, &forwarded)
        .map_err(|e| e.to_string())?;
    for f in &forwarded {
        plane.observe.ingested(&f.source_id, &f.event);
    }
    if !forwarded.is_empty() {
        plane.ingested.notify_one();
    }
    if !deliveries.is_empty() {
        plane.queued.notify_one();
    }
    Ok(())
}
