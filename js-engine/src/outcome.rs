//! What a handler's result becomes: a returned value or a thrown one, turned into the WIT
//! `outcome`, the way Segment's insert functions read them.
//!
//! Returned: an object forwards it (as JSON), `null`/`undefined` drops, an array of objects fans
//! out, anything else is an error. Thrown: one of the prelude's error classes gives its
//! `error-kind`, anything else is `unknown` with name, message and stack; a JavaScript stack
//! overflow ends the invocation through `script.abort`.

use std::cell::RefCell;
use std::rc::Rc;

use rquickjs::{Array, Ctx, Function, Type, Value};

use crate::bindings::sluice::function::script::{self, AbortReason};
use crate::bindings::sluice::function::types::{ErrorKind, FunctionError, Outcome};
use crate::json_out::{JsonError, Pristine, to_json};

/// How a call into JavaScript ended, promises already settled.
pub enum Settled<'js> {
    /// The handler returned (or its promise resolved to) this value.
    Returned(Value<'js>),
    /// The handler threw (or its promise rejected with) this value.
    Threw(Value<'js>),
    /// The engine itself failed around the call (a conversion, not user code).
    Failed(rquickjs::Error),
}

/// Builds an error outcome.
pub fn error(kind: ErrorKind, message: impl Into<String>) -> Outcome {
    Outcome::Error(FunctionError {
        kind,
        message: message.into(),
    })
}

/// Turns settled calls into outcomes; holds the prelude's `describeError` and the built-ins
/// the results are serialised with.
pub struct Reporter<'js> {
    ctx: Ctx<'js>,
    describe_error: Function<'js>,
    json: Rc<RefCell<Pristine>>,
}

impl<'js> Reporter<'js> {
    /// A reporter for `ctx`, with the prelude's `describeError` and the captured built-ins.
    pub fn new(ctx: Ctx<'js>, describe_error: Function<'js>, json: Rc<RefCell<Pristine>>) -> Self {
        Reporter {
            ctx,
            describe_error,
            json,
        }
    }

    /// The outcome of a settled call to the handler named `who` (for messages).
    pub fn settled(&self, settled: Settled<'js>, who: &str) -> Outcome {
        match settled {
            Settled::Returned(value) => self.returned(value, who),
            Settled::Threw(value) => self.thrown(value),
            Settled::Failed(err) => self.failed(err),
        }
    }

    /// The outcome of `value` returned by the handler named `who`.
    pub fn returned(&self, value: Value<'js>, who: &str) -> Outcome {
        match value.type_of() {
            Type::Uninitialized | Type::Undefined | Type::Null => Outcome::Drop,
            // A Proxy (of an object) is returned as the object it stands for.
            Type::Object | Type::Proxy => match self.event_json(value) {
                Ok(json) => Outcome::Forward(json),
                Err(outcome) => outcome,
            },
            Type::Array => {
                let Some(items) = value.as_array() else {
                    return self.wrong_type(&value, who);
                };
                self.fan_out(items, who)
            }
            _ => self.wrong_type(&value, who),
        }
    }

    fn fan_out(&self, items: &Array<'js>, who: &str) -> Outcome {
        let mut events = Vec::with_capacity(items.len());
        for index in 0..items.len() {
            let item: Value = match items.get(index) {
                Ok(item) => item,
                Err(err) => return self.failure(err),
            };
            if !matches!(item.type_of(), Type::Object | Type::Proxy) {
                return error(
                    ErrorKind::Unknown,
                    format!(
                        "{who} returned an array whose item {index} is {}; each item of a fan-out must be an event object",
                        a_type(&item)
                    ),
                );
            }
            match self.event_json(item) {
                Ok(json) => events.push(json),
                Err(outcome) => return outcome,
            }
        }
        Outcome::FanOut(events)
    }

    /// JSON text of an event object (see `json_out`: built-ins the function may have changed
    /// are not consulted); an outcome if serialising throws or gives no object.
    fn event_json(&self, value: Value<'js>) -> Result<String, Outcome> {
        let json = to_json(&self.ctx, &mut self.json.borrow_mut(), value);
        match json {
            Ok(Some(text)) if text.starts_with('{') => Ok(text),
            Ok(Some(_)) => Err(error(
                ErrorKind::Unknown,
                "the returned event's JSON (through its toJSON) is not an object",
            )),
            Ok(None) => Err(error(
                ErrorKind::Unknown,
                "the returned event has no JSON form (its toJSON returned undefined)",
            )),
            Err(JsonError::Type(message)) => Err(error(
                ErrorKind::Unknown,
                format!("TypeError: the returned event cannot be serialised: {message}"),
            )),
            Err(JsonError::Threw(err)) => Err(self.failure(err)),
        }
    }

    fn wrong_type(&self, value: &Value<'js>, who: &str) -> Outcome {
        error(
            ErrorKind::Unknown,
            format!(
                "{who} returned {}; return the event object, null to drop, or an array to fan out",
                a_type(value)
            ),
        )
    }

    /// The outcome of a rquickjs error: a JavaScript exception if one is pending, else an
    /// engine failure.
    pub fn failure(&self, err: rquickjs::Error) -> Outcome {
        if err.is_exception() {
            self.thrown(self.ctx.catch())
        } else {
            self.failed(err)
        }
    }

    /// The outcome of a thrown value. Aborts the invocation on a JavaScript stack overflow.
    pub fn thrown(&self, value: Value<'js>) -> Outcome {
        let (kind, message) = self.describe(value).unwrap_or_else(|| {
            (
                5,
                "the function threw a value that cannot be described".into(),
            )
        });
        let kind = match kind {
            0 => ErrorKind::EventNotSupported,
            1 => ErrorKind::InvalidEventPayload,
            2 => ErrorKind::ValidationError,
            3 => ErrorKind::RetryError,
            4 => ErrorKind::DropEvent,
            6 => stack_overflow(),
            _ => ErrorKind::Unknown,
        };
        error(kind, message)
    }

    /// The outcome of the engine failing around a call (not a JavaScript exception).
    pub fn failed(&self, err: rquickjs::Error) -> Outcome {
        error(
            ErrorKind::Unknown,
            format!("JavaScript engine error: {err}"),
        )
    }

    /// Ends the invocation if `value` is QuickJS's stack-overflow error.
    pub fn abort_if_stack_overflow(&self, value: Value<'js>) {
        if let Some((6, _)) = self.describe(value) {
            stack_overflow();
        }
    }

    /// `describeError(value)`: the kind number and message, as `prelude.js` numbers them.
    fn describe(&self, value: Value<'js>) -> Option<(i32, String)> {
        let described: rquickjs::Result<Array> = self.describe_error.call((value,));
        match described {
            Ok(pair) => Some((pair.get(0).ok()?, pair.get(1).ok()?)),
            Err(err) => {
                // `describeError` catches everything; only the engine failing gets here.
                if err.is_exception() {
                    let _ = self.ctx.catch();
                }
                None
            }
        }
    }
}

/// Ends the invocation: the code recursed past the engine's stack bound. Never returns.
pub fn stack_overflow() -> ! {
    script::abort(AbortReason::StackOverflow);
    std::process::abort()
}

/// "a string", "an array", ... for messages.
fn a_type(value: &Value<'_>) -> &'static str {
    match value.type_of() {
        Type::Uninitialized | Type::Undefined => "undefined",
        Type::Null => "null",
        Type::Bool => "a boolean",
        Type::Int | Type::Float => "a number",
        Type::String => "a string",
        Type::Symbol => "a symbol",
        Type::BigInt => "a bigint",
        Type::Array => "an array",
        Type::Function | Type::Constructor => "a function",
        Type::Promise => "a promise",
        Type::Exception => "an Error (throw it to fail the event)",
        Type::Object | Type::Proxy => "an object",
        Type::Module | Type::Unknown => "a value of unknown type",
    }
}
