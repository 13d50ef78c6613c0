//! Ingestion: Segment's HTTP Tracking API (`POST /v1/track|identify|page|screen|group|alias|batch`),
//! authenticated by a source's write key. Each request's new events become one record of the
//! ingest log; an answer of 200 means that record is on disk (its group commit's `fdatasync`).
//!
//! - [`encoding`]: `Content-Encoding` (gzip, deflate) decoded under the size limit;
//! - [`members`]: a JSON object's members, borrowed from the body (never a parsed tree);
//! - [`normalize`]: per-event validation and normalisation (the event's bytes are written there);
//! - [`dedup`]: `messageId`s seen per source;
//! - [`webhook`]: source functions' webhook (`POST /v1/functions/{sourceId}`): a request turned
//!   into events by the source's function, then stored as a batch is.

pub mod dedup;
pub mod encoding;
pub mod members;
pub mod normalize;
pub mod webhook;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::event::{Batch, Event, EventType};
use super::observe::metrics::IngestPhase;
use super::{DataPlane, PIPELINE, PIPELINE_WAIT};
use crate::log::LogError;
use crate::workspace::{Kind, Source};
use dedup::Claim;
use members::Members;
use normalize::{MAX_BATCH_EVENTS, MAX_REQUEST_BYTES, Shared, normalize};

/// Why a tracking call was refused.
#[derive(Debug)]
pub enum IngestError {
    /// 400: the body or an event is invalid; `field` names the item in a batch.
    Invalid {
        /// What is wrong.
        message: String,
        /// `batch[<i>]` when one item of a batch is at fault.
        field: Option<String>,
    },
    /// 401: no write key, or one that names no source.
    Unauthorized,
    /// 403: the source is disabled.
    Disabled,
    /// 429: the source's queue is full.
    Overloaded {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 500: the events could not be stored (details in the log).
    Internal,
    /// 503: the cluster's event log (NATS) is unreachable; nothing was stored.
    Unavailable {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 415, 400 or 413: the body's `Content-Encoding` is unsupported, wrong, or decodes to
    /// more than the limit.
    Encoding(encoding::EncodingError),
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let retry = match &self {
            IngestError::Overloaded { retry_after } | IngestError::Unavailable { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        };
        let (status, kind, message, field) = match self {
            IngestError::Invalid { message, field } => {
                (StatusCode::BAD_REQUEST, "input-validation", message, field)
            }
            IngestError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid write key is required (HTTP Basic user name, or `writeKey` in the body)"
                    .to_string(),
                None,
            ),
            IngestError::Disabled => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "this source is disabled".to_string(),
                None,
            ),
            IngestError::Overloaded { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "this source's queue is full; retry later".to_string(),
                None,
            ),
            IngestError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the events could not be stored".to_string(),
                None,
            ),
            IngestError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event log is unavailable (the cluster's NATS server cannot be reached); \
                 nothing was stored: retry later"
                    .to_string(),
                None,
            ),
            IngestError::Encoding(e) => (e.status(), e.kind(), e.to_string(), None),
        };
        error_response(status, kind, message, field, retry)
    }
}

/// The tracking API's error answer: `{"success": false, "errors": [{"type", "message",
/// "field"?}]}`, with `Retry-After` when `retry` is given.
fn error_response(
    status: StatusCode,
    kind: &str,
    message: String,
    field: Option<String>,
    retry: Option<u64>,
) -> Response {
    let mut error = json!({"type": kind, "message": message});
    if let Some(field) = field {
        error["field"] = Value::String(field);
    }
    let mut response = (
        status,
        axum::Json(json!({"success": false, "errors": [error]})),
    )
        .into_response();
    if let Some(v) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn invalid(message: impl Into<String>, field: Option<String>) -> IngestError {
    IngestError::Invalid {
        message: message.into(),
        field,
    }
}

/// The tracking API's paths, each taking `POST`.
pub const TRACKING_PATHS: [&str; 7] = [
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
];

/// The 404 of a path under `/v1/` that is no tracking path (a typo such as `/v1/trak`),
/// listing the ones there are. Answered before any authentication: a wrong path is the
/// problem to report, not a missing token.
pub async fn unknown_path(uri: Uri) -> Response {
    let message = format!(
        "no tracking path {}; the tracking API takes POST on {}",
        uri.path(),
        TRACKING_PATHS.join(", ")
    );
    let error = json!({"type": "not-found", "message": message});
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"success": false, "errors": [error]})),
    )
        .into_response()
}

/// The ingestion routes (no bearer token: they authenticate by write key).
pub fn router() -> Router<Arc<DataPlane>> {
    Router::new()
        .route("/v1/{*rest}", any(unknown_path))
        .route("/v1/track", post(track))
        .route("/v1/identify", post(identify))
        .route("/v1/page", post(page))
        .route("/v1/screen", post(screen))
        .route("/v1/group", post(group))
        .route("/v1/alias", post(alias))
        .route("/v1/batch", post(batch))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        // After the layer: the webhook has its own body limit.
        .merge(webhook::router())
}

/// The body, or why it could not be read (over the size limit, most likely).
type Body = Result<Bytes, BytesRejection>;

async fn track(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, Some(EventType::Track)).await)
}
async fn identify(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, Some(EventType::Identify)).await)
}
async fn page(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, Some(EventType::Page)).await)
}
async fn screen(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, Some(EventType::Screen)).await)
}
async fn group(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, Some(EventType::Group)).await)
}
async fn alias(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, Some(EventType::Alias)).await)
}
async fn batch(s: State<Arc<DataPlane>>, h: HeaderMap, b: Body) -> Response {
    answer(accept(&s, &h, b, None).await)
}

/// The header telling how many of a request's events were duplicates (a `messageId` this
/// source sent within the deduplication window), dropped rather than ingested again. Segment's
/// clients ignore unknown headers; `sluice send` sums it into its summary.
pub const DUPLICATES_HEADER: &str = "x-sluice-duplicates";

fn answer(result: Result<usize, IngestError>) -> Response {
    match result {
        Ok(duplicates) => {
            let mut response = axum::Json(json!({"success": true})).into_response();
            response
                .headers_mut()
                .insert(DUPLICATES_HEADER, HeaderValue::from(duplicates));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The write key: HTTP Basic user name, else `writeKey` in the body.
fn write_key(headers: &HeaderMap, body: &Members<'_>) -> Option<String> {
    basic_user(headers).or_else(|| {
        body.get("writeKey")
            .and_then(members::string)
            .map(|k| k.into_owned())
    })
}

/// The HTTP Basic user name (where Segment's libraries put the write key), when not empty.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .map(|pair| pair.split(':').next().unwrap_or_default().to_string())
        .filter(|k| !k.is_empty())
}

/// Authenticates, validates, stores durably; `kind` is `None` for `/v1/batch`. Returns how
/// many events were duplicates (dropped, not stored).
async fn accept(
    plane: &Arc<DataPlane>,
    headers: &HeaderMap,
    body: Body,
    kind: Option<EventType>,
) -> Result<usize, IngestError> {
    let started = Instant::now();
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => invalid(
            format!("the request is over the limit of {MAX_REQUEST_BYTES} bytes"),
            None,
        ),
        other => invalid(other.body_text(), None),
    })?;
    let body = encoding::decode(headers, body, MAX_REQUEST_BYTES).map_err(IngestError::Encoding)?;
    let root = root(&body)?;
    let key = write_key(headers, &root).ok_or(IngestError::Unauthorized)?;
    let source = source_for(plane, &key)?;
    let events = events(&root, kind, OffsetDateTime::now_utc())?;
    timed(plane, IngestPhase::Parse, started);
    store(plane, &source, events).await
}

/// Records the time since `started` as `phase` of this request.
fn timed(plane: &DataPlane, phase: IngestPhase, started: Instant) {
    plane
        .observe
        .prometheus
        .ingest_phase(phase, started.elapsed());
}

/// Stores a request's normalised events durably as one record: the backlog bound, the
/// `messageId` dedup, the pace, the append (200 only once it is synced). Shared by the
/// tracking API and the source-function webhook. Returns how many events were duplicates.
async fn store(
    plane: &Arc<DataPlane>,
    source: &Source,
    events: Vec<Event>,
) -> Result<usize, IngestError> {
    if plane.backlog.pending(&source.id) + events.len() > plane.config.queue_bound {
        return Err(IngestError::Overloaded {
            retry_after: plane.config.retry_after_secs,
        });
    }
    let received = events.len();
    let started = Instant::now();
    let (fresh, claim) = plane.dedup.fresh(&source.id, events);
    timed(plane, IngestPhase::Dedup, started);
    let duplicates = received - fresh.len();
    if fresh.is_empty() {
        return Ok(duplicates);
    }
    let started = Instant::now();
    if pace(plane).await {
        plane.observe.prometheus.paced();
    }
    timed(plane, IngestPhase::Pace, started);
    plane.observe.ingested(&source.id, &fresh);
    let count = fresh.len();
    let record = Batch {
        source_id: source.id.clone(),
        events: fresh,
    }
    .encode();
    plane.backlog.adjust(&source.id, count, 0);
    let started = Instant::now();
    let appended = plane.ingest_log.append(vec![record]).await;
    timed(plane, IngestPhase::Append, started);
    match appended {
        Ok(appended) => {
            plane.lead.appended(&appended.positions);
            if let Err(e) = plane.dedup.commit(&claim) {
                // Stored all the same: only a retry after a restart could be delivered twice.
                tracing::warn!(error = %e, "cannot journal the request's messageIds");
            }
            Ok(duplicates)
        }
        Err(e) => Err(not_stored(plane, &source.id, claim, count, e)),
    }
}

/// Undoes what [`store`] recorded of a request (`count` events of `source_id`, their ids in
/// `claim`) that the log refused with `e`, and says how to answer.
fn not_stored(
    plane: &DataPlane,
    source_id: &str,
    claim: Claim,
    count: usize,
    e: LogError,
) -> IngestError {
    plane.backlog.adjust(source_id, 0, count);
    // Not stored, so not seen: the client's retry must not be dropped as a duplicate.
    plane.dedup.forget(claim);
    if let LogError::Unavailable(reason) = &e {
        tracing::warn!(%reason, "ingestion refused: the cluster's event log is unavailable");
        return IngestError::Unavailable {
            retry_after: plane.config.retry_after_secs,
        };
    }
    tracing::error!(error = %e, "cannot append to the ingest log");
    IngestError::Internal
}

/// Waits, up to [`PIPELINE_WAIT`], while the pipeline is more than `pipeline_lead` requests
/// (records of the ingest log, [`super::lead`]) behind: under sustained overload
/// acknowledgements slow to the pipeline's pace rather than growing a backlog that only drains
/// after the clients stop. At normal load it returns at once (a position read and a mutex).
/// Whether it waited.
async fn pace(plane: &DataPlane) -> bool {
    let lead = plane.config.pipeline_lead;
    if lead == 0 {
        return false;
    }
    let behind = || {
        let done = plane.ingest_log.position(PIPELINE).unwrap_or(u64::MAX);
        plane.lead.behind(done) > lead
    };
    let deadline = tokio::time::Instant::now() + PIPELINE_WAIT;
    let mut waited = false;
    loop {
        // Registered before the check, so that a commit in between is not missed.
        let advanced = plane.pipeline_advanced.notified();
        tokio::pin!(advanced);
        advanced.as_mut().enable();
        if !behind() {
            return waited;
        }
        waited = true;
        if tokio::time::timeout_at(deadline, advanced).await.is_err() {
            return waited;
        }
    }
}

/// The body's top-level members.
fn root(body: &[u8]) -> Result<Members<'_>, IngestError> {
    let not_json =
        |e: &dyn std::fmt::Display| invalid(format!("the body is not valid JSON: {e}"), None);
    let text = std::str::from_utf8(body).map_err(|e| not_json(&e))?;
    if !text.trim_start().starts_with('{') {
        // Valid JSON or not, only an object can be a tracking call.
        return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Err(invalid("the body must be a JSON object", None)),
            Err(e) => Err(not_json(&e)),
        };
    }
    Members::parse(text).map_err(|e| not_json(&e))
}

/// The request's events, normalised; `kind` is `None` for a batch.
fn events(
    root: &Members<'_>,
    kind: Option<EventType>,
    received_at: OffsetDateTime,
) -> Result<Vec<Event>, IngestError> {
    if let Some(kind) = kind {
        let event = normalize(root, Some(kind), &Shared::default(), received_at)
            .map_err(|m| invalid(m, None))?;
        return Ok(vec![event]);
    }
    let items = root
        .get("batch")
        .and_then(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok())
        .ok_or_else(|| invalid("`batch` must be an array of events", None))?;
    if items.len() > MAX_BATCH_EVENTS {
        return Err(invalid(
            format!(
                "the batch has {} events; the limit is {MAX_BATCH_EVENTS}",
                items.len()
            ),
            Some("batch".into()),
        ));
    }
    let shared = Shared::of(root);
    normalize_items(
        items.into_iter().map(RawValue::get),
        &shared,
        received_at,
        "batch",
    )
}

/// Events given as JSON texts (each naming its `type`), normalised as batch items; the first
/// invalid one refuses them all, named `<list>[<i>]`.
fn normalize_items<'a>(
    items: impl IntoIterator<Item = &'a str>,
    shared: &Shared,
    received_at: OffsetDateTime,
    list: &str,
) -> Result<Vec<Event>, IngestError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            Members::parse(item)
                .map_err(|_| "an event must be a JSON object".to_string())
                .and_then(|event| normalize(&event, None, shared, received_at))
                .map_err(|m| {
                    let field = format!("{list}[{i}]");
                    invalid(format!("{field}: {m}"), Some(field))
                })
        })
        .collect()
}

fn source_for(plane: &DataPlane, key: &str) -> Result<Source, IngestError> {
    let internal = |e: crate::workspace::StoreError| {
        tracing::error!(error = %e, "cannot look up a write key");
        IngestError::Internal
    };
    let id = plane
        .store
        .index(&format!("writekey:{key}"))
        .map_err(internal)?
        .ok_or(IngestError::Unauthorized)?;
    let source: Source = plane
        .store
        .get(Kind::Source, &id)
        .map_err(internal)?
        .ok_or(IngestError::Unauthorized)?;
    if !source.write_keys.iter().any(|k| k == key) {
        return Err(IngestError::Unauthorized);
    }
    if !source.enabled {
        return Err(IngestError::Disabled);
    }
    Ok(source)
}
