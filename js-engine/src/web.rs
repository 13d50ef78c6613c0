//! The native side of the web globals (`web.js`): outgoing HTTP on `wasi:http` (through
//! `sluice_guest::http`), the monotonic clock and sleeping for timers, WHATWG URL parsing (the
//! `url` crate), form encoding and UTF-8.
//!
//! Requests are kept here by number between `httpStart` and `httpFinish`, so that several can
//! be in flight while JavaScript goes on; `web.js` decides which one to wait for and when.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use rquickjs::{Array, Ctx, Exception, Function, Object, Result, TypedArray};
use sluice_guest::http::{InFlight, Request};
use wasip2::clocks::monotonic_clock;

use crate::bindings::sluice::function::script::{self, FunctionKind};

thread_local! {
    // One instance is single-threaded: the requests in flight, by number.
    static IN_FLIGHT: RefCell<HashMap<u32, InFlight>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
    // Whether this instance's function may use the network; read from the host once.
    static NETWORK: Cell<Option<bool>> = const { Cell::new(None) };
}

/// The native helpers `web.js` is called with.
pub fn natives<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;
    native.set("network", Function::new(ctx.clone(), network)?)?;
    native.set("now", Function::new(ctx.clone(), now_ms)?)?;
    native.set("sleep", Function::new(ctx.clone(), sleep_ms)?)?;
    native.set("httpStart", Function::new(ctx.clone(), http_start)?)?;
    native.set("httpWait", Function::new(ctx.clone(), http_wait)?)?;
    native.set("httpFinish", Function::new(ctx.clone(), http_finish)?)?;
    native.set("httpDrop", Function::new(ctx.clone(), http_drop)?)?;
    native.set("urlParse", Function::new(ctx.clone(), url_parse)?)?;
    native.set("urlSet", Function::new(ctx.clone(), url_set)?)?;
    native.set("formParse", Function::new(ctx.clone(), form_parse)?)?;
    native.set("formSerialize", Function::new(ctx.clone(), form_serialize)?)?;
    native.set("utf8Encode", Function::new(ctx.clone(), utf8_encode)?)?;
    native.set("utf8Decode", Function::new(ctx.clone(), utf8_decode)?)?;
    Ok(native)
}

/// Destination and source functions may use the network; insert functions may not.
fn network() -> bool {
    NETWORK.with(|cell| match cell.get() {
        Some(allowed) => allowed,
        None => {
            let allowed = script::kind() != FunctionKind::Insert;
            cell.set(Some(allowed));
            allowed
        }
    })
}

/// Milliseconds on the monotonic clock (fractional).
fn now_ms() -> f64 {
    monotonic_clock::now() as f64 / 1e6
}

/// Waits `ms` milliseconds. On the network engine this suspends the invocation; insert
/// functions may not wait, and the host fails the invocation (`blocked`).
fn sleep_ms(ms: f64) {
    if ms > 0.0 {
        monotonic_clock::subscribe_duration((ms * 1e6) as u64).block();
    }
}

/// Sends a request: its number for `httpWait`/`httpFinish`. Throws a `TypeError` whose
/// message starts with the host's refusal name (`http-not-allowed: ...`).
fn http_start<'js>(
    ctx: Ctx<'js>,
    method: String,
    url: String,
    headers: Vec<Vec<String>>,
    body: Option<TypedArray<'js, u8>>,
) -> Result<u32> {
    let mut request = Request::new(&method, &url);
    for pair in headers {
        if let [name, value] = pair.as_slice() {
            request = request.header(name, value);
        }
    }
    if let Some(body) = body {
        request = request.body(bytes_of(&body));
    }
    let started = sluice_guest::http::start(&request).map_err(|e| refusal(&ctx, &e.0))?;
    let id = NEXT_ID.get();
    NEXT_ID.set(id.wrapping_add(1));
    IN_FLIGHT.with(|map| map.borrow_mut().insert(id, started));
    Ok(id)
}

/// Waits up to `timeout_ms` (negative: as long as it takes) for request `id`'s response;
/// `true` when `httpFinish` will not wait for its head.
fn http_wait(id: u32, timeout_ms: f64) -> bool {
    let timeout = (timeout_ms >= 0.0).then(|| Duration::from_secs_f64(timeout_ms / 1e3));
    IN_FLIGHT.with(|map| map.borrow().get(&id).is_none_or(|f| f.wait(timeout)))
}

/// Request `id`'s response, its body read whole: `[status, [[name, value], ...], bytes]`.
fn http_finish<'js>(ctx: Ctx<'js>, id: u32) -> Result<Array<'js>> {
    let Some(in_flight) = IN_FLIGHT.with(|map| map.borrow_mut().remove(&id)) else {
        return Err(refusal(
            &ctx,
            "http-internal: the request was already answered",
        ));
    };
    let response = in_flight.finish().map_err(|e| refusal(&ctx, &e.0))?;
    let head = Array::new(ctx.clone())?;
    head.set(0, response.status)?;
    let headers = Array::new(ctx.clone())?;
    for (index, (name, value)) in response.headers.into_iter().enumerate() {
        headers.set(index, vec![name, value])?;
    }
    head.set(1, headers)?;
    head.set(2, TypedArray::<u8>::new(ctx.clone(), response.body)?)?;
    Ok(head)
}

/// Forgets request `id` (aborted, or left behind when the handler settled): the host closes it.
fn http_drop(id: u32) {
    IN_FLIGHT.with(|map| map.borrow_mut().remove(&id));
}

/// A failed request as JavaScript sees it: a `TypeError` (as `fetch` rejects) with the host's
/// named message (`web.js` copies the name into `code`).
fn refusal(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, message)
}

/// The WHATWG URL of `input` (against `base`), as `[href, origin, protocol, username,
/// password, host, hostname, port, pathname, search, hash]`; `undefined` if it does not parse.
fn url_parse(input: String, base: Option<String>) -> Option<Vec<String>> {
    let parsed = match base {
        Some(base) => url::Url::parse(&base).ok()?.join(&input).ok()?,
        None => url::Url::parse(&input).ok()?,
    };
    Some(parts(&parsed))
}

/// `href` with one part set as the WHATWG setters do (an invalid value is ignored, as theirs
/// are); `undefined` if `href` itself does not parse.
fn url_set(href: String, part: String, value: String) -> Option<Vec<String>> {
    use url::quirks;
    let mut parsed = url::Url::parse(&href).ok()?;
    // The setters' errors mean "leave the URL as it was", which is what ignoring them does.
    let _ = match part.as_str() {
        "protocol" => quirks::set_protocol(&mut parsed, &value),
        "username" => quirks::set_username(&mut parsed, &value),
        "password" => quirks::set_password(&mut parsed, &value),
        "host" => quirks::set_host(&mut parsed, &value),
        "hostname" => quirks::set_hostname(&mut parsed, &value),
        "port" => quirks::set_port(&mut parsed, &value),
        "pathname" => {
            quirks::set_pathname(&mut parsed, &value);
            Ok(())
        }
        "search" => {
            quirks::set_search(&mut parsed, &value);
            Ok(())
        }
        "hash" => {
            quirks::set_hash(&mut parsed, &value);
            Ok(())
        }
        _ => Ok(()),
    };
    Some(parts(&parsed))
}

fn parts(url: &url::Url) -> Vec<String> {
    use url::quirks;
    [
        quirks::href(url).to_string(),
        quirks::origin(url),
        quirks::protocol(url).to_string(),
        quirks::username(url).to_string(),
        quirks::password(url).to_string(),
        quirks::host(url).to_string(),
        quirks::hostname(url).to_string(),
        quirks::port(url).to_string(),
        quirks::pathname(url).to_string(),
        quirks::search(url).to_string(),
        quirks::hash(url).to_string(),
    ]
    .into()
}

/// `application/x-www-form-urlencoded` text as name/value pairs.
fn form_parse(text: String) -> Vec<Vec<String>> {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(name, value)| vec![name.into_owned(), value.into_owned()])
        .collect()
}

/// Name/value pairs as `application/x-www-form-urlencoded` text.
fn form_serialize(pairs: Vec<Vec<String>>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for pair in &pairs {
        if let [name, value] = pair.as_slice() {
            out.append_pair(name, value);
        }
    }
    out.finish()
}

fn utf8_encode<'js>(ctx: Ctx<'js>, text: String) -> Result<TypedArray<'js, u8>> {
    TypedArray::new(ctx, text.into_bytes())
}

/// The text of UTF-8 `bytes`: invalid sequences replaced, or a `TypeError` when `fatal`.
fn utf8_decode<'js>(ctx: Ctx<'js>, bytes: TypedArray<'js, u8>, fatal: bool) -> Result<String> {
    let bytes = bytes_of(&bytes);
    // A byte order mark is not part of the text (TextDecoder's default).
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(text) {
        Ok(text) => Ok(text.to_string()),
        Err(_) if fatal => Err(Exception::throw_type(
            &ctx,
            "TextDecoder: the bytes are not valid UTF-8",
        )),
        Err(_) => Ok(String::from_utf8_lossy(text).into_owned()),
    }
}

/// A copy of a typed array's bytes (empty if its buffer was detached).
fn bytes_of(array: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is copied at once; no JavaScript runs while it is borrowed.
    unsafe { array.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}
