//! Example insert function: redacts personal data in `properties`, `traits` and `context`.
//!
//! Settings (all optional):
//! - `dropFields`: dotted paths removed entirely before redaction, e.g.
//!   `["properties.phone", "context.ip"]`;
//! - `hashUserId`: replace `userId` with its SHA-256 hex digest (default `false`);
//! - `redaction`: `"mask"` (default; `[EMAIL]`, `[PHONE]`, ...) or `"hash"` (SHA-256 of the
//!   normalised value, so the same person still joins across events).
//!
//! Build: `cargo build -p pii-filter --target wasm32-wasip2 --profile wasm`.

use sluice_guest::pii::{self, Redaction};
use sluice_guest::{Context, Event, FunctionError, InsertFunction, Map, Outcome, Value};

/// The PII filter. Every event type is handled the same way.
pub struct PiiFilter;

impl PiiFilter {
    /// Applies the filter to one event with the given settings.
    pub fn filter(mut event: Event, ctx: &Context) -> Event {
        let how = match ctx.settings().get("redaction").and_then(Value::as_str) {
            Some("hash") => Redaction::Hash,
            _ => Redaction::Mask,
        };
        if let Some(Value::Array(paths)) = ctx.settings().get("dropFields") {
            for path in paths.iter().filter_map(Value::as_str) {
                drop_path(&mut event, path);
            }
        }
        for map in [&mut event.properties, &mut event.traits, &mut event.context] {
            for value in map.values_mut() {
                pii::redact_value(value, how);
            }
        }
        if ctx.setting::<bool>("hashUserId") == Some(true)
            && let Some(user_id) = event.user_id.as_mut()
        {
            *user_id = pii::hash_hex(user_id);
        }
        event
    }
}

/// Removes `section.key.key...` from the event; unknown sections and missing keys are ignored.
fn drop_path(event: &mut Event, path: &str) {
    let mut parts = path.split('.');
    let map: &mut Map<String, Value> = match parts.next() {
        Some("properties") => &mut event.properties,
        Some("traits") => &mut event.traits,
        Some("context") => &mut event.context,
        _ => return,
    };
    let keys: Vec<&str> = parts.collect();
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut current = map;
    for key in parents {
        match current.get_mut(*key) {
            Some(Value::Object(next)) => current = next,
            _ => return,
        }
    }
    current.remove(*last);
}

impl InsertFunction for PiiFilter {
    fn on_track(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
    fn on_identify(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
    fn on_page(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
    fn on_screen(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
    fn on_group(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
    fn on_alias(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
    // A user-deletion request must reach the destinations, so that they delete the user too.
    fn on_delete(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(Self::filter(event, ctx).into())
    }
}

sluice_guest::export!(PiiFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_guest::{Output, handle_json, json};

    fn run(event: Value, settings: Value) -> Value {
        let ctx = Context::local(settings, 0);
        match handle_json::<PiiFilter>(&event.to_string(), &ctx) {
            Output::Forward(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a forwarded event, got {other:?}"),
        }
    }

    #[test]
    fn masks_nested_pii_and_keeps_the_rest() {
        let out = run(
            json!({"type": "track", "event": "Order Completed", "userId": "u1",
                   "properties": {"note": "mail a@b.example.com", "revenue": 5.5,
                                  "items": [{"phone": "+1-555-922-5727"}]},
                   "context": {"ip": "10.1.2.3"}}),
            json!({}),
        );
        assert_eq!(
            out,
            json!({"type": "track", "event": "Order Completed", "userId": "u1",
                   "properties": {"note": "mail [EMAIL]", "revenue": 5.5,
                                  "items": [{"phone": "[PHONE]"}]},
                   "context": {"ip": "[IP]"}})
        );
    }

    #[test]
    fn drops_fields_and_hashes_user_id() {
        let out = run(
            json!({"type": "identify", "userId": "u1",
                   "traits": {"email": "A@B.example.com", "address": {"street": "1 Main"}}}),
            json!({"dropFields": ["traits.address.street"], "hashUserId": true, "redaction": "hash"}),
        );
        assert_eq!(out["userId"], pii::hash_hex("u1"));
        assert_eq!(out["traits"]["email"], pii::hash_hex("a@b.example.com"));
        assert_eq!(out["traits"]["address"], json!({}));
    }

    #[test]
    fn delete_events_pass_filtered() {
        let out = run(
            json!({"type": "delete", "userId": "u1", "context": {"ip": "10.0.0.1"}}),
            json!({"hashUserId": true}),
        );
        assert_eq!(out["type"], "delete");
        assert_eq!(out["userId"], pii::hash_hex("u1"));
        assert_eq!(out["context"]["ip"], "[IP]");
    }
}
