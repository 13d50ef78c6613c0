//! Source functions' webhook, `POST /v1/functions/{sourceId}`: a request to a source whose type
//! is a deployed source function (`resourceType: SOURCE`) is handed to the function's `handle`
//! on the network engine, once, as `{"method", "url", "headers", "body"}`; the events it
//! returns (forward: one, fan-out: those, in order, drop: none) are normalised, checked and
//! stored exactly as the items of a `/v1/batch` of that source, as one record, and the answer
//! (`{"success": true, "events": N}`) comes after that record is durable.
//!
//! Authenticated by the source's write key: HTTP Basic user name, or `?token=<write key>`
//! (what a SaaS app's webhook settings can hold). Limits: the body 512 KiB, 1,000 events per
//! request, each event the tracking API's 32 KB.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::normalize::Shared;
use super::{DUPLICATES_HEADER, IngestError, basic_user, encoding, error_response};
use crate::dataplane::DataPlane;
use crate::dataplane::net_functions::{self, invocation_limits};
use crate::dataplane::observe::FunctionLog;
use crate::engine::{Invocation, InvokeError, Outcome};
use crate::workspace::{Function, FunctionType, Kind, Source};

/// The largest request body a source function receives (Segment's 512 KiB).
pub const MAX_WEBHOOK_BYTES: usize = 512 * 1024;

/// The most events one request may turn into.
pub const MAX_EMITTED_EVENTS: usize = 1000;

/// Seconds a `retry-error` asks the caller to wait when its message names none.
const DEFAULT_RETRY_AFTER: u64 = 1;

/// The route template.
pub const WEBHOOK_PATH: &str = "/v1/functions/{sourceId}";

/// Why a webhook request was not turned into stored events.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 405: only POST.
    #[error("a source function's webhook takes POST only")]
    MethodNotAllowed,
    /// 401: no write key, or not this source's.
    #[error(
        "a valid write key of this source is required (HTTP Basic user name, or `?token=<write key>`)"
    )]
    Unauthorized,
    /// 404: the source runs no function (an ordinary source, or its function was deleted).
    #[error("{0}")]
    NoFunction(String),
    /// 409: the source's function cannot run now (not deployed, not a source function...).
    #[error("{0}")]
    NotRunnable(String),
    /// 413: the body is over [`MAX_WEBHOOK_BYTES`].
    #[error("the request body is over the limit of {MAX_WEBHOOK_BYTES} bytes (512 KiB)")]
    TooLarge,
    /// 400: the body could not be read as text.
    #[error("{0}")]
    BadBody(String),
    /// 400: the function refused the request (`validation-error`, `invalid-event-payload`,
    /// `event-not-supported`), or emitted more than [`MAX_EMITTED_EVENTS`].
    #[error("{message}")]
    Refused {
        /// The function's error kind, or `too-many-events`.
        kind: &'static str,
        /// Its message.
        message: String,
    },
    /// 503: the function asked for a retry.
    #[error("retry-error: {message}")]
    Retry {
        /// Seconds to wait.
        after: u64,
        /// The function's message.
        message: String,
    },
    /// 500: the function failed (`unknown`), or the engine failed it (a trap, fuel...).
    #[error("{0}")]
    Failed(String),
    /// 504: the function ran past its deadline.
    #[error("{0}")]
    Timeout(String),
    /// The events were refused or could not be stored: the tracking API's own answers.
    #[error("the events were not stored")]
    Ingest(IngestError),
}

impl From<IngestError> for WebhookError {
    fn from(e: IngestError) -> WebhookError {
        match e {
            IngestError::Unauthorized => WebhookError::Unauthorized,
            other => WebhookError::Ingest(other),
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, kind, retry) = match self {
            WebhookError::Ingest(e) => return e.into_response(),
            WebhookError::MethodNotAllowed => {
                let mut response = error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    message,
                    None,
                    None,
                );
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
            WebhookError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            WebhookError::NoFunction(_) => (StatusCode::NOT_FOUND, "not-found", None),
            WebhookError::NotRunnable(_) => (StatusCode::CONFLICT, "conflict", None),
            WebhookError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", None),
            WebhookError::BadBody(_) => (StatusCode::BAD_REQUEST, "input-validation", None),
            WebhookError::Refused { kind, .. } => (StatusCode::BAD_REQUEST, kind, None),
            WebhookError::Retry { after, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "retry-error", Some(after))
            }
            WebhookError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "function-error", None),
            WebhookError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout", None),
        };
        error_response(status, kind, message, None, retry)
    }
}

/// The webhook's route, with its own body limit.
pub fn router() -> Router<Arc<DataPlane>> {
    Router::new()
        .route(WEBHOOK_PATH, any(webhook))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

async fn webhook(
    State(plane): State<Arc<DataPlane>>,
    Path(source_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = Received {
        method,
        uri,
        headers,
    };
    match receive(&plane, &source_id, &request, body).await {
        Ok(events) => {
            let mut response =
                axum::Json(json!({"success": true, "events": events.emitted})).into_response();
            response
                .headers_mut()
                .insert(DUPLICATES_HEADER, HeaderValue::from(events.duplicates));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The request as received, less its body.
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

/// What a stored request gave.
struct Stored {
    /// Events the function emitted.
    emitted: usize,
    /// Of which already seen (their `messageId`), not stored again.
    duplicates: usize,
}

/// Checks the method, the write key and the source's function, reads the body, runs the
/// function and stores its events.
async fn receive(
    plane: &Arc<DataPlane>,
    source_id: &str,
    request: &Received,
    body: Result<Bytes, BytesRejection>,
) -> Result<Stored, WebhookError> {
    if request.method != Method::POST {
        return Err(WebhookError::MethodNotAllowed);
    }
    let key = write_key(&request.headers, &request.uri).ok_or(WebhookError::Unauthorized)?;
    let source = super::source_for(plane, &key)?;
    if source.id != source_id {
        return Err(WebhookError::Unauthorized);
    }
    let function = function_of(plane, &source)?;
    let body = read_body(&request.headers, body)?;
    let input = envelope(request, &body);
    let settings = serde_json::to_string(&source.settings).unwrap_or_else(|_| "{}".into());
    let live = net_functions::load(plane, &source.id, &function, &settings).map_err(|why| {
        WebhookError::NotRunnable(format!("the source function cannot run: {why}"))
    })?;
    let invocation = live.invoke(&input, &invocation_limits()).await;
    keep_logs(plane, &function, &source, &invocation);
    let texts = emitted(invocation)?;
    if texts.len() > MAX_EMITTED_EVENTS {
        return Err(WebhookError::Refused {
            kind: "too-many-events",
            message: format!(
                "the function emitted {} events; the limit is {MAX_EMITTED_EVENTS} per request",
                texts.len()
            ),
        });
    }
    let events = super::normalize_items(
        texts.iter().map(String::as_str),
        &Shared::default(),
        OffsetDateTime::now_utc(),
        "events",
    )?;
    let emitted = events.len();
    if events.is_empty() {
        return Ok(Stored {
            emitted,
            duplicates: 0,
        });
    }
    let duplicates = super::store(plane, &source, events).await?;
    Ok(Stored {
        emitted,
        duplicates,
    })
}

/// The write key: HTTP Basic user name, else the `token` query parameter.
fn write_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    basic_user(headers).or_else(|| {
        let query = uri.query()?;
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find(|(name, value)| name == "token" && !value.is_empty())
            .map(|(_, value)| value)
    })
}

/// The deployed source function `source` is an instance of.
fn function_of(plane: &DataPlane, source: &Source) -> Result<Function, WebhookError> {
    let type_id = &source.metadata.id;
    let function: Option<Function> = plane.store.get(Kind::Function, type_id).map_err(|e| {
        tracing::error!(error = %e, "cannot read a source's function");
        WebhookError::Ingest(IngestError::Internal)
    })?;
    let Some(function) = function else {
        return Err(WebhookError::NoFunction(format!(
            "the source `{}` has no function (its type is `{type_id}`): send its events to the \
             tracking API (/v1/track, /v1/batch...), or create a source from a deployed source \
             function (GET /catalog/sources lists them)",
            source.slug
        )));
    };
    let name = &function.display_name;
    if function.resource_type != FunctionType::Source {
        return Err(WebhookError::NotRunnable(format!(
            "the function {name:?} of source `{}` is not a source function (resourceType \
             SOURCE): create the source from a source function",
            source.slug
        )));
    }
    if function.deployed_version_id.is_none() {
        return Err(WebhookError::NotRunnable(format!(
            "the source function {name:?} is not deployed: deploy it (POST /functions/{}/deploy)",
            function.id
        )));
    }
    Ok(function)
}

/// The body as text, decoded (`Content-Encoding`) under the limit.
fn read_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, WebhookError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            WebhookError::TooLarge
        }
        other => WebhookError::BadBody(other.body_text()),
    })?;
    let body = encoding::decode(headers, body, MAX_WEBHOOK_BYTES).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebhookError::TooLarge
        } else {
            WebhookError::Ingest(IngestError::Encoding(e))
        }
    })?;
    String::from_utf8(body.to_vec())
        .map_err(|_| WebhookError::BadBody("the request body must be text (UTF-8)".into()))
}

/// What the function receives: the request as a JSON object, header names in lower case
/// (repeated headers joined with `, `), the body as text.
fn envelope(request: &Received, body: &str) -> String {
    let mut headers = Map::new();
    for name in request.headers.keys() {
        let values: Vec<String> = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    json!({"method": request.method.as_str(), "url": url_of(request), "headers": headers, "body": body})
        .to_string()
}

/// The request's absolute URL as the function sees it (Segment hands it a WHATWG URL): the
/// scheme (`X-Forwarded-Proto` from a proxy, else `http`), the `Host`, the path and the query
/// without `token`, so the write key is not handed to the function's code.
fn url_of(request: &Received) -> String {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("host").unwrap_or("localhost");
    let query: Vec<&str> = request
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    let path = request.uri.path();
    match query.is_empty() {
        true => format!("{scheme}://{host}{path}"),
        false => format!("{scheme}://{host}{path}?{}", query.join("&")),
    }
}

/// The events (JSON texts) an invocation emitted, or the webhook's answer to its error.
fn emitted(invocation: Invocation) -> Result<Vec<String>, WebhookError> {
    match invocation.result {
        Ok(Outcome::Forward { event }) => Ok(vec![event]),
        Ok(Outcome::FanOut { events }) => Ok(events),
        Ok(Outcome::Drop) => Ok(Vec::new()),
        Ok(Outcome::Error { kind, message }) => match kind {
            "drop-event" => Ok(Vec::new()),
            "invalid-event-payload" | "validation-error" | "event-not-supported" => {
                Err(WebhookError::Refused { kind, message })
            }
            "retry-error" => Err(WebhookError::Retry {
                after: retry_after(&message).unwrap_or(DEFAULT_RETRY_AFTER),
                message,
            }),
            other => Err(WebhookError::Failed(format!("{other}: {message}"))),
        },
        Err(e @ InvokeError::DeadlineExceeded { .. }) => Err(WebhookError::Timeout(e.to_string())),
        Err(e) => Err(WebhookError::Failed(e.to_string())),
    }
}

/// The delay a `retry-error` message asks for with `retry-after=<seconds>`.
fn retry_after(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("retry-after=")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The invocation's metrics and log lines, under the function (`GET /functions/{id}/logs`);
/// the source's id stands where an insert function's instance id would.
fn keep_logs(plane: &DataPlane, function: &Function, source: &Source, invocation: &Invocation) {
    plane.observe.invoked(&function.id, invocation);
    if invocation.logs.is_empty() {
        return;
    }
    let at = crate::workspace::now();
    let lines = invocation
        .logs
        .iter()
        .map(|l| FunctionLog {
            at: at.clone(),
            instance_id: source.id.clone(),
            message_id: String::new(),
            level: l.level.to_string(),
            message: l.message.clone(),
        })
        .collect();
    plane.observe.log(&function.id, lines);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn invocation(result: Result<Outcome, InvokeError>) -> Invocation {
        Invocation {
            result,
            fuel_used: 0,
            duration: Duration::ZERO,
            logs: Vec::new(),
        }
    }

    fn status(result: Result<Outcome, InvokeError>) -> StatusCode {
        match emitted(invocation(result)) {
            Ok(_) => StatusCode::OK,
            Err(e) => e.into_response().status(),
        }
    }

    fn error(kind: &'static str, message: &str) -> Result<Outcome, InvokeError> {
        Ok(Outcome::Error {
            kind,
            message: message.to_string(),
        })
    }

    #[test]
    fn outcomes_become_events_or_answers() {
        let fan = Ok(Outcome::FanOut {
            events: vec!["a".into(), "b".into()],
        });
        assert_eq!(emitted(invocation(fan)).map(|e| e.len()).ok(), Some(2));
        assert_eq!(
            emitted(invocation(Ok(Outcome::Drop))).map(|e| e.len()).ok(),
            Some(0)
        );
        assert_eq!(status(error("drop-event", "no")), StatusCode::OK);
        for kind in [
            "validation-error",
            "invalid-event-payload",
            "event-not-supported",
        ] {
            assert_eq!(status(error(kind, "bad")), StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            status(error("unknown", "boom")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let late = Err(InvokeError::DeadlineExceeded {
            deadline: Duration::from_secs(5),
        });
        assert_eq!(status(late), StatusCode::GATEWAY_TIMEOUT);
        let fuel = Err(InvokeError::OutOfFuel { budget: 1 });
        assert_eq!(status(fuel), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_retry_error_sets_retry_after() {
        let answer = |message: &str| {
            emitted(invocation(error("retry-error", message)))
                .err()
                .map(IntoResponse::into_response)
        };
        let busy = answer("busy retry-after=7").unwrap();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "7");
        assert_eq!(answer("busy").unwrap().headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn the_write_key_comes_from_basic_auth_or_the_token() {
        let uri: Uri = "/v1/functions/s?a=1&token=k%31".parse().unwrap();
        assert_eq!(write_key(&HeaderMap::new(), &uri).as_deref(), Some("k1"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YmFzaWM6"),
        );
        assert_eq!(write_key(&headers, &uri).as_deref(), Some("basic"));
        let bare: Uri = "/v1/functions/s".parse().unwrap();
        assert_eq!(write_key(&HeaderMap::new(), &bare), None);
    }
}
