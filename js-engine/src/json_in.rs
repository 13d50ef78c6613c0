//! The event handed to a handler, built from the host's JSON text directly into QuickJS values
//! in Rust: objects property by property, arrays in one step from their items
//! (`JS_NewArrayFrom`), with `JSON.parse`'s meaning (later duplicate keys win in
//! the first one's place, `-0` stays negative, integers beyond 32 bits are doubles).
//!
//! QuickJS's own parser (tokenising through its JavaScript lexer) costs about 220 fuel per byte
//! of event; this one a fraction of that. Text it does not take (invalid JSON, a lone surrogate
//! escape, nesting deeper than [`MAX_DEPTH`]) is left to QuickJS's parser, whose error message
//! the host then reports as before.

use std::ffi::c_char;

use rquickjs::{Ctx, Value, qjs};

/// Deeper nesting goes to QuickJS's parser (the Rust recursion shares the shadow stack).
const MAX_DEPTH: usize = 400;

/// The value of the JSON `text`, or `None` to let QuickJS's parser handle it. Costs one pass
/// over the text plus one QuickJS allocation per object, array and string.
pub fn parse<'js>(ctx: &Ctx<'js>, text: &str) -> Option<Value<'js>> {
    let mut parser = Parser {
        ctx: ctx.as_raw().as_ptr(),
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        scratch: String::new(),
    };
    let root = parser.value()?;
    parser.skip_space();
    // SAFETY: `root` is an owned value made in `ctx`; `Value` takes it over.
    let root = unsafe { Value::from_raw(ctx.clone(), root) };
    (parser.pos == parser.bytes.len()).then_some(root)
}

/// Owned raw values, freed unless handed on.
struct Owned {
    ctx: *mut qjs::JSContext,
    values: Vec<qjs::JSValue>,
    atoms: Vec<qjs::JSAtom>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: each value and atom here is owned by this list.
        unsafe {
            for value in self.values.drain(..) {
                qjs::JS_FreeValue(self.ctx, value);
            }
            for atom in self.atoms.drain(..) {
                qjs::JS_FreeAtom(self.ctx, atom);
            }
        }
    }
}

struct Parser<'a> {
    ctx: *mut qjs::JSContext,
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    scratch: String,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.pos).copied()
    }

    /// An owned value, or `None` (nothing left owned).
    fn value(&mut self) -> Option<qjs::JSValue> {
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => {
                let (start, end) = self.string()?;
                let text = if start == usize::MAX {
                    self.scratch.as_str()
                } else {
                    &self.text[start..end]
                };
                // SAFETY: UTF-8 text of the given length; the new string is owned.
                let value = unsafe {
                    qjs::JS_NewStringLen(self.ctx, text.as_ptr().cast::<c_char>(), text.len() as _)
                };
                // SAFETY: reads the tag only.
                (!unsafe { qjs::JS_IsException(value) }).then_some(value)
            }
            b't' => self.word(b"true", qjs::JS_TRUE),
            b'f' => self.word(b"false", qjs::JS_FALSE),
            b'n' => self.word(b"null", qjs::JS_NULL),
            _ => self.number(),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Option<qjs::JSValue>) -> Option<qjs::JSValue> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = f(self);
        self.depth -= 1;
        value
    }

    fn word(&mut self, word: &[u8], value: qjs::JSValue) -> Option<qjs::JSValue> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn object(&mut self) -> Option<qjs::JSValue> {
        self.pos += 1; // '{'
        let mut owned = Owned {
            ctx: self.ctx,
            values: Vec::new(),
            atoms: Vec::new(),
        };
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                let (start, end) = self.string()?;
                let key = if start == usize::MAX {
                    self.scratch.as_str()
                } else {
                    &self.text[start..end]
                };
                // SAFETY: UTF-8 text of the given length; the atom is owned by `owned`.
                let atom = unsafe {
                    qjs::JS_NewAtomLen(self.ctx, key.as_ptr().cast::<c_char>(), key.len() as _)
                };
                if atom == qjs::JS_ATOM_NULL as qjs::JSAtom {
                    return None;
                }
                owned.atoms.push(atom);
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
                owned.values.push(self.value()?);
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        build_object(&mut owned)
    }

    fn array(&mut self) -> Option<qjs::JSValue> {
        self.pos += 1; // '['
        let mut owned = Owned {
            ctx: self.ctx,
            values: Vec::new(),
            atoms: Vec::new(),
        };
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                owned.values.push(self.value()?);
                match self.peek()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let count = i32::try_from(owned.values.len()).ok()?;
        // SAFETY: JS_NewArrayFrom takes ownership of the values, also on failure.
        let array = unsafe { qjs::JS_NewArrayFrom(self.ctx, count, owned.values.as_ptr()) };
        owned.values.clear();
        // SAFETY: reads the tag only.
        (!unsafe { qjs::JS_IsException(array) }).then_some(array)
    }

    /// A string at `pos` (at its `"`): its byte range in the text when it has no escapes,
    /// else `(usize::MAX, 0)` with the decoded text in `scratch`. `None` on invalid JSON or a
    /// lone surrogate escape.
    fn string(&mut self) -> Option<(usize, usize)> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some((start, self.pos - 1));
                }
                b'\\' => break,
                b if b < 0x20 => return None,
                _ => self.pos += 1,
            }
        }
        self.scratch.clear();
        self.scratch.push_str(&self.text[start..self.pos]);
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some((usize::MAX, 0));
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.escape()?;
                    self.scratch.push(c);
                }
                b if b < 0x20 => return None,
                _ => {
                    let run = self.pos;
                    while let Some(&b) = self.bytes.get(self.pos) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    self.scratch.push_str(&self.text[run..self.pos]);
                }
            }
        }
    }

    /// The character of an escape after its `\`.
    fn escape(&mut self) -> Option<char> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                if !(0xD800..0xDC00).contains(&high) {
                    return char::from_u32(high); // None for a lone low surrogate
                }
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return None;
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut value = 0;
        for d in digits {
            value = value * 16 + char::from(*d).to_digit(16)?;
        }
        self.pos += 4;
        Some(value)
    }

    /// A number with JSON's grammar, as JavaScript reads it.
    fn number(&mut self) -> Option<qjs::JSValue> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.bytes.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos - from
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = digits(self);
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return None;
        }
        let mut integral = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            integral = false;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            integral = false;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        let text = &self.text[start..self.pos];
        if integral
            && text != "-0"
            && let Ok(small) = text.parse::<i32>()
        {
            return Some(qjs::JS_MKVAL(qjs::JS_TAG_INT, small));
        }
        let value: f64 = text.parse().ok()?;
        Some(qjs::JS_NewFloat64(value))
    }
}

/// The object of `owned`'s keys and values (it takes the values), property by property so
/// that a later duplicate key wins in the first one's place, as `JSON.parse` does.
/// (`JS_NewObjectFrom` would be quicker but rewrites the empty object shape QuickJS shares
/// between objects.)
fn build_object(owned: &mut Owned) -> Option<qjs::JSValue> {
    let ctx = owned.ctx;
    // SAFETY: a new object; each define takes ownership of its value.
    unsafe {
        let object = qjs::JS_NewObject(ctx);
        if qjs::JS_IsException(object) {
            return None;
        }
        let flags = (qjs::JS_PROP_C_W_E) as i32;
        for (atom, value) in owned.atoms.iter().zip(owned.values.drain(..)) {
            if qjs::JS_DefinePropertyValue(ctx, object, *atom, value, flags) < 0 {
                qjs::JS_FreeValue(ctx, object);
                return None;
            }
        }
        Some(object)
    }
}
