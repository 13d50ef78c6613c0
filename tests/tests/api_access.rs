//! Tokens, roles, users and scoped permissions through real HTTP: 401 for unknown tokens, 403
//! for what a role does not allow, 404 (or a filtered list) for what a scope hides.

mod api_support;

use api_support::{OWNER, Server};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn tokens_are_shown_once_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server
        .post(
            "/tokens",
            json!({"description": "ci", "permissions": [{"roleId": "workspace-owner"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = &r.data()["token"];
    let (id, secret) = (
        token["id"].as_str().unwrap().to_string(),
        token["value"].as_str().unwrap().to_string(),
    );
    assert!(secret.starts_with("sl_") && secret.len() > 40);
    assert_eq!(token["permissions"][0]["roleName"], "Workspace Owner");

    let r = server.get("/tokens").await;
    let tokens = r.data()["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "bootstrap and ci");
    assert!(
        tokens.iter().all(|t| t.get("value").is_none()),
        "secrets are never listed"
    );
    assert!(!r.body.to_string().contains(&secret));

    // The secret is stored only as a hash: it appears nowhere in the database files.
    let mut found = false;
    for entry in walk(&dir.path().join("db")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        found |= bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
    }
    assert!(!found, "the token's secret is not on disk");

    assert_eq!(
        server
            .call(Method::GET, "/", Some(&secret), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = server
        .call(
            Method::DELETE,
            &format!("/tokens/{id}"),
            Some(&secret),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        server
            .call(Method::GET, "/", Some(&secret), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.delete(&format!("/tokens/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    for (body, field) in [
        (
            json!({"description": "x", "permissions": []}),
            "permissions",
        ),
        (
            json!({"description": "x", "permissions": [{"roleId": "god"}]}),
            "permissions[0].roleId",
        ),
        (
            json!({"description": "x", "permissions": [{"roleId": "source-admin", "resources": [{"id": "a", "type": "PLANET"}]}]}),
            "permissions[0].resources[0].type",
        ),
    ] {
        let r = server.post("/tokens", body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, field),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        server.audit_types(&id).await,
        ["Access Token Created", "Access Token Deleted"]
    );

    // The last owner token cannot be deleted: nobody could manage the server any more.
    let r = server.get("/tokens").await;
    let bootstrap = r.data()["tokens"][0]["id"].as_str().unwrap().to_string();
    let r = server.delete(&format!("/tokens/{bootstrap}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(server.get("/").await.status, StatusCode::OK);
    server.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn roles_have_segments_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server.get("/roles").await;
    let names: Vec<&str> = r.data()["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Workspace Owner",
            "Workspace Member",
            "Source Admin",
            "Source Read-only",
            "Function Admin",
            "Function Read-only",
            "Tracking Plan Admin",
            "Tracking Plan Read-only",
            "Warehouse Admin",
            "Warehouse Read-only"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn users_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server.post("/users", json!({"name": "Ada", "email": "Ada@Example.com", "permissions": [{"roleId": "workspace-member"}]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.data()["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.data()["user"]["email"], "ada@example.com");
    assert_eq!(
        server
            .post("/users", json!({"name": "Ada", "email": "ada@example.com"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        server
            .post("/users", json!({"name": "Bob", "email": "bob"}))
            .await
            .field(),
        "email"
    );

    let src = server.source("app").await;
    let r = server
        .post(&format!("/users/{id}/permissions"), json!({"permissions": [{"roleId": "Source Admin", "resources": [{"id": src, "type": "SOURCE"}]}]}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let perms = r.data()["user"]["permissions"].as_array().unwrap();
    assert_eq!(perms.len(), 2);
    assert_eq!(
        perms[1]["roleId"], "source-admin",
        "role names are accepted and normalised"
    );
    let r = server
        .put(
            &format!("/users/{id}/permissions"),
            json!({"permissions": [{"roleId": "function-admin"}]}),
        )
        .await;
    assert_eq!(r.data()["user"]["permissions"].as_array().unwrap().len(), 1);
    assert_eq!(
        server.get(&format!("/users/{id}")).await.data()["user"]["permissions"][0]["roleName"],
        "Function Admin"
    );
    assert_eq!(server.count("/users", "users").await, 1);
    assert_eq!(
        server
            .put("/users/ghost/permissions", json!({"permissions": []}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.delete(&format!("/users/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get(&format!("/users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.audit_types(&id).await,
        [
            "User Created",
            "User Permissions Modified",
            "User Permissions Modified",
            "User Deleted"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_scoped_source_admin_sees_and_changes_only_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mine = server.source("mine").await;
    let theirs = server.source("theirs").await;
    server
        .post(
            "/destinations",
            json!({"sourceId": theirs, "metadataId": "file", "settings": {"path": "x"}}),
        )
        .await;
    let r = server
        .post(
            "/destinations",
            json!({"sourceId": mine, "metadataId": "file", "settings": {"path": "y"}}),
        )
        .await;
    let my_dest = r.data()["destination"]["id"].as_str().unwrap().to_string();
    let token = server
        .token(json!([{"roleId": "source-admin", "resources": [{"id": mine, "type": "SOURCE"}]}]))
        .await;
    let t = Some(token.as_str());

    let r = server.call(Method::GET, "/sources", t, None).await;
    let ids: Vec<&str> = r.data()["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()], "lists are filtered to the scope");
    assert_eq!(r.data()["pagination"]["totalEntries"], 1);
    assert_eq!(
        server
            .call(Method::GET, &format!("/sources/{theirs}"), t, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = server
        .call(
            Method::PATCH,
            &format!("/sources/{theirs}"),
            t,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        server
            .call(Method::DELETE, &format!("/sources/{theirs}"), t, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = server
        .call(
            Method::PATCH,
            &format!("/sources/{mine}"),
            t,
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let r = server.call(Method::GET, "/destinations", t, None).await;
    let dests = r.data()["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 1);
    assert_eq!(dests[0]["id"], my_dest.as_str());
    let r = server
        .call(
            Method::POST,
            "/destinations",
            t,
            Some(json!({"sourceId": theirs, "metadataId": "file", "settings": {"path": "z"}})),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::NOT_FOUND, "sourceId"),
        "another source looks absent"
    );
    // Creating sources needs a workspace-wide role.
    let r = server
        .call(
            Method::POST,
            "/sources",
            t,
            Some(json!({"slug": "new", "enabled": true, "metadataId": "http"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_type(), "forbidden");
    // Other areas are forbidden.
    for path in [
        "/functions",
        "/tracking-plans",
        "/warehouses",
        "/users",
        "/tokens",
        "/audit-events",
        "/spaces",
    ] {
        assert_eq!(
            server.call(Method::GET, path, t, None).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // Everyone may read the workspace, the catalog and the roles.
    for path in ["/", "/catalog/sources", "/roles"] {
        assert_eq!(
            server.call(Method::GET, path, t, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn read_only_roles_can_read_but_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let src = server.source("s").await;
    let member = server.token(json!([{"roleId": "workspace-member"}])).await;
    let reader = server.token(json!([{"roleId": "source-read-only"}])).await;
    let planner = server
        .token(json!([{"roleId": "tracking-plan-admin"}, {"roleId": "source-read-only"}]))
        .await;
    for token in [&member, &reader] {
        let t = Some(token.as_str());
        assert_eq!(
            server
                .call(Method::GET, &format!("/sources/{src}"), t, None)
                .await
                .status,
            StatusCode::OK
        );
        let r = server
            .call(
                Method::PATCH,
                &format!("/sources/{src}"),
                t,
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = server
            .call(
                Method::POST,
                "/sources",
                t,
                Some(json!({"slug": "n", "enabled": true, "metadataId": "http"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let m = Some(member.as_str());
    assert_eq!(
        server
            .call(Method::GET, "/audit-events", m, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server.call(Method::GET, "/users", m, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.call(Method::GET, "/tokens", m, None).await.status,
        StatusCode::FORBIDDEN,
        "tokens are owner-only"
    );
    let r = server
        .call(
            Method::POST,
            "/tokens",
            m,
            Some(json!({"description": "x", "permissions": [{"roleId": "workspace-owner"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no escalation");
    let r = server
        .call(
            Method::POST,
            "/spaces",
            m,
            Some(json!({"slug": "s", "name": "S"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let p = Some(planner.as_str());
    let r = server
        .call(
            Method::POST,
            "/tracking-plans",
            p,
            Some(json!({"name": "plan"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let plan = r.data()["trackingPlan"]["id"].as_str().unwrap().to_string();
    let r = server
        .call(
            Method::POST,
            &format!("/tracking-plans/{plan}/sources"),
            p,
            Some(json!({"sourceId": src})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        server
            .call(
                Method::POST,
                "/warehouses",
                p,
                Some(json!({"metadataId": "duckdb"}))
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .call(Method::GET, "/", Some(OWNER), None)
            .await
            .status,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn invites_become_users_with_their_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let r = server
        .post(
            "/invites",
            json!({"invites": [{"email": "Grace@Example.com", "permissions": [{"roleId": "warehouse-admin"}]},
                               {"email": "linus@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.data()["emails"],
        json!(["grace@example.com", "linus@example.com"])
    );
    let r = server.get("/invites").await;
    assert_eq!(r.data()["invites"].as_array().unwrap().len(), 2);
    assert_eq!(r.data()["pagination"]["totalEntries"], 2);
    let r = server
        .post("/invites", json!({"invites": [{"email": "nope"}]}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invites[0].email")
    );
    let r = server
        .post(
            "/invites",
            json!({"invites": [{"email": "a@b.c", "permissions": [{"roleId": "x"}]}]}),
        )
        .await;
    assert_eq!(r.field(), "invites[0].permissions[0].roleId");

    // The invited user is created with the invitation's permissions, which is then consumed.
    let r = server
        .post(
            "/users",
            json!({"name": "Grace", "email": "grace@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.data()["user"]["permissions"][0]["roleName"],
        "Warehouse Admin"
    );
    assert_eq!(
        server.get("/invites").await.data()["invites"],
        json!(["linus@example.com"])
    );
    let r = server
        .post(
            "/invites",
            json!({"invites": [{"email": "grace@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "already a user");

    let r = server.delete("/invites?emails=linus@example.com").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(server.get("/invites").await.data()["invites"], json!([]));
    assert_eq!(
        server
            .delete("/invites?emails=linus@example.com")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.delete("/invites").await.field(), "emails");
    assert_eq!(
        server.audit_types("linus@example.com").await,
        ["User Invited", "Invite Deleted"]
    );
    let member = server.token(json!([{"roleId": "workspace-member"}])).await;
    let r = server
        .call(
            Method::POST,
            "/invites",
            Some(&member),
            Some(json!({"invites": [{"email": "x@y.z"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[test]
fn bootstrap_makes_one_owner_token_and_refuses_weak_secrets() {
    use sluice_runtime::api::auth::bootstrap;
    use sluice_runtime::api::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&sled::open(dir.path()).unwrap()).unwrap();
    assert!(
        bootstrap(&store, Some("short")).is_err(),
        "a guessable owner token is refused"
    );
    let printed = bootstrap(&store, None)
        .unwrap()
        .expect("a fresh store gets a generated token");
    assert!(printed.starts_with("sl_"));
    assert_eq!(bootstrap(&store, None).unwrap(), None, "printed only once");
    // A configured secret only creates the first token of an empty workspace: here it is
    // ignored, so a revoked bootstrap token can never come back.
    assert_eq!(
        bootstrap(&store, Some("a-configured-secret-1234")).unwrap(),
        None
    );
    let tokens: Vec<serde_json::Value> = store
        .list(sluice_runtime::api::store::Kind::Token, "")
        .unwrap();
    assert_eq!(tokens.len(), 1);
    let empty = tempfile::tempdir().unwrap();
    let store = Store::open(&sled::open(empty.path()).unwrap()).unwrap();
    assert_eq!(
        bootstrap(&store, Some("a-configured-secret-1234")).unwrap(),
        None,
        "a configured secret is never printed"
    );
    let tokens: Vec<serde_json::Value> = store
        .list(sluice_runtime::api::store::Kind::Token, "")
        .unwrap();
    assert_eq!(tokens.len(), 1);
}
