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
//! may still decline with `None`, or hands the call to QuickJS's original: one fallback, in
//! [`State::fallback`].

mod natives;
mod plan;
mod values;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rquickjs::function::{Opt, This};
use rquickjs::{Array, Ctx, Function, Persistent, Result, Value, qjs};

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

/// QuickJS's own functions, in [`ORIGINALS`] order after the key.
struct Originals {
    source: Persistent<Function<'static>>,
    flags: Persistent<Function<'static>>,
    exec: Persistent<Function<'static>>,
    test: Persistent<Function<'static>>,
    replace: Persistent<Function<'static>>,
    matches: Persistent<Function<'static>>,
}

/// The per-instance state the natives share.
struct State {
    /// The private symbol's atom, held for the runtime's life: a property key without a
    /// conversion per call.
    key: qjs::JSAtom,
    originals: Originals,
    /// The installed native `exec`, held (never read) so that it lives as long as the runtime
    /// and its address stays its own.
    #[allow(dead_code)]
    exec: RefCell<Option<Persistent<Function<'static>>>>,
    /// Its object's address, to recognise an unmodified RegExp by one comparison.
    exec_object: Cell<usize>,
    cache: RefCell<Cache>,
}

/// Puts the compiled engine under `RegExp.prototype`. Costs one evaluation of two small
/// scripts at engine start (in the build's snapshot).
pub fn install<'js>(ctx: &Ctx<'js>) -> Result<()> {
    let found: Array = eval(ctx, ORIGINALS, "sluice:regexp")?.get()?;
    let function = |index: usize| -> Result<Persistent<Function<'static>>> {
        Ok(Persistent::save(ctx, found.get::<Function>(index)?))
    };
    let key: Value = found.get(0)?;
    // SAFETY: `key` is a live symbol of `ctx`; the atom's reference is never released, so it
    // stays valid as long as the runtime (which outlives every call of the natives).
    let atom = unsafe { qjs::JS_ValueToAtom(ctx.as_raw().as_ptr(), key.as_raw()) };
    let state = Rc::new(State {
        key: atom,
        originals: Originals {
            source: function(1)?,
            flags: function(2)?,
            exec: function(3)?,
            test: function(4)?,
            replace: function(5)?,
            matches: function(6)?,
        },
        exec: RefCell::new(None),
        exec_object: Cell::new(0),
        cache: RefCell::new(Cache::default()),
    });
    let exec = native(ctx, &state, "exec", State::exec)?;
    *state.exec.borrow_mut() = Some(Persistent::save(ctx, exec.clone()));
    state.exec_object.set(object_address(exec.as_raw()));
    let test = native(ctx, &state, "test", State::test)?;
    let matches = native(ctx, &state, "[Symbol.match]", State::matches)?;
    let s = state;
    let replace = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              this: This<Value<'js>>,
              text: Opt<Value<'js>>,
              with: Opt<Value<'js>>|
              -> Result<Value<'js>> { s.replace(&ctx, this.0, text.0, with.0) },
    )?
    .with_name("[Symbol.replace]")?;
    let installer: Function = eval(ctx, INSTALL, "sluice:regexp")?.get()?;
    installer.call::<_, ()>((key, exec, test, replace, matches))
}

/// The address of an object value (for identity checks; the caller knows it is an object).
fn object_address(value: qjs::JSValue) -> usize {
    // SAFETY: only reads the value's pointer bits.
    unsafe { qjs::JS_VALUE_GET_PTR(value) as usize }
}

/// The type of a one-argument native: `(ctx, this, text)`.
type OneArg<'js> = fn(&State, &Ctx<'js>, Value<'js>, Option<Value<'js>>) -> Result<Value<'js>>;

/// A JavaScript function named `name` calling `f` on the shared state.
fn native<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<State>,
    name: &str,
    f: OneArg<'js>,
) -> Result<Function<'js>> {
    let s = state.clone();
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, this: This<Value<'js>>, text: Opt<Value<'js>>| -> Result<Value<'js>> {
            f(&s, &ctx, this.0, text.0)
        },
    )?
    .with_name(name)
}

impl State {
    /// Hands the call to QuickJS's original of `native` with `args` after `this`.
    fn fallback<'js, A>(
        &self,
        ctx: &Ctx<'js>,
        native: Native,
        this: Value<'js>,
        args: A,
    ) -> Result<Value<'js>>
    where
        A: rquickjs::function::IntoArgs<'js>,
    {
        let original = match native {
            Native::Exec => &self.originals.exec,
            Native::Test => &self.originals.test,
            Native::Replace => &self.originals.replace,
            Native::Match => &self.originals.matches,
        };
        let original = original.clone().restore(ctx)?;
        let mut all = rquickjs::function::Args::new(ctx.clone(), args.num_args());
        all.this(this)?;
        args.into_args(&mut all)?;
        original.call_arg(all)
    }
}
