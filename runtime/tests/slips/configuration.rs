//! Configuration changes that used to lose events or mislead: deleting a destination with
//! events queued (2), settings that could only fail at delivery (3), names where ids go (4),
//! restore and rollback (5), the CLI's verbs (6), never-deployed functions (13).

use std::net::TcpListener;

use serde_json::{Value, json};

use crate::http::call;
use crate::support::{Cli, stop};
use crate::{TOKEN, events, eventually, json_lines, serve, text};

#[test]
fn deleting_a_destination_with_queued_events_is_refused_unless_forced_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (source, key) = cli.source("web");
    // A receiver that is down: every delivery waits for a retry.
    let down = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("url=http://{}/hook", down.local_addr().unwrap());
    drop(down);
    let created = cli.json(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "webhook",
        "--name",
        "down",
        "--setting",
        &url,
    ]);
    let destination = created["id"].as_str().unwrap().to_string();
    let file = events(dir.path(), "events.jsonl", "q", 20);
    cli.ok(&["send", "--write-key", &key, file.to_str().unwrap()]);

    // Once each has failed its first attempt (events still in the pipeline are not counted).
    eventually("20 deliveries waiting for a retry", || {
        let metrics = call(
            &server.address,
            "GET",
            &format!("/destinations/{destination}/delivery-metrics"),
            TOKEN,
            None,
        )
        .json();
        (metrics["data"]["counts"]["retried"].as_u64() >= Some(20)).then_some(())
    });
    // Refused while they are queued, naming how many and the fix; nothing is deleted.
    let out = cli.run(&["destinations", "delete", "down"]);
    assert!(!out.status.success(), "deleted with events queued");
    let refusal = text(&out.stderr);
    assert!(refusal.contains("20 events queued"), "{refusal}");
    assert!(
        refusal.contains("409") && refusal.contains("--force"),
        "{refusal}"
    );
    assert_eq!(
        cli.json(&["destinations", "get", &destination])["id"],
        destination
    );

    // Forced: the events become the deleted destination's dead letters, counted and audited.
    let out = cli.ok(&["destinations", "delete", "down", "--force"]);
    assert!(
        out.contains("its 20 queued events are dead letters now"),
        "{out}"
    );
    assert!(
        cli.run(&["destinations", "get", &destination])
            .status
            .code()
            != Some(0)
    );
    let letters = cli.json(&["destinations", "failed-events", &destination]);
    let letters = letters.as_array().expect("a list");
    assert_eq!(letters.len(), 20, "{letters:?}");
    assert!(
        letters[0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("deleted (forced)")),
        "{}",
        letters[0]
    );
    let audit = call(
        &server.address,
        "GET",
        &format!("/audit-events?resourceId={destination}"),
        TOKEN,
        None,
    )
    .json();
    let dead_lettered = audit["data"]["events"]
        .as_array()
        .expect("audit events")
        .iter()
        .find(|e| e["type"] == "Destination Events Dead-Lettered")
        .cloned()
        .unwrap_or_else(|| panic!("an audit event for the dead letters: {audit}"));
    assert!(
        dead_lettered["resourceName"]
            .as_str()
            .is_some_and(|n| n.contains("20 queued events")),
        "{dead_lettered}"
    );
    let metrics = crate::support::get(&server.address, "/metrics", None).1;
    let failed = metrics
        .lines()
        .find(|l| {
            l.starts_with("sluice_events_failed_total")
                && l.contains(&format!("destination_id=\"{destination}\""))
                && l.contains(&format!("source_id=\"{source}\""))
        })
        .unwrap_or_else(|| panic!("a failed counter for the destination:\n{metrics}"));
    assert!(failed.ends_with(" 20"), "{failed}");
    stop(server);
}

#[test]
fn file_paths_and_webhook_urls_are_checked_when_the_destination_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    cli.source("web");
    let create = |setting: &str, kind: &str| {
        cli.fails(&[
            "destinations",
            "create",
            "--source",
            "web",
            "--type",
            kind,
            "--setting",
            setting,
        ])
    };
    for (setting, kind, field, rule) in [
        (
            "path=../../escape.jsonl",
            "file",
            "settings.path",
            "contains `..`",
        ),
        (
            "path=/tmp/escape.jsonl",
            "file",
            "settings.path",
            "is absolute",
        ),
        (
            "url=localhost:9000/hook",
            "webhook",
            "settings.url",
            "http:// or https://",
        ),
    ] {
        let err = create(setting, kind);
        assert!(
            err.contains("422") && err.contains(&format!("field {field}")) && err.contains(rule),
            "{setting}: {err}"
        );
    }
    assert_eq!(cli.json(&["destinations", "list"]), json!([]));
    stop(server);
}

#[test]
fn sources_destinations_and_functions_are_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (source, _) = cli.source("web");
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "file",
        "--name",
        "archive",
        "--setting",
        "path=web.jsonl",
    ]);
    let listed = cli.json(&["destinations", "list", "--source", "web"]);
    assert_eq!(listed[0]["sourceId"], source.as_str(), "{listed}");
    assert_eq!(
        cli.json(&["destinations", "get", "archive"])["name"],
        "archive"
    );
    assert_eq!(cli.json(&["sources", "get", "web"])["id"], source.as_str());

    // An unknown name is an error naming what was looked for, not an empty table.
    let err = cli.fails(&["destinations", "list", "--source", "mobile"]);
    assert!(
        err.contains("no source with id or slug or name `mobile`")
            && err.contains("sluice sources list"),
        "{err}"
    );
    let err = cli.fails(&["functions", "get", "nope"]);
    assert!(err.contains("no function with id or name `nope`"), "{err}");
    stop(server);
}

/// A JavaScript function that marks each track event with `version`.
fn marker(dir: &std::path::Path, version: u32) -> String {
    let file = dir.join(format!("marker-v{version}.js"));
    std::fs::write(
        &file,
        format!(
            "async function onTrack(event, settings) {{ event.properties = event.properties || {{}}; \
             event.properties.version = {version}; return event; }}\n"
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn rollback_restores_and_deploys_and_plain_restore_leaves_the_deployed_version_running() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (_, key) = cli.source("web");
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "file",
        "--setting",
        "path=out.jsonl",
    ]);
    let v1 = marker(dir.path(), 1);
    let v2 = marker(dir.path(), 2);
    cli.ok(&[
        "functions",
        "deploy",
        &v1,
        "--name",
        "marker",
        "--attach",
        "web",
    ]);
    let second = cli.json(&["functions", "deploy", &v2, "--name", "marker"]);
    let function = second["id"].as_str().unwrap().to_string();

    let rolled = cli.ok(&["functions", "rollback", "marker"]);
    assert!(rolled.contains("runs the code of version"), "{rolled}");
    let versions = cli.json(&["functions", "versions", "marker"]);
    let versions = versions.as_array().unwrap();
    assert_eq!(
        versions.len(),
        3,
        "v1, v2 and the restored v1: {versions:?}"
    );
    assert_eq!(versions[2]["isDeployed"], true);

    let out = dir.path().join("data/files/out.jsonl");
    let file = events(dir.path(), "one.jsonl", "r", 1);
    cli.ok(&["send", "--write-key", &key, file.to_str().unwrap()]);
    let delivered = eventually("the event delivered", || {
        Some(json_lines(&out)).filter(|l| !l.is_empty())
    });
    assert_eq!(delivered[0]["properties"]["version"], 1, "v1's code runs");

    // The API's restore without `deploy`: a new latest version, the deployed one unchanged.
    let v2_id = versions[1]["id"].as_str().unwrap();
    let restored = call(
        &server.address,
        "POST",
        &format!("/functions/{function}/versions"),
        TOKEN,
        Some(&json!({"versionId": v2_id}).to_string()),
    )
    .json();
    let restored = &restored["data"]["function"];
    assert_eq!(
        restored["deployedVersionId"], versions[2]["id"],
        "{restored}"
    );
    assert_ne!(restored["versionId"], restored["deployedVersionId"]);
    stop(server);
}

#[test]
fn the_cli_updates_detaches_deletes_and_manages_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (_, key) = cli.source("web");
    let code = dir.path().join("tagger.js");
    std::fs::write(
        &code,
        "async function onTrack(event, settings) { event.properties.tag = settings.tag; return event; }\n",
    )
    .unwrap();
    let code = code.to_str().unwrap();
    let deploy = |settings: &str| {
        cli.run(&[
            "functions",
            "deploy",
            code,
            "--name",
            "tagger",
            "--setting",
            "tag:STRING",
            "--attach",
            "web",
            "--instance-settings",
            settings,
        ])
    };
    let instances = || {
        call(
            &server.address,
            "GET",
            "/insert-function-instances",
            TOKEN,
            None,
        )
        .json()["data"]["insertFunctionInstances"]
            .clone()
    };

    // A failed attach undoes the deployment of a new function.
    let failed = deploy(r#"{"unknown": 1}"#);
    assert!(!failed.status.success());
    let err = text(&failed.stderr);
    assert!(
        err.contains("attaching to") && err.contains("was deleted"),
        "{err}"
    );
    assert_eq!(cli.json(&["functions", "list"]), json!([]));

    // Deployed with settings; deployed again with new ones: the instance has them.
    assert!(deploy(r#"{"tag": "a"}"#).status.success());
    let again = deploy(r#"{"tag": "b"}"#);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("has the new settings"));
    let attached = instances();
    assert_eq!(attached.as_array().map(Vec::len), Some(1), "{attached}");
    assert_eq!(attached[0]["settings"]["tag"], "b", "{attached}");

    // Delete is refused while attached; detach, then delete.
    let err = cli.fails(&["functions", "delete", "tagger"]);
    assert!(err.contains("409"), "{err}");
    cli.ok(&["functions", "detach", "tagger", "--from", "web"]);
    assert_eq!(instances(), json!([]));
    let err = cli.fails(&["functions", "detach", "tagger", "--from", "web"]);
    assert!(err.contains("not attached"), "{err}");
    assert!(
        cli.ok(&["functions", "delete", "tagger"])
            .contains("deleted function")
    );

    // Destinations: update a setting, disable, enable.
    cli.ok(&[
        "destinations",
        "create",
        "--source",
        "web",
        "--type",
        "file",
        "--name",
        "f",
        "--setting",
        "path=a.jsonl",
    ]);
    let updated = cli.json(&["destinations", "update", "f", "--setting", "path=b.jsonl"]);
    assert_eq!(updated["settings"]["path"], "b.jsonl");
    assert_eq!(
        cli.json(&["destinations", "disable", "f"])["enabled"],
        false
    );
    assert_eq!(cli.json(&["destinations", "enable", "f"])["enabled"], true);

    // Sources: disabled, its write key is refused and `send` says so.
    assert_eq!(cli.json(&["sources", "disable", "web"])["enabled"], false);
    let file = crate::events(dir.path(), "e.jsonl", "d", 1);
    let err = cli.fails(&["send", "--write-key", &key, file.to_str().unwrap()]);
    assert!(err.contains("403"), "{err}");
    assert_eq!(cli.json(&["sources", "enable", "web"])["enabled"], true);

    // Tracking plans: rules from a file, shown by `get`, removed by type and key.
    cli.ok(&["tracking-plans", "create", "Checkout"]);
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        json!([{"type": "TRACK", "key": "Order Completed", "version": 1, "jsonSchema":
            {"type": "object", "properties": {"properties": {"type": "object",
             "required": ["total"]}}}}])
        .to_string(),
    )
    .unwrap();
    cli.ok(&[
        "tracking-plans",
        "set-rules",
        "Checkout",
        "--file",
        rules.to_str().unwrap(),
    ]);
    let shown = cli.ok(&["tracking-plans", "get", "Checkout"]);
    assert!(
        shown.contains("rules:") && shown.contains("Order Completed") && shown.contains("total"),
        "{shown}"
    );
    cli.ok(&["tracking-plans", "connect", "Checkout", "--source", "web"]);
    cli.ok(&[
        "tracking-plans",
        "remove-rule",
        "Checkout",
        "--type",
        "track",
        "--key",
        "Order Completed",
    ]);
    assert_eq!(
        cli.json(&["tracking-plans", "rules", "Checkout"]),
        json!([])
    );
    stop(server);
}

#[test]
fn an_instance_of_a_function_never_deployed_is_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[]);
    let cli = Cli::of(&server, TOKEN);
    let (source, _) = cli.source("web");
    let body = json!({"displayName": "f", "resourceType": "INSERT_SOURCE",
        "code": "async function onTrack(event) { return event; }"});
    let created = call(
        &server.address,
        "POST",
        "/functions",
        TOKEN,
        Some(&body.to_string()),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let function = created.json()["data"]["function"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let attach = json!({"functionId": function, "integrationId": source, "settings": {}});
    let refused = call(
        &server.address,
        "POST",
        "/insert-function-instances",
        TOKEN,
        Some(&attach.to_string()),
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    let error = &refused.json()["errors"][0];
    assert_eq!(error["field"], "functionId");
    assert!(
        error["message"].as_str().is_some_and(
            |m| m.contains("never been deployed") && m.contains("sluice functions deploy")
        ),
        "{error}"
    );
    let deployed = call(
        &server.address,
        "POST",
        &format!("/functions/{function}/deploy"),
        TOKEN,
        Some("{}"),
    );
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    let attached = call(
        &server.address,
        "POST",
        "/insert-function-instances",
        TOKEN,
        Some(&attach.to_string()),
    );
    assert_eq!(attached.status, 201, "{}", attached.body);
    let _: Value = attached.json();
    stop(server);
}
