//! Seeing what happened, in memory and bounded: the event debugger (recent events per source
//! with what each stage did, plus a live feed), delivery metrics per destination per minute,
//! and function logs from real runs. Nothing here is needed to deliver an event, so it is not
//! persisted: a restart starts these views afresh.
//!
//! - [`changes`]: what a function changed in an event, field by field;
//! - [`metrics`]: the Prometheus metrics. The stages report to the debugger, and the
//!   debugger's vocabulary (stage `enforce` status `blocked`, stage `deliver` status
//!   `delivered`...) is what the event counters are derived from, so the stages need no second
//!   set of calls and the two views cannot disagree. Only function invocations (outcome, fuel,
//!   time) are reported on their own, through [`Observe::invoked`].

pub mod changes;
pub mod metrics;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use bytes::Bytes;

use super::event::Event;
use super::now_ms;
use crate::engine::{Invocation, Outcome};
use metrics::Metrics;

/// The stages an event goes through, as the debugger names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StageName {
    /// Accepted by the tracking API.
    Ingest,
    /// The tracking plan.
    Enforce,
    /// A source insert function.
    Function,
    /// A destination insert function.
    DestinationFunction,
    /// Routing by `integrations`.
    Route,
    /// A delivery attempt.
    Deliver,
}

/// What a stage did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Ingested.
    Accepted,
    /// The plan found nothing wrong.
    Validated,
    /// The plan found violations; the event goes on.
    Violations,
    /// The plan blocked the event.
    Blocked,
    /// A function forwarded the event.
    Forward,
    /// A function dropped the event.
    Drop,
    /// A function turned the event into several.
    FanOut,
    /// It failed for good (a function's error, an unreadable event).
    Error,
    /// It failed and will be tried again.
    Retrying,
    /// Sent on to a destination.
    Routed,
    /// Not sent to a destination, by the event's `integrations`.
    Filtered,
    /// The destination accepted it.
    Delivered,
    /// Delivery was given up (dead letters).
    Failed,
}

/// What one stage did to one event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Which stage.
    pub stage: StageName,
    /// What happened.
    pub status: Status,
    /// Details (violations, the error, the destination...).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// When, RFC 3339.
    #[serde(rename = "at", serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at_ms: u64,
}

/// Milliseconds since the epoch, written as RFC 3339 (only when a trace is read).
fn rfc3339<S: serde::Serializer>(at_ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(*at_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    s.serialize_str(&at)
}

/// A recent event of a source and its stages.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTrace {
    /// The event's `messageId`.
    pub message_id: String,
    /// The source.
    pub source_id: String,
    /// The event as ingested.
    #[schema(value_type = Object)]
    pub event: Value,
    /// What each stage did, in order.
    pub stages: Vec<Stage>,
}

/// One update of the live feed: an event's new stage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdate {
    /// The source.
    pub source_id: String,
    /// The event.
    pub message_id: String,
    /// The event as ingested (on its `ingest` stage only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
    /// The stage.
    pub stage: Stage,
}

/// Counts of one destination over some minutes.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounts {
    /// Accepted by the destination.
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub retried: u64,
    /// Given up (dead letters).
    pub failed: u64,
    /// Dropped on purpose (the destination's insert function, or the destination went away).
    pub dropped: u64,
    /// Not sent to this destination because of the event's `integrations`.
    pub filtered: u64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// See [`DeliveryCounts::delivered`].
    Delivered,
    /// See [`DeliveryCounts::retried`].
    Retried,
    /// See [`DeliveryCounts::failed`].
    Failed,
    /// See [`DeliveryCounts::dropped`].
    Dropped,
    /// See [`DeliveryCounts::filtered`].
    Filtered,
}

/// A line a function logged while processing a real event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionLog {
    /// When, RFC 3339.
    pub at: String,
    /// The insert function instance that ran.
    pub instance_id: String,
    /// The event it processed.
    pub message_id: String,
    /// `trace` ... `error`.
    pub level: String,
    /// The line.
    pub message: String,
}

/// An event's trace as kept: its bytes (shared with the pipeline, parsed only when read).
struct Trace {
    message_id: String,
    event: Bytes,
    stages: Vec<Stage>,
}

/// A source's recent traces, oldest first, with an index by `messageId` so that recording a
/// stage costs a hash lookup, not a scan.
#[derive(Default)]
struct Ring {
    traces: VecDeque<Trace>,
    /// The absolute number of `traces[0]`.
    base: u64,
    index: HashMap<String, u64>,
}

impl Ring {
    fn push(&mut self, trace: Trace, cap: usize) {
        let at = self.base + self.traces.len() as u64;
        self.index.insert(trace.message_id.clone(), at);
        self.traces.push_back(trace);
        while self.traces.len() > cap {
            if let Some(old) = self.traces.pop_front()
                && self.index.get(&old.message_id) == Some(&self.base)
            {
                self.index.remove(&old.message_id);
            }
            self.base += 1;
        }
    }

    fn find(&mut self, message_id: &str) -> Option<&mut Trace> {
        let at = *self.index.get(message_id)?;
        let slot = usize::try_from(at.checked_sub(self.base)?).ok()?;
        self.traces.get_mut(slot)
    }
}

/// The in-memory views. One per process.
pub struct Observe {
    events_per_source: usize,
    logs_per_function: usize,
    events: Mutex<HashMap<String, Ring>>,
    live: broadcast::Sender<LiveUpdate>,
    /// Per destination, per minute since the epoch.
    metrics: Mutex<HashMap<String, BTreeMap<u64, DeliveryCounts>>>,
    logs: Mutex<HashMap<String, VecDeque<FunctionLog>>>,
    /// Events discarded by source insert functions, by reason, per source.
    discarded: Mutex<HashMap<String, BTreeMap<String, u64>>>,
    /// The Prometheus metrics (`GET /metrics`).
    pub prometheus: Metrics,
}

/// Minutes of delivery metrics kept per destination.
const METRIC_MINUTES: u64 = 24 * 60;

impl Observe {
    /// Keeps `events_per_source` recent events per source and `logs_per_function` log lines
    /// per function.
    pub fn new(events_per_source: usize, logs_per_function: usize) -> Observe {
        let (live, _) = broadcast::channel(1024);
        Observe {
            events_per_source,
            logs_per_function,
            events: Mutex::new(HashMap::new()),
            live,
            metrics: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            discarded: Mutex::new(HashMap::new()),
            prometheus: Metrics::new(),
        }
    }

    /// Records that `events` were accepted by `source_id`. Cost: one lock and one counter
    /// for all of them, a hash insert and a clone of the bytes' handle each; events are
    /// parsed only for live subscribers.
    pub fn ingested(&self, source_id: &str, events: &[Event]) {
        self.prometheus.ingested(source_id, events.len() as u64);
        let at_ms = now_ms();
        let accepted = || Stage {
            stage: StageName::Ingest,
            status: Status::Accepted,
            detail: Value::Null,
            at_ms,
        };
        if let Ok(mut rings) = self.events.lock() {
            let ring = rings.entry(source_id.to_string()).or_default();
            for event in events {
                let trace = Trace {
                    message_id: event.message_id.clone(),
                    event: event.json.clone(),
                    stages: vec![accepted()],
                };
                ring.push(trace, self.events_per_source);
            }
        }
        if self.live.receiver_count() == 0 {
            return;
        }
        for event in events {
            let _ = self.live.send(LiveUpdate {
                source_id: source_id.to_string(),
                message_id: event.message_id.clone(),
                event: serde_json::from_slice(&event.json).ok(),
                stage: accepted(),
            });
        }
    }

    /// Records what stage `name` did to event `message_id` of `source_id`. Cost: a lock and
    /// a hash lookup; `detail` is built only for an event still in the debugger's window or
    /// when someone watches the live feed.
    pub fn stage(
        &self,
        source_id: &str,
        message_id: &str,
        name: StageName,
        status: Status,
        detail: impl FnOnce() -> Value,
    ) {
        if name == StageName::Enforce && status == Status::Blocked {
            self.prometheus.blocked(source_id);
        }
        self.record(source_id, message_id, name, status, detail);
    }

    /// Records the end of one attempt to deliver `message_ids` (events of `source_id`) to
    /// `destination_id`: the `deliver` stage of each, and the delivery counters derived from
    /// it (one update for the batch).
    pub fn delivery(
        &self,
        source_id: &str,
        destination_id: &str,
        status: Status,
        message_ids: &[&str],
        detail: impl Fn() -> Value,
    ) {
        let n = message_ids.len() as u64;
        self.prometheus
            .delivery(source_id, destination_id, status, n);
        for id in message_ids {
            self.record(source_id, id, StageName::Deliver, status, &detail);
        }
    }

    fn record(
        &self,
        source_id: &str,
        message_id: &str,
        name: StageName,
        status: Status,
        detail: impl FnOnce() -> Value,
    ) {
        let live = self.live.receiver_count() > 0;
        let mut detail = Some(detail);
        let mut kept = None;
        if let Ok(mut events) = self.events.lock()
            && let Some(trace) = events.get_mut(source_id).and_then(|r| r.find(message_id))
        {
            let built = stage(name, status, detail.take().map_or(Value::Null, |d| d()));
            if live {
                kept = Some(built.clone());
            }
            trace.stages.push(built);
        }
        if !live {
            return;
        }
        let stage =
            kept.unwrap_or_else(|| stage(name, status, detail.take().map_or(Value::Null, |d| d())));
        let _ = self.live.send(LiveUpdate {
            source_id: source_id.to_string(),
            message_id: message_id.to_string(),
            event: None,
            stage,
        });
    }

    /// The recent events of `source_id`, newest first.
    pub fn recent(&self, source_id: &str, max: usize) -> Vec<EventTrace> {
        let Ok(events) = self.events.lock() else {
            return Vec::new();
        };
        let Some(ring) = events.get(source_id) else {
            return Vec::new();
        };
        ring.traces
            .iter()
            .rev()
            .take(max)
            .map(|t| EventTrace {
                message_id: t.message_id.clone(),
                source_id: source_id.to_string(),
                event: serde_json::from_slice(&t.event).unwrap_or(Value::Null),
                stages: t.stages.clone(),
            })
            .collect()
    }

    /// A receiver of every later stage update (all sources; filter by `source_id`).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.live.subscribe()
    }

    /// Bumps a destination's counter for this minute.
    pub fn count(&self, destination_id: &str, what: Count) {
        self.count_many(destination_id, what, 1);
    }

    /// Adds `n` to a destination's counter for this minute (one lock for a batch).
    pub fn count_many(&self, destination_id: &str, what: Count, n: u64) {
        if n == 0 {
            return;
        }
        let minute = now_ms() / 60_000;
        if let Ok(mut metrics) = self.metrics.lock() {
            let per = metrics.entry(destination_id.to_string()).or_default();
            let c = per.entry(minute).or_default();
            match what {
                Count::Delivered => c.delivered += n,
                Count::Retried => c.retried += n,
                Count::Failed => c.failed += n,
                Count::Dropped => c.dropped += n,
                Count::Filtered => c.filtered += n,
            }
            while per
                .first_key_value()
                .is_some_and(|(m, _)| *m + METRIC_MINUTES < minute)
            {
                per.pop_first();
            }
        }
    }

    /// A destination's counts over the last `minutes` minutes (this one included).
    pub fn counts(&self, destination_id: &str, minutes: u64) -> DeliveryCounts {
        let now = now_ms() / 60_000;
        let from = now.saturating_sub(minutes.saturating_sub(1));
        let mut total = DeliveryCounts::default();
        if let Ok(metrics) = self.metrics.lock()
            && let Some(per) = metrics.get(destination_id)
        {
            for c in per.range(from..=now).map(|(_, c)| c) {
                total.delivered += c.delivered;
                total.retried += c.retried;
                total.failed += c.failed;
                total.dropped += c.dropped;
                total.filtered += c.filtered;
            }
        }
        total
    }

    /// Keeps a function's log lines (the oldest go first past the bound).
    pub fn log(&self, function_id: &str, lines: Vec<FunctionLog>) {
        if lines.is_empty() {
            return;
        }
        if let Ok(mut logs) = self.logs.lock() {
            let list = logs.entry(function_id.to_string()).or_default();
            list.extend(lines);
            while list.len() > self.logs_per_function {
                list.pop_front();
            }
        }
    }

    /// A function's recent log lines, oldest first.
    pub fn logs(&self, function_id: &str) -> Vec<FunctionLog> {
        self.logs
            .lock()
            .ok()
            .and_then(|l| l.get(function_id).map(|l| l.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Counts an event a source's insert function discarded, under its reason.
    pub fn discarded(&self, source_id: &str, reason: &str) {
        self.prometheus.discarded(source_id, reason);
        if let Ok(mut d) = self.discarded.lock() {
            *d.entry(source_id.to_string())
                .or_default()
                .entry(reason.to_string())
                .or_default() += 1;
        }
    }

    /// A source's discarded counts by reason.
    pub fn discarded_counts(&self, source_id: &str) -> BTreeMap<String, u64> {
        self.discarded
            .lock()
            .ok()
            .and_then(|d| d.get(source_id).cloned())
            .unwrap_or_default()
    }

    /// Records one invocation of `function_id` in the metrics: its outcome, fuel and time.
    pub fn invoked(&self, function_id: &str, invocation: &Invocation) {
        self.prometheus.invoked(
            function_id,
            outcome_name(&invocation.result),
            invocation.fuel_used,
            invocation.duration,
        );
    }
}

fn outcome_name(result: &Result<Outcome, crate::engine::InvokeError>) -> &'static str {
    match result {
        Ok(Outcome::Forward { .. }) => "forward",
        Ok(Outcome::Drop) => "drop",
        Ok(Outcome::FanOut { .. }) => "fan-out",
        Ok(Outcome::Error { kind, .. }) => kind,
        Err(err) => err.code(),
    }
}

fn stage(name: StageName, status: Status, detail: Value) -> Stage {
    Stage {
        stage: name,
        status,
        detail,
        at_ms: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str) -> Event {
        Event {
            message_id: id.into(),
            kind: crate::dataplane::event::EventType::Track,
            json: Bytes::from(json!({"messageId": id}).to_string()),
        }
    }

    #[test]
    fn traces_are_bounded_and_stages_attach() {
        let o = Observe::new(2, 2);
        o.ingested("s", &[event("a"), event("b"), event("c")]);
        o.stage("s", "c", StageName::Enforce, Status::Validated, || {
            Value::Null
        });
        // An event out of the window keeps nothing, and its detail is never built.
        o.stage("s", "a", StageName::Enforce, Status::Validated, || {
            panic!("built for an event out of the window")
        });
        let recent = o.recent("s", 10);
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].message_id, "c");
        assert_eq!(recent[0].event["messageId"], "c");
        assert_eq!(recent[0].stages.len(), 2);
        assert_eq!(recent[1].stages.len(), 1);
        let stage = serde_json::to_value(&recent[0].stages[1]).unwrap();
        assert_eq!(stage["stage"], "enforce");
        assert_eq!(stage["status"], "validated");
        assert!(stage["at"].as_str().unwrap().ends_with('Z'), "{stage}");
        o.count("d", Count::Delivered);
        o.count("d", Count::Delivered);
        o.count("d", Count::Failed);
        let c = o.counts("d", 60);
        assert_eq!((c.delivered, c.failed), (2, 1));
    }
}
