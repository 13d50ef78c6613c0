//! Recovery at open: torn and corrupt tails are cut at the last whole record, random crash
//! points leave a prefix of whole records, sealed segments are checked when read.

use super::super::LogError;
use super::*;

/// A log of three segments (six, six and three records), the last record `last_len` bytes
/// long; returns what was written and the last segment's file.
async fn written_log(dir: &Path, last_len: usize) -> (Vec<(u64, Bytes)>, PathBuf) {
    let log = SegmentLog::open(dir, config(600, &[])).expect("open");
    let mut groups: Vec<Vec<Bytes>> = (0..14).map(|i| vec![payload(i, 90)]).collect();
    groups.push(vec![payload(100, last_len)]);
    let written = append_groups(&log, groups).await;
    drop(log);
    let files = segment_files(dir);
    assert!(files.len() >= 2, "the tail is not in the first segment");
    (written, files.last().expect("segment").clone())
}

/// Reopens `dir` and checks that exactly `expected` is there, then that appending works.
async fn assert_recovers(dir: &Path, expected: &[(u64, Bytes)], what: &str) {
    let log = SegmentLog::open(dir, config(600, &[])).expect("reopen");
    let read: Vec<(u64, Bytes)> = read_all(&log)
        .into_iter()
        .map(|r| (r.position, r.payload))
        .collect();
    assert_eq!(read, expected, "{what}");
    let end = expected.last().map_or(0, |(p, b)| p + 8 + b.len() as u64);
    assert_eq!(log.end(), end, "{what}: end");
    let appended = log
        .append(vec![payload(7, 33)])
        .await
        .expect("append after recovery");
    assert_eq!(
        appended.positions,
        vec![end],
        "{what}: next append goes where the valid data ends"
    );
    let again = log
        .read_blocking(end, 5, 1 << 20)
        .expect("read the new record");
    assert_eq!(again.len(), 1, "{what}");
    assert_eq!(again[0].payload, payload(7, 33), "{what}");
}

#[tokio::test]
async fn a_torn_tail_at_every_byte_recovers_the_records_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (written, last) = written_log(dir.path(), 70).await;
    let original = std::fs::read(&last).expect("segment");
    let (tail_position, _) = written.last().expect("records").clone();
    let segment_start: u64 = last
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("start");
    let tail_offset = (tail_position - segment_start) as usize;
    let kept = &written[..written.len() - 1];
    for cut in tail_offset..original.len() {
        std::fs::write(&last, &original[..cut]).expect("cut");
        assert_recovers(dir.path(), kept, &format!("cut at {cut}")).await;
    }
}

#[tokio::test]
async fn a_corrupt_tail_recovers_the_records_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (written, last) = written_log(dir.path(), 70).await;
    let original = std::fs::read(&last).expect("segment");
    let tail_offset = original.len() - (8 + 70);
    let kept = &written[..written.len() - 1];
    for at in tail_offset..original.len() {
        let mut bytes = original.clone();
        bytes[at] ^= 0x5a;
        std::fs::write(&last, &bytes).expect("flip");
        assert_recovers(dir.path(), kept, &format!("byte {at} flipped")).await;
    }
}

#[tokio::test]
async fn zeros_after_the_last_record_are_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (written, last) = written_log(dir.path(), 70).await;
    let mut bytes = std::fs::read(&last).expect("segment");
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&last, &bytes).expect("extend");
    assert_recovers(dir.path(), &written, "4 KiB of zeros after the tail").await;
}

#[tokio::test]
async fn random_crash_points_recover_a_prefix_of_whole_records() {
    let mut rng = fastrand::Rng::with_seed(0x51ce);
    for round in 0..120 {
        let dir = tempfile::tempdir().expect("tempdir");
        let groups: Vec<Vec<Bytes>> = (0..rng.usize(1..5))
            .map(|_| {
                (0..rng.usize(1..6))
                    .map(|_| payload(rng.u64(..), rng.usize(0..300)))
                    .collect()
            })
            .collect();
        let written = {
            let log = open(dir.path(), config(700, &[]));
            append_groups(&log, groups).await
        };
        let last = segment_files(dir.path()).pop().expect("segment");
        let start: u64 = last
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .expect("start");
        let mut bytes = std::fs::read(&last).expect("segment");
        let cut = rng.usize(0..=bytes.len());
        bytes.truncate(cut);
        match rng.u8(0..3) {
            0 => {}
            1 => bytes.extend(std::iter::repeat_n(0u8, rng.usize(1..200))),
            _ => bytes.extend((0..rng.usize(1..200)).map(|_| rng.u8(..))),
        }
        std::fs::write(&last, &bytes).expect("crash");
        let survivors: Vec<(u64, Bytes)> = written
            .iter()
            .filter(|(p, b)| p + 8 + b.len() as u64 <= start + cut as u64)
            .cloned()
            .collect();
        assert_recovers(
            dir.path(),
            &survivors,
            &format!("round {round}, cut {cut} of the segment at {start}"),
        )
        .await;
    }
}

#[tokio::test]
async fn a_corrupt_record_in_a_sealed_segment_is_an_error_when_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (written, _) = written_log(dir.path(), 70).await;
    let first = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).expect("segment");
    let second_payload = (8 + 90 + 8 + 10) as usize;
    bytes[second_payload] ^= 1;
    std::fs::write(&first, &bytes).expect("corrupt");

    let log = open(dir.path(), config(600, &[]));
    let one = log
        .read_blocking(0, 1, 1 << 20)
        .expect("the first record is intact");
    assert_eq!(one[0].payload, written[0].1);
    let bad = log.read_blocking(one[0].next, 1, 1 << 20);
    match bad {
        Err(LogError::Corrupt { position, path }) => {
            assert_eq!(position, written[1].0);
            assert_eq!(path, first);
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    let batch = log.read_blocking(0, 10, 1 << 20);
    assert!(
        matches!(batch, Err(LogError::Corrupt { .. })),
        "never garbage: {batch:?}"
    );
}

#[tokio::test]
async fn a_sealed_segment_that_lost_bytes_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    written_log(dir.path(), 70).await;
    let first = segment_files(dir.path())[0].clone();
    let bytes = std::fs::read(&first).expect("segment");
    std::fs::write(&first, &bytes[..bytes.len() - 1]).expect("shorten");
    let opened = SegmentLog::open(dir.path(), config(600, &[]));
    assert!(
        matches!(opened, Err(LogError::Gap { .. })),
        "{:?}",
        opened.err()
    );
}
