//! The calling thread's CPU time: what a function's deadline counts.
//!
//! Why not the wall clock: the pipeline's threads run at a low priority
//! ([`crate::dataplane::pipeline::workers`]), so under load a guest can wait tens of
//! milliseconds for a core without running. A wall-clock deadline then interrupts a function
//! for the scheduler's choice, not for its own cost, and the event is retried or, after its
//! last attempt, discarded. A guest cannot wait without a host call (blocking ones are refused,
//! [`super::wasi`]), so the time it holds a core, host calls included, is its thread's CPU time.

use std::time::Duration;

/// The CPU time the calling thread has used. Cost: one `clock_gettime` (a system call, well
/// under a microsecond); read at the start of an invocation and once per epoch tick after its
/// deadline first comes due.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_and_not_sleep() {
        let start = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu_time() - start;
        assert!(slept < Duration::from_millis(10), "{slept:?}");
        // Work for 100 ms of wall time: some of it, however loaded the machine, is CPU time.
        let (start, wall) = (thread_cpu_time(), std::time::Instant::now());
        let mut x = 0u64;
        while wall.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time() - start > Duration::from_millis(1));
    }
}
