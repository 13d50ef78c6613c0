//! Routing: which of a source's destinations an event goes to, by its `integrations` object
//! (Segment's rules: `All` defaults to true; a destination named by its name or id overrides
//! it; `false` excludes, `true` or an object of options includes).

use serde_json::{Map, Value};

use crate::workspace::Destination;

/// Whether an event with these `integrations` should be delivered to `destination`.
pub fn wants(integrations: Option<&Map<String, Value>>, destination: &Destination) -> bool {
    let Some(integrations) = integrations else {
        return true;
    };
    let named = integrations
        .get(&destination.name)
        .or_else(|| integrations.get(&destination.id));
    let include = |v: &Value| !matches!(v, Value::Bool(false) | Value::Null);
    match named {
        Some(v) => include(v),
        None => integrations.get("All").is_none_or(include),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn destination(name: &str, id: &str) -> Destination {
        serde_json::from_value(json!({
            "id": id, "name": name, "enabled": true,
            "metadata": {"id": "webhook", "name": "Webhook", "slug": "webhook", "description": "", "categories": []},
            "sourceId": "s", "settings": {}, "createdAt": "", "updatedAt": ""
        }))
        .unwrap()
    }

    fn wants_json(event: &Value, d: &Destination) -> bool {
        wants(event.get("integrations").and_then(Value::as_object), d)
    }

    #[test]
    fn integrations_all_names_and_ids() {
        let d = destination("Hook", "d1");
        assert!(wants_json(&json!({}), &d));
        assert!(!wants_json(&json!({"integrations": {"All": false}}), &d));
        assert!(wants_json(
            &json!({"integrations": {"All": false, "Hook": true}}),
            &d
        ));
        assert!(wants_json(
            &json!({"integrations": {"All": false, "d1": {"x": 1}}}),
            &d
        ));
        assert!(!wants_json(&json!({"integrations": {"Hook": false}}), &d));
        assert!(!wants_json(
            &json!({"integrations": {"All": true, "d1": false}}),
            &d
        ));
    }
}
