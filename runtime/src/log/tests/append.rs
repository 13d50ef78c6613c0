//! Appends and reads: round trips across segments, group commit under concurrency, reopening,
//! waiting for new records, read limits and typed errors.

use std::sync::Arc;

use super::super::{LogError, segment::HEADER};
use super::*;

#[tokio::test]
async fn round_trip_across_rotation_keeps_each_append_in_one_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config(1000, &[]));
    let groups: Vec<Vec<Bytes>> = (0..40u64)
        .map(|g| {
            (0..1 + g % 3)
                .map(|r| payload(g * 10 + r, 10 + (g * 37 + r * 11) as usize % 200))
                .collect()
        })
        .collect();
    let mut spans = Vec::new();
    let mut written = Vec::new();
    for group in groups {
        let appended = log.append(group.clone()).await.expect("append");
        spans.push((appended.positions[0], appended.next));
        written.extend(appended.positions.into_iter().zip(group));
    }

    let read = read_all(&log);
    let expected: Vec<(u64, Bytes)> = read
        .iter()
        .map(|r| (r.position, r.payload.clone()))
        .collect();
    assert_eq!(expected, written);
    for pair in read.windows(2) {
        assert_eq!(pair[0].next, pair[1].position, "records are back to back");
    }
    assert_eq!(read.last().expect("records").next, log.end());

    let files = segment_files(dir.path());
    assert!(files.len() > 3, "the log rotated: {files:?}");
    let starts: Vec<u64> = files
        .iter()
        .map(|f| {
            f.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .expect("start")
        })
        .collect();
    for (first, next) in spans {
        let segment = starts.iter().rev().find(|s| **s <= first).expect("segment");
        let segment_end = starts
            .iter()
            .find(|s| **s > *segment)
            .copied()
            .unwrap_or(u64::MAX);
        assert!(
            next <= segment_end,
            "append {first}..{next} split at {segment_end}"
        );
    }
    for file in &files {
        let len = std::fs::metadata(file).expect("stat").len();
        assert!(len <= 1000, "{file:?} is {len} bytes, over segment_bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_syncs_and_are_readable_when_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(dir.path(), config(64 << 10, &[])));
    let (tasks, rounds) = (32u64, 20u64);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for round in 0..rounds {
                let seed = task * 1000 + round;
                let record = payload(seed, 100 + (seed % 300) as usize);
                let appended = log.append(vec![record.clone()]).await.expect("append");
                let position = appended.positions[0];
                // Acknowledged means durable means readable, right now.
                let read = log.read(position, 1, 1 << 16).await.expect("read");
                assert_eq!(read[0].payload, record);
                assert_eq!(read[0].next, appended.next);
                seen.push(position);
            }
            seen
        }));
    }
    let mut positions = Vec::new();
    for handle in handles {
        positions.extend(handle.await.expect("task"));
    }
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(
        positions.len() as u64,
        tasks * rounds,
        "every append got its own position"
    );
    let stats = log.stats();
    assert_eq!(stats.appends, tasks * rounds);
    assert_eq!(stats.records, tasks * rounds);
    assert!(
        stats.syncs < stats.appends,
        "concurrent appends shared syncs: {stats:?}"
    );
}

#[tokio::test]
async fn appends_issued_together_share_one_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config(64 << 20, &[]));
    let appends = (0..100u64).map(|i| log.append(vec![payload(i, 64)]));
    let results = futures_util::future::join_all(appends).await;
    for (i, result) in results.into_iter().enumerate() {
        let appended = result.expect("append");
        let read = log
            .read_blocking(appended.positions[0], 1, 1024)
            .expect("read");
        assert_eq!(read[0].payload, payload(i as u64, 64));
    }
    let stats = log.stats();
    assert_eq!(stats.appends, 100);
    assert!(
        stats.syncs <= 10,
        "100 queued appends took {} syncs",
        stats.syncs
    );
}

#[tokio::test]
async fn reopening_recovers_everything_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups: Vec<Vec<Bytes>> = (0..30).map(|i| vec![payload(i, 150)]).collect();
    let (written, end) = {
        let log = open(dir.path(), config(1024, &[]));
        let written = append_groups(&log, groups).await;
        (written, log.end())
    };
    let log = open(dir.path(), config(1024, &[]));
    assert_eq!(log.end(), end);
    let read: Vec<(u64, Bytes)> = read_all(&log)
        .into_iter()
        .map(|r| (r.position, r.payload))
        .collect();
    assert_eq!(read, written);
    let more = log
        .append(vec![payload(99, 10)])
        .await
        .expect("append after reopen");
    assert_eq!(more.positions, vec![end]);
    assert_eq!(
        log.read_blocking(end, 10, 1 << 20).expect("read")[0].payload,
        payload(99, 10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_beyond_wakes_when_a_record_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Behind the trait object, as the data plane holds it.
    let log: Arc<dyn EventLog> = Arc::new(open(dir.path(), config(1 << 20, &[])));
    let end = log.end();
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_beyond(end).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "nothing was appended yet");
    let appended = log.append(vec![payload(1, 20)]).await.expect("append");
    let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task")
        .expect("open log");
    assert_eq!(woke, appended.next);
    // Already past: resolves at once.
    assert_eq!(log.wait_beyond(end).await.expect("past"), appended.next);
}

#[tokio::test]
async fn read_limits_and_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config(1 << 20, &[]));
    let small = log
        .append((0..5).map(|i| payload(i, 100)).collect())
        .await
        .expect("append");
    let big = log.append(vec![payload(9, 5000)]).await.expect("append");

    let two = log.read_blocking(0, 2, 1 << 20).expect("read");
    assert_eq!(two.len(), 2, "max_records");
    let by_bytes = log.read_blocking(0, 100, 250).expect("read");
    assert_eq!(by_bytes.len(), 2, "max_bytes 250 holds two 108-byte frames");
    let whole = log.read_blocking(big.positions[0], 10, 10).expect("read");
    assert_eq!(whole.len(), 1, "a first record over max_bytes comes whole");
    assert_eq!(whole[0].payload, payload(9, 5000));
    let after_small = log
        .read_blocking(small.positions[4], 10, 200)
        .expect("read");
    assert_eq!(
        after_small.len(),
        1,
        "stops before a record that does not fit"
    );

    assert!(
        log.read_blocking(log.end(), 10, 1 << 20)
            .expect("at end")
            .is_empty()
    );
    let beyond = log.read_blocking(log.end() + 1, 10, 1 << 20);
    assert!(
        matches!(beyond, Err(LogError::OutOfRange { .. })),
        "{beyond:?}"
    );
    let mid = log.read_blocking(small.positions[1] + 3, 1, 1 << 20);
    assert!(matches!(mid, Err(LogError::Corrupt { .. })), "{mid:?}");
    assert_eq!(
        log.read_blocking(small.positions[1], 1, 1).expect("read")[0].position,
        108
    );
    assert_eq!(HEADER, 8);
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config(1 << 20, &[]));
    let second = SegmentLog::open(dir.path(), config(1 << 20, &[]));
    assert!(
        matches!(second, Err(LogError::Locked(_))),
        "{:?}",
        second.err()
    );
    drop(log);
    open(dir.path(), config(1 << 20, &[]));
}
