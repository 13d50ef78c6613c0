//! What the handlers check that the Rust types cannot say, written into the document so that
//! a request the document allows is one the server accepts (schemathesis's
//! `positive_data_acceptance` check, in the tests): slugs and names, e-mail addresses, times,
//! roles, the cursor's shape, a space's required fields. Each names its target, so a rename
//! fails the document's unit test rather than dropping the constraint.

use serde_json::{Value, json};

use super::refine::{Missing, node, operation, operations, request_schema};
use crate::api::audit::ResourceType;
use crate::api::auth::ROLES;
use crate::api::function_test as test;
use crate::engine::EngineConfig;

/// An RFC 3339 time as sluice parses it (`2026-01-31T12:00:00Z`, fractions and offsets
/// allowed; February 29 is left out of the pattern, not refused by the server).
pub const RFC3339: &str = "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

/// What a cursor sluice makes looks like: the base64 of an offset's decimal digits (at most
/// 17). A 3-digit group encodes as `[MNO][DTjz][AEIMQUYcgk][w-z0-5]` (`O` only before `D` or
/// `T`: 8 and 9); one or two digits left over end in `==` or `=`. An empty cursor is the first
/// page; anything else is refused with a 422.
pub const CURSOR: &str = "^(([MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]){0,5}(([MN][AQgw]|O[AQ])==|([MN][DTjz]|O[DT])[AEIMQUYcgk]=)?$";

const SLUG: &str = "^[a-z0-9_-]{1,100}$";
/// A character that is not white space to JavaScript nor to Rust (`char::trim`).
const NOT_BLANK: &str = "[^\\s\\u0085]";
const EMAIL: &str = "^[^@\\s,]+@[^\\s,]+$";
const EMAILS: &str = "^[^@\\s,]+@[^\\s,]+(,[^@\\s,]+@[^\\s,]+)*$";

/// Applies every constraint to `doc`.
///
/// # Errors
/// A target is missing.
pub fn constrain(doc: &mut Value) -> Result<(), Missing> {
    properties(doc)?;
    parameters(doc)?;
    // A `TRACK` rule names its event.
    let rule = node(doc, &["components", "schemas", "Rule"])?;
    merge(
        rule,
        json!({
            "if": {"properties": {"type": {"const": "TRACK"}}, "required": ["type"]},
            "then": {"required": ["key"], "properties": {"key": {"type": "string", "minLength": 1}}}
        }),
    );
    // Creating a space needs both fields that updating leaves optional.
    *request_schema(doc, "createSpace")? = json!({
        "allOf": [{"$ref": "#/components/schemas/SpaceInput"}],
        "required": ["slug", "name"],
        "properties": {"slug": {"type": "string"}, "name": {"type": "string"}}
    });
    Ok(())
}

fn properties(doc: &mut Value) -> Result<(), Missing> {
    let slug = json!({"pattern": SLUG});
    let name = json!({"minLength": 1, "maxLength": 200, "pattern": NOT_BLANK});
    let email = json!({"pattern": EMAIL});
    let role_ids: Vec<&str> = ROLES.iter().flat_map(|r| [r.id, r.name]).collect();
    let future = RFC3339.replacen("[0-9]{4}", "(2[1-9][0-9]{2}|[3-9][0-9]{3})", 1);
    // A u32 (`7` or `7.0`, `workspace::whole`): utoipa's `int32` would imply 2^31 - 1.
    let whole = json!({"format": "int64", "minimum": 0, "maximum": u32::MAX});
    let table: Vec<(&str, &str, Value)> = vec![
        ("CreateSource", "slug", slug.clone()),
        ("UpdateSource", "slug", slug.clone()),
        ("SpaceInput", "slug", slug),
        ("CreateSource", "name", name.clone()),
        ("UpdateSource", "name", name.clone()),
        ("CreateDestination", "name", name.clone()),
        ("UpdateDestination", "name", name.clone()),
        ("CreateFunction", "displayName", name.clone()),
        ("UpdateFunction", "displayName", name.clone()),
        ("CreateInstance", "name", name.clone()),
        ("UpdateInstance", "name", name.clone()),
        ("CreateTrackingPlan", "name", name.clone()),
        ("UpdateTrackingPlan", "name", name.clone()),
        ("CreateWarehouse", "name", name.clone()),
        ("UpdateWarehouse", "name", name.clone()),
        ("CreateUser", "name", name.clone()),
        ("SpaceInput", "name", name.clone()),
        ("CreateToken", "description", name),
        ("CreateUser", "email", email.clone()),
        ("Invite", "email", email),
        ("Label", "key", json!({"minLength": 1})),
        ("Permission", "roleId", json!({"enum": role_ids})),
        (
            "CreateToken",
            "expiresAt",
            json!({"pattern": future,
            "description": "When it stops working: an RFC 3339 time in the future \
            (`2127-01-31T12:00:00Z`). Default: never."}),
        ),
        (
            "CreateTrackingPlan",
            "type",
            json!({"enum": ["LIVE", null]}),
        ),
        ("Rule", "version", whole.clone()),
        ("RuleKey", "version", whole.clone()),
        ("CreateInstance", "order", whole.clone()),
        ("UpdateInstance", "order", whole),
        ("CreateInvites", "invites", json!({"minItems": 1})),
        (
            "Rule",
            "jsonSchema",
            json!({"type": ["object", "boolean"],
            "description": "The JSON Schema (draft-07; `true` and `false` are schemas too); \
            must compile."}),
        ),
        (
            "TestLimits",
            "fuel",
            json!({"minimum": 1, "maximum": test::MAX_FUEL}),
        ),
        (
            "TestLimits",
            "deadlineMs",
            json!({"minimum": 1, "maximum": test::MAX_DEADLINE_MS}),
        ),
        (
            "TestLimits",
            "memoryMib",
            json!({"minimum": 1,
            "maximum": EngineConfig::default().max_memory_bytes >> 20,
            "description": "Memory cap, in MiB (1 to the engine's maximum, \
            `engine.max_memory_mib`: 64 unless configured)."}),
        ),
        ("CreateToken", "permissions", json!({"minItems": 1})),
        (
            "TestInput",
            "events",
            json!({"minItems": 1, "maxItems": test::MAX_EVENTS,
                "items": {"type": "object"}}),
        ),
    ];
    for (schema, field, constraint) in table {
        let property = node(doc, &["components", "schemas", schema, "properties", field])?;
        merge(property, constraint);
    }
    Ok(())
}

fn parameters(doc: &mut Value) -> Result<(), Missing> {
    let types: Vec<&str> = ResourceType::ALL.iter().map(|t| t.name()).collect();
    let one = format!("({})", types.join("|"));
    let resource_types = format!("^{one}(,{one})*$");
    let mut found = 0;
    for op in operations(doc) {
        let audit = op["operationId"] == "listAuditEvents";
        let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
            continue;
        };
        for param in params {
            let pattern = match param["name"].as_str() {
                Some("pagination.cursor") => CURSOR,
                Some("startTime" | "endTime") if audit => RFC3339,
                Some("resourceType") if audit => resource_types.as_str(),
                Some("emails") => {
                    param["required"] = json!(true);
                    EMAILS
                }
                _ => continue,
            };
            param["schema"]["pattern"] = json!(pattern);
            found += 1;
        }
    }
    if found == 0 {
        return Err(Missing("the query parameters to constrain".into()));
    }
    // `?sourceId=` says which source to disconnect: required, unlike the lists' filters.
    let disconnect = operation(doc, "removeSourceFromTrackingPlan")?;
    let source = disconnect["parameters"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == "sourceId"))
        .ok_or_else(|| Missing("removeSourceFromTrackingPlan's sourceId".into()))?;
    source["required"] = json!(true);
    Ok(())
}

/// Adds `constraint`'s keys to `property`, beside a `$ref` too (OpenAPI 3.1 honours siblings).
fn merge(property: &mut Value, constraint: Value) {
    if let (Some(p), Value::Object(c)) = (property.as_object_mut(), constraint) {
        p.extend(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base64(text: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// Whether `text` matches `pattern` as a JSON Schema validator (ECMA-262) reads it.
    fn matches(pattern: &str, text: &str) -> bool {
        let schema = json!({"type": "string", "pattern": pattern});
        jsonschema::is_valid(&schema, &json!(text))
    }

    #[test]
    fn the_cursor_pattern_is_exactly_the_cursors_sluice_makes() {
        for offset in [
            0u64,
            1,
            9,
            10,
            42,
            200,
            999,
            1000,
            123_456,
            98_765_432_109_876_543,
        ] {
            assert!(matches(CURSOR, &base64(&offset.to_string())), "{offset}");
        }
        let long = base64("123456789012345678");
        let letters = base64("1a");
        for wrong in ["MT==", "abc", "OQ=", "Ojo=", &letters, &long] {
            assert!(!matches(CURSOR, wrong), "{wrong}");
        }
    }

    #[test]
    fn the_time_pattern_takes_what_sluice_parses() {
        use time::format_description::well_known::Rfc3339;
        for ok in [
            "2026-01-31T12:00:00Z",
            "1999-12-31T23:59:59.123+05:30",
            "2026-04-30T00:00:00-01:00",
        ] {
            assert!(matches(RFC3339, ok), "{ok}");
            assert!(time::OffsetDateTime::parse(ok, &Rfc3339).is_ok(), "{ok}");
        }
        for wrong in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-01-31",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
        ] {
            assert!(!matches(RFC3339, wrong), "{wrong}");
        }
    }
}
