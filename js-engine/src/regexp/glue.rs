//! `RegExp.prototype.exec`, `test`, `[Symbol.replace]` and `[Symbol.match]` on the compiled
//! engine: native functions installed over QuickJS's, which keep QuickJS's own as the fallback.
//! `String.prototype.replace/replaceAll/match` reach these through the symbols, and
//! `matchAll`, `split` and `search` (left to QuickJS) through `exec`.
//!
//! A RegExp object gets its pattern's entry (or the "falls back" verdict) on first use, kept
//! under a private symbol on the object; patterns are compiled once per (source, flags) per
//! instance, after QuickJS's engine has run them on a few KB of text (see [`Entry`]). The
//! fast paths run only on a real RegExp whose `exec` is this one (a user's own
//! `exec` is honoured by QuickJS's originals, as the specification says).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rquickjs::atom::PredefinedAtom;
use rquickjs::function::{Args, Opt, This};
use rquickjs::object::Property;
use rquickjs::{Array, Coerced, Ctx, Function, Object, Persistent, Result, Value, qjs};

use super::matcher::{
    Compiled, Found, Span, byte_index, expand, next_char, template_uses_captures, utf16_index,
};
use super::translate::{Translated, translate};
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
    key: Persistent<Value<'static>>,
    originals: Originals,
    /// The installed native `exec`, to recognise an unmodified RegExp.
    exec: RefCell<Option<Persistent<Function<'static>>>>,
    cache: RefCell<Cache>,
}

/// Text a pattern must have been applied to (each call counting at least [`CALL_BYTES`])
/// before it is compiled: until then QuickJS's engine runs it. Compiling costs about as much
/// as QuickJS spends on ~5 KB of searching, so a fresh instance that uses a pattern a few
/// times never pays for it, and a warm one compiles it early in its first events.
const COMPILE_AFTER_BYTES: usize = 4096;
const CALL_BYTES: usize = 64;

/// A pattern the translation accepted.
enum Entry {
    /// Not compiled yet: QuickJS's engine runs it until `remaining` bytes of text are used up.
    Pending(Box<Translated>, usize),
    Compiled(Box<Compiled>),
    /// `regex` refused it (e.g. too large): QuickJS's engine runs it.
    Refused,
}

/// Patterns by (source, flags): an index into `entries`, or `None` for those that fall back.
#[derive(Default)]
struct Cache {
    ids: HashMap<(String, String), Option<usize>>,
    entries: Vec<Entry>,
}

impl Cache {
    fn id(&mut self, source: &str, flags: &str) -> Option<usize> {
        if let Some(id) = self.ids.get(&(source.to_string(), flags.to_string())) {
            return *id;
        }
        let id = translate(source, flags).map(|translated| {
            self.entries
                .push(Entry::Pending(Box::new(translated), COMPILE_AFTER_BYTES));
            self.entries.len() - 1
        });
        self.ids.insert((source.to_string(), flags.to_string()), id);
        id
    }

    /// The compiled pattern of entry `id` for a call on `len` bytes of text; `None` while
    /// QuickJS's engine should run it (compiling it once enough text has gone by).
    fn ready(&mut self, id: usize, len: usize) -> Option<&mut Compiled> {
        let entry = self.entries.get_mut(id)?;
        if let Entry::Pending(translated, remaining) = entry {
            *remaining = remaining.saturating_sub(len.max(CALL_BYTES));
            if *remaining > 0 {
                return None;
            }
            *entry = match Compiled::new((**translated).clone()) {
                Some(compiled) => Entry::Compiled(Box::new(compiled)),
                None => Entry::Refused,
            };
        }
        match entry {
            Entry::Compiled(compiled) => Some(compiled),
            _ => None,
        }
    }

    /// The compiled pattern of entry `id`, if it is compiled.
    fn get(&mut self, id: usize) -> Option<&mut Compiled> {
        match self.entries.get_mut(id)? {
            Entry::Compiled(compiled) => Some(compiled),
            _ => None,
        }
    }
}

/// Puts the compiled engine under `RegExp.prototype`. Costs one evaluation of two small
/// scripts at engine start.
pub fn install<'js>(ctx: &Ctx<'js>) -> Result<()> {
    let found: Array = eval(ctx, ORIGINALS, "sluice:regexp")?.get()?;
    let function = |index: usize| -> Result<Persistent<Function<'static>>> {
        Ok(Persistent::save(ctx, found.get::<Function>(index)?))
    };
    let key: Value = found.get(0)?;
    let state = Rc::new(State {
        key: Persistent::save(ctx, key.clone()),
        originals: Originals {
            source: function(1)?,
            flags: function(2)?,
            exec: function(3)?,
            test: function(4)?,
            replace: function(5)?,
            matches: function(6)?,
        },
        exec: RefCell::new(None),
        cache: RefCell::new(Cache::default()),
    });
    let s = state.clone();
    let exec = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, this: This<Value<'js>>, text: Opt<Value<'js>>| -> Result<Value<'js>> {
            s.exec(&ctx, this.0, text.0)
        },
    )?
    .with_name("exec")?;
    *state.exec.borrow_mut() = Some(Persistent::save(ctx, exec.clone()));
    let s = state.clone();
    let test = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, this: This<Value<'js>>, text: Opt<Value<'js>>| -> Result<Value<'js>> {
            s.test(&ctx, this.0, text.0)
        },
    )?
    .with_name("test")?;
    let s = state.clone();
    let replace = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              this: This<Value<'js>>,
              text: Opt<Value<'js>>,
              with: Opt<Value<'js>>|
              -> Result<Value<'js>> { s.replace(&ctx, this.0, text.0, with.0) },
    )?
    .with_name("[Symbol.replace]")?;
    let s = state;
    let matches = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, this: This<Value<'js>>, text: Opt<Value<'js>>| -> Result<Value<'js>> {
            s.matches(&ctx, this.0, text.0)
        },
    )?
    .with_name("[Symbol.match]")?;
    let installer: Function = eval(ctx, INSTALL, "sluice:regexp")?.get()?;
    installer.call::<_, ()>((key, exec, test, replace, matches))
}

/// A string argument as the specification's ToString makes it (undefined is "undefined").
fn to_js_string<'js>(ctx: &Ctx<'js>, value: Option<Value<'js>>) -> Result<rquickjs::String<'js>> {
    let value = value.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
    if let Some(s) = value.as_string() {
        return Ok(s.clone());
    }
    Ok(value.get::<Coerced<rquickjs::String>>()?.0)
}

/// `this` when it is a real RegExp object.
fn regexp<'js>(this: &Value<'js>) -> Option<Object<'js>> {
    // SAFETY: JS_IsRegExp only reads the value's tag and class id.
    let is_regexp = unsafe { qjs::JS_IsRegExp(this.as_raw()) };
    if is_regexp {
        this.as_object().cloned()
    } else {
        None
    }
}

/// The specification's ToLength of `lastIndex`, when it is a plain number (else `None`, and
/// the caller falls back so that QuickJS does any coercion).
fn last_index(re: &Object<'_>) -> Result<Option<usize>> {
    let value: Value = re.get(PredefinedAtom::LastIndex)?;
    if let Some(n) = value.as_int() {
        return Ok(Some(usize::try_from(n).unwrap_or(0)));
    }
    Ok(value.as_float().map(|f| {
        if f.is_nan() || f <= 0.0 {
            0
        } else {
            // Anything past the string's length just fails to match.
            f.min(f64::from(u32::MAX)) as usize
        }
    }))
}

fn set_last_index(re: &Object<'_>, index: usize) -> Result<()> {
    re.set(PredefinedAtom::LastIndex, index_value(re.ctx(), index))
}

/// A UTF-16 index as a JavaScript number (an integer value when it fits).
fn index_value<'js>(ctx: &Ctx<'js>, index: usize) -> Value<'js> {
    match i32::try_from(index) {
        Ok(small) => Value::new_int(ctx.clone(), small),
        Err(_) => Value::new_float(ctx.clone(), index as f64),
    }
}

/// What a native found it can do for one call.
enum Plan<'js> {
    /// Run on the compiled engine: the pattern id, the RegExp, the text (JS and Rust).
    Fast(usize, Object<'js>, rquickjs::String<'js>, String),
    /// Hand the call to QuickJS's original with these arguments.
    Fallback(Value<'js>, rquickjs::String<'js>),
}

impl State {
    /// The compiled pattern of `re`, computed and stored on first use.
    fn compiled_id<'js>(&self, ctx: &Ctx<'js>, re: &Object<'js>) -> Result<Option<usize>> {
        let key = self.key.clone().restore(ctx)?;
        let stored: Value = re.get(key.clone())?;
        if let Some(id) = stored.as_int() {
            return Ok(usize::try_from(id).ok());
        }
        let source: String = self
            .originals
            .source
            .clone()
            .restore(ctx)?
            .call((This(re.clone()),))?;
        let flags: String = self
            .originals
            .flags
            .clone()
            .restore(ctx)?
            .call((This(re.clone()),))?;
        let id = self.cache.borrow_mut().id(&source, &flags);
        let marker = id.and_then(|id| i32::try_from(id).ok()).unwrap_or(-1);
        // A frozen RegExp cannot take the marker: it is looked up by text each time instead.
        if re.prop(key, Property::from(marker).configurable()).is_err() {
            let _ = ctx.catch();
        }
        Ok(id)
    }

    /// Whether `re.exec` is the native one (nobody replaced it).
    fn exec_is_native<'js>(&self, ctx: &Ctx<'js>, re: &Object<'js>) -> Result<bool> {
        let exec: Value = re.get(PredefinedAtom::Exec)?;
        let Some(native) = self.exec.borrow().clone() else {
            return Ok(false);
        };
        Ok(exec == native.restore(ctx)?.into_value())
    }

    /// Decides between the compiled engine and QuickJS's for `this` and the text argument.
    fn plan<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
        check_exec: bool,
    ) -> Result<Plan<'js>> {
        let Some(re) = regexp(&this) else {
            let text = to_js_string(ctx, text)?;
            return Ok(Plan::Fallback(this, text));
        };
        let id = self.compiled_id(ctx, &re)?;
        let text = to_js_string(ctx, text)?;
        let Some(id) = id else {
            return Ok(Plan::Fallback(this, text));
        };
        if check_exec && !self.exec_is_native(ctx, &re)? {
            return Ok(Plan::Fallback(this, text));
        }
        // Lone surrogates do not convert to UTF-8: QuickJS's engine handles them.
        let Ok(haystack) = text.to_string() else {
            return Ok(Plan::Fallback(this, text));
        };
        let accepted = self
            .cache
            .borrow_mut()
            .ready(id, haystack.len())
            .is_some_and(|compiled| compiled.accepts(&haystack));
        if !accepted {
            return Ok(Plan::Fallback(this, text));
        }
        Ok(Plan::Fast(id, re, text, haystack))
    }

    /// Where a `g` or `y` search starts (UTF-16 `lastIndex` as a byte index); `None` to
    /// fall back (a non-number `lastIndex`, or one inside a surrogate pair without `u`).
    fn start(&self, re: &Object<'_>, haystack: &str, unicode: bool) -> Result<Option<usize>> {
        Ok(last_index(re)?.and_then(|index| byte_index(haystack, index, unicode)))
    }

    fn exec<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let fallback = |this: Value<'js>, text: rquickjs::String<'js>| -> Result<Value<'js>> {
            let exec = self.originals.exec.clone().restore(ctx)?;
            exec.call((This(this), text))
        };
        let (id, re, text, haystack) = match self.plan(ctx, this, text, false)? {
            Plan::Fast(id, re, text, haystack) => (id, re, text, haystack),
            Plan::Fallback(this, text) => return fallback(this, text),
        };
        let mut cache = self.cache.borrow_mut();
        let Some(compiled) = cache.get(id) else {
            drop(cache);
            return fallback(re.into_value(), text);
        };
        if !compiled.captures_exact() {
            drop(cache);
            return fallback(re.into_value(), text);
        }
        let flags = compiled.flags();
        let tracks = flags.global || flags.sticky;
        let start = if tracks {
            match self.start(&re, &haystack, flags.unicode)? {
                Some(start) => start,
                None => {
                    drop(cache);
                    return fallback(re.into_value(), text);
                }
            }
        } else {
            0
        };
        let Some(groups) = compiled.captures(&haystack, start) else {
            if tracks {
                set_last_index(&re, 0)?;
            }
            return Ok(Value::new_null(ctx.clone()));
        };
        if tracks {
            let end = groups[0].map_or(start, |(_, end)| end);
            set_last_index(&re, utf16_index(&haystack, end))?;
        }
        let names = compiled.group_names().to_vec();
        let named = compiled.has_named_groups();
        drop(cache);
        exec_result(ctx, &haystack, text, &groups, &names, named)
    }

    fn test<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let fallback = |this: Value<'js>, text: rquickjs::String<'js>| -> Result<Value<'js>> {
            let test = self.originals.test.clone().restore(ctx)?;
            test.call((This(this), text))
        };
        let (id, re, text, haystack) = match self.plan(ctx, this, text, true)? {
            Plan::Fast(id, re, text, haystack) => (id, re, text, haystack),
            Plan::Fallback(this, text) => return fallback(this, text),
        };
        let mut cache = self.cache.borrow_mut();
        let Some(compiled) = cache.get(id) else {
            drop(cache);
            return fallback(re.into_value(), text);
        };
        let flags = compiled.flags();
        if !(flags.global || flags.sticky) {
            let found = compiled.find(&haystack, 0).is_some();
            return Ok(Value::new_bool(ctx.clone(), found));
        }
        let Some(start) = self.start(&re, &haystack, flags.unicode)? else {
            drop(cache);
            return fallback(re.into_value(), text);
        };
        let found = compiled.find(&haystack, start);
        drop(cache);
        let index = found.map_or(0, |(_, end)| utf16_index(&haystack, end));
        set_last_index(&re, index)?;
        Ok(Value::new_bool(ctx.clone(), found.is_some()))
    }

    fn matches<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let fallback = |this: Value<'js>, text: rquickjs::String<'js>| -> Result<Value<'js>> {
            let matches = self.originals.matches.clone().restore(ctx)?;
            matches.call((This(this), text))
        };
        let (id, re, text, haystack) = match self.plan(ctx, this, text, true)? {
            Plan::Fast(id, re, text, haystack) => (id, re, text, haystack),
            Plan::Fallback(this, text) => return fallback(this, text),
        };
        let spans = {
            let mut cache = self.cache.borrow_mut();
            let Some(compiled) = cache.get(id) else {
                drop(cache);
                return fallback(re.into_value(), text);
            };
            if !compiled.flags().global {
                drop(cache);
                return self.exec(ctx, re.into_value(), Some(text.into_value()));
            }
            compiled.all(&haystack)
        };
        set_last_index(&re, 0)?;
        if spans.is_empty() {
            return Ok(Value::new_null(ctx.clone()));
        }
        let array = Array::new(ctx.clone())?;
        for (index, (start, end)) in spans.into_iter().enumerate() {
            array.set(index, &haystack[start..end])?;
        }
        Ok(array.into_value())
    }

    fn replace<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
        with: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let with = with.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
        let plan = self.plan(ctx, this, text, true)?;
        let function = with.as_function().cloned();
        let template = match &function {
            Some(_) => None,
            None => Some(with.get::<Coerced<String>>()?.0),
        };
        let fallback = |this: Value<'js>, text: rquickjs::String<'js>| -> Result<Value<'js>> {
            let replace = self.originals.replace.clone().restore(ctx)?;
            match &template {
                Some(template) => replace.call((This(this), text, template.as_str())),
                None => replace.call((This(this), text, with.clone())),
            }
        };
        let (id, re, text, haystack) = match plan {
            Plan::Fast(id, re, text, haystack) => (id, re, text, haystack),
            Plan::Fallback(this, text) => return fallback(this, text),
        };
        let needs_captures = template.as_deref().is_none_or(template_uses_captures);
        let (matches, names) = {
            let mut cache = self.cache.borrow_mut();
            let Some(compiled) = cache.get(id) else {
                drop(cache);
                return fallback(re.into_value(), text);
            };
            if needs_captures && !compiled.captures_exact() {
                drop(cache);
                return fallback(re.into_value(), text);
            }
            let Some(matches) =
                self.matches_for_replace(&re, compiled, &haystack, needs_captures)?
            else {
                drop(cache);
                return fallback(re.into_value(), text);
            };
            (matches, compiled.group_names().to_vec())
        };
        if matches.is_empty() {
            return Ok(text.into_value());
        }
        let mut out = String::with_capacity(haystack.len());
        let mut next = 0;
        for groups in &matches {
            let Some((start, end)) = groups[0] else {
                continue;
            };
            out.push_str(&haystack[next..start]);
            let found = Found {
                haystack: &haystack,
                groups,
                names: &names,
            };
            match (&function, &template) {
                (Some(function), _) => {
                    let value = call_replacer(ctx, function, &found, text.clone())?;
                    out.push_str(&value);
                }
                (None, Some(template)) => expand(template, &found, &mut out),
                (None, None) => {}
            }
            next = end;
        }
        out.push_str(&haystack[next..]);
        Ok(rquickjs::String::from_str(ctx.clone(), &out)?.into_value())
    }

    /// The matches `[Symbol.replace]` replaces, as group spans (just the whole match unless
    /// `captures`), with `lastIndex` updated as the specification's exec calls would leave it;
    /// `None` to fall back.
    fn matches_for_replace(
        &self,
        re: &Object<'_>,
        compiled: &mut Compiled,
        haystack: &str,
        captures: bool,
    ) -> Result<Option<Vec<Vec<Option<Span>>>>> {
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
            set_last_index(re, 0)?;
            return Ok(Some(out));
        }
        if !flags.sticky {
            return Ok(Some(one(0).into_iter().collect()));
        }
        let Some(start) = self.start(re, haystack, flags.unicode)? else {
            return Ok(None);
        };
        let found = one(start);
        let index = found
            .as_ref()
            .and_then(|groups| groups[0])
            .map_or(0, |(_, end)| utf16_index(haystack, end));
        set_last_index(re, index)?;
        Ok(Some(found.into_iter().collect()))
    }
}

/// Calls a replacement function with (match, p1.., position, string[, groups]).
fn call_replacer<'js>(
    ctx: &Ctx<'js>,
    function: &Function<'js>,
    found: &Found<'_>,
    text: rquickjs::String<'js>,
) -> Result<String> {
    let named = found.names.iter().any(Option::is_some);
    let mut args = Args::new(ctx.clone(), found.groups.len() + 3);
    for span in found.groups {
        args.push_arg(span_value(ctx, found.haystack, *span)?)?;
    }
    let position = found.groups[0].map_or(0, |(start, _)| start);
    args.push_arg(index_value(ctx, utf16_index(found.haystack, position)))?;
    args.push_arg(text)?;
    if named {
        args.push_arg(groups_object(
            ctx,
            found.haystack,
            found.groups,
            found.names,
        )?)?;
    }
    let value: Value = function.call_arg(args)?;
    Ok(value.get::<Coerced<String>>()?.0)
}

fn span_value<'js>(ctx: &Ctx<'js>, haystack: &str, span: Option<Span>) -> Result<Value<'js>> {
    match span {
        Some((start, end)) => {
            Ok(rquickjs::String::from_str(ctx.clone(), &haystack[start..end])?.into_value())
        }
        None => Ok(Value::new_undefined(ctx.clone())),
    }
}

/// `groups`: an object without prototype, one property per named group in pattern order.
fn groups_object<'js>(
    ctx: &Ctx<'js>,
    haystack: &str,
    groups: &[Option<Span>],
    names: &[Option<String>],
) -> Result<Value<'js>> {
    let object = Object::new(ctx.clone())?;
    object.set_prototype(None)?;
    for (index, name) in names.iter().enumerate() {
        if let Some(name) = name {
            let span = groups.get(index + 1).copied().flatten();
            object.set(name.as_str(), span_value(ctx, haystack, span)?)?;
        }
    }
    Ok(object.into_value())
}

/// The array `exec` returns: the match and groups, `index`, `input`, `groups`.
fn exec_result<'js>(
    ctx: &Ctx<'js>,
    haystack: &str,
    text: rquickjs::String<'js>,
    groups: &[Option<Span>],
    names: &[Option<String>],
    named: bool,
) -> Result<Value<'js>> {
    let array = Array::new(ctx.clone())?;
    for (index, span) in groups.iter().enumerate() {
        array.set(index, span_value(ctx, haystack, *span)?)?;
    }
    let start = groups[0].map_or(0, |(start, _)| start);
    let object = array.as_object();
    object.set(
        PredefinedAtom::Index,
        index_value(ctx, utf16_index(haystack, start)),
    )?;
    object.set(PredefinedAtom::Input, text)?;
    let groups = if named {
        groups_object(ctx, haystack, groups, names)?
    } else {
        Value::new_undefined(ctx.clone())
    };
    object.set(PredefinedAtom::Groups, groups)?;
    Ok(array.into_value())
}
