//! Tracking plan enforcement: checks an event against its source's plan with the source's
//! schema settings, omits or blocks as configured, and records what it did in
//! `context.protocols`. Validators are compiled once per rule version and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::workspace::{
    Kind, Rule, RuleType, SchemaSettings, Store, StoreError, TrackOnViolation, TraitsOnViolation,
};

/// One violation, as recorded in `context.protocols.violations`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Violation {
    /// `Unplanned`, `Required`, `Datatype` or `Advanced` (pattern, enum, bounds, format...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The dotted path of the offending field (`properties.orderId`), or `event`.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

/// What enforcement made of an event.
#[derive(Debug, Clone)]
pub struct Enforced {
    /// The event to pass on, `None` when blocked.
    pub event: Option<Value>,
    /// The event as it was checked (for forwarding a blocked event).
    pub original: Value,
    /// Violations found.
    pub violations: Vec<Violation>,
    /// Fields omitted (unplanned, or on violation).
    pub omitted: Vec<String>,
    /// The plan the source is connected to, if any.
    pub plan_id: Option<String>,
}

/// Compiled validators, keyed by plan, rule and version and the schema's digest (a rule
/// replaced in place with the same version is compiled again).
#[derive(Default)]
pub struct Validators {
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Validators {
    fn get(&self, plan_id: &str, rule: &Rule) -> Result<Arc<jsonschema::Validator>, String> {
        let schema = serde_json::to_vec(&rule.json_schema).unwrap_or_default();
        let key = format!(
            "{plan_id}/{:?}/{}/{}/{}",
            rule.kind,
            rule.key.as_deref().unwrap_or(""),
            rule.version,
            blake3::hash(&schema).to_hex()
        );
        if let Some(v) = self.compiled.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(v);
        }
        let validator =
            Arc::new(jsonschema::validator_for(&rule.json_schema).map_err(|e| e.to_string())?);
        if let Ok(mut c) = self.compiled.lock() {
            c.insert(key, validator.clone());
        }
        Ok(validator)
    }

    /// How many validators were compiled (for tests).
    pub fn compiled(&self) -> usize {
        self.compiled.lock().map(|c| c.len()).unwrap_or(0)
    }
}

fn pick<'a>(
    rules: &'a [Rule],
    kind: RuleType,
    key: Option<&str>,
    version: Option<u64>,
) -> Option<&'a Rule> {
    let mut candidates: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.kind == kind && (key.is_none() || r.key.as_deref() == key))
        .collect();
    candidates.sort_by_key(|r| r.version);
    match version {
        Some(v) => candidates
            .iter()
            .find(|r| u64::from(r.version) == v)
            .copied()
            .or(candidates.first().copied()),
        None => candidates.first().copied(),
    }
}

/// A source's tracking plan as enforcement needs it: its rules, each with its validator
/// compiled (once per rule version, shared through [`Validators`]).
pub struct Plan {
    /// The plan's id.
    pub id: String,
    rules: Vec<Rule>,
    compiled: Vec<Option<Arc<jsonschema::Validator>>>,
}

impl Plan {
    /// The plan connected to `source_id`, if any, with its validators. Rules that do not
    /// compile are logged and skipped.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn load(
        store: &Store,
        validators: &Validators,
        source_id: &str,
    ) -> Result<Option<Plan>, StoreError> {
        let Some(id) = store.index(&format!("plan:{source_id}"))? else {
            return Ok(None);
        };
        let rules: Vec<Rule> = store.get(Kind::Rules, &id)?.unwrap_or_default();
        let compiled = rules
            .iter()
            .map(|rule| match validators.get(&id, rule) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(plan_id = %id, error = %e, "a tracking plan rule does not compile; skipped");
                    None
                }
            })
            .collect();
        Ok(Some(Plan {
            id,
            rules,
            compiled,
        }))
    }

    fn validator(&self, rule: &Rule) -> Option<&jsonschema::Validator> {
        let i = self.rules.iter().position(|r| std::ptr::eq(r, rule))?;
        self.compiled.get(i)?.as_deref()
    }
}

fn check(plan: &Plan, rule: &Rule, event: &Value) -> Vec<Violation> {
    let Some(validator) = plan.validator(rule) else {
        return Vec::new();
    };
    validator
        .iter_errors(event)
        .map(|e| {
            let path = e
                .instance_path
                .as_str()
                .trim_start_matches('/')
                .replace('/', ".");
            let (kind, field) = match &e.kind {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    let field = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}.{name}")
                    };
                    ("Required", field)
                }
                jsonschema::error::ValidationErrorKind::Type { .. } => ("Datatype", path),
                _ => ("Advanced", path),
            };
            Violation {
                kind: kind.to_string(),
                field,
                description: e.to_string(),
            }
        })
        .collect()
}

/// Keys of `section` (`properties` or `traits`) the rule's schema does not declare.
fn unplanned(rule: &Rule, event: &Value, section: &str) -> Vec<String> {
    let Some(planned) = rule.json_schema["properties"][section]["properties"].as_object() else {
        return Vec::new();
    };
    event[section]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !planned.contains_key(*k))
                .map(|k| format!("{section}.{k}"))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a dotted path (`properties.a.b`); returns whether it was there.
fn remove_path(event: &mut Value, path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return false;
    };
    let mut current = event;
    for p in parents {
        match current.get_mut(*p) {
            Some(next) => current = next,
            None => return false,
        }
    }
    current
        .as_object_mut()
        .is_some_and(|m| m.remove(*last).is_some())
}

/// The top field of a violation under `section` (`properties.a.b` -> `properties.a`).
fn top_field(field: &str, section: Option<&str>) -> Option<String> {
    let mut parts = field.splitn(3, '.');
    let head = parts.next()?;
    let key = parts.next()?;
    if section.is_some_and(|s| s != head) || !matches!(head, "properties" | "traits" | "context") {
        return None;
    }
    Some(format!("{head}.{key}"))
}

/// Enforces `plan` on `event` with the source's `settings`. Cost: the event's tree walked
/// by each matching rule's validator; nothing read from the store.
pub fn enforce(plan: &Plan, settings: &SchemaSettings, mut event: Value) -> Enforced {
    let plan_id = plan.id.clone();
    let rules = &plan.rules;
    let original = event.clone();
    let kind = event["type"].as_str().unwrap_or_default().to_string();
    let version = event["context"]["protocols"]["event_version"].as_u64();
    let mut violations = Vec::new();
    let mut omitted = Vec::new();
    let mut omitted_on_violation = Vec::new();
    let mut blocked = false;

    let (rule_kind, key) = match kind.as_str() {
        "track" => (
            Some(RuleType::Track),
            event["event"].as_str().map(str::to_string),
        ),
        "identify" => (Some(RuleType::Identify), None),
        "group" => (Some(RuleType::Group), None),
        "page" => (Some(RuleType::Page), None),
        "screen" => (Some(RuleType::Screen), None),
        _ => (None, None),
    };
    let rule = rule_kind.and_then(|k| pick(rules, k, key.as_deref(), version));
    // What the source's settings say for this type: (allow unplanned fields, allow fields on
    // violation, allow the event on violation, the section).
    let (allow_unplanned, allow_fields, allow_event, section) = match kind.as_str() {
        "track" => (
            settings.track.allow_unplanned_event_properties,
            settings.track.allow_properties_on_violations,
            settings.track.allow_event_on_violations,
            Some("properties"),
        ),
        "identify" => (
            settings.identify.allow_unplanned_traits,
            settings.identify.allow_traits_on_violations,
            true,
            Some("traits"),
        ),
        "group" => (
            settings.group.allow_unplanned_traits,
            settings.group.allow_traits_on_violations,
            true,
            Some("traits"),
        ),
        _ => (true, true, true, None),
    };
    match rule {
        None if kind == "track" => {
            let name = key.unwrap_or_default();
            violations.push(Violation {
                kind: "Unplanned".into(),
                field: "event".into(),
                description: format!("event {name:?} is not in the tracking plan"),
            });
            if !settings.track.allow_unplanned_events {
                blocked = true;
            }
        }
        None => {}
        Some(rule) => {
            if let Some(section) = section
                && !allow_unplanned
            {
                for field in unplanned(rule, &event, section) {
                    if remove_path(&mut event, &field) {
                        omitted.push(field);
                    }
                }
            }
            let found = check(plan, rule, &event);
            if !found.is_empty() {
                if !allow_event {
                    blocked = true;
                } else if !allow_fields {
                    for v in &found {
                        if let Some(field) = top_field(&v.field, section)
                            && remove_path(&mut event, &field)
                        {
                            omitted_on_violation.push(field);
                        }
                    }
                }
            }
            violations.extend(found);
        }
    }
    if let Some(common) = pick(rules, RuleType::Common, None, version) {
        let found = check(plan, common, &event);
        if !found.is_empty() {
            let (block, omit) = match kind.as_str() {
                "identify" => (
                    settings.identify.common_event_on_violations == TraitsOnViolation::Block,
                    settings.identify.common_event_on_violations == TraitsOnViolation::OmitTraits,
                ),
                "group" => (
                    settings.group.common_event_on_violations == TraitsOnViolation::Block,
                    settings.group.common_event_on_violations == TraitsOnViolation::OmitTraits,
                ),
                _ => (
                    settings.track.common_event_on_violations == TrackOnViolation::Block,
                    settings.track.common_event_on_violations == TrackOnViolation::OmitProperties,
                ),
            };
            if block {
                blocked = true;
            } else if omit {
                for v in &found {
                    if let Some(field) = top_field(&v.field, None)
                        && remove_path(&mut event, &field)
                    {
                        omitted_on_violation.push(field);
                    }
                }
            }
            violations.extend(found);
        }
    }
    if !violations.is_empty() || !omitted.is_empty() || !omitted_on_violation.is_empty() {
        let protocols = json!({
            "omitted": omitted,
            "omitted_on_violation": omitted_on_violation,
            "violations": violations,
        });
        if let Some(root) = event.as_object_mut() {
            let context = root
                .entry("context")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(context) = context.as_object_mut() {
                let entry = context
                    .entry("protocols")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Some(p), Value::Object(new)) = (entry.as_object_mut(), protocols) {
                    p.extend(new);
                }
            }
        }
    }
    omitted.extend(omitted_on_violation);
    Enforced {
        event: (!blocked).then_some(event),
        original,
        violations,
        omitted,
        plan_id: Some(plan_id),
    }
}

/// The `Violation Generated` track events Segment forwards for `enforced`'s violations.
pub fn violation_events(enforced: &Enforced, source_id: &str) -> Vec<Value> {
    let e = &enforced.original;
    enforced
        .violations
        .iter()
        .map(|v| {
            json!({
                "type": "track",
                "event": "Violation Generated",
                "userId": "schema-violations",
                "messageId": format!("violation-{}", uuid::Uuid::now_v7().simple()),
                "timestamp": crate::workspace::now(),
                "receivedAt": crate::workspace::now(),
                "properties": {
                    "violationType": v.kind,
                    "violationField": v.field,
                    "violationDescription": v.description,
                    "eventName": e["event"].as_str().or(e["name"].as_str()).unwrap_or_default(),
                    "eventType": e["type"],
                    "eventMessageID": e["messageId"],
                    "sourceID": source_id,
                    "trackingPlanID": enforced.plan_id,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(rules: Value) -> (tempfile::TempDir, Store, Validators) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let store = Store::open(&db).unwrap();
        let rules: Vec<Rule> = serde_json::from_value(rules).unwrap();
        store
            .transact::<_, StoreError>("test", |tx| {
                tx.put(Kind::Rules, "plan", &rules)?;
                tx.set_index("plan:src", "plan")?;
                Ok(())
            })
            .unwrap();
        (dir, store, Validators::default())
    }

    fn plan(store: &Store, v: &Validators) -> Plan {
        Plan::load(store, v, "src").unwrap().unwrap()
    }

    fn settings(patch: Value) -> SchemaSettings {
        let mut base = serde_json::to_value(SchemaSettings::default()).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            for (kk, vv) in v.as_object().into_iter().flatten() {
                base[k][kk] = vv.clone();
            }
            if !v.is_object() {
                base[k] = v.clone();
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn only_sources_with_a_plan_have_one() {
        let (_dir, store, v) = setup(json!([]));
        assert!(Plan::load(&store, &v, "other").unwrap().is_none());
        assert_eq!(plan(&store, &v).id, "plan");
    }

    #[test]
    fn common_rules_block_traits_are_omitted_and_versions_are_picked() {
        let (_dir, store, v) = setup(json!([
            {"type": "COMMON", "jsonSchema": {"type": "object", "required": ["userId"]}},
            {"type": "IDENTIFY", "jsonSchema": {"type": "object", "properties": {"traits": {"type": "object",
                "properties": {"plan": {"type": "string"}}}}}},
            {"type": "TRACK", "key": "Paid", "version": 1, "jsonSchema": {"type": "object"}},
            {"type": "TRACK", "key": "Paid", "version": 2, "jsonSchema": {"type": "object",
                "properties": {"properties": {"type": "object", "required": ["amount"]}}}}
        ]));
        let p = plan(&store, &v);
        let s = settings(json!({"identify": {"allowUnplannedTraits": false},
                                "track": {"commonEventOnViolations": "BLOCK", "allowEventOnViolations": false}}));

        // Unplanned traits are omitted and recorded.
        let e = enforce(
            &p,
            &s,
            json!({"type": "identify", "userId": "u", "traits": {"plan": "pro", "email": "a@b.c"}}),
        );
        let event = e.event.unwrap();
        assert_eq!(event["traits"], json!({"plan": "pro"}));
        assert_eq!(
            event["context"]["protocols"]["omitted"],
            json!(["traits.email"])
        );

        // The COMMON rule's violation blocks a track event under BLOCK.
        let e = enforce(
            &p,
            &s,
            json!({"type": "track", "event": "Paid", "anonymousId": "a"}),
        );
        assert!(e.event.is_none());
        assert_eq!(e.violations[0].kind, "Required");
        assert_eq!(e.violations[0].field, "userId");

        // Version 1 (the oldest) by default; version 2 when the event asks for it.
        let paid = |version: Option<u64>| {
            let mut event =
                json!({"type": "track", "event": "Paid", "userId": "u", "properties": {}});
            if let Some(version) = version {
                event["context"] = json!({"protocols": {"event_version": version}});
            }
            enforce(&p, &s, event)
        };
        assert!(paid(None).event.is_some());
        let e = paid(Some(2));
        assert!(e.event.is_none(), "allowEventOnViolations is false");
        assert_eq!(e.violations[0].field, "properties.amount");

        // Compiled once per rule version, however many plans are loaded.
        let compiled = v.compiled();
        for _ in 0..5 {
            plan(&store, &v);
        }
        assert_eq!(v.compiled(), compiled);
    }
}
