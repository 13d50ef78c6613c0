//! Segment's validation and normalisation of one tracking call: required fields per type,
//! `messageId`, `receivedAt`, timestamp correction and the batch's shared `context` and
//! `integrations`. The event's JSON is written once, here, from the request's own bytes: the
//! members Segment's rules do not touch are copied as they came, never parsed into a tree.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::members::{self, Members};
use crate::dataplane::event::{Event, EventType};

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

/// Members that must be objects when present; `null` removes them.
const OBJECTS: [&str; 4] = ["properties", "traits", "context", "integrations"];
/// Members normalisation writes itself.
const WRITTEN: [&str; 5] = [
    "writeKey",
    "type",
    "originalTimestamp",
    "timestamp",
    "receivedAt",
];

/// A batch's `context` and `integrations`, which its events inherit (each event's own keys
/// win). Parsed once per request; usually absent.
#[derive(Default)]
pub struct Shared {
    context: Option<Map<String, Value>>,
    integrations: Option<Map<String, Value>>,
}

impl Shared {
    /// The shared members of a batch request's `root`.
    pub fn of(root: &Members<'_>) -> Shared {
        let object = |key: &str| {
            root.get(key)
                .filter(|raw| members::is_object(raw))
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
        };
        Shared {
            context: object("context"),
            integrations: object("integrations"),
        }
    }

    fn for_key(&self, key: &str) -> Option<&Map<String, Value>> {
        match key {
            "context" => self.context.as_ref(),
            "integrations" => self.integrations.as_ref(),
            _ => None,
        }
    }
}

/// Checks and completes one event. `kind` is the endpoint's type (`None` in a batch, where
/// each item names its `type`). Cost: a scan of the event's members and one write of its
/// bytes (plus parsing the two shared objects' counterparts when the batch has them).
///
/// # Errors
/// A message naming what is wrong.
pub fn normalize(
    event: &Members<'_>,
    kind: Option<EventType>,
    shared: &Shared,
    received_at: OffsetDateTime,
) -> Result<Event, String> {
    let kind = kind_of(event, kind)?;
    required(event, kind)?;
    for key in OBJECTS {
        if let Some(raw) = event.get(key)
            && !members::is_object(raw)
            && !members::is_null(raw)
        {
            return Err(format!("`{key}` must be an object"));
        }
    }
    let message_id = message_id(event)?;
    let times = Times::of(event, received_at)?;
    let mut out = Writer::with_capacity(event.len_bytes() + 160);
    for (key, raw, replaced) in event.iter() {
        let own = WRITTEN.contains(&key)
            || (key == "messageId" && message_id.generated)
            || (OBJECTS.contains(&key) && members::is_null(raw))
            || shared.for_key(key).is_some();
        if !replaced && !own {
            out.raw(key, raw.get());
        }
    }
    for key in ["context", "integrations"] {
        if let Some(batch) = shared.for_key(key) {
            out.value(key, &merged(event.get(key), batch));
        }
    }
    out.text("type", kind.as_str());
    if message_id.generated {
        out.text("messageId", &message_id.id);
    }
    if let Some(original) = times.original {
        out.text("originalTimestamp", &format(original));
    }
    out.text("timestamp", &format(times.timestamp));
    out.text("receivedAt", &format(received_at));
    seal(out.finish(), message_id.id, kind)
}

/// The event's type: the endpoint's, or the batch item's `type`.
fn kind_of(event: &Members<'_>, kind: Option<EventType>) -> Result<EventType, String> {
    if let Some(k) = kind {
        return Ok(k);
    }
    let Some(t) = event.get("type").and_then(members::string) else {
        return Err("`type` is required in a batch item".into());
    };
    EventType::parse(&t)
        .filter(|t| TYPES.contains(t))
        .ok_or_else(|| format!("unknown `type` {t:?}"))
}

/// Segment's required fields per type.
fn required(event: &Members<'_>, kind: EventType) -> Result<(), String> {
    let has = |k: &str| {
        event.get(k).is_some_and(|raw| {
            members::is_number(raw) || members::string(raw).is_some_and(|s| !s.is_empty())
        })
    };
    if !has("userId") && !has("anonymousId") {
        return Err("`userId` or `anonymousId` is required".into());
    }
    let named = event
        .get("event")
        .and_then(members::string)
        .is_some_and(|s| !s.is_empty());
    match kind {
        EventType::Track if !named => Err("`event` is required in a track call".into()),
        EventType::Group if !has("groupId") => Err("`groupId` is required in a group call".into()),
        EventType::Alias if !has("previousId") => {
            Err("`previousId` is required in an alias call".into())
        }
        _ => Ok(()),
    }
}

/// The event's `messageId`, or a new one.
struct MessageId {
    id: String,
    generated: bool,
}

fn message_id(event: &Members<'_>) -> Result<MessageId, String> {
    let Some(raw) = event.get("messageId").filter(|raw| !members::is_null(raw)) else {
        return Ok(MessageId {
            id: format!("sluice-{}", uuid::Uuid::now_v7().simple()),
            generated: true,
        });
    };
    match members::string(raw) {
        Some(id) if !id.is_empty() && id.len() <= MAX_MESSAGE_ID => Ok(MessageId {
            id: id.into_owned(),
            generated: false,
        }),
        _ => Err(format!(
            "`messageId` must be a string of 1 to {MAX_MESSAGE_ID} characters"
        )),
    }
}

/// The event's times after Segment's clock correction.
struct Times {
    original: Option<OffsetDateTime>,
    timestamp: OffsetDateTime,
}

impl Times {
    fn of(event: &Members<'_>, received_at: OffsetDateTime) -> Result<Times, String> {
        let parse = |key: &str| -> Result<Option<OffsetDateTime>, String> {
            let Some(raw) = event.get(key).filter(|raw| !members::is_null(raw)) else {
                return Ok(None);
            };
            members::string(raw)
                .and_then(|s| OffsetDateTime::parse(&s, &Rfc3339).ok())
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be an ISO 8601 date-time"))
        };
        let sent_at = parse("sentAt")?;
        // `timestamp` is checked even when `originalTimestamp` wins: a malformed time is the
        // client's bug either way.
        let timestamp = parse("timestamp")?;
        let original = parse("originalTimestamp")?.or(timestamp);
        let timestamp = match (original, sent_at) {
            // The client's clock may be off; the offset between its two readings is not.
            // (Checked: absurd but well-formed dates must not overflow the calendar.)
            (Some(original), Some(sent)) => received_at
                .checked_sub(sent - original)
                .unwrap_or(received_at),
            (Some(original), None) => original,
            (None, _) => received_at,
        };
        Ok(Times {
            original,
            timestamp,
        })
    }
}

/// The event's own object `own` completed with the batch's `shared` entries.
fn merged(own: Option<&RawValue>, shared: &Map<String, Value>) -> Map<String, Value> {
    let mut own: Map<String, Value> = own
        .filter(|raw| members::is_object(raw))
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default();
    for (k, v) in shared {
        own.entry(k.clone()).or_insert_with(|| v.clone());
    }
    own
}

/// Writes a JSON object member by member.
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn with_capacity(bytes: usize) -> Writer {
        let mut out = Vec::with_capacity(bytes);
        out.push(b'{');
        Writer { out }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        // Writing a string into a vector cannot fail.
        let _ = serde_json::to_writer(&mut self.out, key);
        self.out.push(b':');
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
    }

    fn text(&mut self, key: &str, text: &str) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.out, text);
    }

    fn value(&mut self, key: &str, value: &Map<String, Value>) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.out, value);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// The event's bytes and its envelope; the size limit is checked on the bytes.
fn seal(json: Vec<u8>, message_id: String, kind: EventType) -> Result<Event, String> {
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

    /// Normalises `event` as a batch with `root` around it would.
    fn run(
        event: &Value,
        kind: Option<EventType>,
        root: &Value,
        now: OffsetDateTime,
    ) -> Result<Event, String> {
        let text = event.to_string();
        let root = root.to_string();
        let shared = Shared::of(&Members::parse(&root).unwrap());
        normalize(&Members::parse(&text).unwrap(), kind, &shared, now)
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn required_fields_per_type() {
        let now = at("2026-01-01T00:00:10Z");
        let none = json!({});
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
            let err = run(&event, kind, &none, now).unwrap_err();
            assert!(err.contains(expected), "{event}: {err}");
        }
        // Far-apart but valid dates do not overflow the correction.
        let odd = json!({"userId": "u", "originalTimestamp": "9999-01-01T00:00:00Z", "sentAt": "0001-01-01T00:00:00Z"});
        let e = parsed(run(&odd, Some(EventType::Identify), &none, now).unwrap());
        assert_eq!(e["timestamp"], "2026-01-01T00:00:10Z");
        let big =
            json!({"userId": "u", "event": "E", "properties": {"x": "a".repeat(MAX_EVENT_BYTES)}});
        assert!(
            run(&big, Some(EventType::Track), &none, now)
                .unwrap_err()
                .contains("bytes")
        );
    }

    #[test]
    fn completes_ids_times_and_shared_fields() {
        let now = at("2026-01-01T00:00:10Z");
        let shared =
            json!({"context": {"ip": "1.2.3.4", "locale": "fr"}, "integrations": {"All": false}});
        let e = run(
            &json!({"anonymousId": "a", "event": "E", "context": {"locale": "en"},
                   "originalTimestamp": "2025-12-31T23:00:00Z", "sentAt": "2025-12-31T23:00:05Z",
                   "writeKey": "k"}),
            Some(EventType::Track),
            &shared,
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

    #[test]
    fn copies_members_as_they_came() {
        let text = r#"{"userId":"u","properties":{"b":1,"a":"\u00e9"},"traits":null,"userId":"v"}"#;
        let members = Members::parse(text).unwrap();
        let now = at("2026-01-01T00:00:10Z");
        let e = normalize(&members, Some(EventType::Identify), &Shared::default(), now).unwrap();
        let json = std::str::from_utf8(&e.json).unwrap();
        let start = r#"{"properties":{"b":1,"a":"\u00e9"},"userId":"v","type":"identify","#;
        assert!(json.starts_with(start), "{json}");
        assert!(!json.contains("traits"), "{json}");
        assert_eq!(parsed(e)["properties"]["a"], "\u{e9}");
    }
}
