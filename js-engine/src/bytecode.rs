//! The user's code as QuickJS bytecode: compiled once at upload (`compile` export) and handed
//! back by the host to every fresh instance (`script.bytecode`), so an instance runs the code's
//! top level without parsing it.
//!
//! Bytecode keeps the debug information (file name, lines, columns), so stack traces and
//! error positions are those of the parsed code. QuickJS does not verify bytecode it reads: the
//! host hands out only bytes this engine build wrote for the same code, checked against their
//! blake3 digest (see the runtime's component store).

use std::ffi::CString;
use std::mem::MaybeUninit;

use rquickjs::{Ctx, Error, Result, Value, qjs};

/// The user's code compiled but not yet run (a QuickJS function-bytecode value).
pub struct Compiled<'js>(Value<'js>);

/// Compiles `source` as a global, non-strict classic script named `file`, without running it.
/// A syntax error is `Err(Error::Exception)` with the exception pending in `ctx`.
pub fn compile<'js>(ctx: &Ctx<'js>, source: &str, file: &str) -> Result<Compiled<'js>> {
    // NUL-terminated, the length without the terminator (see `eval::eval`).
    let mut input = Vec::with_capacity(source.len() + 1);
    input.extend_from_slice(source.as_bytes());
    input.push(0);
    let file = CString::new(file)?;
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `input` is NUL-terminated and outlives the call; the result is owned.
    let value = unsafe {
        let raw = qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            input.as_ptr().cast(),
            source.len() as _,
            file.as_ptr(),
            flags,
        );
        Value::from_raw(ctx.clone(), raw)
    };
    if value.is_exception() {
        Err(Error::Exception)
    } else {
        Ok(Compiled(value))
    }
}

/// Reads bytecode written by [`Compiled::write`] in this engine build. Costs a pass over the
/// bytes (atoms are interned again); no parse.
pub fn read<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> Result<Compiled<'js>> {
    // SAFETY: QuickJS reads `bytes.len()` bytes from `bytes`; the result is owned. The bytes
    // come from this engine build's own `write` (see the module comment).
    let value = unsafe {
        let raw = qjs::JS_ReadObject(
            ctx.as_raw().as_ptr(),
            bytes.as_ptr(),
            bytes.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        Value::from_raw(ctx.clone(), raw)
    };
    if value.is_exception() {
        Err(Error::Exception)
    } else {
        Ok(Compiled(value))
    }
}

impl<'js> Compiled<'js> {
    /// The bytecode, for [`read`] in a later instance. Costs a copy of the function's code.
    pub fn write(&self, ctx: &Ctx<'js>) -> Result<Vec<u8>> {
        self.write_with(ctx, qjs::JS_WRITE_OBJ_BYTECODE)
    }

    /// As [`Compiled::write`], without the functions' source text (`toString` then shows
    /// `[native code]`) and debug information (positions in stack traces): for the engine's
    /// bundled libraries, where each nested function's source would repeat the bundle's text.
    pub fn write_stripped(&self, ctx: &Ctx<'js>) -> Result<Vec<u8>> {
        let strip = qjs::JS_WRITE_OBJ_STRIP_SOURCE | qjs::JS_WRITE_OBJ_STRIP_DEBUG;
        self.write_with(ctx, qjs::JS_WRITE_OBJ_BYTECODE | strip)
    }

    fn write_with(&self, ctx: &Ctx<'js>, flags: u32) -> Result<Vec<u8>> {
        let mut len = MaybeUninit::<usize>::uninit();
        // SAFETY: `self.0` is a live function-bytecode value of `ctx`; on success QuickJS
        // returns a buffer of `len` bytes allocated in `ctx`, freed below after the copy.
        unsafe {
            let buf = qjs::JS_WriteObject(
                ctx.as_raw().as_ptr(),
                len.as_mut_ptr().cast(),
                self.0.as_raw(),
                flags as i32,
            );
            if buf.is_null() {
                return Err(Error::Exception);
            }
            let bytes = std::slice::from_raw_parts(buf, len.assume_init()).to_vec();
            qjs::js_free(ctx.as_raw().as_ptr(), buf.cast());
            Ok(bytes)
        }
    }

    /// Runs the code's top level, returning its completion value; a throw is
    /// `Err(Error::Exception)` with the exception pending in `ctx`.
    pub fn run(self, ctx: &Ctx<'js>) -> Result<Value<'js>> {
        // SAFETY: `JS_EvalFunction` takes ownership of the function, so it gets its own
        // reference (dropping `self` releases ours); the result is owned.
        let value = unsafe {
            let raw = qjs::JS_DupValue(ctx.as_raw().as_ptr(), self.0.as_raw());
            drop(self);
            Value::from_raw(
                ctx.clone(),
                qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), raw),
            )
        };
        if value.is_exception() {
            Err(Error::Exception)
        } else {
            Ok(value)
        }
    }
}
