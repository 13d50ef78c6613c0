//! The four natives as QuickJS C functions: each plans, runs its fast path, and falls back to
//! QuickJS's original (with the arguments as received) when the plan or the fast path
//! (`Ok(None)`, always before any side effect) declines.

use std::ffi::c_int;

use rquickjs::{Array, Function, qjs};

use super::plan::Fast;
use super::raw::{Bridge, Raw, RawResult, Text, Thrown, arg, new_string, set_last_index};
use super::values::{call_replacer, exec_result};
use super::{Native, State};
use crate::regexp::matcher::{Compiled, Found, Span, expand, next_char, template_uses_captures};

/// Group spans of each match a replacement replaces.
type Matches = Vec<Vec<Option<Span>>>;

/// A fast path: the planned call and the native's second argument; `Ok(None)` declines.
type FastPath = fn(&State, Raw, &Fast, qjs::JSValue) -> RawResult<Option<qjs::JSValue>>;

/// `RegExp.prototype.exec`.
pub(super) unsafe extern "C" fn exec(
    ctx: Raw,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: QuickJS calls with its live context and the call's own values.
    unsafe {
        run(
            ctx,
            Native::Exec,
            this,
            argc,
            argv,
            false,
            |s, c, call, _| s.exec_fast(c, call),
        )
    }
}

/// `RegExp.prototype.test`.
pub(super) unsafe extern "C" fn test(
    ctx: Raw,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: as in `exec`.
    unsafe {
        run(
            ctx,
            Native::Test,
            this,
            argc,
            argv,
            true,
            |s, c, call, _| s.test_fast(c, call),
        )
    }
}

/// `RegExp.prototype[Symbol.match]`.
pub(super) unsafe extern "C" fn matches(
    ctx: Raw,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: as in `exec`.
    unsafe {
        run(
            ctx,
            Native::Match,
            this,
            argc,
            argv,
            true,
            |s, c, call, _| s.match_fast(c, call),
        )
    }
}

/// `RegExp.prototype[Symbol.replace]`.
pub(super) unsafe extern "C" fn replace(
    ctx: Raw,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: as in `exec`.
    unsafe {
        run(
            ctx,
            Native::Replace,
            this,
            argc,
            argv,
            true,
            State::replace_fast,
        )
    }
}

/// Plans the call of `native` and runs `fast` on it, else QuickJS's original.
///
/// # Safety
/// `ctx`, `this`, `argc` and `argv` are a running native's own.
unsafe fn run(
    ctx: Raw,
    native: Native,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
    check_exec: bool,
    fast: FastPath,
) -> qjs::JSValue {
    if ctx.is_null() {
        return qjs::JS_EXCEPTION;
    }
    let Some(state) = State::current() else {
        // Not reached: the natives exist only after `install` set the state.
        // SAFETY: throws on the live context; the format has no conversions.
        return unsafe { qjs::JS_ThrowInternalError(ctx, c"RegExp natives not set up".as_ptr()) };
    };
    // SAFETY: as the caller promises.
    let planned = unsafe { state.plan(ctx, this, arg(argc, argv, 0), check_exec) };
    let result = planned.and_then(|plan| match plan {
        Some(call) => fast(state, ctx, &call, arg(argc, argv, 1)),
        None => Ok(None),
    });
    match result {
        Ok(Some(value)) => value,
        // SAFETY: as the caller promises.
        Ok(None) => unsafe { state.fallback(ctx, native, this, argc, argv) },
        Err(Thrown) => qjs::JS_EXCEPTION,
    }
}

/// The bridge to rquickjs for a native's call.
fn bridge<'js>(ctx: Raw) -> Option<Bridge<'js>> {
    // SAFETY: `ctx` is the running native's live context (checked non-null in `run`).
    std::ptr::NonNull::new(ctx).map(|ctx| unsafe { Bridge::new(ctx) })
}

/// A value a native made as its result, or [`Thrown`] for QuickJS's exception marker.
fn made(value: qjs::JSValue) -> RawResult<Option<qjs::JSValue>> {
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(value) } {
        return Err(Thrown);
    }
    Ok(Some(value))
}

impl State {
    /// The compiled pattern of a planned call, for `f`; `None` if it is not compiled.
    fn with_compiled<R>(&self, id: usize, f: impl FnOnce(&mut Compiled) -> R) -> Option<R> {
        self.cache.borrow_mut().get(id).map(f)
    }

    /// Sets `lastIndex` on the call's RegExp.
    fn set_last_index(&self, ctx: Raw, call: &Fast, index: usize) -> RawResult<()> {
        // SAFETY: `call.re` is the running native's live RegExp.
        unsafe { set_last_index(ctx, call.re, index) }
    }

    fn exec_fast(&self, ctx: Raw, call: &Fast) -> RawResult<Option<qjs::JSValue>> {
        let Some((flags, exact)) = self.with_compiled(call.id, |c| (c.flags(), c.captures_exact()))
        else {
            return Ok(None);
        };
        if !exact {
            return Ok(None);
        }
        let tracks = flags.global || flags.sticky;
        let start = match tracks {
            true => match self.start(ctx, call, flags.unicode)? {
                Some(start) => start,
                None => return Ok(None),
            },
            false => 0,
        };
        let found = self.with_compiled(call.id, |c| {
            let groups = c.captures(&call.haystack, start)?;
            Some((groups, c.group_names().to_vec(), c.has_named_groups()))
        });
        // Still compiled (nothing in between can change that); `None` inside is no match.
        let Some(found) = found else {
            return Ok(None);
        };
        let Some((groups, names, named)) = found else {
            if tracks {
                self.set_last_index(ctx, call, 0)?;
            }
            return Ok(Some(qjs::JS_NULL));
        };
        if tracks {
            let end = groups[0].map_or(start, |(_, end)| end);
            self.set_last_index(ctx, call, call.haystack.utf16_index(end))?;
        }
        let Some(bridge) = bridge(ctx) else {
            return Err(Thrown);
        };
        let text = bridge.value(call.text);
        let result = exec_result(&bridge.ctx, &call.haystack, text, &groups, &names, named);
        bridge.finish(result).map(Some)
    }

    fn test_fast(&self, ctx: Raw, call: &Fast) -> RawResult<Option<qjs::JSValue>> {
        let Some(flags) = self.with_compiled(call.id, |c| c.flags()) else {
            return Ok(None);
        };
        let tracks = flags.global || flags.sticky;
        let start = match tracks {
            true => match self.start(ctx, call, flags.unicode)? {
                Some(start) => start,
                None => return Ok(None),
            },
            false => 0,
        };
        let Some(found) = self.with_compiled(call.id, |c| c.find(&call.haystack, start)) else {
            return Ok(None);
        };
        if tracks {
            let index = found.map_or(0, |(_, end)| call.haystack.utf16_index(end));
            self.set_last_index(ctx, call, index)?;
        }
        Ok(Some(if found.is_some() {
            qjs::JS_TRUE
        } else {
            qjs::JS_FALSE
        }))
    }

    fn match_fast(&self, ctx: Raw, call: &Fast) -> RawResult<Option<qjs::JSValue>> {
        let Some(global) = self.with_compiled(call.id, |c| c.flags().global) else {
            return Ok(None);
        };
        if !global {
            // Without `g`, `match` is `exec` (whose identity the plan checked).
            return self.exec_fast(ctx, call);
        }
        let Some(spans) = self.with_compiled(call.id, |c| c.all(&call.haystack)) else {
            return Ok(None);
        };
        self.set_last_index(ctx, call, 0)?;
        if spans.is_empty() {
            return Ok(Some(qjs::JS_NULL));
        }
        let Some(bridge) = bridge(ctx) else {
            return Err(Thrown);
        };
        let array = (|| {
            let array = Array::new(bridge.ctx.clone())?;
            for (index, (start, end)) in spans.into_iter().enumerate() {
                array.set(index, &call.haystack[start..end])?;
            }
            Ok(array.into_value())
        })();
        bridge.finish(array).map(Some)
    }

    /// `[Symbol.replace]` with `with` a string (a template) or a function; anything else is
    /// left to QuickJS (its ToString may run user code).
    fn replace_fast(
        &self,
        ctx: Raw,
        call: &Fast,
        with: qjs::JSValue,
    ) -> RawResult<Option<qjs::JSValue>> {
        // SAFETY: tag read, and a class check on the call's live argument.
        let is_template = unsafe { qjs::JS_IsString(with) };
        if !is_template && !unsafe { qjs::JS_IsFunction(ctx, with) } {
            return Ok(None);
        }
        let Some((groups, sticky)) =
            self.with_compiled(call.id, |c| (!c.group_names().is_empty(), c.flags().sticky))
        else {
            return Ok(None);
        };
        // Most calls find nothing: the template is read only once a match needs it, unless
        // it decides the search (captures) or a decline after the search would be wrong
        // (sticky: the search moved `lastIndex`; a global search's reset to 0 is what
        // QuickJS's original does first anyway).
        let early = match is_template && (groups || sticky) {
            // SAFETY: `with` is the call's live string.
            true => match unsafe { Text::new(ctx, with) } {
                Some(text) => Some(text),
                // A template with a lone surrogate is left to QuickJS.
                None => return Ok(None),
            },
            false => None,
        };
        let needs_captures = match &early {
            Some(template) => template_uses_captures(template),
            None => !is_template && groups,
        };
        let Some((matches, names)) = self.replace_matches(ctx, call, needs_captures)? else {
            return Ok(None);
        };
        if matches.is_empty() {
            // SAFETY: a second reference to the call's text, for the caller.
            return Ok(Some(unsafe { qjs::JS_DupValue(ctx, call.text) }));
        }
        if is_template {
            let template = match early {
                Some(template) => template,
                // SAFETY: `with` is the call's live string.
                None => match unsafe { Text::new(ctx, with) } {
                    Some(template) => template,
                    None => return Ok(None),
                },
            };
            let out = apply(&call.haystack, &matches, &names, |found, out| {
                expand(&template, found, out);
                Ok::<(), Thrown>(())
            })?;
            // SAFETY: the running native's live context.
            return made(unsafe { new_string(ctx, &out) });
        }
        let Some(bridge) = bridge(ctx) else {
            return Err(Thrown);
        };
        let result = (|| {
            let function: Function = bridge.value(with).get()?;
            let text = bridge.value(call.text);
            let out = apply(&call.haystack, &matches, &names, |found, out| {
                out.push_str(&call_replacer(&bridge.ctx, &function, found, text.clone())?);
                Ok::<(), rquickjs::Error>(())
            })?;
            Ok(rquickjs::String::from_str(bridge.ctx.clone(), &out)?.into_value())
        })();
        bridge.finish(result).map(Some)
    }

    /// The matches and group names a replacement uses; `None` to fall back.
    fn replace_matches(
        &self,
        ctx: Raw,
        call: &Fast,
        needs_captures: bool,
    ) -> RawResult<Option<(Matches, Vec<Option<String>>)>> {
        let mut cache = self.cache.borrow_mut();
        let Some(compiled) = cache.get(call.id) else {
            return Ok(None);
        };
        if needs_captures && !compiled.captures_exact() {
            return Ok(None);
        }
        let found = matches_for_replace(self, ctx, call, compiled, needs_captures)?;
        Ok(found.map(|matches| (matches, compiled.group_names().to_vec())))
    }
}

/// The text with every match in `matches` replaced by what `replace` appends for it.
fn apply<E>(
    haystack: &Text,
    matches: &Matches,
    names: &[Option<String>],
    mut replace: impl FnMut(&Found<'_>, &mut String) -> Result<(), E>,
) -> Result<String, E> {
    let text = haystack.as_str();
    let mut out = String::with_capacity(text.len());
    let mut next = 0;
    for groups in matches {
        let Some((start, end)) = groups[0] else {
            continue;
        };
        out.push_str(&text[next..start]);
        let found = Found {
            haystack: text,
            ascii: haystack.ascii,
            groups,
            names,
        };
        replace(&found, &mut out)?;
        next = end;
    }
    out.push_str(&text[next..]);
    Ok(out)
}

/// The matches `[Symbol.replace]` replaces, as group spans (just the whole match unless
/// `captures`), with `lastIndex` updated as the specification's exec calls would leave it;
/// `None` to fall back.
fn matches_for_replace(
    state: &State,
    ctx: Raw,
    call: &Fast,
    compiled: &mut Compiled,
    captures: bool,
) -> RawResult<Option<Matches>> {
    let haystack = call.haystack.as_str();
    let flags = compiled.flags();
    let mut one = |start: usize| -> Option<Vec<Option<Span>>> {
        if captures {
            compiled.captures(haystack, start)
        } else {
            compiled.find(haystack, start).map(|span| vec![Some(span)])
        }
    };
    if flags.global {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(groups) = one(at) {
            let (start, end) = groups[0].unwrap_or((at, at));
            at = if start == end {
                next_char(haystack, end)
            } else {
                end
            };
            out.push(groups);
        }
        state.set_last_index(ctx, call, 0)?;
        return Ok(Some(out));
    }
    if !flags.sticky {
        return Ok(Some(one(0).into_iter().collect()));
    }
    let Some(start) = state.start(ctx, call, flags.unicode)? else {
        return Ok(None);
    };
    let found = one(start);
    let index = found
        .as_ref()
        .and_then(|groups| groups[0])
        .map_or(0, |(_, end)| call.haystack.utf16_index(end));
    state.set_last_index(ctx, call, index)?;
    Ok(Some(found.into_iter().collect()))
}
