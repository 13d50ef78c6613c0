//! Events into Segment's tables: each event becomes a row of its type's table (`tracks`,
//! `identifies`, `pages`, `screens`, `groups`, `aliases`), a track also a row of its event's
//! own table, an identify with a `userId` also a row of `users`. Nested objects flatten with
//! `_`, keys turn snake_case, arrays become JSON text, nulls are left out. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::naming::{event_table, identifier, snake_case};

/// The columns every event's row has (besides `uuid_ts`, the load time, and `context_*`).
pub const COMMON: [&str; 7] = [
    "id",
    "anonymous_id",
    "user_id",
    "received_at",
    "sent_at",
    "timestamp",
    "original_timestamp",
];

/// Column names that properties and traits may not take: they get a `_` prefix.
const TAKEN: [&str; 11] = [
    "id",
    "anonymous_id",
    "user_id",
    "received_at",
    "sent_at",
    "timestamp",
    "original_timestamp",
    "uuid_ts",
    "event",
    "event_text",
    "group_id",
];

/// One row: its table's columns with their JSON values (never null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The row's id (`messageId`; `userId` in `users`).
    pub id: String,
    /// `receivedAt` as sent (the `discards` row of a refused value carries it).
    pub received_at: Option<String>,
    /// Column -> value.
    pub cells: BTreeMap<String, Value>,
    /// Keys that could not become a column: (key, value, why).
    pub rejected: Vec<(String, Value, String)>,
}

impl Row {
    fn put(&mut self, column: String, value: Value) {
        if value.is_null() || value.as_str().is_some_and(str::is_empty) {
            return;
        }
        if self.cells.contains_key(&column) {
            let why = format!("another key of this event is also named `{column}`");
            self.rejected.push((column, value, why));
            return;
        }
        self.cells.insert(column, value);
    }

    /// `object` flattened into this row, each column named `prefix` + the keys' snake_case
    /// joined with `_`; a name that properties or traits may not take gets `_` first.
    fn flatten(&mut self, prefix: &str, object: &Map<String, Value>, guard: bool) {
        for (key, value) in object {
            let snake = snake_case(key);
            if snake.is_empty() {
                let why = "the key has no ASCII letter or digit to name a column".to_string();
                self.rejected.push((key.clone(), value.clone(), why));
                continue;
            }
            let name = if prefix.is_empty() {
                snake
            } else {
                format!("{prefix}_{snake}")
            };
            match value {
                Value::Object(inner) => self.flatten(&name, inner, guard),
                Value::Array(_) => self.column(&name, Value::String(value.to_string()), guard),
                _ => self.column(&name, value.clone(), guard),
            }
        }
    }

    fn column(&mut self, name: &str, value: Value, guard: bool) {
        let taken = guard && (TAKEN.contains(&name) || name.starts_with("context_"));
        let name = if taken {
            format!("_{name}")
        } else {
            name.to_string()
        };
        if let Some(column) = identifier(&name) {
            self.put(column, value);
        }
    }
}

/// The rows one event makes: (table, row). A `delete` event, or a track without a usable
/// event name, makes only what it can (nothing for `delete`).
pub fn rows(event: &Map<String, Value>) -> Vec<(String, Row)> {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    let mut common = common(event);
    let text = |key: &str| event.get(key).filter(|v| !v.is_null()).cloned();
    let object = |key: &str| event.get(key).and_then(Value::as_object);
    match kind {
        "track" => {
            let name = event.get("event").and_then(Value::as_str).unwrap_or("");
            common.put("event".into(), Value::String(snake_case(name)));
            common.put("event_text".into(), Value::String(name.to_string()));
            let mut out = vec![("tracks".to_string(), common.clone())];
            if let Some(table) = event_table(name) {
                let mut own = common;
                if let Some(properties) = object("properties") {
                    own.flatten("", properties, true);
                }
                out.push((table, own));
            }
            out
        }
        "identify" => {
            let mut out = Vec::with_capacity(2);
            if let Some(user_id) = common.cells.get("user_id").and_then(Value::as_str) {
                let mut user = Row {
                    id: user_id.to_string(),
                    received_at: common.received_at.clone(),
                    ..Row::default()
                };
                user.put("id".into(), Value::String(user_id.to_string()));
                if let Some(at) = common.cells.get("received_at") {
                    user.put("received_at".into(), at.clone());
                }
                if let Some(traits) = object("traits") {
                    user.flatten("", traits, true);
                }
                out.push(("users".to_string(), user));
            }
            if let Some(traits) = object("traits") {
                common.flatten("", traits, true);
            }
            out.insert(0, ("identifies".to_string(), common));
            out
        }
        "page" | "screen" => {
            if let Some(name) = text("name") {
                common.put("name".into(), name);
            }
            if let Some(properties) = object("properties") {
                common.flatten("", properties, true);
            }
            let table = if kind == "page" { "pages" } else { "screens" };
            vec![(table.to_string(), common)]
        }
        "group" => {
            if let Some(group_id) = text("groupId") {
                common.put("group_id".into(), scalar_text(group_id));
            }
            if let Some(traits) = object("traits") {
                common.flatten("", traits, true);
            }
            vec![("groups".to_string(), common)]
        }
        "alias" => {
            if let Some(previous) = text("previousId") {
                common.put("previous_id".into(), scalar_text(previous));
            }
            vec![("aliases".to_string(), common)]
        }
        _ => Vec::new(),
    }
}

/// Ids sent as numbers load as their text (the columns are text).
fn scalar_text(value: Value) -> Value {
    match value {
        Value::String(_) => value,
        other => Value::String(other.to_string()),
    }
}

fn common(event: &Map<String, Value>) -> Row {
    let mut row = Row {
        id: event
            .get("messageId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        received_at: event
            .get("receivedAt")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Row::default()
    };
    for (column, key) in COMMON.iter().zip([
        "messageId",
        "anonymousId",
        "userId",
        "receivedAt",
        "sentAt",
        "timestamp",
        "originalTimestamp",
    ]) {
        if let Some(value) = event.get(key).filter(|v| !v.is_null()) {
            row.put(column.to_string(), scalar_text(value.clone()));
        }
    }
    if let Some(context) = event.get("context").and_then(Value::as_object) {
        row.flatten("context", context, false);
    }
    row
}

/// Whether Segment's per-event warehouse switch lets `event` into warehouse `id`:
/// `integrations.Warehouses = {"all": false}` leaves it out unless `warehouseIds` names `id`.
pub fn wanted_by(event: &Map<String, Value>, id: &str) -> bool {
    let Some(switch) = event
        .get("integrations")
        .and_then(|i| i.get("Warehouses"))
        .and_then(Value::as_object)
    else {
        return true;
    };
    if let Some(ids) = switch.get("warehouseIds").and_then(Value::as_array) {
        return ids.iter().any(|w| w.as_str() == Some(id));
    }
    switch.get("all") != Some(&Value::Bool(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(event: Value) -> Vec<(String, Row)> {
        rows(event.as_object().unwrap())
    }

    #[test]
    fn a_track_makes_tracks_and_its_own_table() {
        let out = of(json!({
            "type": "track", "event": "Order Completed", "messageId": "m1", "userId": "u1",
            "receivedAt": "2026-01-01T00:00:00Z", "timestamp": "2026-01-01T00:00:00Z",
            "context": {"app": {"version": "1.2"}, "ip": "1.2.3.4", "tags": ["a", "b"]},
            "properties": {"orderId": "o1", "total": 12.5, "items": [1, 2], "nested": {"deepKey": 1},
                           "id": "clash", "event": "clash too", "nothing": null, "from": "kw"}
        }));
        let tables: Vec<&str> = out.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tables, ["tracks", "order_completed"]);
        let tracks = &out[0].1.cells;
        assert_eq!(tracks["id"], "m1");
        assert_eq!(tracks["event"], "order_completed");
        assert_eq!(tracks["event_text"], "Order Completed");
        assert_eq!(tracks["context_app_version"], "1.2");
        assert_eq!(tracks["context_tags"], "[\"a\",\"b\"]");
        assert!(
            !tracks.contains_key("order_id"),
            "tracks holds no properties"
        );
        let own = &out[1].1.cells;
        assert_eq!(own["order_id"], "o1");
        assert_eq!(own["total"], 12.5);
        assert_eq!(own["items"], "[1,2]");
        assert_eq!(own["nested_deep_key"], 1);
        assert_eq!(own["_id"], "clash");
        assert_eq!(own["_event"], "clash too");
        assert_eq!(own["_from"], "kw");
        assert!(!own.contains_key("nothing"));
        assert_eq!(own["id"], "m1");
    }

    #[test]
    fn identify_makes_identifies_and_users() {
        let out = of(json!({
            "type": "identify", "messageId": "m2", "userId": "u1", "anonymousId": "a1",
            "receivedAt": "2026-01-01T00:00:00Z",
            "traits": {"email": "x@y.z", "address": {"street": "Main"}, "userId": "dup"}
        }));
        assert_eq!(out[0].0, "identifies");
        assert_eq!(out[0].1.cells["address_street"], "Main");
        assert_eq!(out[0].1.cells["anonymous_id"], "a1");
        assert_eq!(out[1].0, "users");
        let user = &out[1].1;
        assert_eq!(user.id, "u1");
        assert_eq!(user.cells["id"], "u1");
        assert_eq!(user.cells["email"], "x@y.z");
        assert_eq!(user.cells["_user_id"], "dup");
        assert!(!user.cells.contains_key("anonymous_id"));
        let anonymous = of(json!({"type": "identify", "messageId": "m", "anonymousId": "a"}));
        assert_eq!(anonymous.len(), 1, "no users row without a userId");
    }

    #[test]
    fn other_types_and_collisions() {
        let page = of(json!({"type": "page", "messageId": "m", "name": "Home",
                             "properties": {"url": "/", "URL": "dup"}}));
        assert_eq!(page[0].0, "pages");
        assert_eq!(page[0].1.cells["name"], "Home");
        // Keys are read in order (`URL` before `url`): the first takes the column.
        assert_eq!(page[0].1.cells["url"], "dup");
        let rejected = &page[0].1.rejected;
        assert_eq!(
            (rejected[0].0.as_str(), &rejected[0].1),
            ("url", &json!("/"))
        );
        let group = of(
            json!({"type": "group", "messageId": "m", "groupId": 42, "traits": {"plan": "pro"}}),
        );
        assert_eq!(group[0].1.cells["group_id"], "42");
        assert_eq!(group[0].1.cells["plan"], "pro");
        let alias = of(json!({"type": "alias", "messageId": "m", "previousId": "old"}));
        assert_eq!(alias[0].1.cells["previous_id"], "old");
        assert!(of(json!({"type": "delete", "messageId": "m"})).is_empty());
        let screen = of(json!({"type": "screen", "messageId": "m", "properties": {"日本": 1}}));
        assert_eq!(screen[0].0, "screens");
        assert_eq!(screen[0].1.rejected[0].0, "日本");
    }

    #[test]
    fn the_warehouses_switch() {
        let e = |v: Value| v.as_object().unwrap().clone();
        assert!(wanted_by(&e(json!({})), "w"));
        assert!(wanted_by(&e(json!({"integrations": {"All": false}})), "w"));
        assert!(!wanted_by(
            &e(json!({"integrations": {"Warehouses": {"all": false}}})),
            "w"
        ));
        assert!(wanted_by(
            &e(json!({"integrations": {"Warehouses": {"all": false, "warehouseIds": ["w"]}}})),
            "w"
        ));
        assert!(!wanted_by(
            &e(json!({"integrations": {"Warehouses": {"warehouseIds": ["v"]}}})),
            "w"
        ));
    }
}
