//! Events into Segment's tables: each event becomes a row of its type's table (`tracks`,
//! `identifies`, `pages`, `screens`, `groups`, `aliases`), a track also a row of its event's
//! own table, an identify with a `userId` also a row of `users`. Nested objects flatten with
//! `_`, keys turn snake_case, arrays become JSON text, nulls are left out. An event is read
//! from its bytes into [`Json`] (strings borrowed, no `serde_json::Value` tree) and its
//! values typed once ([`Scalar`]: a time is parsed here, not again when loaded). Pure.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::naming::{event_table, identifier, snake_case};
use super::types::{Scalar, Text};
use crate::dataplane::event::JsonStr;

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

/// The event keys [`COMMON`]'s columns come from, in the same order.
const COMMON_KEYS: [&str; 7] = [
    "messageId",
    "anonymousId",
    "userId",
    "receivedAt",
    "sentAt",
    "timestamp",
    "originalTimestamp",
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

/// A JSON value read from an event's bytes: strings borrowed from them (unless escaped),
/// objects as sorted member lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// An array, already as the JSON text it loads as (an array is never looked into).
    Array(String),
    /// An object's members, sorted by key and each key once (its last value), as
    /// `serde_json::Map` has them: flattening reads keys in this order, which decides which
    /// of two keys that name the same column wins.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// An event from its bytes; `None` when they are not a JSON object.
    pub fn event(bytes: &'a [u8]) -> Option<Json<'a>> {
        match serde_json::from_slice(bytes) {
            Ok(event @ Json::Object(_)) => Some(event),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        let Json::Object(members) = self else {
            return None;
        };
        members
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &members[i].1)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn members(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The value as a `serde_json::Value` (for what is refused, rarely).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// The value as a cell's, with an array as its JSON text; `None` for null and `""`
    /// (they make no cell) and for objects (they flatten instead).
    fn scalar(&self) -> Option<Scalar> {
        match self {
            Json::Bool(b) => Some(Scalar::Bool(*b)),
            Json::Number(n) => Some(Scalar::Number(n.clone())),
            Json::Str(s) => Scalar::text(s),
            Json::Array(text) => Some(Scalar::Text(text.as_str().into())),
            Json::Null | Json::Object(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // As `serde_json::Value`: a number JSON cannot hold is null.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    /// Arrays load as JSON text written the way `serde_json::Value` writes it (objects in
    /// them with sorted keys, numbers normalised), so parsed as `Value`s.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Json::Array(Value::Array(items).to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        while let Some((JsonStr(key), value)) = map.next_entry::<JsonStr<'de>, Json<'de>>()? {
            members.push((key, value));
        }
        // Stable: of a repeated key, the last value stays last, and is the one kept.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(Cow<'de, str>, Json<'de>)> = Vec::with_capacity(members.len());
        for member in members {
            match unique.last_mut() {
                Some(last) if last.0 == member.0 => *last = member,
                _ => unique.push(member),
            }
        }
        Ok(Json::Object(unique))
    }
}

/// A row's cells: column -> value, sorted by column, each column once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cells(Vec<(Text, Scalar)>);

impl Cells {
    /// Cells from (column, value) pairs; of a repeated column the first is kept and the
    /// others are returned.
    pub fn from_pairs(mut pairs: Vec<(Text, Scalar)>) -> (Cells, Vec<(Text, Scalar)>) {
        // Stable, so the first of a repeated column stays first.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut cells: Vec<(Text, Scalar)> = Vec::with_capacity(pairs.len());
        let mut repeated = Vec::new();
        for pair in pairs {
            match cells.last() {
                Some(last) if last.0 == pair.0 => repeated.push(pair),
                _ => cells.push(pair),
            }
        }
        (Cells(cells), repeated)
    }

    /// The value of `column`.
    pub fn get(&self, column: &str) -> Option<&Scalar> {
        self.0
            .binary_search_by(|(c, _)| (**c).cmp(column))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Whether `column` has a value.
    pub fn contains_key(&self, column: &str) -> bool {
        self.get(column).is_some()
    }

    /// The (column, value) pairs, by column.
    pub fn iter(&self) -> impl Iterator<Item = &(Text, Scalar)> {
        self.0.iter()
    }

    /// Keeps the columns `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(c, _)| keep(c));
    }

    /// `later`'s values over these, what `later` leaves out kept.
    pub fn overlay(&mut self, later: Cells) {
        let mut all = std::mem::take(&mut self.0);
        all.extend(later.0);
        // Stable: of a repeated column, the later value is last, and is the one kept.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in all {
            match self.0.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => self.0.push(pair),
            }
        }
    }
}

impl IntoIterator for Cells {
    type Item = (Text, Scalar);
    type IntoIter = std::vec::IntoIter<(Text, Scalar)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::ops::Index<&str> for Cells {
    type Output = Scalar;

    /// # Panics
    /// When `column` has no value (for tests: loading code uses [`Cells::get`]).
    fn index(&self, column: &str) -> &Scalar {
        match self.get(column) {
            Some(value) => value,
            None => panic!("no cell `{column}`"),
        }
    }
}

/// One row: its table's columns with their values (never null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The row's id (`messageId`; `userId` in `users`).
    pub id: String,
    /// `receivedAt` as sent (the `discards` row of a refused value carries it).
    pub received_at: Option<String>,
    /// Column -> value.
    pub cells: Cells,
    /// Keys that could not become a column: (key, value, why).
    pub rejected: Vec<(String, Value, String)>,
}

/// Column names worked out so far (in one chunk): the keys repeat from event to event, and
/// snake_case, escaping and shortening a name cost several allocations each.
#[derive(Debug, Default)]
pub struct Names {
    /// `prefix` NUL `key` NUL-or-1 (`guard`) -> its names.
    known: foldhash::HashMap<String, Name>,
    /// The fixed columns' names ([`COMMON`], `event`, ...), shared by every row.
    fixed: foldhash::HashMap<&'static str, Text>,
    /// The lookup key being built (kept to reuse its allocation).
    scratch: String,
}

/// A key's names under one prefix.
#[derive(Debug)]
struct Name {
    /// The prefix and the key's snake_case joined with `_` (a nested object's prefix);
    /// empty when the key has no ASCII letter or digit.
    joined: String,
    /// The column a value of the key goes to (`_` first when the name is taken, escaped,
    /// shortened); `None` when the key names no column.
    column: Option<Text>,
}

impl Names {
    fn name(&mut self, prefix: &str, key: &str, guard: bool) -> &Name {
        self.scratch.clear();
        self.scratch.push_str(prefix);
        self.scratch.push('\0');
        self.scratch.push_str(key);
        self.scratch.push(if guard { '\0' } else { '\u{1}' });
        if !self.known.contains_key(self.scratch.as_str()) {
            let name = Name::new(prefix, key, guard);
            self.known.insert(self.scratch.clone(), name);
        }
        &self.known[self.scratch.as_str()]
    }

    /// The fixed column `name`, shared.
    fn fixed(&mut self, name: &'static str) -> Text {
        self.fixed
            .entry(name)
            .or_insert_with(|| name.into())
            .clone()
    }
}

impl Name {
    fn new(prefix: &str, key: &str, guard: bool) -> Name {
        let snake = snake_case(key);
        if snake.is_empty() {
            return Name {
                joined: snake,
                column: None,
            };
        }
        let joined = if prefix.is_empty() {
            snake
        } else {
            format!("{prefix}_{snake}")
        };
        let taken = guard && (TAKEN.contains(&joined.as_str()) || joined.starts_with("context_"));
        let column = if taken {
            identifier(&format!("_{joined}"))
        } else {
            identifier(&joined)
        };
        Name {
            joined,
            column: column.map(Text::from),
        }
    }
}

/// A row being built: its cells in the order flattening meets them.
#[derive(Debug, Clone, Default)]
struct Draft {
    id: String,
    received_at: Option<String>,
    cells: Vec<(Text, Scalar)>,
    rejected: Vec<(String, Value, String)>,
}

impl Draft {
    fn put(&mut self, names: &mut Names, column: &'static str, value: Option<Scalar>) {
        if let Some(value) = value {
            self.cells.push((names.fixed(column), value));
        }
    }

    /// `object` flattened into this row, each column named `prefix` + the keys' snake_case
    /// joined with `_`; a name that properties or traits may not take gets `_` first.
    fn flatten(
        &mut self,
        names: &mut Names,
        prefix: &str,
        object: &[(Cow<'_, str>, Json<'_>)],
        guard: bool,
    ) {
        for (key, value) in object {
            let name = names.name(prefix, key, guard);
            if name.joined.is_empty() {
                let why = "the key has no ASCII letter or digit to name a column".to_string();
                self.rejected.push((key.to_string(), value.to_value(), why));
                continue;
            }
            match value {
                Json::Object(inner) => {
                    let joined = name.joined.clone();
                    self.flatten(names, &joined, inner, guard);
                }
                _ => {
                    if let (Some(column), Some(value)) = (&name.column, value.scalar()) {
                        self.cells.push((column.clone(), value));
                    }
                }
            }
        }
    }

    /// The row, a repeated column's later values refused.
    fn finish(self) -> Row {
        let (cells, repeated) = Cells::from_pairs(self.cells);
        let mut rejected = self.rejected;
        for (column, value) in repeated {
            let why = format!("another key of this event is also named `{column}`");
            rejected.push((column.to_string(), value.into_json(), why));
        }
        Row {
            id: self.id,
            received_at: self.received_at,
            cells,
            rejected,
        }
    }
}

/// The rows one event makes: (table, row). A `delete` event, or a track without a usable
/// event name, makes only what it can (nothing for `delete`).
pub fn rows(event: &Json<'_>, names: &mut Names) -> Vec<(String, Row)> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or("");
    let mut common = common(event, names);
    let object = |key: &str| event.get(key).and_then(Json::members);
    match kind {
        "track" => {
            let name = event.get("event").and_then(Json::as_str).unwrap_or("");
            common.put(names, "event", Scalar::text(&snake_case(name)));
            common.put(names, "event_text", Scalar::text(name));
            let mut out = Vec::with_capacity(2);
            if let Some(table) = event_table(name) {
                let mut own = common.clone();
                if let Some(properties) = object("properties") {
                    own.flatten(names, "", properties, true);
                }
                out.push((table, own.finish()));
            }
            out.insert(0, ("tracks".to_string(), common.finish()));
            out
        }
        "identify" => {
            let mut out = Vec::with_capacity(2);
            if let Some(user) = user(event, &common, names) {
                out.push(("users".to_string(), user));
            }
            if let Some(traits) = object("traits") {
                common.flatten(names, "", traits, true);
            }
            out.insert(0, ("identifies".to_string(), common.finish()));
            out
        }
        "page" | "screen" => {
            common.put(names, "name", event.get("name").and_then(loose));
            if let Some(properties) = object("properties") {
                common.flatten(names, "", properties, true);
            }
            let table = if kind == "page" { "pages" } else { "screens" };
            vec![(table.to_string(), common.finish())]
        }
        "group" => {
            common.put(
                names,
                "group_id",
                event.get("groupId").and_then(scalar_text),
            );
            if let Some(traits) = object("traits") {
                common.flatten(names, "", traits, true);
            }
            vec![("groups".to_string(), common.finish())]
        }
        "alias" => {
            common.put(
                names,
                "previous_id",
                event.get("previousId").and_then(scalar_text),
            );
            vec![("aliases".to_string(), common.finish())]
        }
        _ => Vec::new(),
    }
}

/// The `users` row of an identify with a `userId`: its id, `received_at` and traits.
fn user(event: &Json<'_>, common: &Draft, names: &mut Names) -> Option<Row> {
    let user_id = match event.get("userId").and_then(scalar_text)? {
        Scalar::Text(id) | Scalar::Time(id, _) => id,
        _ => return None,
    };
    let mut user = Draft {
        id: user_id.to_string(),
        received_at: common.received_at.clone(),
        ..Draft::default()
    };
    user.put(names, "id", Some(Scalar::Text(user_id)));
    user.put(
        names,
        "received_at",
        event.get("receivedAt").and_then(scalar_text),
    );
    if let Some(traits) = event.get("traits").and_then(Json::members) {
        user.flatten(names, "", traits, true);
    }
    Some(user.finish())
}

/// Ids sent as numbers load as their text (the columns are text); `None` for null and `""`.
fn scalar_text(value: &Json<'_>) -> Option<Scalar> {
    match value {
        Json::Str(_) | Json::Null => value.scalar(),
        Json::Bool(b) => Scalar::text(&b.to_string()),
        Json::Number(n) => Scalar::text(&n.to_string()),
        Json::Array(text) => Scalar::text(text),
        Json::Object(_) => Scalar::text(&value.to_value().to_string()),
    }
}

/// A value that goes into its column as sent (a page's `name`): an object as its JSON text.
fn loose(value: &Json<'_>) -> Option<Scalar> {
    match value {
        Json::Object(_) => Some(Scalar::Text(value.to_value().to_string().into())),
        other => other.scalar(),
    }
}

fn common(event: &Json<'_>, names: &mut Names) -> Draft {
    let mut row = Draft {
        id: event
            .get("messageId")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        received_at: event
            .get("receivedAt")
            .and_then(Json::as_str)
            .map(str::to_string),
        ..Draft::default()
    };
    for (column, key) in COMMON.into_iter().zip(COMMON_KEYS) {
        row.put(names, column, event.get(key).and_then(scalar_text));
    }
    if let Some(context) = event.get("context").and_then(Json::members) {
        row.flatten(names, "context", context, false);
    }
    row
}

/// Whether Segment's per-event warehouse switch lets `event` into warehouse `id`:
/// `integrations.Warehouses = {"all": false}` leaves it out unless `warehouseIds` names `id`.
pub fn wanted_by(event: &Json<'_>, id: &str) -> bool {
    let Some(switch) = event
        .get("integrations")
        .and_then(|i| i.get("Warehouses"))
        .filter(|s| matches!(s, Json::Object(_)))
    else {
        return true;
    };
    if let Some(Json::Array(ids)) = switch.get("warehouseIds") {
        return serde_json::from_str::<Vec<Value>>(ids)
            .is_ok_and(|ids| ids.iter().any(|w| w.as_str() == Some(id)));
    }
    switch.get("all") != Some(&Json::Bool(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Tests compare cells with plain values, as they would a `serde_json::Value`.
    impl PartialEq<&str> for Scalar {
        fn eq(&self, other: &&str) -> bool {
            matches!(self, Scalar::Text(t) | Scalar::Time(t, _) if &**t == *other)
        }
    }

    impl PartialEq<f64> for Scalar {
        fn eq(&self, other: &f64) -> bool {
            matches!(self, Scalar::Number(n) if n.as_f64() == Some(*other))
        }
    }

    impl PartialEq<i32> for Scalar {
        fn eq(&self, other: &i32) -> bool {
            matches!(self, Scalar::Number(n) if n.as_i64() == Some(i64::from(*other)))
        }
    }

    fn of(event: Value) -> Vec<(String, Row)> {
        let bytes = serde_json::to_vec(&event).unwrap();
        rows(&Json::event(&bytes).unwrap(), &mut Names::default())
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
        let wanted = |v: Value, id: &str| {
            let bytes = serde_json::to_vec(&v).unwrap();
            wanted_by(&Json::event(&bytes).unwrap(), id)
        };
        assert!(wanted(json!({}), "w"));
        assert!(wanted(json!({"integrations": {"All": false}}), "w"));
        assert!(!wanted(
            json!({"integrations": {"Warehouses": {"all": false}}}),
            "w"
        ));
        assert!(wanted(
            json!({"integrations": {"Warehouses": {"all": false, "warehouseIds": ["w"]}}}),
            "w"
        ));
        assert!(!wanted(
            json!({"integrations": {"Warehouses": {"warehouseIds": ["v"]}}}),
            "w"
        ));
    }

    /// Raw bytes, as staged: what `json!` cannot write (repeated keys, escapes, spacing).
    fn raw(text: &str) -> Vec<(String, Row)> {
        rows(
            &Json::event(text.as_bytes()).unwrap(),
            &mut Names::default(),
        )
    }

    #[test]
    fn borrowed_parsing_reads_what_a_value_tree_would() {
        let out = raw(concat!(
            r#"{"type":"track","event":"Tab\tbed","messageId":"m\u00e9","userId":7,"#,
            r#""properties":{"a":1,"a":"last","q":"say \"hi\"","list": [ {"z":1, "b":1.0} , 1e2 ],"#,
            r#""deep":{"er":{"still":{"x":true}}},"none":null,"blank":"","empty":{},"#,
            r#""big":18446744073709551615,"neg":-3}}"#
        ));
        let own = &out[1].1;
        assert_eq!(out[1].0, "tab_bed");
        assert_eq!(own.id, "mé", "an escaped string is read");
        assert_eq!(own.cells["user_id"], "7", "a numeric id is its text");
        assert_eq!(own.cells["event_text"], "Tab\tbed");
        assert_eq!(
            own.cells["a"], "last",
            "a repeated key keeps its last value"
        );
        assert_eq!(own.cells["q"], "say \"hi\"");
        assert_eq!(
            own.cells["list"], "[{\"b\":1.0,\"z\":1},100.0]",
            "an array is its JSON text as serde_json writes it"
        );
        assert_eq!(own.cells["deep_er_still_x"], Scalar::Bool(true));
        assert_eq!(own.cells["neg"], -3);
        assert_eq!(
            own.cells["big"],
            Scalar::Number(u64::MAX.into()),
            "a number above i64 stays exact"
        );
        for absent in ["none", "blank", "empty"] {
            assert!(!own.cells.contains_key(absent), "{absent}");
        }
        assert!(Json::event(b"[1]").is_none(), "an event is an object");
        assert!(Json::event(b"{\"type\":").is_none(), "nor cut short");
    }

    #[test]
    fn times_are_typed_once_and_look_alikes_are_text() {
        let out = of(json!({"type": "page", "messageId": "m",
            "timestamp": "2026-01-02T03:04:05.5Z",
            "properties": {"at": "2026-01-02T03:04:05+01:00", "almost": "2026-01-02T03:04:05",
                           "spaced": "2026-01-02 03:04:05 UTC", "ordinal": "1999-12-31 party"}}));
        let cells = &out[0].1.cells;
        assert_eq!(
            cells["timestamp"],
            Scalar::Time("2026-01-02T03:04:05.5Z".into(), 1_767_323_045_500_000)
        );
        assert_eq!(
            cells["at"],
            Scalar::Time("2026-01-02T03:04:05+01:00".into(), 1_767_319_445_000_000)
        );
        for text in ["almost", "spaced", "ordinal"] {
            assert!(matches!(cells[text], Scalar::Text(_)), "{text}");
        }
    }

    #[test]
    fn unicode_long_keys_and_nested_collisions() {
        let long = "k".repeat(100);
        let out = raw(&format!(
            r#"{{"type":"identify","messageId":"m","userId":"u","traits":{{"名前":"x",
               "naïve Key":"ü","{long}":1,"a":{{"b":1}},"a_b":2,"context":{{"x":1}}}}}}"#
        ));
        let identifies = &out[0].1;
        assert_eq!(identifies.cells["na_ve_key"], "ü");
        let short = crate::dataplane::warehouse::naming::identifier(&long).unwrap();
        assert_eq!(short.len(), crate::dataplane::warehouse::naming::MAX_NAME);
        assert_eq!(identifies.cells[short.as_str()], 1);
        // `a` sorts before `a_b`: the nested `a.b` takes `a_b`, the flat key is refused.
        assert_eq!(identifies.cells["a_b"], 1);
        assert!(
            identifies
                .rejected
                .iter()
                .any(|(k, v, _)| k == "a_b" && *v == json!(2))
        );
        assert!(identifies.rejected.iter().any(|(k, _, _)| k == "名前"));
        assert_eq!(
            identifies.cells["_context_x"], 1,
            "traits never pose as context"
        );
    }
}
