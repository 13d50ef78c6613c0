//! Source functions: the webhook request the host hands to `handle` (a JSON object text:
//! `method`, `url`, `headers`, `body`) goes to `onRequest(request, settings)` through
//! `source.js`; the `Segment.*` calls it queued are the outcome's events (a fan-out; none is
//! a drop). A throw is the request's error, and then no event is sent.

use rquickjs::{Ctx, Value};

use crate::bindings::sluice::function::types::{ErrorKind, Outcome};
use crate::dispatch::call;
use crate::engine::Loaded;
use crate::outcome::{Reporter, error};

/// Runs `onRequest` on one webhook request.
pub fn request<'js>(
    ctx: &Ctx<'js>,
    loaded: &Loaded,
    reporter: &Reporter<'js>,
    settings: &Value<'js>,
    request: String,
) -> Outcome {
    let Some(on_request) = &loaded.handlers.request else {
        return error(
            ErrorKind::EventNotSupported,
            "no onRequest handler: a source function defines async function onRequest(request, settings)",
        );
    };
    let (on_request, run) = match (
        on_request.clone().restore(ctx),
        loaded.prelude.run_source.clone().restore(ctx),
    ) {
        (Ok(on_request), Ok(run)) => (on_request, run),
        (Err(err), _) | (_, Err(err)) => return reporter.failed(err),
    };
    let settled = call(
        ctx,
        loaded,
        reporter,
        &run,
        (on_request, request, settings.clone()),
    );
    reporter.settled(settled, "onRequest")
}
