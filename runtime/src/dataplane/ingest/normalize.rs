//! Segment's validation and normalisation of one tracking call: required fields per type,
//! `messageId`, `receivedAt`, timestamp correction and the batch's shared `context` and
//! `integrations`. The event's JSON is written once, here.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::dataplane::event::{Event, EventType};
use time::format_description::well_known::Rfc3339;

/// The most bytes one event may take, as JSON.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// The most bytes a request body may take.
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
/// The most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 2500;
/// The longest `messageId`.
pub const MAX_MESSAGE_ID: usize = 100;

/// The event types the tracking API takes (`delete` is not one of them).
pub const TYPES: [EventType; 6] = [
    EventType::Track,
    EventType::Identify,
    EventType::Page,
    EventType::Screen,
    EventType::Group,
    EventType::Alias,
];

/// Checks and completes one event. `kind` is the endpoint's type (`None` in a batch, where
/// each item names its `type`); `shared` holds the batch's `context` and `integrations`.
///
/// # Errors
/// A message naming what is wrong.
pub fn normalize(
    item: Value,
    kind: Option<EventType>,
    shared: &Map<String, Value>,
    received_at: OffsetDateTime,
) -> Result<Event, String> {
    let Value::Object(mut event) = item else {
        return Err("an event must be a JSON object".into());
    };
    event.remove("writeKey");
    let kind = match (kind, event.get("type").and_then(Value::as_str)) {
        (Some(k), _) => k,
        (None, Some(t)) => match EventType::parse(t).filter(|t| TYPES.contains(t)) {
            Some(t) => t,
            None => return Err(format!("unknown `type` {t:?}")),
        },
        (None, None) => return Err("`type` is required in a batch item".into()),
    };
    event.insert("type".into(), Value::String(kind.as_str().to_string()));
    let has = |e: &Map<String, Value>, k: &str| match e.get(k) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    };
    if !has(&event, "userId") && !has(&event, "anonymousId") {
        return Err("`userId` or `anonymousId` is required".into());
    }
    match kind.as_str() {
        "track" if !matches!(event.get("event"), Some(Value::String(s)) if !s.is_empty()) => {
            return Err("`event` is required in a track call".into());
        }
        "group" if !has(&event, "groupId") => {
            return Err("`groupId` is required in a group call".into());
        }
        "alias" if !has(&event, "previousId") => {
            return Err("`previousId` is required in an alias call".into());
        }
        _ => {}
    }
    for key in ["properties", "traits", "context", "integrations"] {
        match event.get(key) {
            None | Some(Value::Object(_)) => {}
            Some(Value::Null) => {
                event.remove(key);
            }
            Some(_) => return Err(format!("`{key}` must be an object")),
        }
    }
    for key in ["context", "integrations"] {
        if let Some(Value::Object(batch)) = shared.get(key) {
            let entry = event
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(own) = entry {
                for (k, v) in batch {
                    own.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    match event.get("messageId") {
        None | Some(Value::Null) => {
            event.insert(
                "messageId".into(),
                Value::String(format!("sluice-{}", uuid::Uuid::now_v7().simple())),
            );
        }
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_MESSAGE_ID => {}
        Some(_) => {
            return Err(format!(
                "`messageId` must be a string of 1 to {MAX_MESSAGE_ID} characters"
            ));
        }
    }
    let parse = |key: &str| -> Result<Option<OffsetDateTime>, String> {
        match event.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
                .map(Some)
                .map_err(|_| format!("`{key}` must be an ISO 8601 date-time")),
            Some(_) => Err(format!("`{key}` must be an ISO 8601 date-time")),
        }
    };
    let sent_at = parse("sentAt")?;
    let original = match parse("originalTimestamp")? {
        Some(t) => Some(t),
        None => parse("timestamp")?,
    };
    let timestamp = match (original, sent_at) {
        // The client's clock may be off; the offset between its two readings is not.
        // (Checked: absurd but well-formed dates must not overflow the calendar.)
        (Some(original), Some(sent)) => received_at
            .checked_sub(sent - original)
            .unwrap_or(received_at),
        (Some(original), None) => original,
        (None, _) => received_at,
    };
    if let Some(original) = original {
        event.insert("originalTimestamp".into(), Value::String(format(original)));
    }
    event.insert("timestamp".into(), Value::String(format(timestamp)));
    event.insert("receivedAt".into(), Value::String(format(received_at)));
    seal(event, kind)
}

/// The event's bytes, written once, and its envelope; the size limit is checked on them.
fn seal(event: Map<String, Value>, kind: EventType) -> Result<Event, String> {
    let message_id = match event.get("messageId") {
        Some(Value::String(id)) => id.clone(),
        _ => String::new(),
    };
    let json = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    if json.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "the event is {} bytes; the limit is {MAX_EVENT_BYTES}",
            json.len()
        ));
    }
    Ok(Event {
        message_id,
        kind,
        json: json.into(),
    })
}

fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(e: Event) -> Value {
        serde_json::from_slice(&e.json).unwrap()
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn required_fields_per_type() {
        let now = at("2026-01-01T00:00:10Z");
        let none = Map::new();
        let cases = [
            (
                json!({"event": "x"}),
                Some(EventType::Track),
                "`userId` or `anonymousId`",
            ),
            (
                json!({"userId": "u"}),
                Some(EventType::Track),
                "`event` is required",
            ),
            (json!({"userId": "u"}), Some(EventType::Group), "`groupId`"),
            (
                json!({"userId": "u"}),
                Some(EventType::Alias),
                "`previousId`",
            ),
            (json!({"userId": "u"}), None, "`type` is required"),
            (
                json!({"userId": "u", "type": "nope"}),
                None,
                "unknown `type`",
            ),
            (
                json!({"userId": "u", "properties": 3}),
                Some(EventType::Identify),
                "`properties` must",
            ),
            (
                json!({"userId": "u", "messageId": 7}),
                Some(EventType::Identify),
                "`messageId`",
            ),
            (
                json!({"userId": "u", "sentAt": "yesterday"}),
                Some(EventType::Identify),
                "`sentAt`",
            ),
        ];
        for (event, kind, expected) in cases {
            let err = normalize(event.clone(), kind, &none, now).unwrap_err();
            assert!(err.contains(expected), "{event}: {err}");
        }
        // Far-apart but valid dates do not overflow the correction.
        let odd = json!({"userId": "u", "originalTimestamp": "9999-01-01T00:00:00Z", "sentAt": "0001-01-01T00:00:00Z"});
        let e = parsed(normalize(odd, Some(EventType::Identify), &none, now).unwrap());
        assert_eq!(e["timestamp"], "2026-01-01T00:00:10Z");
        let big =
            json!({"userId": "u", "event": "E", "properties": {"x": "a".repeat(MAX_EVENT_BYTES)}});
        assert!(
            normalize(big, Some(EventType::Track), &none, now)
                .unwrap_err()
                .contains("bytes")
        );
    }

    #[test]
    fn completes_ids_times_and_shared_fields() {
        let now = at("2026-01-01T00:00:10Z");
        let shared =
            json!({"context": {"ip": "1.2.3.4", "locale": "fr"}, "integrations": {"All": false}});
        let e = normalize(
            json!({"anonymousId": "a", "event": "E", "context": {"locale": "en"},
                   "originalTimestamp": "2025-12-31T23:00:00Z", "sentAt": "2025-12-31T23:00:05Z",
                   "writeKey": "k"}),
            Some(EventType::Track),
            shared.as_object().unwrap(),
            now,
        )
        .unwrap();
        assert_eq!(e.kind, EventType::Track);
        let e = parsed(e);
        assert!(e["messageId"].as_str().unwrap().starts_with("sluice-"));
        assert_eq!(e["type"], "track");
        assert_eq!(e["receivedAt"], "2026-01-01T00:00:10Z");
        // receivedAt - (sentAt - originalTimestamp) = 10 s - 5 s.
        assert_eq!(e["timestamp"], "2026-01-01T00:00:05Z");
        assert_eq!(e["context"], json!({"ip": "1.2.3.4", "locale": "en"}));
        assert_eq!(e["integrations"], json!({"All": false}));
        assert!(e.get("writeKey").is_none());
    }
}
