//! The bounds one invocation runs under, and how instances are reused between invocations.

use std::time::Duration;

/// What one invocation of a function may consume. Defaults suit event transforms: a few MiB of
/// memory and tens of milliseconds; a function that needs more says so in its own limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly, WebAssembly instructions) per invocation. Default 50 million, about
    /// 25-50 ms of guest work on this class of machine; an infinite loop ends here first.
    pub fuel: u64,
    /// Deadline per invocation, for what fuel does not count (time spent in host calls). It
    /// counts the CPU time of the thread running the guest, checked at each 1 ms epoch tick
    /// once due, so time spent waiting for a core does not count. Default 50 ms.
    pub deadline: Duration,
    /// Linear memory cap per instance, in bytes. Default 16 MiB (a Rust function starts with
    /// about 1.1 MiB, most of it its stack).
    pub memory_bytes: usize,
    /// Total bytes of event text a function may hand back from one invocation. Default 1 MiB.
    pub output_bytes: usize,
    /// Log lines kept per invocation; later lines are counted and dropped. Default 100.
    pub log_lines: usize,
    /// Log bytes kept per invocation. Default 16 KiB.
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel: 50_000_000,
            deadline: Duration::from_millis(50),
            memory_bytes: 16 << 20,
            output_bytes: 1 << 20,
            log_lines: 100,
            log_bytes: 16 << 10,
        }
    }
}

/// How instances of a function are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Reuse warm instances of this function (never of another), each for at most `max_uses`
    /// invocations; an instance that trapped is never reused.
    Pooled {
        /// Invocations before an instance is retired, bounding what state can leak between
        /// events and how far its memory can creep. Default 10,000.
        max_uses: u32,
    },
    /// A fresh instance per invocation: no state survives an event. Costs one instantiation
    /// (tens of microseconds) per call.
    Fresh,
}

impl Default for Isolation {
    fn default() -> Isolation {
        Isolation::Pooled { max_uses: 10_000 }
    }
}
