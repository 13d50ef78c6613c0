//! The pipeline's own threads, where functions run, at a lower CPU priority than ingestion.
//!
//! Why: a chunk keeps a core busy for tens of milliseconds (its events through each function).
//! On tokio's blocking pool those threads compete as equals with the threads that accept,
//! append and acknowledge requests, so under load an acknowledgement waits for time slices
//! behind the pipeline (BENCHMARKS.md, issue 10: ack p99 36 ms with the disk's own p99 at
//! 0.4 ms). Here the workers are `nice` (default [`NICE`]) and `SCHED_BATCH` (Linux), so the scheduler
//! runs a woken request first and gives the pipeline everything else; the pipeline still gets
//! the whole machine when ingestion is idle, and ingestion's pacing
//! ([`crate::dataplane::DataPlaneConfig::pipeline_lead`]) keeps it from falling behind.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The workers' default nice value (0 is a normal thread's, 19 the lowest priority).
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A job did not return: it panicked, or the workers are gone.
#[derive(Debug, thiserror::Error)]
#[error("a pipeline worker failed (the job panicked or the workers stopped)")]
pub struct WorkerLost;

/// A fixed set of low-priority threads. The threads end when the last clone is dropped.
#[derive(Clone)]
pub struct Workers {
    jobs: Sender<Job>,
}

impl Workers {
    /// Starts `threads` threads (at least one) at nice value `nice` (0: a normal thread's
    /// priority, and normal scheduling).
    ///
    /// # Errors
    /// The operating system refused a thread.
    pub fn start(threads: usize, nice: i32) -> std::io::Result<Workers> {
        Workers::named("sluice-pipeline", threads, nice)
    }

    /// Like [`Workers::start`], the threads named `<name>-<n>` (what `top -H` and `perf`
    /// show). Threads a job starts (DuckDB's own) inherit the priority.
    ///
    /// # Errors
    /// The operating system refused a thread.
    pub fn named(name: &str, threads: usize, nice: i32) -> std::io::Result<Workers> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&queue, nice))?;
        }
        Ok(Workers { jobs })
    }

    /// Runs `job` on a worker and waits for its result without holding a tokio thread.
    /// Cost: one channel send and one wake-up.
    ///
    /// # Errors
    /// [`WorkerLost`] if the job panicked (the worker survives) or the workers are gone.
    pub async fn run<R, F>(&self, job: F) -> Result<R, WorkerLost>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(r) = catch_unwind(AssertUnwindSafe(job)) {
                let _ = done.send(r);
            }
        });
        self.jobs.send(job).map_err(|_| WorkerLost)?;
        result.await.map_err(|_| WorkerLost)
    }
}

fn work(queue: &Mutex<Receiver<Job>>, nice: i32) {
    if nice != 0 {
        lower_priority(nice);
    }
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Makes the calling thread `nice` and `SCHED_BATCH`; a refusal only costs the priority, so
/// it is logged, not fatal.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    // SAFETY: plain system calls on the calling thread (tid from gettid, pid 0 = this thread)
    // with a valid, initialised parameter struct.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) != 0 {
            tracing::debug!("cannot set SCHED_BATCH on a pipeline worker");
        }
        let tid = libc::gettid() as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
            tracing::warn!("cannot lower a pipeline worker's priority");
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_off_the_runtime_at_a_lower_priority() {
        let workers = Workers::start(2, NICE).unwrap();
        let (name, nice) = workers
            .run(|| {
                let name = std::thread::current().name().map(str::to_string);
                // SAFETY: reads the calling thread's nice value.
                let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as _) };
                (name, nice)
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("sluice-pipeline-"));
        assert_eq!(nice, NICE);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_worker_lives_on() {
        let workers = Workers::start(1, NICE).unwrap();
        assert!(workers.run(|| panic!("boom")).await.is_err());
        assert_eq!(workers.run(|| 7).await.unwrap(), 7);
    }
}
