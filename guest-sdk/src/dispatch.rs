//! Turns event JSON text into a handler call and the handler's answer into an [`Output`].

use crate::InsertFunction;
use crate::context::Context;
use crate::event::{Event, EventType};
use crate::outcome::{ErrorKind, FunctionError, Outcome, Output};

/// Runs `F` on one event given as JSON text, as the host does. Use it in native tests (with
/// [`Context::local`]) to check a function's output exactly as sluice will see it.
pub fn handle_json<F: InsertFunction>(event: &str, ctx: &Context) -> Output {
    let event = match Event::from_json(event) {
        Ok(event) => event,
        Err(err) => {
            return Output::Error(FunctionError::new(
                ErrorKind::InvalidEventPayload,
                format!("the event is not a valid Segment event: {err}"),
            ));
        }
    };
    let result = match event.event_type {
        EventType::Track => F::on_track(event, ctx),
        EventType::Identify => F::on_identify(event, ctx),
        EventType::Page => F::on_page(event, ctx),
        EventType::Screen => F::on_screen(event, ctx),
        EventType::Group => F::on_group(event, ctx),
        EventType::Alias => F::on_alias(event, ctx),
        EventType::Delete => F::on_delete(event, ctx),
        EventType::Unknown => Err(FunctionError::new(
            ErrorKind::EventNotSupported,
            "unknown event type",
        )),
    };
    match result {
        Ok(Outcome::Forward(event)) => Output::Forward(event.to_json()),
        Ok(Outcome::Drop) => Output::Drop,
        Ok(Outcome::FanOut(events)) => Output::FanOut(events.iter().map(Event::to_json).collect()),
        Err(err) => Output::Error(err),
    }
}

/// Runs `F` on each event of a batch with one shared context; one output per event, in order.
pub fn handle_json_batch<F: InsertFunction>(events: &[String], ctx: &Context) -> Vec<Output> {
    events
        .iter()
        .map(|event| handle_json::<F>(event, ctx))
        .collect()
}
