//! What a function hands back is checked before it goes on: each event must be a JSON object
//! with a known `type` and the fields that type requires. A missing `messageId` is restored
//! from the input event (fanned-out events get `<input id>-<n>`). One scan of each output's
//! text, no tree built.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::dataplane::event::{Event, EventType};

/// Why a function's output was refused (`invalid-output`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOutput(pub String);

/// The fields the check reads.
#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(default)]
    event: Option<IgnoredAny>,
    #[serde(rename = "groupId", default)]
    group_id: Option<IgnoredAny>,
    #[serde(rename = "previousId", default)]
    previous_id: Option<IgnoredAny>,
    #[serde(rename = "userId", default)]
    user_id: Option<IgnoredAny>,
    #[serde(rename = "anonymousId", default)]
    anonymous_id: Option<IgnoredAny>,
}

/// Checks `outputs` (JSON texts) that a function made of `input`; the events to send on.
///
/// # Errors
/// The first output that is not a valid event, named.
pub fn check(input: &Event, outputs: Vec<String>) -> Result<Vec<Event>, InvalidOutput> {
    let fanned = outputs.len() > 1;
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let fallback = if fanned && i > 0 {
                format!("{}-{i}", input.message_id)
            } else {
                input.message_id.clone()
            };
            one(text, &fallback)
        })
        .collect()
}

fn one(text: String, fallback_id: &str) -> Result<Event, InvalidOutput> {
    let shape: Shape = serde_json::from_str(&text).map_err(|e| {
        InvalidOutput(format!(
            "the function returned something that is not a JSON object event: {e}"
        ))
    })?;
    let Some(kind) = shape.kind.as_deref() else {
        return Err(InvalidOutput(
            "the function returned an event without `type`".into(),
        ));
    };
    let Some(kind) = EventType::parse(kind) else {
        return Err(InvalidOutput(format!(
            "the function returned an event of unknown `type` {kind:?}"
        )));
    };
    let missing = match kind {
        EventType::Track if shape.event.is_none() => Some("event"),
        EventType::Group if shape.group_id.is_none() => Some("groupId"),
        EventType::Alias if shape.previous_id.is_none() => Some("previousId"),
        _ => None,
    };
    if let Some(field) = missing {
        return Err(InvalidOutput(format!(
            "the function returned a {} event without `{field}`",
            kind.as_str()
        )));
    }
    if kind != EventType::Delete && shape.user_id.is_none() && shape.anonymous_id.is_none() {
        return Err(InvalidOutput(
            "the function returned an event without `userId` or `anonymousId`".into(),
        ));
    }
    let (message_id, json) = match shape.message_id {
        Some(id) if !id.is_empty() => (id.into_owned(), Bytes::from(text)),
        _ => (fallback_id.to_string(), with_message_id(&text, fallback_id)),
    };
    Ok(Event {
        message_id,
        kind,
        json,
    })
}

/// `text` (a JSON object) with `"messageId": id` as its first member; an existing empty or
/// null `messageId` later in the object is then overridden by readers that keep the last
/// duplicate, so it is replaced instead when present.
fn with_message_id(text: &str, id: &str) -> Bytes {
    if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(text)
        && map.contains_key("messageId")
    {
        map.insert("messageId".into(), serde_json::Value::String(id.into()));
        return Bytes::from(serde_json::to_vec(&map).unwrap_or_default());
    }
    let body = text.trim_start().strip_prefix('{').unwrap_or("}");
    let quoted = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
    let separator = if body.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Bytes::from(format!("{{\"messageId\":{quoted}{separator}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn input() -> Event {
        Event {
            message_id: "m-1".into(),
            kind: EventType::Track,
            json: Bytes::from_static(b"{}"),
        }
    }

    fn parsed(e: &Event) -> Value {
        serde_json::from_slice(&e.json).unwrap()
    }

    #[test]
    fn valid_events_pass_and_missing_ids_are_restored() {
        let out = check(
            &input(),
            vec![
                json!({"type": "track", "event": "E", "userId": "u", "messageId": "own"})
                    .to_string(),
            ],
        )
        .unwrap();
        assert_eq!(out[0].message_id, "own");
        let out = check(
            &input(),
            vec![
                json!({"type": "identify", "userId": "u"}).to_string(),
                json!({"type": "alias", "userId": "u", "previousId": "p", "messageId": null})
                    .to_string(),
            ],
        )
        .unwrap();
        assert_eq!(parsed(&out[0])["messageId"], "m-1");
        assert_eq!(parsed(&out[0])["userId"], "u");
        assert_eq!(out[1].message_id, "m-1-1");
        assert_eq!(parsed(&out[1])["messageId"], "m-1-1");
        assert_eq!(out[1].kind, EventType::Alias);
    }

    #[test]
    fn invalid_outputs_are_named() {
        for (output, expected) in [
            ("[1]".to_string(), "not a JSON object"),
            (json!({"hijacked": true}).to_string(), "without `type`"),
            (
                json!({"type": "bogus", "userId": "u"}).to_string(),
                "unknown `type`",
            ),
            (
                json!({"type": "track", "userId": "u"}).to_string(),
                "without `event`",
            ),
            (
                json!({"type": "group", "userId": "u"}).to_string(),
                "without `groupId`",
            ),
            (
                json!({"type": "page"}).to_string(),
                "`userId` or `anonymousId`",
            ),
        ] {
            let err = check(&input(), vec![output.clone()]).unwrap_err();
            assert!(err.0.contains(expected), "{output}: {err}");
        }
    }
}
