//! The natives' hot path on QuickJS's C API: borrowed `JSValueConst` arguments, owned values
//! released on drop, a pending exception as [`Thrown`]. No rquickjs `Ctx` or `Value` is made
//! here: each of those holds a counted reference to the context (a `JS_DupContext` and a
//! `JS_FreeContext` per value), which was 7.4% of a scrub's guest time. The paths that build
//! objects or call back into JavaScript cross to rquickjs once, through [`Bridge`].

use std::ptr::NonNull;

use rquickjs::{Ctx, Exception, Value, qjs};

use crate::regexp::matcher::utf16_index;

/// The context a native was called in.
pub(super) type Raw = *mut qjs::JSContext;

/// A JavaScript exception is pending in the context: the native returns `JS_EXCEPTION`.
pub(super) struct Thrown;

pub(super) type RawResult<T> = Result<T, Thrown>;

/// Argument `index` of a native's call, `undefined` past the ones passed.
pub(super) fn arg(argc: i32, argv: *const qjs::JSValue, index: usize) -> qjs::JSValue {
    let passed = usize::try_from(argc).unwrap_or(0);
    if index >= passed || argv.is_null() {
        return qjs::JS_UNDEFINED;
    }
    // SAFETY: QuickJS passes `argc` readable values at `argv`; `index < argc`.
    unsafe { *argv.add(index) }
}

/// An owned value (one reference), released on drop.
pub(super) struct Owned {
    ctx: Raw,
    value: qjs::JSValue,
}

impl Owned {
    /// Takes ownership of `value`, a result QuickJS just returned; its exception marker is
    /// [`Thrown`].
    ///
    /// # Safety
    /// `value` is owned by the caller (one reference to hand over) and belongs to `ctx`.
    pub unsafe fn new(ctx: Raw, value: qjs::JSValue) -> RawResult<Owned> {
        // SAFETY: reads the tag only.
        if unsafe { qjs::JS_IsException(value) } {
            return Err(Thrown);
        }
        Ok(Owned { ctx, value })
    }

    pub fn raw(&self) -> qjs::JSValue {
        self.value
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the one reference `new` took over, released once.
        unsafe { qjs::JS_FreeValue(self.ctx, self.value) }
    }
}

/// `object[atom]`.
///
/// # Safety
/// `object` is a live value of `ctx`, `atom` a live atom of its runtime.
pub(super) unsafe fn get(ctx: Raw, object: qjs::JSValue, atom: qjs::JSAtom) -> RawResult<Owned> {
    // SAFETY: as the caller promises; the result is owned.
    unsafe { Owned::new(ctx, qjs::JS_GetProperty(ctx, object, atom)) }
}

/// `re.lastIndex = index` (a UTF-16 index).
///
/// # Safety
/// `re` is a live object of `ctx`.
pub(super) unsafe fn set_last_index(ctx: Raw, re: qjs::JSValue, index: usize) -> RawResult<()> {
    // SAFETY: as the caller promises; a number is not reference-counted, QuickJS takes it.
    let status = unsafe {
        qjs::JS_SetProperty(
            ctx,
            re,
            qjs::JS_ATOM_lastIndex as qjs::JSAtom,
            number(index),
        )
    };
    if status < 0 { Err(Thrown) } else { Ok(()) }
}

/// The specification's ToLength of `re.lastIndex` when it is a plain number; `None` for
/// anything else (the caller falls back so that QuickJS does the coercion).
///
/// # Safety
/// `re` is a live object of `ctx`.
pub(super) unsafe fn last_index(ctx: Raw, re: qjs::JSValue) -> RawResult<Option<usize>> {
    // SAFETY: as the caller promises; `JS_ATOM_lastIndex` is predefined.
    let value = unsafe { get(ctx, re, qjs::JS_ATOM_lastIndex as qjs::JSAtom)? };
    let raw = value.raw();
    // SAFETY: tag reads and the payload of the tag just checked.
    let index = unsafe {
        if qjs::JS_IsInt(raw) {
            Some(usize::try_from(qjs::JS_VALUE_GET_INT(raw)).unwrap_or(0))
        } else if qjs::JS_IsNumber(raw) {
            let f = qjs::JS_VALUE_GET_FLOAT64(raw);
            // Anything past the string's length just fails to match.
            Some(if f.is_nan() || f <= 0.0 {
                0
            } else {
                f.min(f64::from(u32::MAX)) as usize
            })
        } else {
            None
        }
    };
    Ok(index)
}

/// A UTF-16 index as a JavaScript number (an integer value when it fits).
pub(super) fn number(index: usize) -> qjs::JSValue {
    match i32::try_from(index) {
        Ok(small) => qjs::JS_MKVAL(qjs::JS_TAG_INT, small),
        Err(_) => qjs::JS_NewFloat64(index as f64),
    }
}

/// A new string from UTF-8 `text`.
///
/// # Safety
/// `ctx` is the live context of the call.
pub(super) unsafe fn new_string(ctx: Raw, text: &str) -> qjs::JSValue {
    // SAFETY: `text` is valid for its length (a wasm32 `usize` is QuickJS's `size_t`); the
    // result is owned (or the exception marker).
    unsafe { qjs::JS_NewStringLen(ctx, text.as_ptr().cast(), text.len() as qjs::size_t) }
}

/// A JavaScript string's UTF-8 text, borrowed from QuickJS: an ASCII string's own buffer (no
/// copy), else QuickJS's conversion; released on drop.
pub(super) struct Text {
    ctx: Raw,
    ptr: *const u8,
    len: usize,
    /// Every byte is ASCII: byte indices are UTF-16 indices, no character is outside the BMP.
    pub ascii: bool,
}

impl Text {
    /// The text of the string `s`; `None` for a string with a lone surrogate (not UTF-8) or
    /// out of memory (the caller falls back, and QuickJS reports it).
    ///
    /// # Safety
    /// `s` is a live string value of `ctx`, alive as long as the result.
    pub unsafe fn new(ctx: Raw, s: qjs::JSValue) -> Option<Text> {
        let mut len = 0;
        // SAFETY: as the caller promises; the buffer (kept alive by the reference
        // JS_ToCStringLen takes) is released by `drop` through JS_FreeCString.
        let ptr = unsafe { qjs::JS_ToCStringLen(ctx, &mut len, s) };
        if ptr.is_null() {
            // SAFETY: the failed conversion left an exception that the fallback will raise
            // again; it must not stay pending.
            unsafe { qjs::JS_FreeValue(ctx, qjs::JS_GetException(ctx)) };
            return None;
        }
        let mut text = Text {
            ctx,
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

impl Drop for Text {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from JS_ToCStringLen on this context and is released once.
        unsafe { qjs::JS_FreeCString(self.ctx, self.ptr.cast()) }
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// The rquickjs view of a native's context, for the paths that build objects (`exec`'s
/// array) or call JavaScript (a replacement function): one context reference for the call.
pub(super) struct Bridge<'js> {
    pub ctx: Ctx<'js>,
}

impl<'js> Bridge<'js> {
    /// # Safety
    /// `ctx` is the live context of the running native; the bridge lives within the call.
    pub unsafe fn new(ctx: NonNull<qjs::JSContext>) -> Bridge<'js> {
        // SAFETY: as the caller promises; `from_raw` takes its own context reference.
        Bridge {
            ctx: unsafe { Ctx::from_raw(ctx) },
        }
    }

    /// A borrowed value of the call (an argument, `this`) as an rquickjs value.
    pub fn value(&self, value: qjs::JSValue) -> Value<'js> {
        // SAFETY: `value` is a live value of this context; the duplicate is the reference
        // the rquickjs value releases.
        unsafe {
            let owned = qjs::JS_DupValue(self.ctx.as_raw().as_ptr(), value);
            Value::from_raw(self.ctx.clone(), owned)
        }
    }

    /// An rquickjs result as a native's return: the value (a reference the caller owns), or
    /// `JS_EXCEPTION` with the error pending.
    pub fn finish(&self, result: rquickjs::Result<Value<'js>>) -> RawResult<qjs::JSValue> {
        let raw = self.ctx.as_raw().as_ptr();
        match result {
            // SAFETY: a second reference for the caller; `value`'s own is released on drop.
            Ok(value) => Ok(unsafe { qjs::JS_DupValue(raw, value.as_raw()) }),
            Err(rquickjs::Error::Exception) => Err(Thrown),
            Err(rquickjs::Error::Allocation) => {
                // SAFETY: throws on the live context.
                unsafe { qjs::JS_ThrowOutOfMemory(raw) };
                Err(Thrown)
            }
            Err(other) => {
                let _ = Exception::throw_type(&self.ctx, &other.to_string());
                Err(Thrown)
            }
        }
    }
}
