//! Tracking plans: JSON Schema rules for events, connected to sources (a source has at most one
//! plan, a plan serves many sources). Every rule's schema must compile before it is stored.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Area, Caller};
use super::error::{ApiError, CommonErrors, ErrorBody};
use super::extract::{Json, Path, Query};
use super::pagination::{PageQuery, Pagination, page};
use super::resource::{Created, Deleted, Reply, check_name, deleted};
use super::sources::{Source, visible_sources};
use super::store::Kind;
use super::{AppState, Data, created, new_id, now, ok};

pub use crate::workspace::tracking_plan::{Rule, RuleType, TrackingPlan};

/// Most rules one call may send, as in Segment.
const MAX_RULES_PER_CALL: usize = 200;

impl Rule {
    fn same(&self, other: &RuleKey) -> bool {
        self.kind == other.kind
            && self.key == other.key
            && self.version == other.version.unwrap_or(1)
    }
}

/// A rule's identity, for deleting rules.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleKey {
    /// Rule type.
    #[serde(rename = "type")]
    pub kind: RuleType,
    /// Event name.
    pub key: Option<String>,
    /// Version, default 1.
    #[serde(default, deserialize_with = "crate::workspace::whole::optional")]
    pub version: Option<u32>,
}

/// A plan in the envelope.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingPlanData {
    /// The plan.
    pub tracking_plan: TrackingPlan,
}

/// A page of plans.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingPlans {
    /// Plans, oldest first.
    pub tracking_plans: Vec<TrackingPlan>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /tracking-plans`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTrackingPlan {
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// `LIVE` (default).
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `PATCH /tracking-plans/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTrackingPlan {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// Rules sent to PUT or PATCH.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// At most 200.
    pub rules: Vec<Rule>,
}

/// Rules named for DELETE.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleKeys {
    /// The rules to delete.
    pub rules: Vec<RuleKey>,
}

/// A page of rules.
#[derive(Serialize, ToSchema)]
pub struct RulesPage {
    /// Rules.
    pub rules: Vec<Rule>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// A page of connected sources.
#[derive(Serialize, ToSchema)]
pub struct PlanSources {
    /// Sources.
    pub sources: Vec<Source>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /tracking-plans/{id}/sources`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectSource {
    /// The source to connect.
    pub source_id: String,
}

/// `DELETE /tracking-plans/{id}/sources?sourceId=`.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SourceParam {
    /// The source to disconnect.
    pub source_id: Option<String>,
}

fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
    write: bool,
) -> Result<TrackingPlan, ApiError> {
    caller.require(Area::TrackingPlans, write, Some(id), "tracking plan")?;
    state
        .store
        .find(Kind::TrackingPlan, id)
        .map_err(ApiError::from)
}

/// Checks rules: at most 200, TRACK rules have a key, every schema compiles.
fn check_rules(rules: &[Rule]) -> Result<(), ApiError> {
    if rules.len() > MAX_RULES_PER_CALL {
        return Err(ApiError::invalid(
            "rules",
            format!("at most {MAX_RULES_PER_CALL} rules per call"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let kind = serde_json::to_value(rule.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let key = rule
            .key
            .as_ref()
            .map(|k| format!(" `{k}`"))
            .unwrap_or_default();
        let name = format!("{kind}{key} v{}", rule.version);
        if rule.kind == RuleType::Track && rule.key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            return Err(ApiError::invalid(
                format!("rules[{i}].key"),
                format!("rule {i}: a TRACK rule needs `key`, the event name"),
            ));
        }
        if let Err(err) = jsonschema::validator_for(&rule.json_schema) {
            return Err(ApiError::invalid(
                format!("rules[{i}].jsonSchema"),
                format!("rule {i} ({name}): `jsonSchema` is not a valid JSON Schema: {err}"),
            ));
        }
    }
    Ok(())
}

/// List tracking plans.
///
/// Every plan the token can see, oldest first, with the sources connected to each.
#[utoipa::path(get, path = "/tracking-plans", operation_id = "listTrackingPlans", tag = "Tracking Plans", params(PageQuery),
    responses((status = 200, body = Data<TrackingPlans>), CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Reply<TrackingPlans> {
    caller.require_some(Area::TrackingPlans, "tracking plans")?;
    let all: Vec<TrackingPlan> = state.store.list(Kind::TrackingPlan, "")?;
    let (tracking_plans, pagination) = page(
        all.into_iter()
            .filter(|p| caller.sees(Area::TrackingPlans, &p.id))
            .collect(),
        &q,
    )?;
    Ok(ok(TrackingPlans {
        tracking_plans,
        pagination,
    }))
}

/// Create a tracking plan.
///
/// An empty plan; add rules with PUT or PATCH on its rules, then connect sources.
#[utoipa::path(post, path = "/tracking-plans", operation_id = "createTrackingPlan", tag = "Tracking Plans", request_body = CreateTrackingPlan,
    responses((status = 201, body = Data<TrackingPlanData>), CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateTrackingPlan>,
) -> Created<TrackingPlanData> {
    caller.require(Area::TrackingPlans, true, None, "tracking plan")?;
    check_name(&input.name, "name")?;
    let kind = input.kind.clone().unwrap_or_else(|| "LIVE".into());
    if kind != "LIVE" {
        return Err(ApiError::invalid("type", "`type` must be LIVE"));
    }
    let at = now();
    let plan = TrackingPlan {
        id: new_id(),
        name: input.name.clone(),
        description: input.description.clone(),
        kind,
        created_at: at.clone(),
        updated_at: at,
        source_ids: vec![],
    };
    state.store.transact(&caller.actor, |tx| {
        tx.put(Kind::TrackingPlan, &plan.id, &plan)?;
        tx.audit(
            "Tracking Plan Created",
            "tracking_plan",
            &plan.id,
            &plan.name,
        )
    })?;
    Ok(created(TrackingPlanData {
        tracking_plan: plan,
    }))
}

/// Get a tracking plan.
///
/// The plan and its connected sources (rules are under `/rules`).
#[utoipa::path(get, path = "/tracking-plans/{id}", operation_id = "getTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = Data<TrackingPlanData>), CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<TrackingPlanData> {
    Ok(ok(TrackingPlanData {
        tracking_plan: load(&state, &caller, &id, false)?,
    }))
}

/// Update a tracking plan.
///
/// Renames it or changes its description.
#[utoipa::path(patch, path = "/tracking-plans/{id}", operation_id = "updateTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    request_body = UpdateTrackingPlan, responses((status = 200, body = Data<TrackingPlanData>), CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateTrackingPlan>,
) -> Reply<TrackingPlanData> {
    load(&state, &caller, &id, true)?;
    if let Some(name) = &input.name {
        check_name(name, "name")?;
    }
    let plan = state.store.transact(&caller.actor, |tx| {
        let mut plan = tx.find::<TrackingPlan>(Kind::TrackingPlan, &id)?;
        if let Some(name) = &input.name {
            plan.name = name.clone();
        }
        if let Some(description) = &input.description {
            plan.description = Some(description.clone());
        }
        plan.updated_at = now();
        tx.put(Kind::TrackingPlan, &id, &plan)?;
        tx.audit("Tracking Plan Modified", "tracking_plan", &id, &plan.name)?;
        Ok(plan)
    })?;
    Ok(ok(TrackingPlanData {
        tracking_plan: plan,
    }))
}

/// Delete a tracking plan.
///
/// Disconnects it from its sources (which stop enforcing it) and deletes it.
#[utoipa::path(delete, path = "/tracking-plans/{id}", operation_id = "deleteTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = Data<Deleted>), CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Deleted> {
    load(&state, &caller, &id, true)?;
    state.store.transact(&caller.actor, |tx| {
        let plan = tx.find::<TrackingPlan>(Kind::TrackingPlan, &id)?;
        for source in &plan.source_ids {
            tx.unset_index(&format!("plan:{source}"))?;
        }
        tx.remove(Kind::TrackingPlan, &id)?;
        tx.remove(Kind::Rules, &id)?;
        tx.audit("Tracking Plan Deleted", "tracking_plan", &id, &plan.name)
    })?;
    Ok(deleted())
}

/// List a plan's rules.
///
/// The plan's rules, paginated.
#[utoipa::path(get, path = "/tracking-plans/{id}/rules", operation_id = "listRulesFromTrackingPlan", tag = "Tracking Plans",
    params(("id" = String, Path, description = "Plan id"), PageQuery),
    responses((status = 200, body = Data<RulesPage>), CommonErrors))]
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<RulesPage> {
    load(&state, &caller, &id, false)?;
    let rules: Vec<Rule> = state.store.get(Kind::Rules, &id)?.unwrap_or_default();
    let (rules, pagination) = page(rules, &q)?;
    Ok(ok(RulesPage { rules, pagination }))
}

fn change_rules(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: impl Fn(&mut Vec<Rule>),
) -> Reply<RulesPage> {
    let rules = state.store.transact(&caller.actor, |tx| {
        let mut plan = tx.find::<TrackingPlan>(Kind::TrackingPlan, id)?;
        let mut rules: Vec<Rule> = tx.get(Kind::Rules, id)?.unwrap_or_default();
        change(&mut rules);
        plan.updated_at = now();
        tx.put(Kind::TrackingPlan, id, &plan)?;
        tx.put(Kind::Rules, id, &rules)?;
        tx.audit("Tracking Plan Modified", "tracking_plan", id, &plan.name)?;
        Ok(rules)
    })?;
    let (rules, pagination) = page(
        rules,
        &PageQuery {
            count: Some("1000".into()),
            cursor: None,
        },
    )?;
    Ok(ok(RulesPage { rules, pagination }))
}

/// Replace a plan's rules.
///
/// Sets the rules to exactly these (at most 200). Every `jsonSchema` must compile as JSON
/// Schema; an invalid one is a 422 naming the rule.
#[utoipa::path(put, path = "/tracking-plans/{id}/rules", operation_id = "replaceRulesInTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    request_body = Rules, responses((status = 200, body = Data<RulesPage>), CommonErrors))]
pub async fn replace_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Rules>,
) -> Reply<RulesPage> {
    load(&state, &caller, &id, true)?;
    check_rules(&input.rules)?;
    change_rules(&state, &caller, &id, |rules| *rules = input.rules.clone())
}

/// Add or update rules.
///
/// Upserts rules by (type, key, version); others stay. Schemas are checked as for PUT.
#[utoipa::path(patch, path = "/tracking-plans/{id}/rules", operation_id = "updateRulesInTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    request_body = Rules, responses((status = 200, body = Data<RulesPage>), CommonErrors))]
pub async fn upsert_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Rules>,
) -> Reply<RulesPage> {
    load(&state, &caller, &id, true)?;
    check_rules(&input.rules)?;
    change_rules(&state, &caller, &id, |rules| {
        for rule in &input.rules {
            let key = RuleKey {
                kind: rule.kind,
                key: rule.key.clone(),
                version: Some(rule.version),
            };
            match rules.iter_mut().find(|r| r.same(&key)) {
                Some(existing) => *existing = rule.clone(),
                None => rules.push(rule.clone()),
            }
        }
    })
}

/// Delete rules.
///
/// Removes the rules named by (type, key, version).
#[utoipa::path(delete, path = "/tracking-plans/{id}/rules", operation_id = "removeRulesFromTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    request_body = RuleKeys, responses((status = 200, body = Data<RulesPage>), CommonErrors))]
pub async fn delete_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<RuleKeys>,
) -> Reply<RulesPage> {
    load(&state, &caller, &id, true)?;
    change_rules(&state, &caller, &id, |rules| {
        rules.retain(|r| !input.rules.iter().any(|k| r.same(k)))
    })
}

/// List a plan's sources.
///
/// The sources that enforce this plan.
#[utoipa::path(get, path = "/tracking-plans/{id}/sources", operation_id = "listSourcesFromTrackingPlan", tag = "Tracking Plans",
    params(("id" = String, Path, description = "Plan id"), PageQuery),
    responses((status = 200, body = Data<PlanSources>), CommonErrors))]
pub async fn list_sources(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Reply<PlanSources> {
    let plan = load(&state, &caller, &id, false)?;
    let sources = visible_sources(&state, &caller, &plan.source_ids)?;
    let (sources, pagination) = page(sources, &q)?;
    Ok(ok(PlanSources {
        sources,
        pagination,
    }))
}

/// Connect a source.
///
/// The source starts enforcing this plan. A source has at most one plan: connecting a source
/// that already has another plan is a 409 (disconnect it first).
#[utoipa::path(post, path = "/tracking-plans/{id}/sources", operation_id = "addSourceToTrackingPlan", tag = "Tracking Plans", params(("id" = String, Path, description = "Plan id")),
    request_body = ConnectSource,
    responses((status = 200, body = Data<TrackingPlanData>), (status = 409, body = ErrorBody), CommonErrors))]
pub async fn connect_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<ConnectSource>,
) -> Reply<TrackingPlanData> {
    load(&state, &caller, &id, true)?;
    let sid = input.source_id;
    let missing = || ApiError::missing("sourceId", format!("no source `{sid}`"));
    if !caller.sees(Area::Sources, &sid) {
        return Err(missing());
    }
    let plan = state.store.transact(&caller.actor, |tx| {
        let mut plan = tx.find::<TrackingPlan>(Kind::TrackingPlan, &id)?;
        let source: Source = tx.get(Kind::Source, &sid)?.ok_or_else(missing)?;
        match tx.index(&format!("plan:{sid}"))? {
            Some(current) if current == id => return Ok(plan),
            Some(current) => {
                return Err(ApiError::Conflict(format!(
                    "source `{sid}` is already connected to tracking plan `{current}`; disconnect it first"
                ))
                .into());
            }
            None => {}
        }
        tx.set_index(&format!("plan:{sid}"), &id)?;
        plan.source_ids.push(sid.clone());
        plan.updated_at = now();
        tx.put(Kind::TrackingPlan, &id, &plan)?;
        tx.audit("Source Connected to Tracking Plan", "tracking_plan", &id, &format!("{} <- {}", plan.name, source.name))?;
        Ok(plan)
    })?;
    Ok(ok(TrackingPlanData {
        tracking_plan: plan,
    }))
}

/// Disconnect a source.
///
/// The source stops enforcing this plan (`?sourceId=`).
#[utoipa::path(delete, path = "/tracking-plans/{id}/sources", operation_id = "removeSourceFromTrackingPlan", tag = "Tracking Plans",
    params(("id" = String, Path, description = "Plan id"), SourceParam),
    responses((status = 200, body = Data<TrackingPlanData>), CommonErrors))]
pub async fn disconnect_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<SourceParam>,
) -> Reply<TrackingPlanData> {
    load(&state, &caller, &id, true)?;
    let sid = q
        .source_id
        .ok_or_else(|| ApiError::invalid("sourceId", "`sourceId` is required"))?;
    let plan = state.store.transact(&caller.actor, |tx| {
        let mut plan = tx.find::<TrackingPlan>(Kind::TrackingPlan, &id)?;
        if !plan.source_ids.contains(&sid) {
            return Err(ApiError::not_found("connected source", &sid).into());
        }
        plan.source_ids.retain(|s| *s != sid);
        plan.updated_at = now();
        tx.unset_index(&format!("plan:{sid}"))?;
        tx.put(Kind::TrackingPlan, &id, &plan)?;
        tx.audit(
            "Source Disconnected from Tracking Plan",
            "tracking_plan",
            &id,
            &plan.name,
        )?;
        Ok(plan)
    })?;
    Ok(ok(TrackingPlanData {
        tracking_plan: plan,
    }))
}
