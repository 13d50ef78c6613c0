//! The handler's result as JSON text, written in Rust from the QuickJS values: what
//! `JSON.stringify` gives (own enumerable string keys in property order, numbers as JavaScript
//! prints them, `undefined`/functions/symbols skipped in objects and `null` in arrays, `toJSON`,
//! boxed primitives unboxed, a cycle or a BigInt a TypeError), except that nothing the function
//! can replace on a built-in is consulted.
//!
//! Why: the host's copy of the event must not be hijackable. `JSON.stringify` and the built-in
//! prototypes belong to the function's realm, and a function that sets
//! `Object.prototype.toJSON = () => ({hijacked: true})` would otherwise change every event the
//! instance sends from then on. So a `toJSON` that an object inherits from a built-in prototype
//! (`Object.prototype`, `Array.prototype`, ...) is ignored; a Date is written with the
//! `Date.prototype.toISOString` captured at engine start (as the original `toJSON` does); a
//! `toJSON` on the object itself or on the prototype of the function's own class is honoured,
//! as JavaScript specifies. Nothing calls the global `JSON`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;

use rquickjs::atom::PredefinedAtom;
use rquickjs::{Array, Coerced, Ctx, Function, Object, Persistent, Type, Value, qjs};

use crate::codec::json_quote as quote;
use crate::eval::eval;

/// Nesting deeper than this is refused (the shadow stack is shared with QuickJS).
const MAX_DEPTH: usize = 400;

/// Object keys kept escaped between invocations (their atoms pinned), so a key seen before
/// costs a lookup instead of a conversion.
const KEY_CACHE: usize = 4096;

/// Captured at engine start, before any user code runs.
const PRISTINE: &str = "(() => { const d = Date.prototype, getTime = d.getTime, \
    toISOString = d.toISOString, finite = Number.isFinite, apply = Reflect.apply; \
    const date = (x) => { const t = apply(getTime, x, []); \
      return finite(t) ? apply(toISOString, x, []) : null; }; \
    const typed = Object.getPrototypeOf(Uint8Array.prototype), valueOf = Boolean.prototype.valueOf; \
    const boolean = (x) => apply(valueOf, x, []); \
    return [date, boolean, Object.prototype, Array.prototype, Function.prototype, String.prototype, \
      Number.prototype, Boolean.prototype, Symbol.prototype, BigInt.prototype, Date.prototype, \
      RegExp.prototype, Error.prototype, Map.prototype, Set.prototype, WeakMap.prototype, \
      WeakSet.prototype, Promise.prototype, ArrayBuffer.prototype, typed, \
      Object(1), Object(''), Object(true)]; })()";

/// The built-ins the writer uses instead of the realm's current ones.
pub struct Pristine {
    /// A Date's JSON value with the original `getTime` and `toISOString`.
    date: Persistent<Function<'static>>,
    /// A Boolean object's value (its internal slot, through the original `valueOf`).
    boolean: Persistent<Function<'static>>,
    /// The built-in prototypes, whose `toJSON` is never consulted.
    prototypes: Vec<Persistent<Object<'static>>>,
    /// Class ids of Number, String and Boolean objects (unboxed as JavaScript does).
    boxed: [u32; 3],
    keys: HashMap<u32, Box<str>>,
}

impl Pristine {
    /// Captures the built-ins; call before user code runs.
    pub fn capture(ctx: &Ctx<'_>) -> rquickjs::Result<Pristine> {
        let found: Array = eval(ctx, PRISTINE, "sluice:json")?.get()?;
        let count = found.len();
        let mut prototypes = Vec::new();
        for index in 2..count - 3 {
            prototypes.push(Persistent::save(ctx, found.get::<Object>(index)?));
        }
        let mut boxed = [0; 3];
        for (slot, index) in boxed.iter_mut().zip(count - 3..count) {
            let value: Value = found.get(index)?;
            // SAFETY: reads the class id of a live object.
            *slot = unsafe { qjs::JS_GetClassID(value.as_raw()) };
        }
        Ok(Pristine {
            date: Persistent::save(ctx, found.get::<Function>(0)?),
            boolean: Persistent::save(ctx, found.get::<Function>(1)?),
            prototypes,
            boxed,
            keys: HashMap::new(),
        })
    }
}

/// Why a value has no JSON text.
pub enum JsonError {
    /// A TypeError as JSON.stringify would throw it: this message.
    Type(&'static str),
    /// A getter or `toJSON` threw: the exception is pending in the context.
    Threw(rquickjs::Error),
}

impl From<rquickjs::Error> for JsonError {
    fn from(err: rquickjs::Error) -> Self {
        JsonError::Threw(err)
    }
}

/// The JSON text of `value`, `None` when it has none (undefined, a function, a symbol).
/// Costs one pass over the value, plus a call per honoured `toJSON` and per Date.
pub fn to_json<'js>(
    ctx: &Ctx<'js>,
    pristine: &mut Pristine,
    value: Value<'js>,
) -> Result<Option<String>, JsonError> {
    let date = pristine.date.clone().restore(ctx)?;
    let boolean = pristine.boolean.clone().restore(ctx)?;
    let prototypes = pristine
        .prototypes
        .iter()
        .map(|p| p.clone().restore(ctx).map(|p| object_ptr(p.as_value())))
        .collect::<rquickjs::Result<Vec<_>>>()?;
    let mut writer = Writer {
        ctx: ctx.clone(),
        date,
        boolean,
        prototypes,
        boxed: pristine.boxed,
        keys: &mut pristine.keys,
        stack: Vec::new(),
        out: Vec::with_capacity(1024),
    };
    if !writer.property(value, Key::Empty)? {
        return Ok(None);
    }
    // Only valid UTF-8 is written: lone surrogates are escaped.
    Ok(Some(String::from_utf8(writer.out).unwrap_or_default()))
}

/// The key a value is written under, made a string only when a `toJSON` asks for it.
#[derive(Clone, Copy)]
enum Key {
    Empty,
    Index(u32),
    Atom(qjs::JSAtom),
}

fn object_ptr(value: &Value<'_>) -> *mut c_void {
    // SAFETY: reads the pointer of an object value (only compared, never dereferenced).
    unsafe { qjs::JS_VALUE_GET_PTR(value.as_raw()) }
}

struct Writer<'p, 'js> {
    ctx: Ctx<'js>,
    date: Function<'js>,
    boolean: Function<'js>,
    prototypes: Vec<*mut c_void>,
    boxed: [u32; 3],
    keys: &'p mut HashMap<u32, Box<str>>,
    stack: Vec<*mut c_void>,
    out: Vec<u8>,
}

impl<'js> Writer<'_, 'js> {
    /// SerializeJSONProperty for `value` under `key`: false when it has no JSON form.
    fn property(&mut self, value: Value<'js>, key: Key) -> Result<bool, JsonError> {
        let value = self.json_value(value, key)?;
        match value.type_of() {
            Type::Null => self.out.extend_from_slice(b"null"),
            Type::Bool => {
                let text: &[u8] = if value.as_bool() == Some(true) {
                    b"true"
                } else {
                    b"false"
                };
                self.out.extend_from_slice(text);
            }
            Type::Int => {
                let n = value.as_int().unwrap_or_default();
                self.out.extend_from_slice(n.to_string().as_bytes());
            }
            Type::Float => self.number(&value)?,
            Type::String => self.string(&value),
            Type::BigInt => {
                return Err(JsonError::Type("BigInt value can't be serialized in JSON"));
            }
            Type::Array => self.array(&value)?,
            Type::Object | Type::Proxy | Type::Exception | Type::Promise => self.object(&value)?,
            _ => return Ok(false), // undefined, functions, symbols
        }
        Ok(true)
    }

    /// `toJSON` (as this module's comment restricts it) and unboxing.
    fn json_value(&mut self, value: Value<'js>, key: Key) -> rquickjs::Result<Value<'js>> {
        let Some(object) = value.as_object() else {
            return Ok(value);
        };
        let to_json: Value = object.get(PredefinedAtom::ToJSON)?;
        if let Some(function) = to_json.as_function() {
            if !self.builtin_owner(object)? {
                let key = self.key_value(key)?;
                return function.call((rquickjs::function::This(value.clone()), key));
            }
            // SAFETY: JS_IsDate reads the class of a live value.
            if unsafe { qjs::JS_IsDate(value.as_raw()) } {
                return self.date.call((value.clone(),));
            }
        }
        // SAFETY: reads the class id of a live object.
        let class = unsafe { qjs::JS_GetClassID(value.as_raw()) };
        if class == self.boxed[0] {
            let n: f64 = value.get::<Coerced<f64>>()?.0;
            return Ok(Value::new_float(self.ctx.clone(), n));
        }
        if class == self.boxed[1] {
            let s = value.get::<Coerced<rquickjs::String>>()?.0;
            return Ok(s.into_value());
        }
        if class == self.boxed[2] {
            return self.boolean.call((value.clone(),));
        }
        Ok(value)
    }

    /// Whether the `toJSON` `object` sees comes from a built-in prototype.
    fn builtin_owner(&self, object: &Object<'js>) -> rquickjs::Result<bool> {
        let atom = PredefinedAtom::ToJSON as u32;
        let mut current = Some(object.clone());
        while let Some(o) = current {
            // SAFETY: a NULL descriptor only asks whether the own property exists.
            let own = unsafe {
                qjs::JS_GetOwnProperty(
                    self.ctx.as_raw().as_ptr(),
                    ptr::null_mut(),
                    o.as_raw(),
                    atom,
                )
            };
            if own < 0 {
                return Err(rquickjs::Error::Exception);
            }
            if own > 0 {
                return Ok(self.prototypes.contains(&object_ptr(o.as_value())));
            }
            current = o.get_prototype();
        }
        Ok(false)
    }

    fn number(&mut self, value: &Value<'js>) -> rquickjs::Result<()> {
        let n = value.as_float().unwrap_or(f64::NAN);
        if !n.is_finite() {
            self.out.extend_from_slice(b"null");
            return Ok(());
        }
        // JavaScript's Number::toString, from QuickJS itself (not user-replaceable).
        let text = value.get::<Coerced<String>>()?.0;
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn string(&mut self, value: &Value<'js>) {
        let mut len = 0;
        // SAFETY: `value` is a string; the returned buffer (WTF-8: lone surrogates kept) is
        // freed below and not used after.
        unsafe {
            let ctx = self.ctx.as_raw().as_ptr();
            let text = qjs::JS_ToCStringLen(ctx, &mut len, value.as_raw());
            if text.is_null() {
                self.out.extend_from_slice(b"\"\"");
                return;
            }
            let bytes = std::slice::from_raw_parts(text.cast::<u8>(), len);
            quote(bytes, &mut self.out);
            qjs::JS_FreeCString(ctx, text);
        }
    }

    fn enter(&mut self, value: &Value<'js>) -> Result<(), JsonError> {
        let p = object_ptr(value);
        if self.stack.contains(&p) {
            return Err(JsonError::Type("circular reference"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(JsonError::Type("the value is nested too deeply"));
        }
        self.stack.push(p);
        Ok(())
    }

    fn array(&mut self, value: &Value<'js>) -> Result<(), JsonError> {
        self.enter(value)?;
        let Some(object) = value.as_object() else {
            return Err(JsonError::Type("not an array"));
        };
        let length: Value = object.get(PredefinedAtom::Length)?;
        let length = u32::try_from(length.get::<Coerced<i64>>()?.0.max(0)).unwrap_or(u32::MAX);
        self.out.push(b'[');
        for index in 0..length {
            if index > 0 {
                self.out.push(b',');
            }
            let item: Value = object.get(index)?;
            if !self.property(item, Key::Index(index))? {
                self.out.extend_from_slice(b"null");
            }
        }
        self.out.push(b']');
        self.stack.pop();
        Ok(())
    }

    fn object(&mut self, value: &Value<'js>) -> Result<(), JsonError> {
        self.enter(value)?;
        let ctx = self.ctx.as_raw().as_ptr();
        let mut tab: *mut qjs::JSPropertyEnum = ptr::null_mut();
        let mut len: u32 = 0;
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
        // SAFETY: fills `tab` with `len` entries, freed by `Keys::drop`.
        if unsafe { qjs::JS_GetOwnPropertyNames(ctx, &mut tab, &mut len, value.as_raw(), flags) }
            < 0
        {
            return Err(JsonError::Threw(rquickjs::Error::Exception));
        }
        let keys = Keys { ctx, tab, len };
        self.out.push(b'{');
        let mut first = true;
        for index in 0..keys.len as usize {
            // SAFETY: index < len.
            let atom = unsafe { (*keys.tab.add(index)).atom };
            // SAFETY: JS_GetProperty returns an owned value (or the exception marker).
            let item = unsafe {
                Value::from_raw(
                    self.ctx.clone(),
                    qjs::JS_GetProperty(ctx, value.as_raw(), atom),
                )
            };
            if item.is_exception() {
                return Err(JsonError::Threw(rquickjs::Error::Exception));
            }
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            self.key(atom)?;
            self.out.push(b':');
            if self.property(item, Key::Atom(atom))? {
                first = false;
            } else {
                self.out.truncate(mark);
            }
        }
        self.out.push(b'}');
        self.stack.pop();
        Ok(())
    }

    /// The key as the string `toJSON` receives.
    fn key_value(&self, key: Key) -> rquickjs::Result<Value<'js>> {
        let atom = match key {
            Key::Empty => return Ok(rquickjs::String::from_str(self.ctx.clone(), "")?.into_value()),
            Key::Index(index) => {
                let text = index.to_string();
                return Ok(rquickjs::String::from_str(self.ctx.clone(), &text)?.into_value());
            }
            Key::Atom(atom) => atom,
        };
        // SAFETY: JS_AtomToString returns an owned string value for a live atom.
        let value = unsafe {
            Value::from_raw(
                self.ctx.clone(),
                qjs::JS_AtomToString(self.ctx.as_raw().as_ptr(), atom),
            )
        };
        if value.is_exception() {
            return Err(rquickjs::Error::Exception);
        }
        Ok(value)
    }

    /// Writes the quoted key of `atom`, from the cache when seen before.
    fn key(&mut self, atom: qjs::JSAtom) -> rquickjs::Result<()> {
        if let Some(text) = self.keys.get(&atom) {
            self.out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let ctx = self.ctx.as_raw().as_ptr();
        let mut len = 0;
        let mut quoted = Vec::new();
        // SAFETY: the C string is freed right after use.
        unsafe {
            let text = qjs::JS_AtomToCStringLen(ctx, &mut len, atom);
            if text.is_null() {
                return Err(rquickjs::Error::Exception);
            }
            quote(
                std::slice::from_raw_parts(text.cast::<u8>(), len as usize),
                &mut quoted,
            );
            qjs::JS_FreeCString(ctx, text);
        }
        self.out.extend_from_slice(&quoted);
        if self.keys.len() < KEY_CACHE
            && let Ok(text) = String::from_utf8(quoted)
        {
            // Pinned for as long as the cache keeps it: the atom's number stays this key's.
            // SAFETY: duplicates a live atom.
            unsafe { qjs::JS_DupAtom(ctx, atom) };
            self.keys.insert(atom, text.into_boxed_str());
        }
        Ok(())
    }
}

/// Frees a property list however the walk ends.
struct Keys {
    ctx: *mut qjs::JSContext,
    tab: *mut qjs::JSPropertyEnum,
    len: u32,
}

impl Drop for Keys {
    fn drop(&mut self) {
        // SAFETY: `tab` came from JS_GetOwnPropertyNames with `len` entries.
        unsafe { qjs::JS_FreePropertyEnum(self.ctx, self.tab, self.len) }
    }
}
