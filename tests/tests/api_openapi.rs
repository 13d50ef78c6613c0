//! The OpenAPI document as tools read it: public (no token), and every operation with a unique
//! operationId named as Segment names its operations (`listSources`, `getDestination`, ...).

mod api_support;

use std::collections::BTreeMap;

use api_support::Server;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn openapi_is_public_and_operation_ids_are_unique_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    // No token: the document is what an agent or a generator reads first.
    let r = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Anything else still needs one.
    let denied = server.call(Method::GET, "/sources", None, None).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);

    let doc = r.body;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                .to_string();
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: `{id}` is not lowerCamelCase"
            );
            if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                panic!("operationId `{id}` is used by {other} and {method} {path}");
            }
        }
    }
    assert!(count > 80, "{count} operations");
    // Segment's names for the operations both have (from its SDK).
    for (method, path, id) in [
        ("get", "/sources", "listSources"),
        ("post", "/sources", "createSource"),
        ("get", "/sources/{id}", "getSource"),
        ("patch", "/sources/{id}", "updateSource"),
        ("delete", "/sources/{id}", "deleteSource"),
        ("get", "/destinations", "listDestinations"),
        ("get", "/destinations/{id}", "getDestination"),
        (
            "get",
            "/tracking-plans/{id}/rules",
            "listRulesFromTrackingPlan",
        ),
        (
            "post",
            "/tracking-plans/{id}/sources",
            "addSourceToTrackingPlan",
        ),
        (
            "patch",
            "/sources/{id}/settings",
            "updateSchemaSettingsInSource",
        ),
        ("post", "/functions/{id}/deploy", "createFunctionDeployment"),
        ("get", "/audit-events", "listAuditEvents"),
        ("get", "/", "getWorkspace"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["operationId"], id,
            "{method} {path}"
        );
    }
    // The document says it is public.
    assert_eq!(
        doc["paths"]["/openapi.json"]["get"]["security"],
        serde_json::json!([{}])
    );
    server.stop().await;
}
