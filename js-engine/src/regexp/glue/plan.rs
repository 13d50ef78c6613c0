//! Deciding, per call, between the compiled engine and QuickJS's: is `this` a real RegExp
//! with a compiled pattern, unmodified `exec`, and text the compiled engine takes?

use rquickjs::atom::PredefinedAtom;
use rquickjs::function::This;
use rquickjs::{Coerced, Ctx, Object, Result, Value, qjs};

use super::State;
use crate::regexp::matcher::byte_index;

/// What a native found it can do for one call.
pub(super) enum Plan<'js> {
    /// Run on the compiled engine.
    Fast(Fast<'js>),
    /// Hand the call to QuickJS's original with `this` and the text.
    Fallback(Value<'js>, rquickjs::String<'js>),
}

/// A call the compiled engine can take: the pattern id, the RegExp, the text (JS and UTF-8).
pub(super) struct Fast<'js> {
    pub id: usize,
    pub re: Object<'js>,
    pub text: rquickjs::String<'js>,
    pub haystack: String,
}

/// A string argument as the specification's ToString makes it (undefined is "undefined").
pub(super) fn to_js_string<'js>(
    ctx: &Ctx<'js>,
    value: Option<Value<'js>>,
) -> Result<rquickjs::String<'js>> {
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

pub(super) fn set_last_index(re: &Object<'_>, index: usize) -> Result<()> {
    re.set(PredefinedAtom::LastIndex, index_value(re.ctx(), index))
}

/// A UTF-16 index as a JavaScript number (an integer value when it fits).
pub(super) fn index_value<'js>(ctx: &Ctx<'js>, index: usize) -> Value<'js> {
    match i32::try_from(index) {
        Ok(small) => Value::new_int(ctx.clone(), small),
        Err(_) => Value::new_float(ctx.clone(), index as f64),
    }
}

impl State {
    /// `re[key]`: the pattern id stored on the object, if any. One property read by atom.
    fn stored_id<'js>(&self, ctx: &Ctx<'js>, re: &Object<'js>) -> Result<Value<'js>> {
        // SAFETY: `re` is a live object of `ctx` and `self.key` a live atom (see `install`);
        // the result is owned, or the exception marker.
        let value = unsafe {
            let raw = qjs::JS_GetProperty(ctx.as_raw().as_ptr(), re.as_raw(), self.key);
            Value::from_raw(ctx.clone(), raw)
        };
        if value.is_exception() {
            return Err(rquickjs::Error::Exception);
        }
        Ok(value)
    }

    /// The compiled pattern of `re`, computed and stored on first use.
    fn compiled_id<'js>(&self, ctx: &Ctx<'js>, re: &Object<'js>) -> Result<Option<usize>> {
        if let Some(id) = self.stored_id(ctx, re)?.as_int() {
            return Ok(usize::try_from(id).ok());
        }
        let read = |getter: &rquickjs::Persistent<rquickjs::Function<'static>>| {
            getter
                .clone()
                .restore(ctx)?
                .call::<_, String>((This(re.clone()),))
        };
        let source = read(&self.originals.source)?;
        let flags = read(&self.originals.flags)?;
        let id = self.cache.borrow_mut().id(&source, &flags);
        let marker = id.and_then(|id| i32::try_from(id).ok()).unwrap_or(-1);
        // A frozen RegExp cannot take the marker: it is looked up by text each time instead.
        // SAFETY: `re` is a live object and `self.key` a live atom; the value is an integer
        // (not reference-counted), which QuickJS takes.
        let status = unsafe {
            qjs::JS_DefinePropertyValue(
                ctx.as_raw().as_ptr(),
                re.as_raw(),
                self.key,
                Value::new_int(ctx.clone(), marker).as_raw(),
                qjs::JS_PROP_CONFIGURABLE as i32,
            )
        };
        if status < 0 {
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

    /// Decides between the compiled engine and QuickJS's for `this` and the text argument;
    /// `check_exec` for the natives the specification defines through `exec`.
    pub(super) fn plan<'js>(
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
        Ok(Plan::Fast(Fast {
            id,
            re,
            text,
            haystack,
        }))
    }

    /// Where a `g` or `y` search starts (UTF-16 `lastIndex` as a byte index); `None` to
    /// fall back (a non-number `lastIndex`, or one inside a surrogate pair without `u`).
    pub(super) fn start(
        &self,
        re: &Object<'_>,
        haystack: &str,
        unicode: bool,
    ) -> Result<Option<usize>> {
        Ok(last_index(re)?.and_then(|index| byte_index(haystack, index, unicode)))
    }
}
