//! Example source function in Rust: a made-up SaaS app's webhook turned into Segment events,
//! called at `POST /v1/functions/<sourceId>?token=<write key>` (`docs/source-functions.md`).
//!
//! The app POSTs `{"events": [{"kind": "signup", "user": "u1", "email": "...", "plan": "..."},
//! {"kind": "purchase", "user": "u1", "amount": 12.5}, ...]}`. Each item becomes:
//! - `signup`: an `identify` (traits `email`, `plan`) then a `track` `Signed Up`;
//! - any other kind: a `track` whose `event` is the kind, the item's other fields its
//!   properties (`user`, `visitor` and `at` excepted).
//!
//! `user` is the `userId`, `visitor` the `anonymousId`, `at` the `timestamp`. An item with
//! neither `user` nor `visitor` is passed on as it is: the host refuses the request, naming
//! the event. A body that is not of this shape is a `validation-error` (the webhook's 400).
//!
//! Settings: optional `appName`, set as every event's `context.app.name`.

use serde::Deserialize;
use sluice_guest::{
    Context, Event, EventType, FunctionError, Map, Request, SourceFunction, Value, json,
};

/// The source function.
pub struct WebhookSource;

/// The app's webhook body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    events: Vec<Item>,
}

/// One of the app's events.
#[derive(Deserialize)]
struct Item {
    kind: String,
    user: Option<String>,
    visitor: Option<String>,
    at: Option<String>,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl SourceFunction for WebhookSource {
    fn on_request(request: Request, ctx: &Context) -> Result<Vec<Event>, FunctionError> {
        let body: Body = parse_body(&request)?;
        let app = ctx.setting::<String>("appName");
        let mut events = Vec::new();
        for item in body.events {
            events.extend(translate(item));
        }
        if let Some(app) = app {
            for event in &mut events {
                event.context.insert("app".into(), json!({"name": app}));
            }
        }
        Ok(events)
    }
}

/// The body as the app's shape, else a validation error saying what is expected.
fn parse_body(request: &Request) -> Result<Body, FunctionError> {
    request.json::<Body>().map_err(|e| {
        FunctionError::validation(format!(
            "expected {{\"events\": [{{\"kind\": ..., \"user\": ...}}]}}: {}",
            e.message
        ))
    })
}

/// The Segment events one item stands for.
fn translate(item: Item) -> Vec<Event> {
    let base = |kind: EventType| {
        let mut event = Event::new(kind);
        event.user_id = item.user.clone();
        event.anonymous_id = item.visitor.clone();
        event.timestamp = item.at.clone();
        event
    };
    if item.kind == "signup" {
        let mut identify = base(EventType::Identify);
        identify.traits = item.fields.clone();
        let mut track = base(EventType::Track);
        track.event = Some("Signed Up".into());
        return vec![identify, track];
    }
    let mut track = base(EventType::Track);
    track.event = Some(item.kind.clone());
    track.properties = item.fields;
    vec![track]
}

sluice_guest::export_source!(WebhookSource);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_guest::{Output, handle_request_json};

    fn run(body: &str) -> Output {
        let request =
            json!({"method": "POST", "url": "/v1/functions/s", "headers": {}, "body": body});
        let ctx = Context::local(json!({"appName": "Acme"}), 0);
        handle_request_json::<WebhookSource>(&request.to_string(), &ctx)
    }

    #[test]
    fn items_become_identify_and_track_events() {
        let body = r#"{"events": [{"kind": "signup", "user": "u1", "email": "a@example.com"},
                                  {"kind": "purchase", "visitor": "v9", "amount": 12.5}]}"#;
        let Output::FanOut(events) = run(body) else {
            panic!("a fan-out");
        };
        let events: Vec<Event> = events
            .iter()
            .map(|e| Event::from_json(e).unwrap())
            .collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event_type, EventType::Identify);
        assert_eq!(events[0].traits["email"], "a@example.com");
        assert_eq!(events[1].event.as_deref(), Some("Signed Up"));
        assert_eq!(events[2].anonymous_id.as_deref(), Some("v9"));
        assert_eq!(events[2].properties["amount"], 12.5);
        assert_eq!(events[2].context["app"]["name"], "Acme");
    }

    #[test]
    fn another_shape_is_a_validation_error() {
        let Output::Error(e) = run(r#"{"hello": 1}"#) else {
            panic!("an error");
        };
        assert_eq!(e.kind, sluice_guest::ErrorKind::ValidationError);
        assert!(e.message.contains("expected"), "{}", e.message);
    }
}
