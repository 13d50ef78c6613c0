//! The event log on a real NATS JetStream server, as two nodes see it: every record goes to
//! one node; positions are each node's own, so a stage reads, commits and replays as on the
//! segment log; a record a node fetched and never acknowledged goes to the other node once
//! the acknowledgement wait passes (a dead node's work); a record too large for NATS is
//! refused before anything is published.

mod cluster_support;

use std::collections::HashSet;
use std::time::Duration;

use cluster_support::{nats_url, require_nats, unique_prefix};
use sluice_runtime::cluster::{Cluster, ClusterConfig};
use sluice_runtime::log::{Bytes, EventLog, JetStreamLog, LogError};

async fn node(name: &str, prefix: &str) -> JetStreamLog {
    let cluster = Cluster::connect(ClusterConfig {
        url: nats_url(),
        prefix: prefix.to_string(),
        node: name.to_string(),
        ack_wait: Duration::from_secs(1),
    })
    .await
    .expect("connects");
    JetStreamLog::open(&cluster, "ingest", "pipeline")
        .await
        .expect("opens")
}

fn text(payload: &Bytes) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_shared_between_nodes_and_redelivered_when_a_node_drops_them() {
    require_nats(&nats_url());
    let prefix = unique_prefix("log");
    let a = node("a", &prefix).await;
    let b = node("b", &prefix).await;

    let records: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("r{i}"))).collect();
    let appended = a.append(records).await.expect("appended");
    assert_eq!(appended.positions.len(), 10);
    assert!(
        appended.positions.windows(2).all(|w| w[0] < w[1]),
        "stream sequences, in order: {:?}",
        appended.positions
    );

    // A takes four and processes them: read, replay from its committed position, commit.
    assert_eq!(a.position("pipeline").expect("a consumer"), 0);
    let first = a.read(0, 4, 1 << 20).await.expect("read");
    assert_eq!(first.len(), 4);
    assert_eq!(
        first.iter().map(|r| text(&r.payload)).collect::<Vec<_>>(),
        ["r0", "r1", "r2", "r3"]
    );
    assert_eq!(first[0].position, 0);
    assert_eq!(first[3].next, 4);
    let replayed = a
        .read(0, 16, 1 << 20)
        .await
        .expect("a replay of what it holds");
    assert_eq!(replayed, first);
    a.commit("pipeline", 2).await.expect("commit");
    assert_eq!(a.position("pipeline").expect("a consumer"), 2);
    assert!(matches!(
        a.read(1, 4, 1 << 20).await,
        Err(LogError::OutOfRange { .. })
    ));
    assert!(matches!(
        a.position("deliver"),
        Err(LogError::UnknownConsumer(_))
    ));

    // B gets the rest: no record goes to two nodes while they hold it.
    let mut on_b = HashSet::new();
    let mut at = 0;
    while on_b.len() < 6 {
        let records = b.read(at, 16, 1 << 20).await.expect("read");
        if records.is_empty() {
            b.wait_beyond(at).await.expect("waits for more");
            continue;
        }
        at = records.last().map_or(at, |r| r.next);
        on_b.extend(records.iter().map(|r| text(&r.payload)));
    }
    let expected: HashSet<String> = (4..10).map(|i| format!("r{i}")).collect();
    assert_eq!(on_b, expected);
    b.commit("pipeline", at).await.expect("commit");

    // A dies holding r2 and r3 (fetched, never acknowledged): they come to B.
    drop(a);
    let mut again = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while again.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redelivered: {again:?}"
        );
        let wait = tokio::time::timeout(Duration::from_secs(5), b.wait_beyond(at)).await;
        if wait.is_err() {
            continue;
        }
        let records = b.read(at, 16, 1 << 20).await.expect("read");
        at = records.last().map_or(at, |r| r.next);
        again.extend(records.iter().map(|r| text(&r.payload)));
    }
    assert_eq!(again, HashSet::from(["r2".to_string(), "r3".to_string()]));
    b.commit("pipeline", at).await.expect("commit");

    // A record over NATS's message size is refused whole.
    let big = Bytes::from(vec![b'x'; 2 << 20]);
    assert!(matches!(
        b.append(vec![big]).await,
        Err(LogError::TooLarge { .. })
    ));
}
