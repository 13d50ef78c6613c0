//! Source functions: a webhook request in (`POST /v1/functions/{sourceId}`), Segment events out.
//!
//! The host calls the function's `handle` once per request with the request as a JSON object
//! (`method`, `url`, `headers` with lower-case names, `body` as text); the events it returns
//! are ingested as one `/v1/batch` of the source would be. Implement [`SourceFunction`] and
//! call [`export_source!`](crate::export_source):
//!
//! ```
//! use sluice_guest::{Context, Event, EventType, FunctionError, Request, SourceFunction};
//!
//! struct Signups;
//!
//! impl SourceFunction for Signups {
//!     fn on_request(request: Request, _ctx: &Context) -> Result<Vec<Event>, FunctionError> {
//!         let body: sluice_guest::Value = request.json()?;
//!         let user = body["user"].as_str().ok_or_else(|| FunctionError::validation("no `user`"))?;
//!         let mut event = Event::new(EventType::Track);
//!         event.event = Some("Signed Up".into());
//!         event.user_id = Some(user.into());
//!         Ok(vec![event])
//!     }
//! }
//!
//! sluice_guest::export_source!(Signups);
//! # fn main() {}
//! ```

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Map;

use crate::context::Context;
use crate::event::Event;
use crate::outcome::{ErrorKind, FunctionError, Output};

/// The webhook request a source function receives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Request {
    /// The HTTP method (always `POST`: the host refuses others).
    pub method: String,
    /// The path and query as received (`/v1/functions/<id>?token=...`).
    pub url: String,
    /// The headers, names in lower case; repeated headers joined with `, `.
    #[serde(default)]
    pub headers: Map<String, serde_json::Value>,
    /// The raw body, as text.
    #[serde(default)]
    pub body: String,
}

impl Request {
    /// Parses the request the host sends.
    ///
    /// # Errors
    /// The text is not the host's request object.
    pub fn from_json(text: &str) -> Result<Request, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.as_str())
    }

    /// A query parameter's raw (not percent-decoded) value.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.url.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The body parsed as JSON into `T` (Segment's `request.json()`).
    ///
    /// # Errors
    /// An [`ErrorKind::InvalidEventPayload`] naming the problem, for the webhook's 400.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, FunctionError> {
        serde_json::from_str(&self.body).map_err(|e| {
            FunctionError::invalid_payload(format!("the body is not the expected JSON: {e}"))
        })
    }
}

/// A source function: one webhook request becomes zero or more Segment events.
///
/// Errors answer the webhook: `validation-error`, `invalid-event-payload` and
/// `event-not-supported` a 400 with the message, `retry-error` a 503 (`retry-after=<s>` in
/// the message sets `Retry-After`), `drop-event` a 200 with no events, any other a 500.
pub trait SourceFunction {
    /// The events this request stands for, in order.
    ///
    /// # Errors
    /// Why the request is refused (see the trait's documentation).
    fn on_request(request: Request, ctx: &Context) -> Result<Vec<Event>, FunctionError>;
}

/// Runs `F` on one request given as JSON text, as the host does. Use it in native tests (with
/// [`Context::local`]) to check a function's output exactly as sluice will see it.
pub fn handle_request_json<F: SourceFunction>(request: &str, ctx: &Context) -> Output {
    let request = match Request::from_json(request) {
        Ok(request) => request,
        Err(err) => {
            return Output::Error(FunctionError::new(
                ErrorKind::InvalidEventPayload,
                format!("the input is not a webhook request: {err}"),
            ));
        }
    };
    match F::on_request(request, ctx) {
        Ok(events) => Output::FanOut(events.iter().map(Event::to_json).collect()),
        Err(err) => Output::Error(err),
    }
}
