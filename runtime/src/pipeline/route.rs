//! Routing: which of a source's destinations an event goes to, by its `integrations` object
//! (Segment's rules: `All` defaults to true; a destination named by its name or id overrides
//! it; `false` excludes, `true` or an object of options includes).

use serde_json::Value;

use crate::api::destinations::Destination;

/// Whether `event` should be delivered to `destination`.
pub fn wants(event: &Value, destination: &Destination) -> bool {
    let Some(integrations) = event.get("integrations").and_then(Value::as_object) else {
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

    #[test]
    fn integrations_all_names_and_ids() {
        let d = destination("Hook", "d1");
        assert!(wants(&json!({}), &d));
        assert!(!wants(&json!({"integrations": {"All": false}}), &d));
        assert!(wants(
            &json!({"integrations": {"All": false, "Hook": true}}),
            &d
        ));
        assert!(wants(
            &json!({"integrations": {"All": false, "d1": {"x": 1}}}),
            &d
        ));
        assert!(!wants(&json!({"integrations": {"Hook": false}}), &d));
        assert!(!wants(
            &json!({"integrations": {"All": true, "d1": false}}),
            &d
        ));
    }
}
