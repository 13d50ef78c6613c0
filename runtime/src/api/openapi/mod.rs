//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations: the
//! router is built from the same annotations ([`router`]), so the document cannot drift.
//! [`refine`] adds what annotations cannot say (enums, examples, defaults, error responses),
//! [`constraints`] what handlers check (slugs, names, times, roles), so that what the document
//! allows the server accepts;
//! [`tracking`] describes the tracking API, whose handlers live in the data plane.

mod constraints;
mod refine;
mod tracking;

pub use refine::{AUDIT_EVENT_TYPES, Missing};

use std::sync::OnceLock;

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{
    AppState, audit, catalog, data_plane, destinations, function_test, functions, iam,
    insert_functions, invites, sources, spaces, tracking_plans, warehouse_syncs, warehouses,
    workspace,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sluice control plane",
        description = "Segment-compatible Public API of a self-hosted sluice: sources, destinations, \
            tracking plans, warehouses, functions (WebAssembly components, tested before deploying), \
            spaces, users, tokens and the audit trail; and the tracking API (`/v1/*`) that events arrive through. \
            Every control-plane operation but this document (`GET /openapi.json`) needs `Authorization: Bearer <token>`; \
            the tracking API takes a source's write key instead (HTTP Basic). \
            Success bodies are `{\"data\": ...}`, failures `{\"errors\": [{\"type\", \"message\", \"field\"?}]}`. \
            Lists take `pagination.count` (1-1000, default 200) and `pagination.cursor`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "Workspaces", description = "The workspace a token belongs to."),
        (name = "Catalog", description = "The source, destination and warehouse types sluice supports, with their options."),
        (name = "Sources", description = "Where events come from: write keys, labels, schema enforcement settings, connections."),
        (name = "Destinations", description = "Where a source's events are delivered (webhook, file)."),
        (name = "Tracking Plans", description = "JSON Schema rules for events, enforced on the sources they are connected to."),
        (name = "Warehouses", description = "Where sources' events are loaded for analysis."),
        (name = "Functions", description = "WebAssembly functions: upload, version, test on sample events, deploy, attach to sources and destinations."),
        (name = "Spaces", description = "Named spaces."),
        (name = "IAM", description = "Roles, users, invitations and API tokens."),
        (name = "Audit Trail", description = "Who changed what, when."),
        (name = "Event Debugger", description = "Recent events of a source and what each stage of the data plane did to them, listed or live."),
        (name = "Meta", description = "This document.")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `POST /tokens` (or the bootstrap token printed by `sluice serve`)."))
                    .build(),
            ),
        );
    }
}

/// The document's JSON.
///
/// The OpenAPI 3.1 description of every operation of this API, generated from the code. Public:
/// no token needed, so that tools and agents can read it first.
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApiDocument", tag = "Meta", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn document(headers: HeaderMap) -> axum::Json<Value> {
    let mut doc = document_value().clone();
    // The server is the one that answered: the address the client used, which is the only one
    // sluice can know to be reachable (it may sit behind a proxy).
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()));
    let url = match host {
        Some(host) => format!("http://{host}"),
        None => "/".to_string(),
    };
    doc["servers"] =
        json!([{"url": url, "description": "The sluice server that served this document."}]);
    axum::Json(doc)
}

/// The refined document (without `servers`), built once per process (a few milliseconds; it
/// never changes). The MCP tools are read from it too.
pub fn document_value() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| match build() {
        Ok(doc) => doc,
        Err(err) => {
            // Only a code change can cause this, and the unit test catches it; serve what the
            // annotations say rather than nothing.
            tracing::error!(error = %err, "the OpenAPI document is incomplete");
            serde_json::to_value(router().into_openapi()).unwrap_or(Value::Null)
        }
    })
}

/// The whole document: generated from the annotations, then refined.
///
/// # Errors
/// A refinement's target is missing from the generated document.
pub fn build() -> Result<Value, Missing> {
    let mut doc = serde_json::to_value(router().into_openapi())
        .map_err(|e| Missing(format!("the generated document ({e})")))?;
    refine::refine(&mut doc)?;
    Ok(doc)
}

/// Every route of the API with its documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(document))
        .routes(routes!(workspace::get_workspace))
        .routes(routes!(catalog::sources))
        .routes(routes!(catalog::destinations))
        .routes(routes!(catalog::warehouses))
        .routes(routes!(sources::list, sources::create))
        .routes(routes!(sources::get, sources::update, sources::delete))
        .routes(routes!(sources::connected_destinations))
        .routes(routes!(sources::connected_warehouses))
        .routes(routes!(sources::get_settings, sources::patch_settings))
        .routes(routes!(sources::add_labels, sources::replace_labels))
        .routes(routes!(sources::create_write_key))
        .routes(routes!(sources::remove_write_key))
        .routes(routes!(destinations::list, destinations::create))
        .routes(routes!(
            destinations::get,
            destinations::update,
            destinations::delete
        ))
        .routes(routes!(tracking_plans::list, tracking_plans::create))
        .routes(routes!(
            tracking_plans::get,
            tracking_plans::update,
            tracking_plans::delete
        ))
        .routes(routes!(
            tracking_plans::list_rules,
            tracking_plans::replace_rules,
            tracking_plans::upsert_rules,
            tracking_plans::delete_rules
        ))
        .routes(routes!(
            tracking_plans::list_sources,
            tracking_plans::connect_source,
            tracking_plans::disconnect_source
        ))
        .routes(routes!(warehouses::list, warehouses::create))
        .routes(routes!(
            warehouses::get,
            warehouses::update,
            warehouses::delete
        ))
        .routes(routes!(warehouses::connection_state))
        .routes(routes!(warehouse_syncs::list, warehouse_syncs::run))
        .routes(routes!(warehouse_syncs::list_for_source))
        .routes(routes!(warehouse_syncs::selective_syncs))
        .routes(routes!(warehouse_syncs::update))
        .routes(routes!(warehouses::connected_sources))
        .routes(routes!(
            warehouses::connect_source,
            warehouses::disconnect_source
        ))
        .routes(routes!(functions::list, functions::create))
        .routes(routes!(
            functions::get,
            functions::update,
            functions::delete
        ))
        .routes(routes!(
            functions::list_versions,
            functions::restore_version
        ))
        .routes(routes!(functions::get_version))
        .routes(routes!(functions::deploy))
        .routes(routes!(function_test::test))
        .routes(routes!(insert_functions::list, insert_functions::create))
        .routes(routes!(
            insert_functions::get,
            insert_functions::update,
            insert_functions::delete
        ))
        .routes(routes!(spaces::list, spaces::create))
        .routes(routes!(spaces::get, spaces::update, spaces::delete))
        .routes(routes!(iam::list_roles))
        .routes(routes!(iam::list_users, iam::create_user))
        .routes(routes!(iam::get_user, iam::delete_user))
        .routes(routes!(iam::add_permissions, iam::replace_permissions))
        .routes(routes!(iam::list_tokens, iam::create_token))
        .routes(routes!(iam::current_token))
        .routes(routes!(iam::get_token, iam::delete_token))
        .routes(routes!(invites::list, invites::create, invites::delete))
        .routes(routes!(audit::list))
        .routes(routes!(data_plane::events))
        .routes(routes!(data_plane::live))
        .routes(routes!(data_plane::delivery_metrics))
        .routes(routes!(data_plane::failed_events))
        .routes(routes!(data_plane::replay))
        .routes(routes!(data_plane::function_logs))
}

#[cfg(test)]
mod tests {
    use super::{AUDIT_EVENT_TYPES, build};

    #[test]
    fn every_refinement_finds_its_target() {
        let doc = build().unwrap_or_else(|e| panic!("{e}"));
        assert!(doc["paths"]["/v1/track"]["post"].is_object());
    }

    /// Every `audit("<type>"` written anywhere in the runtime is in the documented enum.
    #[test]
    fn every_audit_event_type_is_documented() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![root];
        let mut found = 0;
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for call in text.split("audit(").skip(1) {
                    let call = call.trim_start();
                    let Some(rest) = call.strip_prefix('"') else {
                        continue;
                    };
                    let kind = rest.split('"').next().unwrap_or_default();
                    // Audit types are words ("Source Created"); this test's own code is not.
                    if kind.contains(' ') && kind.chars().all(|c| c.is_alphabetic() || c == ' ') {
                        found += 1;
                        assert!(
                            AUDIT_EVENT_TYPES.contains(&kind),
                            "{}: audit type `{kind}` is not in AUDIT_EVENT_TYPES",
                            path.display()
                        );
                    }
                }
            }
        }
        assert!(found > 30, "{found} audit calls found");
    }
}
