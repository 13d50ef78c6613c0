//! Prometheus metrics: counters, gauges and histograms recorded by the HTTP layer and the data
//! plane's stages, rendered in Prometheus's text format by `GET /metrics`.
//!
//! One recorder per [`super::Observe`], that is per server, rather than the `metrics` crate's
//! process-global recorder: tests (and anything embedding sluice) start several servers in one
//! process, and a global recorder would add their counts together. Every recording therefore
//! runs inside [`metrics::with_local_recorder`] with this server's recorder; the macros stay
//! the usual `counter!`/`gauge!`/`histogram!`.
//!
//! Naming follows Prometheus's conventions: `sluice_` prefix, base units (seconds), counters
//! end in `_total`, ids are labels (`source_id`, `destination_id`, `function_id`), HTTP routes
//! are the matched path template (`/sources/{id}`), never the raw path, so a label's values
//! stay bounded.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use metrics_util::MetricKindMask;

use super::Status;

/// HTTP requests, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "sluice_http_requests_total";
/// HTTP request latency until the response's head, by `method` and `route`.
pub const HTTP_DURATION: &str = "sluice_http_request_duration_seconds";
/// Events accepted by the tracking API (after deduplication), by `source_id`.
pub const INGESTED: &str = "sluice_events_ingested_total";
/// Events blocked by a tracking plan, by `source_id`.
pub const BLOCKED: &str = "sluice_events_blocked_total";
/// Events a source's insert functions discarded, by `source_id` and `reason`.
pub const DISCARDED: &str = "sluice_events_discarded_total";
/// Events a destination accepted, by `source_id` and `destination_id`.
pub const DELIVERED: &str = "sluice_events_delivered_total";
/// Events given up on (dead letters), by `source_id` and `destination_id`.
pub const FAILED: &str = "sluice_events_failed_total";
/// Failed delivery attempts that will be retried, by `source_id` and `destination_id`.
pub const RETRIED: &str = "sluice_delivery_retries_total";
/// Insert function invocations in the pipeline, by `function_id` and `outcome`.
pub const INVOCATIONS: &str = "sluice_function_invocations_total";
/// Fuel one invocation consumed, by `function_id`.
pub const FUEL: &str = "sluice_function_fuel_consumed";
/// Wall-clock time of one invocation, by `function_id`.
pub const FUNCTION_DURATION: &str = "sluice_function_duration_seconds";
/// Records pending per source (waiting for the pipeline or for delivery), read at scrape time.
pub const QUEUE_PENDING: &str = "sluice_queue_pending_events";
/// Sources with events waiting for the pipeline, read at scrape time.
pub const SOURCES_WAITING: &str = "sluice_queue_sources_waiting";
/// A source's pipeline wiring built (at its first event, then after each configuration
/// change), by `source_id`.
pub const WIRINGS_BUILT: &str = "sluice_pipeline_wirings_built_total";

/// Where a tracking request's time went before its answer, by `phase` ([`IngestPhase`]).
pub const INGEST_PHASE: &str = "sluice_ingest_phase_seconds";

/// The parts of a tracking request's handling that [`INGEST_PHASE`] times; what is left of
/// [`HTTP_DURATION`] is reading the body and writing the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestPhase {
    /// Decoding, authentication, parsing and normalising the events (on the request's task).
    Parse,
    /// The `messageId` check of every event.
    Dedup,
    /// Waiting for the pipeline to catch up (`pipeline_lead`).
    Pace,
    /// The append to the ingest log until its group commit's `fdatasync` answered.
    Append,
}

impl IngestPhase {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestPhase::Parse => "parse",
            IngestPhase::Dedup => "dedup",
            IngestPhase::Pace => "pace",
            IngestPhase::Append => "append",
        }
    }
}

/// Tracking requests that waited for the pipeline to catch up (`pipeline_lead`).
pub const PACED: &str = "sluice_ingest_paced_total";

/// HTTP latency buckets, seconds: 1 ms to 10 s.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Function time buckets, seconds: 10 us (a warm call) to the default deadline and past it.
const FUNCTION_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];
/// Ingestion phase buckets, seconds: 50 us (a sync on a fast disk) to a full pacing wait.
const INGEST_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
    0.1, 0.25, 1.0,
];
/// Fuel buckets: a trivial call burns thousands of units, the default budget is 50 million.
const FUEL_BUCKETS: &[f64] = &[1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 5e7, 1e8];

/// Scrape-time gauges of a source that stopped being reported (it was deleted) leave the
/// output after this long, instead of showing its last depth for ever.
const GAUGE_IDLE: Duration = Duration::from_secs(60);

/// A server's metrics. Recording is lock-free after a series' first use.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh recorder with sluice's series described and histogram buckets set.
    pub fn new() -> Metrics {
        let recorder = builder()
            .unwrap_or_else(|e| {
                // Only an empty bucket list fails, and ours are constants: summaries instead.
                tracing::error!(error = %e, "metric buckets refused; histograms become summaries");
                PrometheusBuilder::new()
            })
            .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics { recorder, handle };
        metrics.record(describe);
        metrics
    }

    fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// One HTTP request answered: `route` is the matched path template (or `unmatched`).
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.record(|| {
            let (method, route) = (method.to_string(), route.to_string());
            counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
                .increment(1);
            histogram!(HTTP_DURATION, "method" => method, "route" => route).record(elapsed);
        });
    }

    /// A tracking request spent `elapsed` in `phase`. Cost: one histogram sample.
    pub fn ingest_phase(&self, phase: IngestPhase, elapsed: Duration) {
        self.record(|| histogram!(INGEST_PHASE, "phase" => phase.as_str()).record(elapsed));
    }

    /// A tracking request waited for the pipeline before it was stored.
    pub fn paced(&self) {
        self.record(|| counter!(PACED).increment(1));
    }

    /// `n` events accepted for `source_id`.
    pub fn ingested(&self, source_id: &str, n: u64) {
        self.count_n(INGESTED, &[("source_id", source_id)], n);
    }

    /// `source_id`'s pipeline wiring was built.
    pub fn wiring_built(&self, source_id: &str) {
        self.count(WIRINGS_BUILT, &[("source_id", source_id)]);
    }

    /// An event of `source_id` blocked by its tracking plan.
    pub fn blocked(&self, source_id: &str) {
        self.count(BLOCKED, &[("source_id", source_id)]);
    }

    /// An event of `source_id` discarded by an insert function, for `reason`.
    pub fn discarded(&self, source_id: &str, reason: &str) {
        self.count(DISCARDED, &[("source_id", source_id), ("reason", reason)]);
    }

    /// `n` delivery attempts' ends: `delivered`, `retrying` or `failed` (others are ignored).
    pub fn delivery(&self, source_id: &str, destination_id: &str, status: Status, n: u64) {
        let name = match status {
            Status::Delivered => DELIVERED,
            Status::Failed => FAILED,
            Status::Retrying => RETRIED,
            _ => return,
        };
        self.count_n(
            name,
            &[("source_id", source_id), ("destination_id", destination_id)],
            n,
        );
    }

    /// One invocation of `function_id`: its outcome (`forward`, `drop`, `fan-out`, an error
    /// kind such as `retry-error`, or an engine error code such as `out-of-fuel`), fuel and
    /// time.
    pub fn invoked(&self, function_id: &str, outcome: &str, fuel: u64, duration: Duration) {
        self.record(|| {
            let id = function_id.to_string();
            counter!(INVOCATIONS, "function_id" => id.clone(), "outcome" => outcome.to_string())
                .increment(1);
            // Fuel counts fit an f64 exactly well past any budget (2^53).
            histogram!(FUEL, "function_id" => id.clone()).record(fuel as f64);
            histogram!(FUNCTION_DURATION, "function_id" => id).record(duration);
        });
    }

    /// Sets the scrape-time queue gauges: records pending per source, and how many sources
    /// have events waiting for the pipeline.
    pub fn queue(&self, pending: &[(String, usize)], sources_waiting: usize) {
        self.record(|| {
            for (source_id, n) in pending {
                gauge!(QUEUE_PENDING, "source_id" => source_id.clone()).set(*n as f64);
            }
            gauge!(SOURCES_WAITING).set(sources_waiting as f64);
        });
    }

    /// Everything, in Prometheus's text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Moves recorded histogram samples into their buckets. Rendering does it too; between
    /// scrapes this keeps the sample buffers from growing (called every few seconds).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn count(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.count_n(name, labels, 1);
    }

    fn count_n(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        self.record(|| {
            let labels: Vec<metrics::Label> = labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, v.to_string()))
                .collect();
            counter!(name, labels).increment(n);
        });
    }
}

fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(FUNCTION_DURATION.into()), FUNCTION_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(FUEL.into()), FUEL_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(INGEST_PHASE.into()), INGEST_BUCKETS)
}

/// The `# HELP` lines.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (until the response head)."
    );
    describe_histogram!(
        INGEST_PHASE,
        Unit::Seconds,
        "Time a tracking request spent in each phase before its answer: parse, dedup, pace (waiting for the pipeline), append (until the fdatasync)."
    );
    describe_counter!(
        PACED,
        "Tracking requests that waited for the pipeline to catch up (pipeline_lead) before they were stored."
    );
    describe_counter!(
        INGESTED,
        "Events accepted by the tracking API, after deduplication."
    );
    describe_counter!(BLOCKED, "Events blocked by the source's tracking plan.");
    describe_counter!(
        DISCARDED,
        "Events discarded by a source's insert functions, by reason."
    );
    describe_counter!(DELIVERED, "Events delivered to a destination.");
    describe_counter!(
        FAILED,
        "Events given up on for a destination (dead letters)."
    );
    describe_counter!(RETRIED, "Failed delivery attempts that will be retried.");
    describe_counter!(
        INVOCATIONS,
        "Insert function invocations in the pipeline, by outcome."
    );
    describe_histogram!(FUEL, "Fuel consumed by one insert function invocation.");
    describe_histogram!(
        FUNCTION_DURATION,
        Unit::Seconds,
        "Wall-clock time of one insert function invocation."
    );
    describe_gauge!(
        QUEUE_PENDING,
        "Events pending for a source: waiting for the pipeline or for delivery."
    );
    describe_gauge!(
        SOURCES_WAITING,
        "Sources with events waiting for the pipeline."
    );
    describe_counter!(
        WIRINGS_BUILT,
        "Pipeline wirings built for a source: at its first event, then once per configuration change."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_recorders_never_see_each_others_counts() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.ingested("s1", 2);
        b.ingested("s1", 1);
        assert!(
            a.render()
                .contains(r#"sluice_events_ingested_total{source_id="s1"} 2"#),
            "{}",
            a.render()
        );
        assert!(
            b.render()
                .contains(r#"sluice_events_ingested_total{source_id="s1"} 1"#)
        );
    }

    #[test]
    fn histograms_have_buckets_and_routes_are_labels() {
        let m = Metrics::new();
        m.http_request("GET", "/sources/{id}", 200, Duration::from_millis(3));
        m.invoked("f", "forward", 12_000, Duration::from_micros(40));
        m.delivery("s", "d", Status::Delivered, 1);
        m.delivery("s", "d", Status::Routed, 1);
        m.queue(&[("s".into(), 7)], 1);
        m.ingest_phase(IngestPhase::Append, Duration::from_micros(400));
        let text = m.render();
        for expected in [
            r#"sluice_http_requests_total{method="GET",route="/sources/{id}",status="200"} 1"#,
            r#"sluice_http_request_duration_seconds_bucket{method="GET",route="/sources/{id}",le="0.005"} 1"#,
            r#"sluice_function_invocations_total{function_id="f",outcome="forward"} 1"#,
            r#"sluice_function_fuel_consumed_bucket{function_id="f",le="30000"} 1"#,
            r#"sluice_function_duration_seconds_count{function_id="f"} 1"#,
            r#"sluice_events_delivered_total{source_id="s",destination_id="d"} 1"#,
            r#"sluice_queue_pending_events{source_id="s"} 7"#,
            "sluice_queue_sources_waiting 1",
            r#"sluice_ingest_phase_seconds_bucket{phase="append",le="0.0005"} 1"#,
            "# HELP sluice_http_requests_total",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
        assert!(!text.contains("routed"), "{text}");
    }
}
