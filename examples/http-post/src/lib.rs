//! Example destination function in Rust: POSTs each event as JSON to the `url` setting over
//! `wasi:http` (through `sluice_guest::http`), the way Segment's destination functions `fetch`.
//!
//! Settings: `url` (where to POST), `allowedHosts` (read by the host: the function may reach
//! only those), optional `headers` (an object of header values). The response decides:
//! - 2xx: delivered (the event is returned unchanged);
//! - 429 and 5xx: a `RetryError` carrying the status (and `Retry-After`, as
//!   `retry-after=<seconds>` in the message), so the host retries with backoff;
//! - any other status: an error with the status and the start of the body (dead-lettered);
//! - a refusal or network error: an error with the host's named message (`http-not-allowed:
//!   ...`), not retried by the function itself.
//!
//! With the setting `flood: N` it instead starts N requests at once without waiting (a
//! hostile function, for the sandbox tests) and returns a summary event:
//! `{"sent": s, "refused": r, "codes": [...]}` where refusals are counted by name.

use sluice_guest::http::{self, Request};
use sluice_guest::{
    Context, ErrorKind, Event, FunctionError, InsertFunction, Outcome, Value, json,
};

/// The destination function.
pub struct HttpPost;

impl HttpPost {
    fn deliver(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        let url = ctx.setting::<String>("url").ok_or_else(|| {
            FunctionError::new(ErrorKind::ValidationError, "the setting `url` is missing")
        })?;
        if let Some(n) = ctx.setting::<u64>("flood") {
            return flood(&url, n);
        }
        let body = event.to_json();
        let mut request = Request::post(&url).header("content-type", "application/json");
        if let Some(Value::Object(headers)) = ctx.settings().get("headers") {
            for (name, value) in headers {
                if let Some(value) = value.as_str() {
                    request = request.header(name, value);
                }
            }
        }
        let response = http::send(&request.body(body))
            .map_err(|e| FunctionError::new(ErrorKind::Unknown, e.to_string()))?;
        match response.status {
            200..=299 => Ok(event.into()),
            429 | 500..=599 => {
                let after = response
                    .header("retry-after")
                    .map(|s| format!(" retry-after={s}"))
                    .unwrap_or_default();
                Err(FunctionError::new(
                    ErrorKind::RetryError,
                    format!("status {}{after}", response.status),
                ))
            }
            status => {
                let mut text = response.text();
                text.truncate(200);
                Err(FunctionError::new(
                    ErrorKind::Unknown,
                    format!("status {status}: {text}"),
                ))
            }
        }
    }
}

/// Starts `n` requests before reading any response; counts what the host refused, by name.
fn flood(url: &str, n: u64) -> Result<Outcome, FunctionError> {
    let mut codes: Vec<String> = Vec::new();
    let (mut ok, mut refused) = (0u64, 0u64);
    let mut refuse = |e: http::HttpError| {
        refused += 1;
        let code = e.code().unwrap_or("other").to_string();
        if !codes.contains(&code) {
            codes.push(code);
        }
    };
    let mut pending = Vec::new();
    for _ in 0..n {
        match http::start(&Request::get(url)) {
            Ok(inflight) => pending.push(inflight),
            Err(e) => refuse(e),
        }
    }
    for inflight in pending {
        match inflight.finish() {
            Ok(_) => ok += 1,
            Err(e) => refuse(e),
        }
    }
    let sent = n;
    let summary = json!({
        "type": "track",
        "event": "Flood",
        "properties": {"sent": sent, "ok": ok, "refused": refused, "codes": codes},
    });
    Event::from_json(&summary.to_string())
        .map(Outcome::Forward)
        .map_err(|e| FunctionError::new(ErrorKind::Unknown, e.to_string()))
}

impl InsertFunction for HttpPost {
    fn on_track(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
    fn on_identify(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
    fn on_page(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
    fn on_screen(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
    fn on_group(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
    fn on_alias(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
    fn on_delete(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Self::deliver(event, ctx)
    }
}

sluice_guest::export!(HttpPost);
