//! Tests of the event log on real files in temporary directories: appends and reads, crash
//! recovery, consumers and segment deletion, and a child process killed with SIGKILL.

mod append;
mod consumers;
mod crash;
mod recovery;

use std::path::{Path, PathBuf};

use super::{Bytes, EventLog, LogConfig, Record, SegmentLog};

/// A config with small segments (so tests rotate) and the given consumers.
fn config(segment_bytes: u64, consumers: &[&str]) -> LogConfig {
    LogConfig {
        segment_bytes,
        consumers: consumers.iter().map(|c| (*c).to_string()).collect(),
        ..LogConfig::default()
    }
}

/// Opens the log in `dir`, waiting out a lock a previous handle in this process still holds
/// for a moment: the crash test spawns child processes, and a child forked while a log was
/// open holds a copy of its lock until it execs.
fn open(dir: &Path, config: LogConfig) -> SegmentLog {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match SegmentLog::open(dir, config.clone()) {
            Err(super::LogError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.expect("open the log"),
        }
    }
}

/// `len` bytes determined by `seed`, so a test can recompute what it appended.
fn payload(seed: u64, len: usize) -> Bytes {
    let mut rng = fastrand::Rng::with_seed(seed);
    Bytes::from((0..len).map(|_| rng.u8(..)).collect::<Vec<u8>>())
}

/// Every retained record, read in small steps (so reads cross segment boundaries).
fn read_all(log: &SegmentLog) -> Vec<Record> {
    let mut records = Vec::new();
    let mut position = log.first();
    while position < log.end() {
        let batch = log.read_blocking(position, 3, 1 << 20).expect("read");
        position = batch.last().expect("progress").next;
        records.extend(batch);
    }
    records
}

/// The segment files in `dir`, in order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Appends each group as one append; returns every record appended with its position.
async fn append_groups(log: &SegmentLog, groups: Vec<Vec<Bytes>>) -> Vec<(u64, Bytes)> {
    let mut written = Vec::new();
    for group in groups {
        let appended = log.append(group.clone()).await.expect("append");
        written.extend(appended.positions.into_iter().zip(group));
    }
    written
}
