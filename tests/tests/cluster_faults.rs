//! A cluster survives its failures: `kill -9` of a node while clients send loses no
//! acknowledged event (the other nodes take over what it held once its acknowledgement wait
//! passes), and a NATS restart mid-stream is survived: ingestion answers 503 with
//! `Retry-After` while NATS is away, then recovers, and every acknowledged event arrives.

mod cluster_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_support::*;

/// A refused request's status and its `Retry-After`.
type Refusal = (u16, Option<String>);

/// Clients sending batches of 10 to `addresses` (one thread each) until `stop`: the ids of
/// every batch answered 200, and every other status seen (with its `Retry-After`).
struct Clients {
    acked: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<Vec<Refusal>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(addresses: &[String], key: &str, tag: &str) -> Clients {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = addresses
            .iter()
            .enumerate()
            .map(|(c, address)| {
                let (acked, refused, stop) = (acked.clone(), refused.clone(), stop.clone());
                let (address, auth, tag) = (address.clone(), basic(key), tag.to_string());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let ids: Vec<String> =
                            (0..10).map(|i| format!("{tag}-c{c}-b{n}-e{i}")).collect();
                        n += 1;
                        match call(&address, "POST", "/v1/batch", &auth, Some(&batch(&ids))) {
                            Some(r) if r.status == 200 => acked.lock().expect("lock").extend(ids),
                            Some(r) => {
                                let retry = r.headers.get("retry-after").cloned();
                                refused.lock().expect("lock").push((r.status, retry));
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            // A dead node: nothing was acknowledged.
                            None => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                })
            })
            .collect();
        Clients {
            acked,
            refused,
            stop,
            threads,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    fn finish(self) -> (Vec<String>, Vec<Refusal>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a client thread");
        }
        let acked = self.acked.lock().expect("lock").clone();
        let refused = self.refused.lock().expect("lock").clone();
        (acked, refused)
    }
}

#[test]
fn kill_9_of_a_node_loses_no_acknowledged_event() {
    let nats = nats_url();
    require_nats(&nats);
    let prefix = unique_prefix("kill");
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("a dir"))
        .collect();
    // A short acknowledgement wait, so the survivors take over the dead node's work soon.
    let a = start_node("a", dirs[0].path(), &nats, &prefix, 3);
    let b = start_node("b", dirs[1].path(), &nats, &prefix, 3);
    let mut c = start_node("c", dirs[2].path(), &nats, &prefix, 3);
    let (hook, seen) = receiver();
    let (source, key) = source_to(&a, "killed", &hook);
    for node in [&b, &c] {
        assert!(eventually(Duration::from_secs(1), || {
            api(node, "GET", &format!("/sources/{source}"), None).status == 200
        }));
    }

    let addresses = [&a, &b, &c].map(|n| n.address.clone());
    let clients = Clients::start(&addresses, &key, "kill");
    assert!(
        eventually(Duration::from_secs(30), || clients.acked() >= 300),
        "the cluster acknowledges events"
    );
    c.kill_9();
    let after = clients.acked();
    assert!(
        eventually(Duration::from_secs(30), || clients.acked() >= after + 200),
        "the surviving nodes keep acknowledging"
    );
    let (acked, _) = clients.finish();
    let missing = missing_after(&seen, &acked, Duration::from_secs(90));
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events were lost with node c: {:?}...",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let unique: HashSet<&String> = acked.iter().collect();
    eprintln!(
        "{} events acknowledged, all delivered after kill -9 of one node of three",
        unique.len()
    );
}

#[test]
fn a_nats_restart_mid_stream_is_survived() {
    let mut nats = OwnNats::start();
    let prefix = unique_prefix("restart");
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("a dir"))
        .collect();
    let a = start_node("a", dirs[0].path(), &nats.url(), &prefix, 5);
    let b = start_node("b", dirs[1].path(), &nats.url(), &prefix, 5);
    let (hook, seen) = receiver();
    let (source, key) = source_to(&a, "restarted", &hook);
    assert!(eventually(Duration::from_secs(1), || {
        api(&b, "GET", &format!("/sources/{source}"), None).status == 200
    }));

    let addresses = [&a, &b].map(|n| n.address.clone());
    let clients = Clients::start(&addresses, &key, "restart");
    assert!(eventually(Duration::from_secs(30), || clients.acked() >= 200));

    nats.stop();
    // While NATS is away, ingestion refuses with 503 and Retry-After (nothing acknowledged).
    let refusing = eventually(Duration::from_secs(15), || {
        clients
            .refused
            .lock()
            .expect("lock")
            .iter()
            .any(|(status, retry)| *status == 503 && retry.is_some())
    });
    assert!(
        refusing,
        "ingestion answers 503 with Retry-After while NATS is down"
    );
    let during = clients.acked();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        clients.acked(),
        during,
        "nothing is acknowledged while NATS is down"
    );

    nats.resume();
    assert!(
        eventually(Duration::from_secs(30), || clients.acked() >= during + 200),
        "ingestion recovers once NATS is back"
    );
    // The control plane works again too.
    let r = api(
        &b,
        "PATCH",
        &format!("/sources/{source}"),
        Some(&serde_json::json!({"name": "after"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (acked, refused) = clients.finish();
    let other: Vec<_> = refused.iter().filter(|(s, _)| *s != 503).collect();
    assert!(other.is_empty(), "only 503s while NATS was down: {other:?}");
    let missing = missing_after(&seen, &acked, Duration::from_secs(90));
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events never arrived after the NATS restart: {:?}...",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}
