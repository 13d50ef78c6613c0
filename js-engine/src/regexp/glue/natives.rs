//! The four natives: each plans, runs its fast path, and falls back to QuickJS's original
//! when the plan or the fast path (`Ok(None)`) declines.

use rquickjs::{Array, Ctx, Function, Result, Value};

use super::plan::{Fast, Plan, Text, set_last_index, to_js_string};
use super::values::{call_replacer, exec_result};
use super::{Native, State};
use crate::regexp::matcher::{Compiled, Found, Span, expand, next_char, template_uses_captures};

/// Group spans of each match a replacement replaces.
type Matches = Vec<Vec<Option<Span>>>;

impl State {
    /// Runs `fast` on a planned call of `native`, else QuickJS's original on (`this`, text).
    fn one_arg<'js>(
        &self,
        ctx: &Ctx<'js>,
        native: Native,
        plan: Plan<'js>,
        fast: impl FnOnce(&Fast<'js>) -> Result<Option<Value<'js>>>,
    ) -> Result<Value<'js>> {
        let call = match plan {
            Plan::Fast(call) => call,
            Plan::Fallback(this, text) => return self.fallback(ctx, native, this, (text,)),
        };
        match fast(&call)? {
            Some(value) => Ok(value),
            None => self.fallback(ctx, native, call.re.into_value(), (call.text,)),
        }
    }

    /// The compiled pattern of a planned call, for `f`; `None` if it is not compiled.
    fn with_compiled<R>(&self, id: usize, f: impl FnOnce(&mut Compiled) -> R) -> Option<R> {
        self.cache.borrow_mut().get(id).map(f)
    }

    pub(super) fn exec<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let plan = self.plan(ctx, this, text, false)?;
        self.one_arg(ctx, Native::Exec, plan, |call| self.exec_fast(ctx, call))
    }

    fn exec_fast<'js>(&self, ctx: &Ctx<'js>, call: &Fast<'js>) -> Result<Option<Value<'js>>> {
        let Some((flags, exact)) = self.with_compiled(call.id, |c| (c.flags(), c.captures_exact()))
        else {
            return Ok(None);
        };
        if !exact {
            return Ok(None);
        }
        let tracks = flags.global || flags.sticky;
        let start = match tracks {
            true => match self.start(&call.re, &call.haystack, flags.unicode)? {
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
                set_last_index(&call.re, 0)?;
            }
            return Ok(Some(Value::new_null(ctx.clone())));
        };
        if tracks {
            let end = groups[0].map_or(start, |(_, end)| end);
            set_last_index(&call.re, call.haystack.utf16_index(end))?;
        }
        let text = call.text.clone();
        exec_result(ctx, &call.haystack, text, &groups, &names, named).map(Some)
    }

    pub(super) fn test<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let plan = self.plan(ctx, this, text, true)?;
        self.one_arg(ctx, Native::Test, plan, |call| self.test_fast(ctx, call))
    }

    fn test_fast<'js>(&self, ctx: &Ctx<'js>, call: &Fast<'js>) -> Result<Option<Value<'js>>> {
        let Some(flags) = self.with_compiled(call.id, |c| c.flags()) else {
            return Ok(None);
        };
        let tracks = flags.global || flags.sticky;
        let start = match tracks {
            true => match self.start(&call.re, &call.haystack, flags.unicode)? {
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
            set_last_index(&call.re, index)?;
        }
        Ok(Some(Value::new_bool(ctx.clone(), found.is_some())))
    }

    pub(super) fn matches<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let plan = self.plan(ctx, this, text, true)?;
        self.one_arg(ctx, Native::Match, plan, |call| self.match_fast(ctx, call))
    }

    fn match_fast<'js>(&self, ctx: &Ctx<'js>, call: &Fast<'js>) -> Result<Option<Value<'js>>> {
        let Some(global) = self.with_compiled(call.id, |c| c.flags().global) else {
            return Ok(None);
        };
        if !global {
            // Without `g`, `match` is `exec`.
            let (re, text) = (call.re.clone().into_value(), call.text.clone().into_value());
            return self.exec(ctx, re, Some(text)).map(Some);
        }
        let Some(spans) = self.with_compiled(call.id, |c| c.all(&call.haystack)) else {
            return Ok(None);
        };
        set_last_index(&call.re, 0)?;
        if spans.is_empty() {
            return Ok(Some(Value::new_null(ctx.clone())));
        }
        let array = Array::new(ctx.clone())?;
        for (index, (start, end)) in spans.into_iter().enumerate() {
            array.set(index, &call.haystack[start..end])?;
        }
        Ok(Some(array.into_value()))
    }

    pub(super) fn replace<'js>(
        &self,
        ctx: &Ctx<'js>,
        this: Value<'js>,
        text: Option<Value<'js>>,
        with: Option<Value<'js>>,
    ) -> Result<Value<'js>> {
        let with = with.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
        let plan = self.plan(ctx, this, text, true)?;
        // The replacement: a function, or a template (ToString once, as the specification).
        let (function, template) = match with.as_function() {
            Some(function) => (Some(function.clone()), None),
            None => (None, Some(to_js_string(ctx, Some(with.clone()))?)),
        };
        let fallback = |this: Value<'js>, text: rquickjs::String<'js>| match &template {
            Some(template) => self.fallback(ctx, Native::Replace, this, (text, template.clone())),
            None => self.fallback(ctx, Native::Replace, this, (text, with.clone())),
        };
        let call = match plan {
            Plan::Fast(call) => call,
            Plan::Fallback(this, text) => return fallback(this, text),
        };
        // The template's text, borrowed; one with a lone surrogate is left to QuickJS.
        let template_text = match &template {
            Some(template) => match Text::new(ctx, template) {
                Some(text) => Some(text),
                None => return fallback(call.re.into_value(), call.text),
            },
            None => None,
        };
        let template = template_text.as_deref();
        let Some((matches, names)) = self.replace_matches(&call, template)? else {
            return fallback(call.re.into_value(), call.text);
        };
        if matches.is_empty() {
            return Ok(call.text.into_value());
        }
        let replacement = Replacement {
            function: function.as_ref(),
            template,
        };
        let out = replacement.apply(ctx, &call, &matches, &names)?;
        Ok(rquickjs::String::from_str(ctx.clone(), &out)?.into_value())
    }

    /// The matches and group names a replacement uses; `None` to fall back.
    fn replace_matches(
        &self,
        call: &Fast<'_>,
        template: Option<&str>,
    ) -> Result<Option<(Matches, Vec<Option<String>>)>> {
        let needs_captures = template.is_none_or(template_uses_captures);
        let mut cache = self.cache.borrow_mut();
        let Some(compiled) = cache.get(call.id) else {
            return Ok(None);
        };
        if needs_captures && !compiled.captures_exact() {
            return Ok(None);
        }
        let found = matches_for_replace(self, call, compiled, needs_captures)?;
        Ok(found.map(|matches| (matches, compiled.group_names().to_vec())))
    }
}

/// What each match is replaced with.
struct Replacement<'a, 'js> {
    function: Option<&'a Function<'js>>,
    template: Option<&'a str>,
}

impl<'js> Replacement<'_, 'js> {
    /// The text with every match in `matches` replaced.
    fn apply(
        &self,
        ctx: &Ctx<'js>,
        call: &Fast<'js>,
        matches: &Matches,
        names: &[Option<String>],
    ) -> Result<String> {
        let haystack = call.haystack.as_str();
        let ascii = call.haystack.ascii;
        let mut out = String::with_capacity(haystack.len());
        let mut next = 0;
        for groups in matches {
            let Some((start, end)) = groups[0] else {
                continue;
            };
            out.push_str(&haystack[next..start]);
            let found = Found {
                haystack,
                ascii,
                groups,
                names,
            };
            if let Some(function) = self.function {
                out.push_str(&call_replacer(ctx, function, &found, call.text.clone())?);
            } else if let Some(template) = self.template {
                expand(template, &found, &mut out);
            }
            next = end;
        }
        out.push_str(&haystack[next..]);
        Ok(out)
    }
}

/// The matches `[Symbol.replace]` replaces, as group spans (just the whole match unless
/// `captures`), with `lastIndex` updated as the specification's exec calls would leave it;
/// `None` to fall back.
fn matches_for_replace(
    state: &State,
    call: &Fast<'_>,
    compiled: &mut Compiled,
    captures: bool,
) -> Result<Option<Matches>> {
    let (re, text) = (&call.re, &call.haystack);
    let haystack = text.as_str();
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
    let Some(start) = state.start(re, text, flags.unicode)? else {
        return Ok(None);
    };
    let found = one(start);
    let index = found
        .as_ref()
        .and_then(|groups| groups[0])
        .map_or(0, |(_, end)| text.utf16_index(end));
    set_last_index(re, index)?;
    Ok(Some(found.into_iter().collect()))
}
