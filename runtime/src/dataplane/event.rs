//! The event as it crosses the data plane: a small typed envelope (message id, type, source)
//! beside the event's JSON bytes, parsed once at ingestion. Stages pass the bytes; a stage that
//! must look inside reads only what it needs. Also the binary records the durable logs carry:
//! a [`Batch`] of one source's events (ingestion, one record per request) and a list of
//! [`Delivery`] entries (the pipeline's output, one record per processed chunk).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Segment's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `track`.
    Track,
    /// `identify`.
    Identify,
    /// `page`.
    Page,
    /// `screen`.
    Screen,
    /// `group`.
    Group,
    /// `alias`.
    Alias,
    /// `delete` (a user deletion request; only functions emit it here).
    Delete,
}

impl EventType {
    /// Every type, in wire order.
    pub const ALL: [EventType; 7] = [
        EventType::Track,
        EventType::Identify,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
        EventType::Delete,
    ];

    /// The type as Segment writes it (`track`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Track => "track",
            EventType::Identify => "identify",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
            EventType::Delete => "delete",
        }
    }

    /// The type named `name`, if it is one.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    fn code(self) -> u8 {
        EventType::ALL.iter().position(|t| *t == self).unwrap_or(0) as u8
    }

    fn from_code(code: u8) -> Option<EventType> {
        EventType::ALL.get(usize::from(code)).copied()
    }
}

/// One normalised event: what the stages need to know without parsing, and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `messageId` (dedup, the debugger, derived ids).
    pub message_id: String,
    /// `type`.
    pub kind: EventType,
    /// The event, a JSON object (UTF-8).
    pub json: Bytes,
}

impl Event {
    /// The JSON as text. The bytes are UTF-8 by construction (serde_json wrote them, or a
    /// function's output string); anything else reads as empty.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.json).unwrap_or_default()
    }
}

/// Why a record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record ended before a field it announces.
    #[error("a log record is truncated")]
    Truncated,
    /// An unknown version or type code.
    #[error("a log record has an unknown format ({0})")]
    Format(&'static str),
}

const VERSION: u8 = 1;

fn put_str(out: &mut BytesMut, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

fn get_bytes(input: &mut Bytes) -> Result<Bytes, RecordError> {
    if input.remaining() < 4 {
        return Err(RecordError::Truncated);
    }
    let n = input.get_u32_le() as usize;
    if input.remaining() < n {
        return Err(RecordError::Truncated);
    }
    Ok(input.split_to(n))
}

fn get_str(input: &mut Bytes) -> Result<String, RecordError> {
    let b = get_bytes(input)?;
    String::from_utf8(b.to_vec()).map_err(|_| RecordError::Format("text is not UTF-8"))
}

fn get_u8(input: &mut Bytes) -> Result<u8, RecordError> {
    if input.remaining() < 1 {
        return Err(RecordError::Truncated);
    }
    Ok(input.get_u8())
}

fn get_u32(input: &mut Bytes) -> Result<u32, RecordError> {
    if input.remaining() < 4 {
        return Err(RecordError::Truncated);
    }
    Ok(input.get_u32_le())
}

fn put_event(out: &mut BytesMut, e: &Event) {
    put_str(out, &e.message_id);
    out.put_u8(e.kind.code());
    put_bytes(out, &e.json);
}

fn get_event(input: &mut Bytes) -> Result<Event, RecordError> {
    let message_id = get_str(input)?;
    let kind = EventType::from_code(get_u8(input)?).ok_or(RecordError::Format("event type"))?;
    let json = get_bytes(input)?;
    Ok(Event {
        message_id,
        kind,
        json,
    })
}

/// Events accepted together for one source: the ingest log's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The source.
    pub source_id: String,
    /// Its events, in the order they were sent.
    pub events: Vec<Event>,
}

impl Batch {
    /// The record's bytes (one copy of each event's JSON).
    pub fn encode(&self) -> Bytes {
        let size: usize = self.events.iter().map(|e| e.json.len() + 64).sum();
        let mut out = BytesMut::with_capacity(size + 64);
        out.put_u8(VERSION);
        put_str(&mut out, &self.source_id);
        out.put_u32_le(self.events.len() as u32);
        for e in &self.events {
            put_event(&mut out, e);
        }
        out.freeze()
    }

    /// Reads a record written by [`Batch::encode`]; the events share its bytes (no copy).
    ///
    /// # Errors
    /// The record is truncated or of another format.
    pub fn decode(mut record: Bytes) -> Result<Batch, RecordError> {
        if get_u8(&mut record)? != VERSION {
            return Err(RecordError::Format("batch version"));
        }
        let source_id = get_str(&mut record)?;
        let n = get_u32(&mut record)? as usize;
        let mut events = Vec::with_capacity(n.min(10_000));
        for _ in 0..n {
            events.push(get_event(&mut record)?);
        }
        Ok(Batch { source_id, events })
    }
}

/// An event to deliver to one destination: the deliveries log's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The destination.
    pub destination_id: String,
    /// The source the event came from.
    pub source_id: String,
    /// The event as the destination receives it.
    pub event: Event,
}

/// The deliveries log's record: what the pipeline made of one chunk of the ingest log.
///
/// # Errors
/// None: encoding cannot fail.
pub fn encode_deliveries(deliveries: &[Delivery]) -> Bytes {
    let size: usize = deliveries.iter().map(|d| d.event.json.len() + 128).sum();
    let mut out = BytesMut::with_capacity(size + 8);
    out.put_u8(VERSION);
    out.put_u32_le(deliveries.len() as u32);
    for d in deliveries {
        put_str(&mut out, &d.destination_id);
        put_str(&mut out, &d.source_id);
        put_event(&mut out, &d.event);
    }
    out.freeze()
}

/// Reads a record written by [`encode_deliveries`].
///
/// # Errors
/// The record is truncated or of another format.
pub fn decode_deliveries(mut record: Bytes) -> Result<Vec<Delivery>, RecordError> {
    if get_u8(&mut record)? != VERSION {
        return Err(RecordError::Format("deliveries version"));
    }
    let n = get_u32(&mut record)? as usize;
    let mut out = Vec::with_capacity(n.min(100_000));
    for _ in 0..n {
        let destination_id = get_str(&mut record)?;
        let source_id = get_str(&mut record)?;
        let event = get_event(&mut record)?;
        out.push(Delivery {
            destination_id,
            source_id,
            event,
        });
    }
    Ok(out)
}

/// The fields of an event the data plane reads without building a tree: one scan of the
/// text, no allocation for the rest of the event.
#[derive(Debug, Deserialize)]
pub struct Head<'a> {
    /// `type`.
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<std::borrow::Cow<'a, str>>,
    /// `messageId`.
    #[serde(rename = "messageId", default, borrow)]
    pub message_id: Option<std::borrow::Cow<'a, str>>,
    /// `integrations` (small: a map of destination names to booleans or settings).
    #[serde(default)]
    pub integrations: Option<Map<String, Value>>,
}

impl<'a> Head<'a> {
    /// Reads the head of `json`, which must be a JSON object.
    ///
    /// # Errors
    /// `json` is not a JSON object.
    pub fn read(json: &'a str) -> Result<Head<'a>, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// A JSON string (an object key or a string value) borrowed from the bytes it was read from,
/// copied only when it holds an escape. Shared by the readers that never build a
/// `serde_json::Value` tree (ingestion's members, the warehouse's flattening). Costs nothing
/// beyond serde_json's own unescaping.
pub struct JsonStr<'a>(pub std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(JsonStrVisitor)
    }
}

struct JsonStrVisitor;

impl<'de> serde::de::Visitor<'de> for JsonStrVisitor {
    type Value = JsonStr<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<JsonStr<'de>, E> {
        Ok(JsonStr(std::borrow::Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<JsonStr<'de>, E> {
        Ok(JsonStr(std::borrow::Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<JsonStr<'de>, E> {
        Ok(JsonStr(std::borrow::Cow::Owned(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: EventType) -> Event {
        Event {
            message_id: id.into(),
            kind,
            json: Bytes::from(format!(
                r#"{{"messageId":"{id}","type":"{}"}}"#,
                kind.as_str()
            )),
        }
    }

    #[test]
    fn records_round_trip() {
        let batch = Batch {
            source_id: "src".into(),
            events: vec![event("a", EventType::Track), event("b", EventType::Alias)],
        };
        assert_eq!(Batch::decode(batch.encode()).unwrap(), batch);
        let deliveries = vec![Delivery {
            destination_id: "d".into(),
            source_id: "s".into(),
            event: event("c", EventType::Delete),
        }];
        let back = decode_deliveries(encode_deliveries(&deliveries)).unwrap();
        assert_eq!(back, deliveries);
    }

    #[test]
    fn truncated_records_are_errors_not_garbage() {
        let record = Batch {
            source_id: "src".into(),
            events: vec![event("a", EventType::Track)],
        }
        .encode();
        for cut in 0..record.len() {
            assert!(Batch::decode(record.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_head_is_read_without_the_rest() {
        let head =
            Head::read(r#"{"a":{"b":[1,2]},"type":"track","integrations":{"All":false}}"#).unwrap();
        assert_eq!(head.kind.as_deref(), Some("track"));
        assert!(head.message_id.is_none());
        assert_eq!(head.integrations.unwrap()["All"], false);
        assert!(Head::read("[1]").is_err());
    }
}
