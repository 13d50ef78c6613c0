//! What the handlers' annotations cannot say, added to the generated document: real enums for
//! fields typed `String` in Rust, examples, defaults, the error responses every operation with
//! a body can give (400, 413, 415), descriptions for bare responses, and corrections where a
//! Rust type documents a wider or narrower shape than the JSON on the wire.
//!
//! Every refinement names its target (a schema and property, or an operationId); a target that
//! no longer exists is an error ([`Missing`]), so a rename cannot silently drop a refinement
//! (the unit test builds the document and fails on any).

use serde_json::{Map, Value, json};

use super::tracking;
use crate::api::audit::ResourceType;

/// A refinement whose target is not in the document.
#[derive(Debug, thiserror::Error)]
#[error("the OpenAPI refinement's target `{0}` is not in the generated document")]
pub struct Missing(pub String);

/// Every audit event type sluice records (Segment's names). A test scans the sources for
/// `audit("...")` calls so that a new type cannot be left out.
pub const AUDIT_EVENT_TYPES: [&str; 35] = [
    "Access Token Created",
    "Access Token Deleted",
    "Function Created",
    "Function Deleted",
    "Function Deployed",
    "Function Modified",
    "Insert Function Instance Created",
    "Insert Function Instance Deleted",
    "Insert Function Instance Modified",
    "Integration Created",
    "Integration Deleted",
    "Integration Modified",
    "Invite Deleted",
    "Selective Sync Updated",
    "Source Connected to Tracking Plan",
    "Source Created",
    "Source Deleted",
    "Source Disconnected from Tracking Plan",
    "Source Modified",
    "Source Settings Modified",
    "Source Write Key Created",
    "Source Write Key Revoked",
    "Space Created",
    "Space Deleted",
    "Space Modified",
    "Storage Destination Created",
    "Storage Destination Deleted",
    "Storage Destination Modified",
    "Tracking Plan Created",
    "Tracking Plan Deleted",
    "Tracking Plan Modified",
    "User Created",
    "User Deleted",
    "User Invited",
    "User Permissions Modified",
];

/// Applies every refinement to `doc` (the generated document as JSON).
///
/// # Errors
/// A refinement's target is missing (a renamed schema, property or operation).
pub fn refine(doc: &mut Value) -> Result<(), Missing> {
    add_tracking_api(doc)?;
    enums(doc)?;
    wire_shapes(doc)?;
    examples(doc)?;
    texts(doc)?;
    defaults(doc)?;
    responses(doc)?;
    super::constraints::constrain(doc)?;
    Ok(())
}

fn add_tracking_api(doc: &mut Value) -> Result<(), Missing> {
    object(doc, &["paths"])?.extend(tracking::paths());
    object(doc, &["components", "schemas"])?.extend(tracking::schemas());
    object(doc, &["components", "securitySchemes"])?
        .insert("writeKey".into(), tracking::security_scheme());
    object(doc, &["components", "securitySchemes"])?
        .insert("writeKeyToken".into(), tracking::token_scheme());
    let tags = doc
        .get_mut("tags")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Missing("tags".into()))?;
    tags.push(
        json!({"name": "Tracking API", "description": "Segment's HTTP Tracking API: \
        events in, authenticated by a source's write key (`/v1/*`)."}),
    );
    Ok(())
}

fn enums(doc: &mut Value) -> Result<(), Missing> {
    let resource_types: Vec<&str> = ResourceType::ALL.iter().map(|t| t.name()).collect();
    let lists: [(&str, &str, &[&str]); 10] = [
        ("AuditEvent", "type", &AUDIT_EVENT_TYPES),
        ("AuditEvent", "resourceType", &resource_types),
        (
            "ErrorItem",
            "type",
            &[
                "bad-request",
                "unauthorized",
                "forbidden",
                "not-found",
                "method-not-allowed",
                "not-acceptable",
                "conflict",
                "payload-too-large",
                "input-validation",
                "RequestError",
                "internal",
            ],
        ),
        (
            "Stage",
            "stage",
            &[
                "ingest",
                "enforce",
                "function",
                "route",
                "destination-function",
                "deliver",
            ],
        ),
        (
            "Stage",
            "status",
            &[
                "accepted",
                "validated",
                "violations",
                "blocked",
                "forward",
                "drop",
                "fan-out",
                "error",
                "retrying",
                "routed",
                "filtered",
                "delivered",
                "failed",
            ],
        ),
        (
            "EventResult",
            "outcome",
            &["forward", "drop", "fan-out", "error"],
        ),
        ("Change", "op", &["added", "removed", "changed"]),
        ("TestError", "origin", &["function", "sandbox"]),
        (
            "TestLog",
            "level",
            &["trace", "debug", "info", "warn", "error"],
        ),
        ("TrackingPlan", "type", &["LIVE"]),
    ];
    for (schema, field, values) in lists {
        let property = node(doc, &["components", "schemas", schema, "properties", field])?;
        property["enum"] = json!(values);
    }
    Ok(())
}

/// Where the Rust type says less (or more) than the JSON: values that may be any JSON, fields
/// that are null for some stages, and the settings PATCH body.
fn wire_shapes(doc: &mut Value) -> Result<(), Missing> {
    for (schema, field, description) in [
        (
            "Change",
            "before",
            "The value before (any JSON value; absent when `op` is `added`).",
        ),
        (
            "Change",
            "after",
            "The value after (any JSON value; absent when `op` is `removed`).",
        ),
        (
            "Stage",
            "detail",
            "Details: the violations, the error, the destination... (null for `ingest`).",
        ),
    ] {
        *node(doc, &["components", "schemas", schema, "properties", field])? =
            json!({"description": description});
    }
    // A catalog entry's destination facts are flattened in, and absent for sources and
    // warehouses: their fields are optional properties, not "null or all of them".
    let facts = node(
        doc,
        &["components", "schemas", "DestinationFacts", "properties"],
    )?
    .clone();
    let metadata = node(doc, &["components", "schemas", "Metadata"])?;
    let all_of = metadata
        .get_mut("allOf")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Missing("Metadata.allOf".into()))?;
    if let Some(first) = all_of.first_mut() {
        *first = json!({"type": "object", "properties": facts});
    }
    // PATCH /sources/{id}/settings: a partial SchemaSettings, merged into the current one.
    let patch = json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Any subset of the schema settings; nested objects are merged, so \
            `{\"track\": {\"allowUnplannedEvents\": false}}` changes that one setting. Unknown \
            fields are refused (422).",
        "properties": {
            "track": {"$ref": "#/components/schemas/TrackSettings"},
            "identify": {"$ref": "#/components/schemas/TraitSettings"},
            "group": {"$ref": "#/components/schemas/TraitSettings"},
            "forwardingViolationsTo": {"type": ["string", "null"],
                "description": "The id of an existing source that receives a `Violation Generated` event per violation; null stops it."},
            "forwardingBlockedEventsTo": {"type": ["string", "null"],
                "description": "The id of an existing source that receives blocked events; null stops it."}
        },
        "example": {"track": {"allowUnplannedEvents": false, "allowEventOnViolations": false},
                    "forwardingBlockedEventsTo": null}
    });
    let body = request_schema(doc, "updateSchemaSettingsInSource")?;
    *body = patch;
    Ok(())
}

fn examples(doc: &mut Value) -> Result<(), Missing> {
    node(doc, &["components", "schemas", "AuditEvent"])?["example"] = json!({
        "id": "019a7c1e-5b2a-7f40-9d1e-3c2b1a0f9e8d",
        "timestamp": "2026-11-30T12:00:00Z",
        "type": "Source Created",
        "actor": "token 019a7c1d-0e4f-7a10-8b2c-5d6e7f8a9b0c",
        "resourceId": "019a7c1e-5a00-7c3d-8e9f-0a1b2c3d4e5f",
        "resourceType": "source",
        "resourceName": "ios-app"
    });
    let rules = json!({"rules": [
        {"type": "TRACK", "key": "Order Completed", "version": 1, "jsonSchema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"properties": {
                "type": "object",
                "required": ["orderId", "revenue"],
                "properties": {"orderId": {"type": "string"}, "revenue": {"type": "number"}}
            }}
        }},
        {"type": "IDENTIFY", "jsonSchema": {"type": "object", "properties": {"traits": {
            "type": "object", "required": ["email"]}}}}
    ]});
    for op in ["updateRulesInTrackingPlan", "replaceRulesInTrackingPlan"] {
        request_media(doc, op)?.insert("example".into(), rules.clone());
    }
    request_media(doc, "createFunction")?.insert(
        "example".into(),
        json!({
            "displayName": "Hash emails",
            "resourceType": "INSERT_SOURCE",
            "description": "Replaces `properties.email` by its SHA-256.",
            "settings": [{"name": "salt", "label": "Salt", "type": "STRING", "required": false, "sensitive": true}],
            "code": "async function onTrack(event, settings) {\n  if (event.properties && event.properties.email) {\n    event.properties.email = '<redacted>';\n  }\n  return event;\n}\n"
        }),
    );
    request_media(doc, "createSource")?.insert(
        "example".into(),
        json!({"slug": "ios-app", "name": "iOS app", "enabled": true, "metadataId": "ios"}),
    );
    request_media(doc, "createFunctionDeployment")?
        .insert("example".into(), json!({"versionId": null}));
    Ok(())
}

fn texts(doc: &mut Value) -> Result<(), Missing> {
    operation(doc, "createFunctionDeployment")?["description"] = json!(
        "Makes a version (default: the latest) the one that runs in pipelines, JavaScript and \
        WebAssembly alike. The body is optional: none, `{}` or `{\"versionId\": null}` deploy \
        the latest version."
    );
    let enforcement = " Where and how strictly a plan is enforced is each source's setting: see \
        `GET`/`PATCH /sources/{id}/settings` (`updateSchemaSettingsInSource`). The defaults are \
        permissive: unplanned events and properties are accepted and violations are let \
        through (`allow*` settings all `true`, `commonEventOnViolations` `ALLOW`), so a plan \
        blocks nothing until those settings say so.";
    for op in [
        "createTrackingPlan",
        "getTrackingPlan",
        "updateRulesInTrackingPlan",
        "replaceRulesInTrackingPlan",
        "addSourceToTrackingPlan",
    ] {
        let op = operation(doc, op)?;
        let text = op["description"].as_str().unwrap_or_default().to_string();
        op["description"] = json!(format!("{text}{enforcement}"));
    }
    Ok(())
}

fn defaults(doc: &mut Value) -> Result<(), Missing> {
    for op in operations(doc) {
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for param in params {
                if param["name"] == "pagination.count" {
                    param["schema"]["default"] = json!(200);
                }
                if param["name"] == "pagination.cursor" {
                    param["example"] = json!("MjAw");
                }
            }
        }
    }
    for (schema, fields, value) in [
        (
            "TrackSettings",
            &[
                "allowUnplannedEvents",
                "allowUnplannedEventProperties",
                "allowEventOnViolations",
                "allowPropertiesOnViolations",
            ][..],
            json!(true),
        ),
        (
            "TrackSettings",
            &["commonEventOnViolations"][..],
            json!("ALLOW"),
        ),
        (
            "TraitSettings",
            &["allowUnplannedTraits", "allowTraitsOnViolations"][..],
            json!(true),
        ),
        (
            "TraitSettings",
            &["commonEventOnViolations"][..],
            json!("ALLOW"),
        ),
        ("Rule", &["version"][..], json!(1)),
    ] {
        for field in fields {
            let property = node(doc, &["components", "schemas", schema, "properties", field])?;
            if property.get("$ref").is_some() {
                // A sibling of `$ref` is honoured in OpenAPI 3.1, but keep the reference whole.
                let reference = property.take();
                *property = json!({"allOf": [reference], "default": value});
            } else {
                property["default"] = value.clone();
            }
        }
    }
    Ok(())
}

/// Fills bare response descriptions and lists the errors of reading a body or a path.
fn responses(doc: &mut Value) -> Result<(), Missing> {
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    let reply = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error.clone()}}});
    for op in operations(doc) {
        let summary = op["summary"]
            .as_str()
            .unwrap_or("the operation")
            .to_string();
        let has_body = op.get("requestBody").is_some();
        let has_path = op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
        let tracking = op["tags"][0] == "Tracking API";
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if response["description"].as_str().is_none_or(str::is_empty) {
                response["description"] = json!(describe(status, &summary));
            }
        }
        if tracking {
            continue;
        }
        if has_body || has_path {
            responses.entry("400").or_insert_with(|| {
                reply("The body is missing or not JSON, or a path parameter cannot be decoded.")
            });
        }
        if has_body {
            responses
                .entry("413")
                .or_insert_with(|| reply("The body is over the size limit (16 MiB)."));
            responses
                .entry("415")
                .or_insert_with(|| reply("The body is not `Content-Type: application/json`."));
        }
    }
    Ok(())
}

fn describe(status: &str, summary: &str) -> String {
    match status {
        "200" => format!("{summary}: done; the result is in `data`."),
        "201" => format!("{summary}: created; the new resource is in `data`."),
        "204" => format!("{summary}: done."),
        "409" => "Conflicts with an existing resource (a duplicate slug or name, say).".into(),
        other => format!("{summary}: status {other}; the reason is in `errors`."),
    }
}

/// Every operation of the document.
pub(super) fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|op| op.get("responses").is_some())
}

pub(super) fn operation<'a>(doc: &'a mut Value, id: &str) -> Result<&'a mut Value, Missing> {
    operations(doc)
        .find(|op| op["operationId"] == id)
        .ok_or_else(|| Missing(format!("operation {id}")))
}

pub(super) fn request_media<'a>(
    doc: &'a mut Value,
    id: &str,
) -> Result<&'a mut Map<String, Value>, Missing> {
    operation(doc, id)?
        .pointer_mut("/requestBody/content/application~1json")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Missing(format!("the JSON request body of {id}")))
}

pub(super) fn request_schema<'a>(doc: &'a mut Value, id: &str) -> Result<&'a mut Value, Missing> {
    request_media(doc, id)?
        .get_mut("schema")
        .ok_or_else(|| Missing(format!("the request schema of {id}")))
}

pub(super) fn node<'a>(doc: &'a mut Value, path: &[&str]) -> Result<&'a mut Value, Missing> {
    let mut at = doc;
    for key in path {
        at = at.get_mut(*key).ok_or_else(|| Missing(path.join(".")))?;
    }
    Ok(at)
}

pub(super) fn object<'a>(
    doc: &'a mut Value,
    path: &[&str],
) -> Result<&'a mut Map<String, Value>, Missing> {
    node(doc, path)?
        .as_object_mut()
        .ok_or_else(|| Missing(path.join(".")))
}
