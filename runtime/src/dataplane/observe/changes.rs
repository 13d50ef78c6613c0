//! What a function changed in an event, field by field: the test endpoint's `changes` and the
//! debugger's function stage both list them.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// How a field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The field is new.
    Added,
    /// The field is gone.
    Removed,
    /// The field's value differs.
    Changed,
}

/// One field the function changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Change {
    /// JSON path (`properties.email`).
    pub path: String,
    /// How it changed.
    pub op: Op,
    /// The value before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The value after.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// What differs between `before` and `after`, by JSON path (objects compared key by key;
/// arrays and scalars as wholes). Cost: a walk of both trees.
pub fn between(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff("", before, after, &mut out);
    out
}

/// [`between`] two events' JSON bytes; `None` when either is not JSON.
pub fn between_bytes(before: &[u8], after: &[u8]) -> Option<Vec<Change>> {
    let before: Value = serde_json::from_slice(before).ok()?;
    let after: Value = serde_json::from_slice(after).ok()?;
    Some(between(&before, &after))
}

fn diff(path: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, bv) in b {
                match a.get(key) {
                    Some(av) => diff(&join(key), bv, av, out),
                    None => out.push(Change {
                        path: join(key),
                        op: Op::Removed,
                        before: Some(bv.clone()),
                        after: None,
                    }),
                }
            }
            for (key, av) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                out.push(Change {
                    path: join(key),
                    op: Op::Added,
                    before: None,
                    after: Some(av.clone()),
                });
            }
        }
        (b, a) if b != a => out.push(Change {
            path: path.to_string(),
            op: Op::Changed,
            before: Some(b.clone()),
            after: Some(a.clone()),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_added_removed_and_changed_paths() {
        let before = json!({"properties": {"email": "a@b.c", "n": 1}, "userId": "u"});
        let after = json!({"properties": {"email": "[redacted]", "plan": "pro"}, "userId": "u"});
        let changes = serde_json::to_value(between(&before, &after)).unwrap();
        assert_eq!(
            changes,
            json!([
                {"path": "properties.email", "op": "changed", "before": "a@b.c", "after": "[redacted]"},
                {"path": "properties.n", "op": "removed", "before": 1},
                {"path": "properties.plan", "op": "added", "after": "pro"}
            ])
        );
        assert!(between(&before, &before).is_empty());
    }
}
