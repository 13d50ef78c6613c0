//! What a handler returns: an [`Outcome`], or a [`FunctionError`] of one of Segment's kinds.

use std::fmt;

use crate::event::Event;

/// What becomes of an event a handler accepted.
// An `Outcome` is returned once per event and moved, never stored in bulk: boxing the event
// would cost an allocation per event to save stack space nobody needs.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this event on (it may be the input, changed or not).
    Forward(Event),
    /// Send nothing; not an error (Segment's `return null`).
    Drop,
    /// Send each of these events instead of the input; empty is the same as `Drop`.
    FanOut(Vec<Event>),
}

impl From<Event> for Outcome {
    fn from(event: Event) -> Outcome {
        Outcome::Forward(event)
    }
}

/// The kinds of error a function can raise, with Segment's treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No handler for this event type. Discarded.
    EventNotSupported,
    /// The event is malformed for this function. Discarded.
    InvalidEventPayload,
    /// The event failed the function's validation. Discarded.
    ValidationError,
    /// A transient failure; the pipeline retries with backoff.
    RetryError,
    /// Dropped on purpose; not retried, not a failure.
    DropEvent,
    /// Anything else. Discarded as a bad request.
    Unknown,
}

/// An error a handler raises: a kind that decides the event's fate, and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// What kind of refusal this is.
    pub kind: ErrorKind,
    /// Why, for the function's author and the event debugger.
    pub message: String,
}

impl FunctionError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> FunctionError {
        FunctionError {
            kind,
            message: message.into(),
        }
    }

    /// The event failed validation ([`ErrorKind::ValidationError`]).
    pub fn validation(message: impl Into<String>) -> FunctionError {
        FunctionError::new(ErrorKind::ValidationError, message)
    }

    /// The event is malformed ([`ErrorKind::InvalidEventPayload`]).
    pub fn invalid_payload(message: impl Into<String>) -> FunctionError {
        FunctionError::new(ErrorKind::InvalidEventPayload, message)
    }

    /// Try again later ([`ErrorKind::RetryError`]).
    pub fn retry(message: impl Into<String>) -> FunctionError {
        FunctionError::new(ErrorKind::RetryError, message)
    }

    /// Drop the event on purpose ([`ErrorKind::DropEvent`]).
    pub fn drop_event(message: impl Into<String>) -> FunctionError {
        FunctionError::new(ErrorKind::DropEvent, message)
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for FunctionError {}

/// One event's result as it crosses the boundary: events as JSON text. This mirrors the WIT
/// `outcome` variant and is what [`crate::handle_json`] returns for native tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The event to send on, as JSON text.
    Forward(String),
    /// Nothing to send.
    Drop,
    /// The events to send instead, as JSON texts.
    FanOut(Vec<String>),
    /// The function refused the event.
    Error(FunctionError),
}
