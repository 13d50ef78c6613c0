//! kill -9: a child process (this test binary, re-run as the child) appends from several tasks
//! and prints each record's position once its append resolved; the parent kills it with
//! SIGKILL mid-stream, reopens the log and reads every record the child reported durable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// Set in the child's environment: the log directory to append to.
const CHILD_DIR: &str = "SLUICE_LOG_KILL_TEST_DIR";

/// Lines the parent waits for before it kills the child.
const REPORTS_BEFORE_KILL: usize = 300;

/// The payload of record `k` of append `i` of task `t`: recomputable by the parent.
fn record(t: u64, i: u64, k: u64) -> Bytes {
    let seed = (t << 40) | (i << 8) | k;
    payload(seed, 200 + (seed % 4000) as usize)
}

#[test]
fn kill_9_keeps_every_acknowledged_append() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        return append_until_killed(PathBuf::from(dir));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let test = format!(
        "{}::kill_9_keeps_every_acknowledged_append",
        module_path!().split_once("::").map_or("", |(_, path)| path)
    );
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("stdout");
    let mut acknowledged = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while acknowledged.len() < REPORTS_BEFORE_KILL {
        let line = lines
            .next()
            .expect("the child reports before it ends")
            .expect("line");
        acknowledged.extend(parse(&line));
    }
    child.kill().expect("SIGKILL");
    // Whatever the child printed before it died was acknowledged too.
    acknowledged.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
    child.wait().expect("reaped");

    let log = open(dir.path(), config(256 << 10, &[]));
    for &(position, t, i, k) in &acknowledged {
        let read = log
            .read_blocking(position, 1, 1 << 20)
            .expect("an acknowledged record");
        assert_eq!(read[0].payload, record(t, i, k), "record at {position}");
    }
    let all = read_all(&log);
    assert!(
        all.len() >= acknowledged.len(),
        "everything readable is whole: {} records",
        all.len()
    );
}

/// `durable <position> <task> <append> <record>`.
fn parse(line: &str) -> Option<(u64, u64, u64, u64)> {
    let mut words = line
        .strip_prefix("durable ")?
        .split(' ')
        .map(str::parse::<u64>);
    Some((
        words.next()?.ok()?,
        words.next()?.ok()?,
        words.next()?.ok()?,
        words.next()?.ok()?,
    ))
}

/// The child: four tasks append one to three records at a time, forever (20 s at most, in
/// case the parent died), printing each record once its append resolved.
fn append_until_killed(dir: PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let log = Arc::new(SegmentLog::open(&dir, config(256 << 10, &[])).expect("open"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let tasks: Vec<_> = (0..4u64)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let records: Vec<Bytes> = (0..1 + i % 3).map(|k| record(t, i, k)).collect();
                        let appended = log.append(records).await.expect("append");
                        for (k, position) in appended.positions.iter().enumerate() {
                            println!("durable {position} {t} {i} {k}");
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
}
