//! The tracking API (`POST /v1/track|identify|page|screen|group|alias|batch`) and source
//! functions' webhook (`POST /v1/functions/{sourceId}`) in the document.
//!
//! Its handlers live in the data plane (`dataplane::ingest`), which cannot depend on the API's
//! documentation machinery, so its operations are written here as JSON. What they describe is
//! exactly what `dataplane::ingest::normalize` accepts; the schemathesis run in the tests
//! (`tests/tests/api_schemathesis.rs`) sends both valid and invalid events and fails when the
//! two disagree.

use serde_json::{Map, Value, json};

use crate::dataplane::ingest::normalize::{MAX_BATCH_EVENTS, MAX_MESSAGE_ID, MAX_REQUEST_BYTES};
use crate::dataplane::ingest::webhook::{MAX_EMITTED_EVENTS, MAX_WEBHOOK_BYTES, WEBHOOK_PATH};

/// The write-key security scheme: HTTP Basic with the write key as user name.
pub fn security_scheme() -> Value {
    json!({
        "type": "http",
        "scheme": "basic",
        "description": "A source's write key as the HTTP Basic user name and an empty password \
            (what Segment's libraries send); `writeKey` in the body works too. Write keys are in \
            `GET /sources/{id}` (`writeKeys`)."
    })
}

/// The write-key security scheme of webhooks: the write key as the `token` query parameter.
pub fn token_scheme() -> Value {
    json!({
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "A source's write key in the URL (`?token=<write key>`), for webhook \
            senders that cannot set HTTP Basic; source functions' webhook only."
    })
}

/// The event types of the tracking API, each with its path and required fields.
const CALLS: [(&str, &str, &str, &str); 6] = [
    (
        "track",
        "trackEvent",
        "Record an action",
        "An action a user performed (`event`), with its `properties`.",
    ),
    (
        "identify",
        "identifyUser",
        "Identify a user",
        "Who a user is (`userId`) and what is known about them (`traits`).",
    ),
    (
        "page",
        "recordPage",
        "Record a page view",
        "A web page a user viewed (`name`, `properties` such as `url`).",
    ),
    (
        "screen",
        "recordScreen",
        "Record a screen view",
        "A mobile screen a user viewed (`name`, `properties`).",
    ),
    (
        "group",
        "groupUser",
        "Associate a user with a group",
        "The group (`groupId`) a user belongs to, with the group's `traits`.",
    ),
    (
        "alias",
        "aliasUser",
        "Merge two identities",
        "That `previousId` and `userId` are the same user.",
    ),
];

/// The paths, keyed by path, to merge into the document's `paths`.
pub fn paths() -> Map<String, Value> {
    let mut paths = Map::new();
    for (kind, operation_id, summary, description) in CALLS {
        let schema = event_schema(Some(kind));
        let body = json!({
            "required": true,
            "content": {"application/json": {
                "schema": schema,
                "example": example(kind),
            }}
        });
        paths.insert(
            format!("/v1/{kind}"),
            json!({"post": operation(operation_id, summary, description, body)}),
        );
    }
    let batch = json!({
        "required": true,
        "content": {"application/json": {
            "schema": {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "batch": {
                        "type": "array",
                        "maxItems": MAX_BATCH_EVENTS,
                        "items": event_schema(None),
                        "description": "The events, each naming its `type`."
                    },
                    "context": {
                        "description": "An object merged into each event's `context` (the event's own keys win); anything else is ignored."
                    },
                    "integrations": {
                        "description": "An object merged into each event's `integrations` (the event's own keys win); anything else is ignored."
                    },
                    "writeKey": {"description": "The write key (a string), when not sent as HTTP Basic."}
                }
            },
            "example": {"batch": [
                {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}},
                example("track")
            ]}
        }}
    });
    paths.insert(
        "/v1/batch".into(),
        json!({"post": operation(
            "batchEvents",
            "Send several events",
            &format!("Up to {MAX_BATCH_EVENTS} events of any type in one request (at most \
                {MAX_REQUEST_BYTES} bytes); one invalid event refuses the whole request, naming \
                it (`batch[<i>]`)."),
            batch,
        )}),
    );
    paths.insert(WEBHOOK_PATH.into(), json!({"post": webhook()}));
    paths
}

/// `POST /v1/functions/{sourceId}`: a request turned into events by the source's function.
fn webhook() -> Value {
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrackingError"}}}})
    };
    json!({
        "operationId": "callSourceFunction",
        "tags": ["Tracking API"],
        "summary": "Call a source function",
        "description": format!("A webhook for a source created from a deployed source function \
            (`resourceType: SOURCE`): the request (method, URL, headers, body as text) is handed \
            to the function, and the events it returns (at most {MAX_EMITTED_EVENTS}) are \
            validated and stored as the items of a `/v1/batch` are, all or none. The answer \
            (200 `{{\"success\": true, \"events\": N}}`) means they are on disk. The body is at \
            most {MAX_WEBHOOK_BYTES} bytes, of any content type. Authenticated by the source's \
            write key (HTTP Basic, or `?token=`)."),
        "security": [{"writeKey": []}, {"writeKeyToken": []}],
        "parameters": [{"name": "sourceId", "in": "path", "required": true,
                        "description": "The source's id.", "schema": {"type": "string"}}],
        "requestBody": {"required": false, "content": {
            "application/json": {"schema": {}, "example": {"events": [{"kind": "signup", "user": "u-1"}]}},
            "*/*": {"schema": {"type": "string"}}
        }},
        "responses": {
            "200": {"description": "The function's events are stored durably (`events`: how many).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookSuccess"}}}},
            "400": error("The function refused the request (its message), emitted too many events, or an emitted event is invalid (`events[<i>]` names it)."),
            "401": error("No write key, or not this source's."),
            "403": error("The source is disabled."),
            "404": error("The source has no function (an ordinary source takes the tracking API)."),
            "405": error("Not POST."),
            "409": error("The source's function is not deployed or cannot run; the message says what to do."),
            "413": error("The body is over the size limit."),
            "429": error("The source's queue is full; retry after `Retry-After` seconds."),
            "500": error("The function failed (its message)."),
            "503": error("The function asked for a retry (`retry-error`); retry after `Retry-After` seconds."),
            "504": error("The function ran past its deadline.")
        }
    })
}

fn operation(id: &str, summary: &str, description: &str, body: Value) -> Value {
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrackingError"}}}})
    };
    json!({
        "operationId": id,
        "tags": ["Tracking API"],
        "summary": summary,
        "description": format!("{description} The answer (200 `{{\"success\": true}}`) means \
            the event is on disk; an event whose `messageId` the source has seen recently is \
            accepted again and not processed twice. Authenticated by the source's write key, not \
            a bearer token; browsers may call it from any origin (CORS)."),
        "security": [{"writeKey": []}],
        "requestBody": body,
        "responses": {
            "200": {"description": "Stored durably.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrackingSuccess"}}}},
            "400": error("The body is not JSON, not an object, or an event is invalid (`field` names the item of a batch); the message says what is missing."),
            "401": error("No write key, or one that names no source."),
            "403": error("The source is disabled."),
            "413": error("The body (decoded) is over the size limit."),
            "415": error("An unsupported `Content-Encoding` (gzip and deflate are supported)."),
            "429": error("The source's queue is full; retry after `Retry-After` seconds.")
        }
    })
}

/// The schemas the tracking operations refer to.
pub fn schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    schemas.insert(
        "TrackingSuccess".into(),
        json!({"type": "object", "required": ["success"],
               "properties": {"success": {"type": "boolean", "const": true}},
               "example": {"success": true}}),
    );
    schemas.insert(
        "WebhookSuccess".into(),
        json!({"type": "object", "required": ["success", "events"],
               "properties": {"success": {"type": "boolean", "const": true},
                              "events": {"type": "integer", "minimum": 0}},
               "example": {"success": true, "events": 2}}),
    );
    schemas.insert(
        "TrackingError".into(),
        json!({"type": "object", "required": ["success", "errors"],
               "properties": {
                   "success": {"type": "boolean", "const": false},
                   "errors": {"type": "array", "items": {
                       "type": "object", "required": ["type", "message"],
                       "properties": {
                           "type": {"type": "string", "enum": [
                               "input-validation", "unauthorized", "forbidden",
                               "too-many-requests", "internal", "unsupported-media-type",
                               "payload-too-large", "unavailable", "not-found", "conflict",
                               "method-not-allowed", "validation-error",
                               "invalid-event-payload", "event-not-supported",
                               "too-many-events", "retry-error", "function-error", "timeout"]},
                           "message": {"type": "string"},
                           "field": {"type": "string"}
                       }}}
               },
               "example": {"success": false, "errors": [{"type": "input-validation",
                   "message": "`event` is required in a track call"}]}}),
    );
    schemas
}

/// One event: `kind` is the endpoint's type, `None` for a batch item (which names its own).
fn event_schema(kind: Option<&str>) -> Value {
    // An identifier is a non-empty string or a number (`userId: 42` is accepted).
    let id = || json!({"type": ["string", "number"], "minLength": 1});
    let object = |what: &str| json!({"type": ["object", "null"], "description": what});
    let time = |what: &str| {
        json!({"type": ["string", "null"], "format": "date-time",
        "pattern": super::constraints::RFC3339, "description": what})
    };
    let mut properties = json!({
        "userId": {"description": "The user's id in your system (a non-empty string or a number); this or `anonymousId` is required."},
        "anonymousId": {"description": "A device or session id (a non-empty string or a number); this or `userId` is required."},
        "messageId": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_MESSAGE_ID,
                      "description": "Unique per event, for deduplication; generated when absent."},
        "timestamp": time("When the event happened (an ISO 8601 date-time); defaults to when it was received. Read only when `originalTimestamp` is absent."),
        "originalTimestamp": time("When the event happened by the client's clock; corrected with `sentAt`."),
        "sentAt": time("When the client sent it, by its own clock."),
        "properties": object("The event's properties."),
        "traits": object("What is known about the user or group."),
        "context": object("Where the event comes from (library, device, IP, locale...)."),
        "integrations": object("Which destinations receive it (`{\"All\": false, \"webhook\": true}`)."),
        "writeKey": {"description": "The write key (a string), when not sent as HTTP Basic."}
    });
    let mut required_extra: Vec<&str> = Vec::new();
    match kind {
        Some("track") => {
            properties["event"] =
                json!({"type": "string", "minLength": 1, "description": "The action's name."});
            required_extra.push("event");
        }
        Some("group") => {
            properties["groupId"] = id();
            required_extra.push("groupId");
        }
        Some("alias") => {
            properties["previousId"] = id();
            required_extra.push("previousId");
        }
        Some(_) => {}
        None => {
            properties["type"] = json!({"type": "string",
                "enum": ["track", "identify", "page", "screen", "group", "alias"]});
            properties["event"] = json!({"description": "The action's name (a non-empty string, required in a `track`)."});
            required_extra.push("type");
        }
    }
    if matches!(kind, Some("page" | "screen")) {
        properties["name"] = json!({"description": "The page's or screen's name."});
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        // At least one identity, which must then be a non-empty string or a number.
        "anyOf": [
            {"required": ["userId"], "properties": {"userId": id()}},
            {"required": ["anonymousId"], "properties": {"anonymousId": id()}}
        ]
    });
    if !required_extra.is_empty() {
        schema["required"] = json!(required_extra);
    }
    if kind.is_none() {
        // A batch item's own requirements depend on its `type`.
        schema["allOf"] = json!([
            {"if": {"properties": {"type": {"const": "track"}}},
             "then": {"required": ["event"], "properties": {"event": {"type": "string", "minLength": 1}}}},
            {"if": {"properties": {"type": {"const": "group"}}},
             "then": {"required": ["groupId"], "properties": {"groupId": id()}}},
            {"if": {"properties": {"type": {"const": "alias"}}},
             "then": {"required": ["previousId"], "properties": {"previousId": id()}}}
        ]);
    }
    schema
}

fn example(kind: &str) -> Value {
    match kind {
        "track" => json!({"userId": "u-1", "event": "Order Completed",
                          "properties": {"orderId": "o-7", "revenue": 42.5},
                          "timestamp": "2026-11-30T12:00:00Z"}),
        "identify" => {
            json!({"userId": "u-1", "traits": {"email": "ada@example.com", "plan": "pro"}})
        }
        "page" => json!({"anonymousId": "a-9", "name": "Pricing",
                         "properties": {"url": "https://example.com/pricing"}}),
        "screen" => json!({"userId": "u-1", "name": "Checkout"}),
        "group" => json!({"userId": "u-1", "groupId": "acme", "traits": {"employees": 40}}),
        _ => json!({"userId": "u-1", "previousId": "a-9"}),
    }
}
