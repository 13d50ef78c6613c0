//! What one source's events go through, a batch at a time, on a blocking thread: the tracking
//! plan, the source's insert functions (one call per event, see [`super::functions`]), routing by
//! `integrations`, each destination's insert functions. The result is what to make durable
//! before the batch's log position is committed.

use serde_json::{Map, Value, json};

use super::enforce::{self, Enforced};
use super::functions::{self, ChainStage, Fate, Run};
use super::route;
use super::wiring::{Route, Wiring};
use crate::dataplane::event::{Batch, Delivery, Event, Head};
use crate::dataplane::observe::{Count, StageName, Status};
use crate::dataplane::parked::Held;
use crate::dataplane::{DataPlane, now_ms};
use crate::workspace::SchemaSettings;

/// What a batch of a source's events produced.
#[derive(Default)]
pub struct Output {
    /// Events to deliver.
    pub deliveries: Vec<Delivery>,
    /// Events for other sources (violation reports, blocked events).
    pub forwarded: Vec<Batch>,
    /// Events to run again later (a function asked for a retry).
    pub held: Vec<Held>,
}

impl Output {
    /// Adds `other`'s results to these.
    pub fn extend(&mut self, other: Output) {
        self.deliveries.extend(other.deliveries);
        self.forwarded.extend(other.forwarded);
        self.held.extend(other.held);
    }
}

/// Runs `events` of `wiring`'s source; `attempts` is how many times they already went
/// through the functions (0 for fresh events).
pub fn process(plane: &DataPlane, wiring: &Wiring, events: Vec<Event>, attempts: u32) -> Output {
    let mut out = Output::default();
    let Some(source) = &wiring.source else {
        // The source was deleted: nothing to do with its events.
        return out;
    };
    let events = match &wiring.plan {
        Some(_) => enforce_all(plane, wiring, events, &mut out),
        None => {
            for e in &events {
                plane.observe.stage(
                    &source.id,
                    &e.message_id,
                    StageName::Enforce,
                    Status::Validated,
                    || json!({"violations": [], "omitted": []}),
                );
            }
            events
        }
    };
    let ingested = events.clone();
    let run = Run {
        source_id: &source.id,
        stage: ChainStage::Source,
        last_try: attempts + 1 >= plane.config.function_attempts,
    };
    let fates = functions::run(plane, &wiring.chain, events, run);
    let mut survivors = Vec::new();
    for (fate, input) in fates.into_iter().zip(ingested) {
        match fate {
            Fate::Events(events) => survivors.extend(events),
            Fate::Discarded(reason) => plane.observe.discarded(&source.id, &reason),
            Fate::Retry(reason) => match hold(plane, &source.id, input, attempts + 1) {
                Some(held) => out.held.push(held),
                None => plane.observe.discarded(&source.id, &reason),
            },
        }
    }
    for route in &wiring.routes {
        route_to(plane, &source.id, route, &survivors, &mut out);
    }
    out
}

/// `event` held for another run, unless its attempts are used up.
fn hold(plane: &DataPlane, source_id: &str, event: Event, attempts: u32) -> Option<Held> {
    if attempts >= plane.config.function_attempts {
        return None;
    }
    let delay = crate::dataplane::deliver::retry::backoff(
        attempts,
        plane.config.backoff_base,
        plane.config.backoff_max,
    )
    .min(std::time::Duration::from_secs(30));
    Some(Held {
        source_id: source_id.to_string(),
        kind: event.kind.as_str().to_string(),
        event: event.text().to_string(),
        message_id: event.message_id,
        attempts,
        next_at_ms: now_ms() + delay.as_millis() as u64,
    })
}

/// The plan's verdict on each event: those that go on, re-serialised (enforcement records
/// what it did in `context.protocols`).
fn enforce_all(
    plane: &DataPlane,
    wiring: &Wiring,
    events: Vec<Event>,
    out: &mut Output,
) -> Vec<Event> {
    let (Some(source), Some(plan)) = (&wiring.source, &wiring.plan) else {
        return events;
    };
    let settings = &source.schema_settings;
    let mut passed = Vec::with_capacity(events.len());
    for event in events {
        let value = match serde_json::from_slice::<Value>(&event.json) {
            Ok(value) => value,
            // Ingestion wrote these bytes, so this is a bug or a damaged record: say so.
            Err(e) => {
                let detail = || json!({"error": format!("the event is not JSON: {e}")});
                plane.observe.stage(
                    &source.id,
                    &event.message_id,
                    StageName::Enforce,
                    Status::Error,
                    detail,
                );
                plane.observe.discarded(&source.id, "unreadable");
                continue;
            }
        };
        let enforced = enforce::enforce(plan, settings, value);
        forward_violations(&source.id, settings, &enforced, out);
        let detail = || json!({"violations": enforced.violations, "omitted": enforced.omitted});
        let Some(kept) = &enforced.event else {
            plane.observe.stage(
                &source.id,
                &event.message_id,
                StageName::Enforce,
                Status::Blocked,
                detail,
            );
            if let Some(target) = settings.forwarding_blocked_events_to.as_deref()
                && target != source.id
            {
                out.forwarded.push(Batch {
                    source_id: target.to_string(),
                    events: vec![event],
                });
            }
            continue;
        };
        let status = if enforced.violations.is_empty() {
            Status::Validated
        } else {
            Status::Violations
        };
        plane.observe.stage(
            &source.id,
            &event.message_id,
            StageName::Enforce,
            status,
            detail,
        );
        passed.push(Event {
            json: serde_json::to_vec(kept).unwrap_or_default().into(),
            ..event
        });
    }
    passed
}

fn forward_violations(
    source_id: &str,
    settings: &SchemaSettings,
    enforced: &Enforced,
    out: &mut Output,
) {
    let Some(target) = settings.forwarding_violations_to.as_deref() else {
        return;
    };
    // Violations of violation reports are not reported again (no loops between sources).
    if target == source_id
        || enforced.violations.is_empty()
        || enforced.original["event"] == "Violation Generated"
    {
        return;
    }
    let events = enforce::violation_events(enforced, source_id)
        .into_iter()
        .filter_map(|v| to_event(&v))
        .collect();
    out.forwarded.push(Batch {
        source_id: target.to_string(),
        events,
    });
}

fn to_event(value: &Value) -> Option<Event> {
    let kind = crate::dataplane::event::EventType::parse(value["type"].as_str()?)?;
    Some(Event {
        message_id: value["messageId"].as_str().unwrap_or_default().to_string(),
        kind,
        json: serde_json::to_vec(value).ok()?.into(),
    })
}

/// The `integrations` of `event`, read only when the text mentions them.
fn integrations(event: &Event) -> Option<Map<String, Value>> {
    let text = event.text();
    if !text.contains("\"integrations\"") {
        return None;
    }
    Head::read(text).ok()?.integrations
}

/// The events `route`'s destination wants, through its insert functions, into `out`.
fn route_to(plane: &DataPlane, source_id: &str, route: &Route, events: &[Event], out: &mut Output) {
    let id = &route.destination.id;
    let mut wanted = Vec::with_capacity(events.len());
    for event in events {
        if route::wants(integrations(event).as_ref(), &route.destination) {
            wanted.push(event.clone());
        } else {
            plane.observe.count(id, Count::Filtered);
            plane.observe.stage(
                source_id,
                &event.message_id,
                StageName::Route,
                Status::Filtered,
                || json!({"destinationId": id}),
            );
        }
    }
    let fates = if route.chain.is_empty() {
        wanted.into_iter().map(|e| Fate::Events(vec![e])).collect()
    } else {
        let run = Run {
            source_id,
            stage: ChainStage::Destination,
            last_try: true,
        };
        functions::run(plane, &route.chain, wanted, run)
    };
    for fate in fates {
        let Fate::Events(events) = fate else {
            plane.observe.count(id, Count::Dropped);
            continue;
        };
        if events.is_empty() {
            plane.observe.count(id, Count::Dropped);
        }
        for event in events {
            plane.observe.stage(
                source_id,
                &event.message_id,
                StageName::Route,
                Status::Routed,
                || json!({"destinationId": id}),
            );
            out.deliveries.push(Delivery {
                destination_id: id.clone(),
                source_id: source_id.to_string(),
                event,
            });
        }
    }
}
