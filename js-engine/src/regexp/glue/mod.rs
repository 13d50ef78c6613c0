//! `RegExp.prototype.exec`, `test`, `[Symbol.replace]` and `[Symbol.match]` on the compiled
//! engine: native functions installed over QuickJS's, which keep QuickJS's own as the fallback.
//! `String.prototype.replace/replaceAll/match` reach these through the symbols, and
//! `matchAll`, `split` and `search` (left to QuickJS) through `exec`.
//!
//! A RegExp object gets its pattern's id (or the "falls back" verdict) on first use, kept under
//! a private symbol on the object; patterns are compiled once per (source, flags) per instance
//! (see [`super::cache`]). The fast paths run only on a real RegExp whose `exec` is this one
//! (a user's own `exec` is honoured by QuickJS's originals, as the specification says).
//!
//! Each native decides once ([`plan`]) and then either runs its fast path (`natives`), which
//! may still decline with `None`, or hands the call, with its arguments untouched, to QuickJS's
//! original: one fallback, in [`State::fallback`].
//!
//! The natives are plain C functions (`JSCFunction`) on QuickJS's own argument array: no
//! rquickjs closure, trampoline or per-argument `Value` (see [`raw`]); the state they share is
//! the instance's one [`State`], reached through a thread-local (an instance has one thread,
//! one runtime and one context).

mod natives;
mod plan;
mod raw;
mod values;

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_int};

use rquickjs::{Array, Ctx, Result, Value, qjs};

use self::raw::Raw;
use super::cache::Cache;
use crate::eval::eval;

/// Reads QuickJS's originals and the private key before anything is replaced.
const ORIGINALS: &str = "(() => { const p = RegExp.prototype; \
    const get = (k) => Object.getOwnPropertyDescriptor(p, k).get; \
    return [Symbol('sluice.compiled'), get('source'), get('flags'), p.exec, p.test, \
    p[Symbol.replace], p[Symbol.match]]; })()";

/// Installs the natives; `compile` (Annex B) forgets the compiled pattern of the object.
const INSTALL: &str = "(function (key, exec, test, replace, match) { const p = RegExp.prototype; \
    const define = (k, v) => Object.defineProperty(p, k, \
      { value: v, writable: true, configurable: true, enumerable: false }); \
    define('exec', exec); define('test', test); \
    define(Symbol.replace, replace); define(Symbol.match, match); \
    const compile = p.compile; \
    if (typeof compile === 'function') define('compile', function compile(pattern, flags) { \
      if (this !== null && typeof this === 'object') delete this[key]; \
      return compile.call(this, pattern, flags); }); })";

/// The entry points replaced, each with QuickJS's original kept for the fallback.
#[derive(Clone, Copy)]
enum Native {
    Exec,
    Test,
    Replace,
    Match,
}

/// QuickJS's own functions, in [`ORIGINALS`] order after the key: each holds one reference,
/// never released, so they live as long as the runtime.
struct Originals {
    source: qjs::JSValue,
    flags: qjs::JSValue,
    exec: qjs::JSValue,
    test: qjs::JSValue,
    replace: qjs::JSValue,
    matches: qjs::JSValue,
}

/// The per-instance state the natives share.
struct State {
    /// The private symbol's atom, held for the runtime's life: a property key without a
    /// conversion per call.
    key: qjs::JSAtom,
    originals: Originals,
    /// The installed native `exec`'s object address (the function is held by
    /// `RegExp.prototype` and by [`State::exec_held`] for the runtime's life, so the address
    /// stays its own): an unmodified RegExp is recognised by one comparison.
    exec_object: usize,
    /// The reference to the native `exec` that keeps its address valid (never released).
    #[allow(dead_code)]
    exec_held: qjs::JSValue,
    cache: RefCell<Cache>,
}

thread_local! {
    /// The instance's state, set once by [`install`] and never freed (it lives as long as the
    /// runtime, which is the instance's).
    static STATE: Cell<Option<&'static State>> = const { Cell::new(None) };
}

/// Puts the compiled engine under `RegExp.prototype`. Costs one evaluation of two small
/// scripts at engine start (in the build's snapshot).
pub fn install<'js>(ctx: &Ctx<'js>) -> Result<()> {
    let found: Array = eval(ctx, ORIGINALS, "sluice:regexp")?.get()?;
    let raw = ctx.as_raw().as_ptr();
    let original = |index: usize| -> Result<qjs::JSValue> {
        let value: Value = found.get(index)?;
        // SAFETY: a live value of `ctx`; the duplicate is the reference `Originals` keeps.
        Ok(unsafe { qjs::JS_DupValue(raw, value.as_raw()) })
    };
    let key: Value = found.get(0)?;
    // SAFETY: `key` is a live symbol of `ctx`; the atom's reference is never released, so it
    // stays valid as long as the runtime (which outlives every call of the natives).
    let atom = unsafe { qjs::JS_ValueToAtom(raw, key.as_raw()) };
    let originals = Originals {
        source: original(1)?,
        flags: original(2)?,
        exec: original(3)?,
        test: original(4)?,
        replace: original(5)?,
        matches: original(6)?,
    };
    let exec = c_function(ctx, natives::exec, c"exec", 1)?;
    let test = c_function(ctx, natives::test, c"test", 1)?;
    let replace = c_function(ctx, natives::replace, c"[Symbol.replace]", 2)?;
    let matches = c_function(ctx, natives::matches, c"[Symbol.match]", 1)?;
    let state = State {
        key: atom,
        originals,
        exec_object: object_address(exec.as_raw()),
        // SAFETY: a live function of `ctx`; this reference is never released.
        exec_held: unsafe { qjs::JS_DupValue(raw, exec.as_raw()) },
        cache: RefCell::new(Cache::default()),
    };
    // One runtime per instance: a second install (none happens) would leave the first state
    // unreachable, never freed, which is harmless.
    STATE.with(|cell| cell.set(Some(Box::leak(Box::new(state)))));
    let installer: rquickjs::Function = eval(ctx, INSTALL, "sluice:regexp")?.get()?;
    installer.call::<_, ()>((key, exec, test, replace, matches))
}

/// The signature QuickJS calls a C function with.
type CFunction = unsafe extern "C" fn(Raw, qjs::JSValue, c_int, *mut qjs::JSValue) -> qjs::JSValue;

/// A JavaScript function `name` of `length` arguments that is the C function `f`.
fn c_function<'js>(ctx: &Ctx<'js>, f: CFunction, name: &CStr, length: c_int) -> Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `f` has QuickJS's generic C-function signature; `name` is NUL-terminated and
    // copied by QuickJS. The result is owned (or the exception marker, checked below).
    let value = unsafe {
        let function = qjs::JS_NewCFunction2(
            raw,
            Some(f),
            name.as_ptr(),
            length,
            qjs::JSCFunctionEnum_JS_CFUNC_generic,
            0,
        );
        Value::from_raw(ctx.clone(), function)
    };
    if value.is_exception() {
        return Err(rquickjs::Error::Exception);
    }
    Ok(value)
}

/// The address of an object value (for identity checks; the caller knows it is an object).
fn object_address(value: qjs::JSValue) -> usize {
    // SAFETY: only reads the value's pointer bits.
    unsafe { qjs::JS_VALUE_GET_PTR(value) as usize }
}

impl State {
    /// The instance's state; `None` only before [`install`] (the natives do not exist then).
    fn current() -> Option<&'static State> {
        STATE.with(Cell::get)
    }

    /// Hands the call to QuickJS's original of `native`, with `this` and the arguments as
    /// the native received them.
    ///
    /// # Safety
    /// The arguments are the running native's own.
    unsafe fn fallback(
        &self,
        ctx: Raw,
        native: Native,
        this: qjs::JSValue,
        argc: c_int,
        argv: *mut qjs::JSValue,
    ) -> qjs::JSValue {
        let original = match native {
            Native::Exec => self.originals.exec,
            Native::Test => self.originals.test,
            Native::Replace => self.originals.replace,
            Native::Match => self.originals.matches,
        };
        // SAFETY: `original` is alive for the runtime's life; the arguments are the caller's.
        unsafe { qjs::JS_Call(ctx, original, this, argc, argv) }
    }
}
