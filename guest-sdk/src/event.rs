//! The typed Segment event a handler receives and returns.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Segment's event types. An unknown `type` deserializes as [`EventType::Unknown`] and is
/// answered with `event-not-supported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A user action (`event` names it).
    Track,
    /// Who the user is (`traits`).
    Identify,
    /// A web page view (`name`).
    Page,
    /// A mobile screen view (`name`).
    Screen,
    /// A user joins a group or account (`groupId`, `traits`).
    Group,
    /// Merges two identities (`previousId`).
    Alias,
    /// A request to delete a user's data.
    Delete,
    /// Any type this SDK does not know.
    #[serde(other)]
    Unknown,
}

impl EventType {
    /// The wire name, as in the event's `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Track => "track",
            EventType::Identify => "identify",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
            EventType::Delete => "delete",
            EventType::Unknown => "unknown",
        }
    }
}

/// One event in Segment's spec. The common fields are typed; `properties`, `traits`, `context`
/// and `integrations` are JSON maps (empty maps are left out when the event is written back);
/// every other field is kept in [`Event::extra`] and written back unchanged.
///
/// Deserialization is hand-written rather than derived with `#[serde(flatten)]`: flatten
/// buffers the whole event into an intermediate tree first, which doubles the allocations of
/// every event a function reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `track`, `identify`, ...
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The deduplication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The known user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The anonymous visitor's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// A `track` event's name, such as `Order Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// A `page` or `screen` event's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A `group` event's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// An `alias` event's former id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// When the event happened (ISO-8601), after the server's clock correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A `track`, `page` or `screen` event's properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// An `identify` or `group` event's traits.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
    /// What the sending library knows of the device, page, campaign, ...
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// Which destinations receive the event: `{"All": true, "Webhook A": false}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub integrations: Map<String, Value>,
    /// Every other field (`sentAt`, `receivedAt`, `originalTimestamp`, ...), kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Segment event (a JSON object with a `type`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut event = Event::new(EventType::Unknown);
        let mut seen_type = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => {
                    event.event_type = map.next_value()?;
                    seen_type = true;
                }
                "messageId" => event.message_id = map.next_value()?,
                "userId" => event.user_id = map.next_value()?,
                "anonymousId" => event.anonymous_id = map.next_value()?,
                "event" => event.event = map.next_value()?,
                "name" => event.name = map.next_value()?,
                "groupId" => event.group_id = map.next_value()?,
                "previousId" => event.previous_id = map.next_value()?,
                "timestamp" => event.timestamp = map.next_value()?,
                "properties" => event.properties = object_or_empty(map.next_value()?),
                "traits" => event.traits = object_or_empty(map.next_value()?),
                "context" => event.context = object_or_empty(map.next_value()?),
                "integrations" => event.integrations = object_or_empty(map.next_value()?),
                _ => {
                    let value: Value = map.next_value()?;
                    event.extra.insert(key.into_owned(), value);
                }
            }
        }
        if !seen_type {
            return Err(de::Error::missing_field("type"));
        }
        Ok(event)
    }
}

/// `null` (which some libraries send for an absent map) reads as an empty map.
fn object_or_empty(value: Option<Map<String, Value>>) -> Map<String, Value> {
    value.unwrap_or_default()
}

impl Event {
    /// A new event of the given type with no fields set.
    pub fn new(event_type: EventType) -> Event {
        Event {
            event_type,
            message_id: None,
            user_id: None,
            anonymous_id: None,
            event: None,
            name: None,
            group_id: None,
            previous_id: None,
            timestamp: None,
            properties: Map::new(),
            traits: Map::new(),
            context: Map::new(),
            integrations: Map::new(),
            extra: Map::new(),
        }
    }

    /// Parses an event from JSON text.
    ///
    /// # Errors
    /// The text is not a JSON object of Segment's shape; the message names the problem.
    pub fn from_json(text: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes the event as compact JSON text.
    pub fn to_json(&self) -> String {
        // An `Event` is maps and strings only: serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Sends the event to `destination` only (by destination name or id), as Segment's
    /// `integrations: {"All": false, "<name>": true}`.
    pub fn route_only_to(&mut self, destination: &str) {
        self.integrations.clear();
        self.integrations.insert("All".into(), Value::Bool(false));
        self.integrations
            .insert(destination.into(), Value::Bool(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unknown_fields_and_drops_nothing() {
        let text = r#"{"type":"track","event":"Signed Up","userId":"u1","sentAt":"2026-01-01T00:00:00Z","properties":{"plan":"pro"},"version":2}"#;
        let event = Event::from_json(text).unwrap();
        assert_eq!(event.event_type, EventType::Track);
        assert_eq!(event.extra["sentAt"], "2026-01-01T00:00:00Z");
        let back: Value = serde_json::from_str(&event.to_json()).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn typed_fields_are_checked_and_null_maps_are_empty() {
        assert!(
            Event::from_json(r#"{"event":"x"}"#).is_err(),
            "type is required"
        );
        assert!(Event::from_json(r#"{"type":"track","properties":[1]}"#).is_err());
        assert!(Event::from_json(r#"{"type":"track","userId":7}"#).is_err());
        let event = Event::from_json(r#"{"type":"track","traits":null,"userId":null}"#).unwrap();
        assert!(event.traits.is_empty());
        assert_eq!(event.user_id, None);
    }

    #[test]
    fn unknown_type_is_unknown_not_an_error() {
        let event = Event::from_json(r#"{"type":"flush"}"#).unwrap();
        assert_eq!(event.event_type, EventType::Unknown);
    }

    #[test]
    fn route_only_to_replaces_integrations() {
        let mut event = Event::new(EventType::Track);
        event
            .integrations
            .insert("Mixpanel".into(), Value::Bool(true));
        event.route_only_to("Warehouse");
        assert_eq!(
            Value::Object(event.integrations),
            serde_json::json!({"All": false, "Warehouse": true})
        );
    }
}
