//! The component side of `export!`: WIT calls in, handler calls out. Not part of the API.

use std::sync::Once;

use crate::__bindings::Outcome;
use crate::__bindings::sluice::function::types::{ErrorKind as WitKind, FunctionError as WitError};
use crate::context::{Context, Level, host_log};
use crate::outcome::{ErrorKind, Output};
use crate::{InsertFunction, SourceFunction, dispatch, source};

/// Sends panic messages to the function's log, so that the host can report what a trapped
/// function said before it died instead of a bare `unreachable`.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            host_log(Level::Error, &format!("panic: {info}"));
        }));
    });
}

pub fn handle<F: InsertFunction>(event: &str) -> Outcome {
    install_panic_hook();
    to_wit(dispatch::handle_json::<F>(event, &Context::host()))
}

pub fn handle_batch<F: InsertFunction>(events: &[String]) -> Vec<Outcome> {
    install_panic_hook();
    let ctx = Context::host();
    events
        .iter()
        .map(|event| to_wit(dispatch::handle_json::<F>(event, &ctx)))
        .collect()
}

pub fn handle_request<F: SourceFunction>(request: &str) -> Outcome {
    install_panic_hook();
    to_wit(source::handle_request_json::<F>(request, &Context::host()))
}

fn to_wit(output: Output) -> Outcome {
    match output {
        Output::Forward(event) => Outcome::Forward(event),
        Output::Drop => Outcome::Drop,
        Output::FanOut(events) => Outcome::FanOut(events),
        Output::Error(err) => Outcome::Error(WitError {
            kind: match err.kind {
                ErrorKind::EventNotSupported => WitKind::EventNotSupported,
                ErrorKind::InvalidEventPayload => WitKind::InvalidEventPayload,
                ErrorKind::ValidationError => WitKind::ValidationError,
                ErrorKind::RetryError => WitKind::RetryError,
                ErrorKind::DropEvent => WitKind::DropEvent,
                ErrorKind::Unknown => WitKind::Unknown,
            },
            message: err.message,
        }),
    }
}
