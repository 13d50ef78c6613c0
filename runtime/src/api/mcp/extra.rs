//! Tools that are not one API operation: `send_test_event` (an event into a source, through
//! the tracking API with the source's write key), `test_function` (a function on sample
//! events) and `tail_events` (a source's recent events, waiting for new ones).

use std::time::Duration;

use axum::http::{HeaderValue, Method};
use base64::Engine as _;
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::{Agent, Answer};

/// The tools of this module.
#[derive(Debug, Clone, Copy)]
pub enum Extra {
    /// `send_test_event`.
    SendTestEvent,
    /// `test_function`.
    TestFunction,
    /// `tail_events`.
    TailEvents,
}

impl Extra {
    const ALL: [Extra; 3] = [Extra::SendTestEvent, Extra::TestFunction, Extra::TailEvents];

    fn name(self) -> &'static str {
        match self {
            Extra::SendTestEvent => "send_test_event",
            Extra::TestFunction => "test_function",
            Extra::TailEvents => "tail_events",
        }
    }

    /// The tool called `name`, if it is one of these.
    pub fn named(name: &str) -> Option<Extra> {
        Extra::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Their descriptions for `tools/list`.
pub fn tools() -> Vec<Tool> {
    let schema = |value: Value| -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        }
    };
    vec![
        Tool::new(
            Extra::SendTestEvent.name(),
            "Send one event into a source, as Segment's libraries do (the tracking API with the \
             source's write key), then read what the pipeline did with tail_events. `event` is a \
             Segment event: `type` (track, identify, page, screen, group, alias; default track), \
             `userId` or `anonymousId`, `event` for a track, `properties` or `traits`.",
            schema(json!({"type": "object", "required": ["sourceId", "event"], "properties": {
                "sourceId": {"type": "string", "description": "The source's id."},
                "event": {"type": "object", "description": "The event.",
                          "examples": [{"type": "track", "userId": "u-1", "event": "Order Completed",
                                        "properties": {"orderId": "o-7", "revenue": 42.5}}]}
            }})),
        )
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(false)),
        Tool::new(
            Extra::TestFunction.name(),
            "Run a function on sample events without deploying it: per event the outcome \
             (forward, drop, fan-out, error), the field-by-field changes, logs, fuel and time.",
            schema(json!({"type": "object", "required": ["functionId", "events"], "properties": {
                "functionId": {"type": "string", "description": "The function's id."},
                "events": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 100,
                           "description": "Sample events."},
                "settings": {"type": "object", "description": "Setting values, as an instance would give them."},
                "versionId": {"type": "string", "description": "The version to run; default the deployed one, else the latest."}
            }})),
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            Extra::TailEvents.name(),
            "A source's recent events, newest first, with what each stage (enforce, functions, \
             route, deliver) did to them. With `waitMs`, waits up to that long for an event \
             newer than the newest one when called.",
            schema(json!({"type": "object", "required": ["sourceId"], "properties": {
                "sourceId": {"type": "string", "description": "The source's id."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
                "waitMs": {"type": "integer", "minimum": 0, "maximum": 30000, "default": 0}
            }})),
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
    ]
}

/// Runs `tool` with `args` as the caller.
///
/// # Errors
/// A required argument is missing or of the wrong type; the internal request failed.
pub async fn call(
    agent: &Agent,
    tool: Extra,
    args: &JsonObject,
    auth: Option<&HeaderValue>,
) -> Result<CallToolResult, ErrorData> {
    match tool {
        Extra::SendTestEvent => send_test_event(agent, args, auth).await,
        Extra::TestFunction => {
            let id = string(args, "functionId")?;
            let mut body = json!({"events": args.get("events").cloned().unwrap_or(json!([]))});
            for key in ["settings", "versionId"] {
                if let Some(value) = args.get(key) {
                    body[key] = value.clone();
                }
            }
            let uri = format!("/functions/{}/test", segment(&id));
            Ok(agent
                .call(Method::POST, &uri, auth, Some(&body))
                .await?
                .into_result())
        }
        Extra::TailEvents => tail_events(agent, args, auth).await,
    }
}

async fn send_test_event(
    agent: &Agent,
    args: &JsonObject,
    auth: Option<&HeaderValue>,
) -> Result<CallToolResult, ErrorData> {
    let source_id = string(args, "sourceId")?;
    let Some(Value::Object(event)) = args.get("event") else {
        return Err(ErrorData::invalid_params("`event` must be an object", None));
    };
    // Reading the source as the caller applies their roles and scopes: only someone who may
    // see the source (and so its write keys) can send into it.
    let source = agent
        .call(
            Method::GET,
            &format!("/sources/{}", segment(&source_id)),
            auth,
            None,
        )
        .await?;
    if !source.status.is_success() {
        return Ok(source.into_result());
    }
    let Some(key) = source.body["data"]["source"]["writeKeys"][0].as_str() else {
        return Ok(error_text(
            "the source has no write key; create one with createWriteKeyForSource",
        ));
    };
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("track");
    if !["track", "identify", "page", "screen", "group", "alias"].contains(&kind) {
        return Ok(error_text(&format!(
            "unknown event type `{kind}`: use track, identify, page, screen, group or alias"
        )));
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let header =
        HeaderValue::from_str(&format!("Basic {basic}")).map_err(|e| super::internal(&e))?;
    let answer = agent
        .call(
            Method::POST,
            &format!("/v1/{kind}"),
            Some(&header),
            Some(&Value::Object(event.clone())),
        )
        .await?;
    Ok(answer.into_result())
}

async fn tail_events(
    agent: &Agent,
    args: &JsonObject,
    auth: Option<&HeaderValue>,
) -> Result<CallToolResult, ErrorData> {
    let source_id = string(args, "sourceId")?;
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(20)
        .clamp(1, 1000);
    let wait = args
        .get("waitMs")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(30_000);
    let uri = format!("/events?sourceId={}&limit={limit}", segment(&source_id));
    let first = agent.call(Method::GET, &uri, auth, None).await?;
    if wait == 0 || !first.status.is_success() {
        return Ok(first.into_result());
    }
    let newest = |answer: &Answer| answer.body["data"]["events"][0]["messageId"].clone();
    let before = newest(&first);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = agent.call(Method::GET, &uri, auth, None).await?;
        if !now.status.is_success()
            || newest(&now) != before
            || tokio::time::Instant::now() >= deadline
        {
            return Ok(now.into_result());
        }
    }
}

fn string(args: &JsonObject, name: &str) -> Result<String, ErrorData> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ErrorData::invalid_params(format!("`{name}` (a string) is required"), None))
}

/// `text` safe as one path segment or query value.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn error_text(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}
