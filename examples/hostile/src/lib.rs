//! Misbehaving insert function for sluice's sandbox tests. What it does depends on the track
//! event's name, so one component exercises every failure on one engine:
//! `loop` spins forever, `grow` allocates until memory runs out, `panic` panics, `recurse`
//! recurses without end, `oversize` returns a 256 KiB event, `chatty` logs 10,000 lines,
//! `sleep` sleeps for ten seconds, `count` reports how many events this instance has seen
//! (`properties.seen`, from a static counter: it shows instance reuse), `remember` keeps the
//! first `apiKey` setting it sees in a global and reports it (`properties.remembered`: a
//! secret that would leak if an instance served two sets of settings), `retry` raises a
//! retry-error, `fanout` returns `properties.copies` copies; anything else is forwarded
//! unchanged.

use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_guest::{Context, Event, FunctionError, InsertFunction, Outcome, Value};

/// The misbehaving function.
pub struct Hostile;

/// Events this instance has handled: state that survives between events only on a reused
/// instance.
static SEEN: AtomicU64 = AtomicU64::new(0);

/// The first `apiKey` setting this instance saw: a global that outlives the event.
static REMEMBERED: OnceLock<String> = OnceLock::new();

fn recurse(depth: u64) -> u64 {
    // Not a tail call, and opaque to the optimiser, so every level keeps a stack frame. The
    // exit is never reached; it only keeps the compiler from rejecting endless recursion.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = black_box([depth; 16]);
    recurse(black_box(depth + 1)) + frame[3]
}

impl InsertFunction for Hostile {
    fn on_track(mut event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        match event.event.as_deref().unwrap_or_default() {
            "count" => {
                event.properties.insert("seen".into(), Value::from(seen));
                Ok(event.into())
            }
            "remember" => {
                let key = ctx.setting::<String>("apiKey").unwrap_or_default();
                let first = REMEMBERED.get_or_init(|| key);
                event
                    .properties
                    .insert("remembered".into(), Value::from(first.as_str()));
                event.properties.insert("seen".into(), Value::from(seen));
                Ok(event.into())
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 64 * 1024]));
                }
            }
            "panic" => panic!("hostile function panicked on purpose"),
            "recurse" => {
                let depth = recurse(0);
                event.properties.insert("depth".into(), Value::from(depth));
                Ok(event.into())
            }
            "oversize" => {
                event
                    .properties
                    .insert("blob".into(), Value::String("x".repeat(256 << 10)));
                Ok(event.into())
            }
            "chatty" => {
                for i in 0..10_000 {
                    ctx.info(format_args!("line {i}"));
                }
                Ok(event.into())
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(10));
                Ok(event.into())
            }
            "retry" => Err(FunctionError::retry("the upstream is down, try again")),
            "fanout" => {
                let copies = event
                    .properties
                    .get("copies")
                    .and_then(Value::as_u64)
                    .unwrap_or(2);
                Ok(Outcome::FanOut(
                    (0..copies).map(|_| event.clone()).collect(),
                ))
            }
            _ => Ok(event.into()),
        }
    }
}

sluice_guest::export!(Hostile);
