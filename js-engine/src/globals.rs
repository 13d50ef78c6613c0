//! The JavaScript globals: the prelude (`prelude.js`), the web globals (`web.js`, natives in
//! `web.rs`), source functions' helpers (`source.js`) and the native functions they wrap.
//!
//! The native functions are handed to the prelude as one object argument, never made global;
//! the prelude gives back the engine's internal helpers (see [`Prelude`]).

use std::cell::Cell;

use rquickjs::{Ctx, Exception, Function, Object, Persistent, Result};

use crate::bindings::sluice::function::host::{self, Level};
use crate::codec;
use crate::eval;

/// The prelude's source; its value is a function of the native helpers.
const PRELUDE: &str = include_str!("prelude.js");

/// The web globals' source (`fetch`, `URL`, timers, ...); its value is a function of the
/// natives in `web.rs`.
const WEB: &str = include_str!("web.js");

/// Source functions' `Segment` and request; its value is a function of nothing.
const SOURCE: &str = include_str!("source.js");

/// What the engine keeps from the prelude and the web globals.
#[derive(Clone)]
pub struct Prelude {
    /// `describeError(thrown) -> [kind, message]`, kinds numbered as in `prelude.js`.
    pub describe_error: Persistent<Function<'static>>,
    /// `pump() -> bool`: one step on timers and requests when no promise job is left.
    pub pump: Persistent<Function<'static>>,
    /// `reset()`: forgets the requests and timers an invocation left behind.
    pub reset: Persistent<Function<'static>>,
    /// `run(onRequest, requestText, settings)`: a source function's call, a promise of its
    /// events.
    pub run_source: Persistent<Function<'static>>,
}

/// Evaluates the prelude, the web globals and the source functions' helpers in `ctx`,
/// defining the globals.
pub fn install<'js>(ctx: &Ctx<'js>) -> Result<Prelude> {
    let native = native_object(ctx)?;
    let prelude: Function = eval::eval(ctx, PRELUDE, "sluice:prelude")?.get()?;
    let helpers: Object = prelude.call((native,))?;
    let describe_error: Function = helpers.get("describeError")?;
    let web: Function = eval::eval(ctx, WEB, "sluice:web")?.get()?;
    let web: Object = web.call((crate::web::natives(ctx)?,))?;
    let source: Function = eval::eval(ctx, SOURCE, "sluice:source")?.get()?;
    let source: Object = source.call(())?;
    let keep = |object: &Object<'js>, name: &str| -> Result<Persistent<Function<'static>>> {
        Ok(Persistent::save(ctx, object.get::<_, Function>(name)?))
    };
    Ok(Prelude {
        describe_error: Persistent::save(ctx, describe_error),
        pump: keep(&web, "pump")?,
        reset: keep(&web, "reset")?,
        run_source: keep(&source, "run")?,
    })
}

fn native_object<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;
    native.set(
        "log",
        Function::new(ctx.clone(), |level: i32, message: String| {
            host::log(level_of(level), &message)
        })?,
    )?;
    native.set(
        "sha256",
        Function::new(ctx.clone(), |text: String| codec::sha256_hex(&text))?,
    )?;
    native.set(
        "randomUUID",
        Function::new(ctx.clone(), |ctx: Ctx<'_>| match random_bytes() {
            Some(bytes) => Ok(codec::uuid_v4(bytes)),
            None => Err(Exception::throw_internal(
                &ctx,
                "crypto.randomUUID: no random source",
            )),
        })?,
    )?;
    native.set("random", Function::new(ctx.clone(), random_f64)?)?;
    native.set(
        "btoa",
        Function::new(ctx.clone(), |text: String| codec::btoa(&text))?,
    )?;
    native.set(
        "atob",
        Function::new(ctx.clone(), |text: String| codec::atob(&text))?,
    )?;
    Ok(native)
}

fn level_of(level: i32) -> Level {
    match level {
        0 => Level::Trace,
        1 => Level::Debug,
        3 => Level::Warn,
        4 => Level::Error,
        _ => Level::Info,
    }
}

unsafe extern "C" {
    // wasi-libc: fills from `wasi:random` (at most 256 bytes per call).
    fn getentropy(buffer: *mut u8, len: usize) -> i32;
}

thread_local! {
    // xorshift64* state; 0 until the first `Math.random()` of this instance.
    static RANDOM: Cell<u64> = const { Cell::new(0) };
}

/// `Math.random()`: QuickJS seeds its own generator when the context is made, which is in the
/// build's snapshot, so every instance would draw the same sequence. This one is seeded from
/// the host's random source on an instance's first call (the snapshot never calls it).
fn random_f64() -> f64 {
    let mut state = RANDOM.get();
    if state == 0 {
        let seed = random_bytes().map_or(0, |b| {
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        });
        // Without a random source, the clock is the seed (as QuickJS's own).
        state = if seed != 0 { seed } else { host::now_ms() | 1 };
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    RANDOM.set(state);
    // The top 53 bits of the scrambled state: uniform in [0, 1).
    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// 16 bytes from the host's secure random source (`wasi:random`).
fn random_bytes() -> Option<[u8; 16]> {
    let mut bytes = [0u8; 16];
    // SAFETY: writes exactly `bytes.len()` (<= 256) bytes into `bytes`.
    let status = unsafe { getentropy(bytes.as_mut_ptr(), bytes.len()) };
    (status == 0).then_some(bytes)
}
