//! Example insert function: routes events to destinations the Segment way, by `integrations`.
//!
//! Settings: `routes`, an object from a track event's name to the one destination (name or id)
//! that should receive it, e.g. `{"Order Completed": "Warehouse"}`. A routed event gets
//! `integrations = {"All": false, "<destination>": true}`; other events pass unchanged. With
//! `dropUnrouted: true`, track events that no route names are dropped.

use sluice_guest::{Context, Event, FunctionError, InsertFunction, Outcome, Value};

/// The router.
pub struct Router;

impl InsertFunction for Router {
    fn on_track(mut event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        let destination = event.event.as_deref().and_then(|name| {
            ctx.settings()
                .get("routes")
                .and_then(|routes| routes.get(name))
                .and_then(Value::as_str)
        });
        match destination {
            Some(destination) => {
                let destination = destination.to_string();
                ctx.info(format_args!(
                    "routing {:?} to {destination}",
                    event.event.as_deref().unwrap_or_default()
                ));
                event.route_only_to(&destination);
                Ok(event.into())
            }
            None if ctx.setting::<bool>("dropUnrouted") == Some(true) => Ok(Outcome::Drop),
            None => Ok(event.into()),
        }
    }

    fn on_identify(event: Event, _ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(event.into())
    }

    fn on_page(event: Event, _ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(event.into())
    }
    fn on_screen(event: Event, _ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(event.into())
    }
    fn on_group(event: Event, _ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(event.into())
    }
    fn on_alias(event: Event, _ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(event.into())
    }
    fn on_delete(event: Event, _ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(event.into())
    }
}

sluice_guest::export!(Router);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_guest::{Output, handle_json, json};

    #[test]
    fn routes_named_events_only() {
        let ctx = Context::local(json!({"routes": {"Order Completed": "Warehouse"}}), 0);
        let Output::Forward(out) = handle_json::<Router>(
            r#"{"type":"track","event":"Order Completed","integrations":{"Mixpanel":true}}"#,
            &ctx,
        ) else {
            panic!("not forwarded")
        };
        let out: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            out["integrations"],
            json!({"All": false, "Warehouse": true})
        );
        let unrouted = handle_json::<Router>(r#"{"type":"track","event":"Viewed"}"#, &ctx);
        assert_eq!(
            unrouted,
            Output::Forward(r#"{"type":"track","event":"Viewed"}"#.into())
        );
    }
}
