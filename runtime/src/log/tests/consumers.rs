//! Consumers: committed positions survive reopening, segments go only when every consumer has
//! passed them, and positions outside the log are typed errors.

use super::super::LogError;
use super::*;

/// A log with several segments of ten 100-byte records each; returns the segment starts.
async fn segmented(log: &SegmentLog) -> Vec<u64> {
    append_groups(log, (0..40).map(|i| vec![payload(i, 92)]).collect()).await;
    segment_files(log.dir())
        .iter()
        .map(|f| {
            f.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .expect("start")
        })
        .collect()
}

#[tokio::test]
async fn commits_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(1000, &["pipeline", "delivery"]);
    let log = open(dir.path(), cfg.clone());
    assert_eq!(
        log.position("pipeline").expect("registered"),
        0,
        "a new consumer starts at the first record"
    );
    let records = log
        .append((0..3).map(|i| payload(i, 10)).collect())
        .await
        .expect("append");
    log.commit("pipeline", records.positions[2])
        .await
        .expect("commit");
    log.commit("delivery", records.positions[1])
        .await
        .expect("commit");
    drop(log);

    let log = open(dir.path(), cfg);
    assert_eq!(
        log.position("pipeline").expect("pipeline"),
        records.positions[2],
        "exactly what was passed"
    );
    assert_eq!(
        log.position("delivery").expect("delivery"),
        records.positions[1]
    );
}

#[tokio::test]
async fn segments_are_deleted_only_once_every_consumer_passed_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config(1000, &["a", "b"]));
    let starts = segmented(&log).await;
    assert!(starts.len() >= 4, "{starts:?}");

    log.commit("a", log.end()).await.expect("a is done");
    assert_eq!(
        segment_files(dir.path()).len(),
        starts.len(),
        "b has passed nothing yet"
    );
    assert_eq!(log.stats().segments_deleted, 0);

    log.commit("b", starts[2] + 100)
        .await
        .expect("b is inside the third segment");
    assert_eq!(log.first(), starts[2]);
    assert_eq!(segment_files(dir.path()).len(), starts.len() - 2);
    assert_eq!(log.stats().segments_deleted, 2);

    let gone = log.read_blocking(0, 1, 1 << 20);
    assert!(
        matches!(gone, Err(LogError::OutOfRange { position: 0, first, .. }) if first == starts[2]),
        "{gone:?}"
    );
    let behind = log.commit("a", starts[1]).await;
    assert!(
        matches!(behind, Err(LogError::OutOfRange { .. })),
        "{behind:?}"
    );
    assert_eq!(
        log.read_blocking(starts[2], 1, 1 << 20).expect("retained")[0].position,
        starts[2]
    );

    log.commit("b", log.end()).await.expect("b is done");
    let left = segment_files(dir.path());
    assert_eq!(left.len(), 1, "only the active segment stays: {left:?}");
    let end = log.end();
    let appended = log
        .append(vec![payload(1, 10)])
        .await
        .expect("append after deletions");
    assert_eq!(appended.positions[0], end);
    assert_eq!(
        log.read_blocking(end, 1, 1 << 20).expect("read")[0].payload,
        payload(1, 10)
    );
    drop(log);

    // The full active segment was sealed by that append; both consumers had passed it, so
    // opening deletes it.
    let log = open(dir.path(), config(1000, &["a", "b"]));
    assert_eq!(log.first(), end);
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(log.position("a").expect("a"), end);
}

#[tokio::test]
async fn with_no_consumers_nothing_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config(1000, &[]));
    let starts = segmented(&log).await;
    drop(log);
    let log = open(dir.path(), config(1000, &[]));
    assert_eq!(segment_files(dir.path()).len(), starts.len());
    assert_eq!(log.first(), 0);
}

#[tokio::test]
async fn consumers_registered_later_start_at_the_first_retained_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let starts = {
        let log = open(dir.path(), config(1000, &["a"]));
        let starts = segmented(&log).await;
        log.commit("a", starts[1]).await.expect("commit");
        starts
    };
    let log = open(dir.path(), config(1000, &["a", "late"]));
    assert_eq!(log.position("late").expect("late"), starts[1]);
}

#[tokio::test]
async fn unknown_invalid_and_out_of_range_commits_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = SegmentLog::open(dir.path(), config(1000, &["../escape"]));
    assert!(
        matches!(bad, Err(LogError::InvalidConsumer(_))),
        "{:?}",
        bad.err()
    );
    let log = open(dir.path(), config(1000, &["a"]));
    let unknown = log.commit("b", 0).await;
    assert!(
        matches!(unknown, Err(LogError::UnknownConsumer(ref n)) if n == "b"),
        "{unknown:?}"
    );
    assert!(matches!(
        log.position("b"),
        Err(LogError::UnknownConsumer(_))
    ));
    let beyond = log.commit("a", log.end() + 1).await;
    assert!(
        matches!(beyond, Err(LogError::OutOfRange { .. })),
        "{beyond:?}"
    );
    assert_eq!(
        log.position("a").expect("a"),
        0,
        "a refused commit changes nothing"
    );
}

#[tokio::test]
async fn an_unreadable_consumer_file_replays_from_the_first_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), config(1000, &["a"]));
        let appended = log
            .append(vec![payload(1, 10), payload(2, 10)])
            .await
            .expect("append");
        log.commit("a", appended.next).await.expect("commit");
    }
    // A crash after the rename but before its data reached the disk leaves an empty file.
    std::fs::write(dir.path().join("a.consumer"), b"").expect("truncate");
    let log = open(dir.path(), config(1000, &["a"]));
    assert_eq!(log.position("a").expect("a"), 0, "replay, never skip");
}
