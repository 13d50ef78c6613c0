//! Deciding, per call, between the compiled engine and QuickJS's: is `this` a real RegExp
//! with a compiled pattern, unmodified `exec`, and text (already a string) the compiled engine
//! takes? Anything else goes to QuickJS's original with the arguments untouched, so every
//! coercion and its side effects stay QuickJS's.

use rquickjs::qjs;

use super::State;
use super::raw::{Owned, Raw, RawResult, Text, get, last_index};
use crate::regexp::matcher::byte_index;

/// A call the compiled engine can take: the pattern id, the RegExp and the text (both the
/// call's own values, borrowed), and the text's UTF-8.
pub(super) struct Fast {
    pub id: usize,
    pub re: qjs::JSValue,
    pub text: qjs::JSValue,
    pub haystack: Text,
}

impl State {
    /// The pattern id stored on `re` under the private key, if any: one property read.
    ///
    /// # Safety
    /// `re` is a live object of `ctx`.
    unsafe fn stored_id(&self, ctx: Raw, re: qjs::JSValue) -> RawResult<Option<i32>> {
        // SAFETY: as the caller promises; `self.key` is a live atom (see `install`).
        let value = unsafe { get(ctx, re, self.key)? };
        let raw = value.raw();
        // SAFETY: tag read, then the payload of the tag just checked.
        Ok(unsafe { qjs::JS_IsInt(raw).then(|| qjs::JS_VALUE_GET_INT(raw)) })
    }

    /// The compiled pattern of `re`, computed and stored on first use.
    ///
    /// # Safety
    /// `re` is a live RegExp object of `ctx`.
    unsafe fn compiled_id(&self, ctx: Raw, re: qjs::JSValue) -> RawResult<Option<usize>> {
        // SAFETY: as the caller promises.
        if let Some(id) = unsafe { self.stored_id(ctx, re)? } {
            return Ok(usize::try_from(id).ok());
        }
        // SAFETY: as the caller promises; the getters are QuickJS's, alive for the runtime.
        let (source, flags) = unsafe {
            (
                getter_text(ctx, self.originals.source, re)?,
                getter_text(ctx, self.originals.flags, re)?,
            )
        };
        let (Some(source), Some(flags)) = (source, flags) else {
            return Ok(None);
        };
        let id = self.cache.borrow_mut().id(&source, &flags);
        let marker = id.and_then(|id| i32::try_from(id).ok()).unwrap_or(-1);
        // A frozen RegExp cannot take the marker: it is looked up by text each time instead.
        // SAFETY: `re` is a live object and `self.key` a live atom; the value is an integer
        // (not reference-counted), which QuickJS takes.
        let status = unsafe {
            qjs::JS_DefinePropertyValue(
                ctx,
                re,
                self.key,
                qjs::JS_MKVAL(qjs::JS_TAG_INT, marker),
                qjs::JS_PROP_CONFIGURABLE as i32,
            )
        };
        if status < 0 {
            // SAFETY: the pending exception of the failed definition, released.
            unsafe { qjs::JS_FreeValue(ctx, qjs::JS_GetException(ctx)) };
        }
        Ok(id)
    }

    /// Whether `re.exec` is the native one (nobody replaced it).
    ///
    /// # Safety
    /// `re` is a live object of `ctx`.
    unsafe fn exec_is_native(&self, ctx: Raw, re: qjs::JSValue) -> RawResult<bool> {
        // SAFETY: as the caller promises; `JS_ATOM_exec` is predefined.
        let exec = unsafe { get(ctx, re, qjs::JS_ATOM_exec as qjs::JSAtom)? };
        // SAFETY: tag read.
        let is_object = unsafe { qjs::JS_IsObject(exec.raw()) };
        // The installed function is alive for the runtime's life, so its address is its
        // identity.
        Ok(is_object && super::object_address(exec.raw()) == self.exec_object)
    }

    /// Decides between the compiled engine (`Some`) and QuickJS's original (`None`) for
    /// `this` and the text argument; `check_exec` for the natives the specification defines
    /// through `exec`.
    ///
    /// # Safety
    /// `this` and `text` are the running native's own values.
    pub(super) unsafe fn plan(
        &self,
        ctx: Raw,
        this: qjs::JSValue,
        text: qjs::JSValue,
        check_exec: bool,
    ) -> RawResult<Option<Fast>> {
        // SAFETY: tag and class reads.
        let candidate = unsafe { qjs::JS_IsString(text) && qjs::JS_IsRegExp(this) };
        if !candidate {
            return Ok(None);
        }
        // SAFETY: `this` is a live RegExp of `ctx`.
        let Some(id) = (unsafe { self.compiled_id(ctx, this)? }) else {
            return Ok(None);
        };
        // SAFETY: as above.
        if check_exec && !unsafe { self.exec_is_native(ctx, this)? } {
            return Ok(None);
        }
        // Lone surrogates do not convert to UTF-8: QuickJS's engine handles them.
        // SAFETY: `text` is a live string, alive for the call (the caller holds it).
        let Some(haystack) = (unsafe { Text::new(ctx, text) }) else {
            return Ok(None);
        };
        let accepted = self
            .cache
            .borrow_mut()
            .ready(id, haystack.len())
            .is_some_and(|compiled| compiled.accepts(&haystack, haystack.ascii));
        if !accepted {
            return Ok(None);
        }
        Ok(Some(Fast {
            id,
            re: this,
            text,
            haystack,
        }))
    }

    /// Where a `g` or `y` search starts (UTF-16 `lastIndex` as a byte index); `None` to
    /// fall back (a non-number `lastIndex`, or one inside a surrogate pair without `u`).
    pub(super) fn start(&self, ctx: Raw, call: &Fast, unicode: bool) -> RawResult<Option<usize>> {
        // SAFETY: `call.re` is the running native's live RegExp.
        let index = unsafe { last_index(ctx, call.re)? };
        if call.haystack.ascii {
            return Ok(index);
        }
        Ok(index.and_then(|index| byte_index(&call.haystack, index, unicode)))
    }
}

/// `getter.call(re)` as a Rust string (`source` and `flags`, QuickJS's own getters); `None`
/// for text that is not UTF-8 (a lone surrogate in a source: no compiled pattern takes it).
///
/// # Safety
/// `getter` and `re` are live values of `ctx`.
unsafe fn getter_text(
    ctx: Raw,
    getter: qjs::JSValue,
    re: qjs::JSValue,
) -> RawResult<Option<String>> {
    // SAFETY: as the caller promises; the result is owned.
    let value = unsafe { Owned::new(ctx, qjs::JS_Call(ctx, getter, re, 0, std::ptr::null_mut()))? };
    // SAFETY: tag read; then a live string, alive while `text` is.
    let text = unsafe {
        if !qjs::JS_IsString(value.raw()) {
            return Ok(None);
        }
        Text::new(ctx, value.raw())
    };
    Ok(text.map(|text| text.as_str().to_string()))
}
