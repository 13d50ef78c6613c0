//! Deciding, per call, between the compiled engine and QuickJS's: is `this` a real RegExp
//! with a compiled pattern, unmodified `exec`, and text the compiled engine takes?

use rquickjs::atom::PredefinedAtom;
use rquickjs::function::This;
use rquickjs::{Coerced, Ctx, Object, Result, Value, qjs};

use super::State;
use crate::regexp::matcher::{byte_index, utf16_index};

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
    pub haystack: Text<'js>,
}

/// A JavaScript string's UTF-8 text, borrowed from QuickJS: an ASCII string's own buffer (no
/// copy), else QuickJS's conversion; released on drop.
pub(super) struct Text<'js> {
    ctx: Ctx<'js>,
    ptr: *const u8,
    len: usize,
    /// Every byte is ASCII: byte indices are UTF-16 indices, no character is outside the BMP.
    pub ascii: bool,
}

impl<'js> Text<'js> {
    /// The text of `s`; `None` for a string with a lone surrogate (not UTF-8).
    pub fn new(ctx: &Ctx<'js>, s: &rquickjs::String<'js>) -> Option<Text<'js>> {
        let mut len = 0;
        // SAFETY: `s` is a live string of `ctx`; the result (QuickJS's buffer, kept alive by
        // the reference JS_ToCStringLen takes) is released by `drop` through JS_FreeCString.
        let ptr = unsafe { qjs::JS_ToCStringLen(ctx.as_raw().as_ptr(), &mut len, s.as_raw()) };
        if ptr.is_null() {
            return None;
        }
        let mut text = Text {
            ctx: ctx.clone(),
            ptr: ptr.cast(),
            len,
            ascii: false,
        };
        let bytes = text.bytes();
        let ascii = bytes.is_ascii();
        // QuickJS writes a lone surrogate as its 3-byte form, which is not UTF-8; an ASCII
        // text needs no check.
        if !ascii && std::str::from_utf8(bytes).is_err() {
            return None;
        }
        text.ascii = ascii;
        Some(text)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: QuickJS's buffer of `len` bytes, alive until `drop`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: checked to be UTF-8 in `new` (ASCII, or `from_utf8`).
        unsafe { std::str::from_utf8_unchecked(self.bytes()) }
    }

    /// The UTF-16 index of byte `at` (a character boundary).
    pub fn utf16_index(&self, at: usize) -> usize {
        if self.ascii {
            at
        } else {
            utf16_index(self.as_str(), at)
        }
    }
}

impl Drop for Text<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from JS_ToCStringLen on this context and is released once.
        unsafe { qjs::JS_FreeCString(self.ctx.as_raw().as_ptr(), self.ptr.cast()) }
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
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
    fn exec_is_native(&self, re: &Object<'_>) -> Result<bool> {
        let exec: Value = re.get(PredefinedAtom::Exec)?;
        // The installed function is alive for the runtime's life, so its address is its
        // identity.
        Ok(exec
            .as_object()
            .is_some_and(|object| super::object_address(object.as_raw()) == self.exec_object.get()))
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
        if check_exec && !self.exec_is_native(&re)? {
            return Ok(Plan::Fallback(this, text));
        }
        // Lone surrogates do not convert to UTF-8: QuickJS's engine handles them.
        let Some(haystack) = Text::new(ctx, &text) else {
            return Ok(Plan::Fallback(this, text));
        };
        let accepted = self
            .cache
            .borrow_mut()
            .ready(id, haystack.len())
            .is_some_and(|compiled| compiled.accepts(&haystack, haystack.ascii));
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
        haystack: &Text<'_>,
        unicode: bool,
    ) -> Result<Option<usize>> {
        let index = last_index(re)?;
        if haystack.ascii {
            return Ok(index);
        }
        Ok(index.and_then(|index| byte_index(haystack, index, unicode)))
    }
}
