//! A cluster of three real `sluice serve --cluster` processes on one real NATS server: the
//! control plane is shared (a source, a JavaScript function and a destination created on one
//! node are used by the others within a second), events sent to every node are each
//! delivered once, and two nodes changing the same record conflict visibly (409), never
//! silently.

mod cluster_support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cluster_support::*;
use serde_json::{Value, json};

const FUNCTION: &str = r#"
async function onTrack(event, settings) {
  event.properties = event.properties || {};
  event.properties.stamped = settings.stamp;
  return event;
}
"#;

#[test]
fn three_nodes_share_the_control_plane_and_deliver_each_event_once() {
    let nats = nats_url();
    require_nats(&nats);
    let prefix = unique_prefix("share");
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("a dir"))
        .collect();
    let a = start_node("a", dirs[0].path(), &nats, &prefix, 30);
    let b = start_node("b", dirs[1].path(), &nats, &prefix, 30);
    let c = start_node("c", dirs[2].path(), &nats, &prefix, 30);

    // Every answer names its node.
    let r = api(&b, "GET", "/sources", None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.headers.get("x-sluice-node").map(String::as_str),
        Some("b")
    );

    // Created on A ...
    let (hook, seen) = receiver();
    let (source, key) = source_to(&a, "shared", &hook);
    let r = api(
        &a,
        "POST",
        "/functions",
        Some(
            &json!({"displayName": "stamp", "resourceType": "INSERT_SOURCE", "code": FUNCTION,
                     "settings": [{"name": "stamp", "type": "STRING"}]}),
        ),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let function = r.body["data"]["function"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let r = api(
        &a,
        "POST",
        &format!("/functions/{function}/deploy"),
        Some(&json!({})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = api(
        &a,
        "POST",
        "/insert-function-instances",
        Some(
            &json!({"functionId": function, "integrationId": source, "settings": {"stamp": "on"}}),
        ),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let created = Instant::now();

    // ... is on B and C within a second.
    for node in [&b, &c] {
        let visible = eventually(Duration::from_secs(1), || {
            let instances = api(node, "GET", "/insert-function-instances", None);
            api(node, "GET", &format!("/sources/{source}"), None).status == 200
                && instances.body["data"]["insertFunctionInstances"]
                    .as_array()
                    .is_some_and(|l| l.len() == 1)
        });
        assert!(
            visible,
            "node {} sees A's source and instance within a second of their creation ({:?} ago)",
            node.name,
            created.elapsed()
        );
    }

    // Events sent to all three nodes, with the write key created on A.
    let nodes = [&a, &b, &c];
    let mut sent = Vec::new();
    for n in 0..45 {
        let ids: Vec<String> = (0..4).map(|i| format!("share-{n}-{i}")).collect();
        let node = nodes[n % 3];
        let r = call(
            &node.address,
            "POST",
            "/v1/batch",
            &basic(&key),
            Some(&batch(&ids)),
        )
        .expect("the node answers");
        assert_eq!(r.status, 200, "node {}: {:?}", node.name, r.body);
        sent.extend(ids);
    }
    let missing = missing_after(&seen, &sent, Duration::from_secs(60));
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    // Nothing more arrives late: each event was delivered exactly once.
    std::thread::sleep(Duration::from_secs(2));
    let seen = seen.lock().expect("lock");
    for id in &sent {
        assert_eq!(seen.times.get(id), Some(&1), "{id} delivered once");
        assert_eq!(
            seen.events[id]["properties"]["stamped"], "on",
            "{id} went through the function, whichever node ran it"
        );
    }
    assert_eq!(seen.times.len(), sent.len(), "nothing else was delivered");
}

#[test]
fn two_nodes_changing_one_record_conflict_visibly() {
    let nats = nats_url();
    require_nats(&nats);
    let prefix = unique_prefix("conflict");
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("a dir"))
        .collect();
    let a = start_node("a", dirs[0].path(), &nats, &prefix, 30);
    let b = start_node("b", dirs[1].path(), &nats, &prefix, 30);
    let (hook, _seen) = receiver();
    let (source, _) = source_to(&a, "contended", &hook);
    assert!(eventually(Duration::from_secs(1), || {
        api(&b, "GET", &format!("/sources/{source}"), None).status == 200
    }));

    // Both nodes rename the source at the same moments, many times.
    let mut conflicts = Vec::new();
    let mut applied: Vec<String> = Vec::new();
    for round in 0..10 {
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [&a, &b]
            .iter()
            .map(|node| {
                let (address, name, start, source) = (
                    node.address.clone(),
                    node.name.clone(),
                    start.clone(),
                    source.clone(),
                );
                std::thread::spawn(move || {
                    start.wait();
                    (0..8)
                        .map(|i| {
                            let new = format!("{name}-{round}-{i}");
                            let r = call(
                                &address,
                                "PATCH",
                                &format!("/sources/{source}"),
                                &format!("Bearer {TOKEN}"),
                                Some(&json!({"name": new})),
                            )
                            .expect("the node answers");
                            (new, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for thread in threads {
            for (name, reply) in thread.join().expect("a client thread") {
                match reply.status {
                    200 => applied.push(name),
                    409 => conflicts.push(reply.body),
                    other => panic!("a change answered {other}: {:?}", reply.body),
                }
            }
        }
        if !conflicts.is_empty() && round >= 2 {
            break;
        }
    }
    assert!(
        !conflicts.is_empty(),
        "concurrent changes of one record on two nodes conflicted at least once"
    );
    for body in &conflicts {
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert_eq!(body["errors"][0]["type"], "conflict", "{body}");
        assert!(
            message.contains(&format!("source `{source}`"))
                && message.contains("changed on another node"),
            "the conflict names the record: {message}"
        );
    }

    // Both nodes agree on the outcome, which is one of the accepted changes.
    let name_on = |node: &Node| -> Value {
        api(node, "GET", &format!("/sources/{source}"), None).body["data"]["source"]["name"].clone()
    };
    assert!(eventually(Duration::from_secs(1), || name_on(&a) == name_on(&b)));
    let last = name_on(&a);
    assert!(
        applied.iter().any(|n| last == n.as_str()),
        "{last} is an accepted change"
    );
    // Every accepted change is in the audit trail, and no refused one.
    let audit = api(
        &b,
        "GET",
        &format!("/audit-events?resourceId={source}&pagination.count=1000"),
        None,
    );
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let modified = audit.body["data"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["resourceId"] == source.as_str() && e["type"] == "Source Modified")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        modified,
        applied.len(),
        "one audit event per accepted change ({} refused)",
        conflicts.len()
    );
}
