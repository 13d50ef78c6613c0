//! Deduplication through its API, across reopenings of its directory (a restart).

use super::*;
use crate::dataplane::event::EventType;

const DAY: Duration = Duration::from_secs(86_400);

fn events(ids: &[&str]) -> Vec<Event> {
    ids.iter()
        .map(|id| Event {
            message_id: (*id).to_string(),
            kind: EventType::Track,
            json: format!(r#"{{"messageId":"{id}"}}"#).into(),
        })
        .collect()
}

fn fresh_ids(d: &Dedup, source: &str, ids: &[&str]) -> (Vec<String>, Claim) {
    let (fresh, claim) = d.fresh(source, events(ids));
    (fresh.into_iter().map(|e| e.message_id).collect(), claim)
}

#[test]
fn ids_are_new_once_per_source_including_within_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = Dedup::open(dir.path(), DAY, 1_000).unwrap();
    let (fresh, _) = fresh_ids(&d, "s", &["a", "b", "a"]);
    assert_eq!(fresh, ["a", "b"]);
    let (fresh, _) = fresh_ids(&d, "s", &["a", "c"]);
    assert_eq!(fresh, ["c"]);
    let (fresh, _) = fresh_ids(&d, "t", &["a"]);
    assert_eq!(fresh, ["a"], "another source's ids are its own");
}

#[test]
fn committed_ids_survive_a_restart_and_claimed_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    {
        let d = Dedup::open(dir.path(), DAY, 1_000).unwrap();
        let (_, stored) = fresh_ids(&d, "s", &["stored-1", "stored-2"]);
        d.commit(&stored).unwrap();
        // Claimed, but the process died before its record was stored.
        let _ = fresh_ids(&d, "s", &["in-flight"]);
    }
    let d = Dedup::open(dir.path(), DAY, 1_000).unwrap();
    let (fresh, _) = fresh_ids(&d, "s", &["stored-1", "stored-2", "in-flight"]);
    assert_eq!(fresh, ["in-flight"]);
}

#[test]
fn a_request_that_was_not_stored_is_not_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let d = Dedup::open(dir.path(), DAY, 1_000).unwrap();
    let (_, claim) = fresh_ids(&d, "s", &["a", "b"]);
    d.forget(claim);
    let (fresh, _) = fresh_ids(&d, "s", &["a", "b"]);
    assert_eq!(fresh, ["a", "b"]);
}

#[test]
fn a_zero_window_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Dedup::open(dir.path(), Duration::ZERO, 1_000).unwrap();
    let (_, claim) = fresh_ids(&d, "s", &["a"]);
    d.commit(&claim).unwrap();
    let (fresh, _) = fresh_ids(&d, "s", &["a"]);
    assert_eq!(fresh, ["a"]);
}

#[test]
fn expired_generations_leave_memory_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let window = Duration::from_millis(80);
    let d = Dedup::open(dir.path(), window, 1_000).unwrap();
    let (_, claim) = fresh_ids(&d, "s", &["a"]);
    d.commit(&claim).unwrap();
    assert_eq!(d.expire().unwrap(), 0);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(d.expire().unwrap(), 1, "the generation's file is deleted");
    let (fresh, _) = fresh_ids(&d, "s", &["a"]);
    assert_eq!(fresh, ["a"]);
    // Nothing of it comes back after a restart.
    drop(d);
    std::thread::sleep(Duration::from_millis(120));
    let d = Dedup::open(dir.path(), window, 1_000).unwrap();
    let (fresh, _) = fresh_ids(&d, "s", &["a"]);
    assert_eq!(fresh, ["a"]);
}

#[test]
fn the_key_is_kept_and_a_damaged_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let first = Dedup::open(dir.path(), DAY, 10).unwrap().key;
    assert_eq!(Dedup::open(dir.path(), DAY, 10).unwrap().key, first);
    std::fs::write(dir.path().join("key"), b"short").unwrap();
    let e = Dedup::open(dir.path(), DAY, 10).err().unwrap().to_string();
    assert!(e.contains("key") && e.contains("32 bytes"), "{e}");
}
