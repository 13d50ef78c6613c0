//! Evaluating a classic script under a file name of our choosing.
//!
//! rquickjs's `Ctx::eval` names every script `eval_script`; the engine needs the user's code
//! under its own name ([`crate::position::USER_FILE`]) so that stack traces and syntax errors
//! point into it, apart from the prelude. So this calls `JS_Eval` directly.

use std::ffi::CString;

use rquickjs::{Ctx, Error, Result, Value, qjs};

/// Evaluates `source` as a global, non-strict classic script named `file`, returning its
/// completion value. On a thrown exception returns `Err(Error::Exception)` with the exception
/// pending in `ctx` (take it with `ctx.catch()`).
pub fn eval<'js>(ctx: &Ctx<'js>, source: &str, file: &str) -> Result<Value<'js>> {
    // QuickJS wants the input NUL-terminated; the length passed excludes the terminator, so a
    // NUL inside the code reaches the parser (which rejects it) instead of truncating it.
    let mut input = Vec::with_capacity(source.len() + 1);
    input.extend_from_slice(source.as_bytes());
    input.push(0);
    let file = CString::new(file)?;
    // SAFETY: `input` is NUL-terminated and outlives the call; `JS_Eval` returns an owned value
    // (or the exception marker), which `Value::from_raw` takes ownership of.
    let value = unsafe {
        let raw = qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            input.as_ptr().cast(),
            source.len() as _,
            file.as_ptr(),
            qjs::JS_EVAL_TYPE_GLOBAL as i32,
        );
        Value::from_raw(ctx.clone(), raw)
    };
    if value.is_exception() {
        Err(Error::Exception)
    } else {
        Ok(value)
    }
}
