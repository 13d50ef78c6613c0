//! Outgoing HTTP from a function, on the standard `wasi:http/outgoing-handler` interface.
//!
//! The host decides what is reachable: only the hosts in the function's `allowedHosts`
//! setting, never a private, loopback or link-local address unless that address is listed
//! itself, with a per-request timeout, a response size cap and a cap on requests in flight.
//! A refusal comes back as an [`HttpError`] whose message starts with its name
//! (`http-not-allowed: host api.example.com:443 is not in the allow-list ...`).
//!
//! ```no_run
//! use sluice_guest::http::{self, Request};
//!
//! let response = http::send(&Request::post("https://api.example.com/v1/events")
//!     .header("content-type", "application/json")
//!     .body(r#"{"ok":true}"#))?;
//! if response.status >= 500 {
//!     // a RetryError: the host retries the event with backoff
//! }
//! # Ok::<(), sluice_guest::http::HttpError>(())
//! ```
//!
//! Redirects (301, 302, 303, 307, 308) are followed up to [`MAX_REDIRECTS`] times by this
//! helper, each hop a new request that the host checks against the allow-list again.
//! Natively (unit tests), every request fails: there is no host to ask.

/// Hops [`send`] follows before giving up on a chain of redirects.
pub const MAX_REDIRECTS: usize = 5;

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... (any token).
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with `method` to `url`, no headers and no body.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A `POST` to `url`.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }
}

/// A response, its body read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request failed: the host's refusal (its message starts with the refusal's name) or a
/// network or protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl HttpError {
    /// The refusal's name (`http-not-allowed`, `http-timeout`, ...) when the host refused.
    pub fn code(&self) -> Option<&str> {
        let name = self.0.split(':').next()?;
        name.starts_with("http-").then_some(name)
    }
}

/// Sends `request` and reads the whole response, following redirects.
///
/// # Errors
/// The host's refusal, a network error, a malformed URL, or too many redirects.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    let mut request = request.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = send_once(&request)?;
        let Some(location) = redirect_target(&response) else {
            return Ok(response);
        };
        request.url = resolve(&request.url, location)?;
        // 303 (and, as browsers do, 301/302 after a POST) become a GET without a body.
        if response.status == 303
            || (matches!(response.status, 301 | 302) && request.method == "POST")
        {
            request.method = "GET".to_string();
            request.body.clear();
        }
    }
    Err(HttpError(format!(
        "http-redirects: more than {MAX_REDIRECTS} redirects"
    )))
}

/// Sends `request` once: a redirect is returned as it is.
///
/// # Errors
/// As [`send`].
pub fn send_once(request: &Request) -> Result<Response, HttpError> {
    start(request)?.finish()
}

/// Sends `request` and returns at once, so that several requests can be in flight together;
/// [`InFlight::finish`] waits for the response. Redirects are not followed.
///
/// # Errors
/// A malformed URL, or the host's refusal to send (not allowed, too many in flight).
pub fn start(request: &Request) -> Result<InFlight, HttpError> {
    let url = Url::parse(&request.url)?;
    imp::start(request, &url).map(InFlight)
}

/// A request sent whose response has not been read yet.
pub struct InFlight(imp::Pending);

impl InFlight {
    /// Waits for the response and reads its whole body.
    ///
    /// # Errors
    /// The host's refusal (timeout, response too large), or a network error.
    pub fn finish(self) -> Result<Response, HttpError> {
        imp::finish(self.0)
    }

    /// Waits at most `timeout` (`None`: as long as it takes) for the response's head; `true`
    /// when it is here or the request failed, so that [`InFlight::finish`] returns without
    /// waiting for it. Lets a caller wait on a request and a timer at once.
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> bool {
        imp::wait(&self.0, timeout)
    }
}

fn redirect_target(response: &Response) -> Option<&str> {
    matches!(response.status, 301 | 302 | 303 | 307 | 308)
        .then(|| response.header("location"))
        .flatten()
}

/// The absolute URL of a `Location` relative to `base`.
fn resolve(base: &str, location: &str) -> Result<String, HttpError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let url = Url::parse(base)?;
    if location.starts_with("//") {
        return Ok(format!("{}:{location}", url.scheme));
    }
    if location.starts_with('/') {
        return Ok(format!("{}://{}{location}", url.scheme, url.authority));
    }
    let dir = url.path.rsplit_once('/').map_or("", |(dir, _)| dir);
    Ok(format!(
        "{}://{}{dir}/{location}",
        url.scheme, url.authority
    ))
}

/// An absolute URL, split as `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: String,
    authority: String,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, HttpError> {
        let bad = || {
            HttpError(format!(
                "http-bad-url: {url:?} is not an absolute http(s) URL"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let mut path = rest[end..].split('#').next().unwrap_or("").to_string();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        Ok(Url {
            scheme,
            authority: authority.to_string(),
            path,
        })
    }
}

#[cfg(target_os = "wasi")]
mod imp {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{HttpError, Request, Response, Url};

    /// A request on its way: its response still to come, or already here (a server may
    /// answer before it has read the whole body).
    pub(crate) enum Pending {
        Waiting(wasip2::http::types::FutureIncomingResponse),
        Answered(IncomingResponse),
    }

    pub(super) fn start(request: &Request, url: &Url) -> Result<Pending, HttpError> {
        let headers = Fields::new();
        for (name, value) in &request.headers {
            headers
                .append(name, value.as_bytes())
                .map_err(|e| HttpError(format!("http-bad-header: {name}: {e:?}")))?;
        }
        let outgoing = OutgoingRequest::new(headers);
        let invalid = |what: &str| HttpError(format!("http-bad-url: invalid {what}"));
        outgoing
            .set_method(&method(&request.method))
            .map_err(|()| invalid("method"))?;
        let scheme = if url.scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&url.authority))
            .map_err(|()| invalid("authority"))?;
        outgoing
            .set_path_with_query(Some(&url.path))
            .map_err(|()| invalid("path"))?;
        let body = outgoing.body().map_err(|()| invalid("body"))?;
        let future = outgoing_handler::handle(outgoing, None).map_err(error)?;
        if write_body(body, &request.body).is_err() {
            // The body stream closed before the body was written: the host refused the
            // request (the response says why), or the server answered without reading it all
            // (a redirect, say), which is its answer.
            return Ok(Pending::Answered(response(&future)?));
        }
        Ok(Pending::Waiting(future))
    }

    pub(super) fn finish(pending: Pending) -> Result<Response, HttpError> {
        match pending {
            Pending::Waiting(future) => read(response(&future)?),
            Pending::Answered(answer) => read(answer),
        }
    }

    pub(super) fn wait(pending: &Pending, timeout: Option<std::time::Duration>) -> bool {
        let Pending::Waiting(future) = pending else {
            return true;
        };
        let head = future.subscribe();
        let Some(timeout) = timeout else {
            head.block();
            return true;
        };
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let timer = wasip2::clocks::monotonic_clock::subscribe_duration(nanos);
        wasip2::io::poll::poll(&[&head, &timer]).contains(&0)
    }

    /// Waits for the response's head, or the error that stands for it.
    fn response(
        future: &wasip2::http::types::FutureIncomingResponse,
    ) -> Result<IncomingResponse, HttpError> {
        loop {
            match future.get() {
                Some(Ok(Ok(response))) => return Ok(response),
                Some(Ok(Err(code))) => return Err(error(code)),
                Some(Err(())) => {
                    return Err(HttpError("http-internal: response taken twice".into()));
                }
                None => future.subscribe().block(),
            }
        }
    }

    fn method(name: &str) -> Method {
        match name.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            _ => Method::Other(name.to_string()),
        }
    }

    fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
        {
            let stream = body
                .write()
                .map_err(|()| HttpError("http-internal: body stream taken".into()))?;
            // `blocking-write-and-flush` takes at most 4096 bytes per call.
            for chunk in bytes.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(stream_error)?;
            }
        }
        OutgoingBody::finish(body, None).map_err(error)
    }

    fn read(response: IncomingResponse) -> Result<Response, HttpError> {
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| HttpError("http-internal: body taken".into()))?;
        let mut body = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| HttpError("http-internal: body stream taken".into()))?;
            loop {
                match stream.blocking_read(64 << 10) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(e) => return Err(stream_error(e)),
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn stream_error(err: StreamError) -> HttpError {
        match err {
            StreamError::Closed => HttpError("http-connect: the connection closed".into()),
            StreamError::LastOperationFailed(e) => match wasip2::http::types::http_error_code(&e) {
                Some(code) => error(code),
                None => named(e.to_debug_string()),
            },
        }
    }

    /// The host's refusals arrive as `internal-error` with their named message.
    fn error(code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::InternalError(Some(message)) => HttpError(message),
            other => HttpError(format!("http-error: {other:?}")),
        }
    }

    /// A refusal while the body streams arrives as the stream's error text, after wasmtime's
    /// own words (`internal error: http-response-too-large: ...`): keep the named message.
    fn named(text: String) -> HttpError {
        match text.find("http-") {
            Some(at) => HttpError(text[at..].trim_end().to_string()),
            None => HttpError(format!("http-connect: {text}")),
        }
    }
}

#[cfg(not(target_os = "wasi"))]
mod imp {
    use super::{HttpError, Request, Response, Url};

    /// Never made: natively every request is refused before it starts.
    pub(crate) enum Pending {}

    pub(super) fn start(_request: &Request, url: &Url) -> Result<Pending, HttpError> {
        Err(HttpError(format!(
            "http-unavailable: no host to send to {}://{} (outgoing HTTP runs only inside sluice)",
            url.scheme, url.authority
        )))
    }

    pub(super) fn finish(pending: Pending) -> Result<Response, HttpError> {
        match pending {}
    }

    pub(super) fn wait(pending: &Pending, _timeout: Option<std::time::Duration>) -> bool {
        match *pending {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_redirects_resolve() {
        let url = Url::parse("https://API.example.com:8443/v1/x?y=1#frag").unwrap();
        assert_eq!(url.scheme, "https");
        assert_eq!(url.authority, "API.example.com:8443");
        assert_eq!(url.path, "/v1/x?y=1");
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("http://user@h/").is_err());
        assert_eq!(resolve("http://a/b/c", "/d").unwrap(), "http://a/d");
        assert_eq!(resolve("http://a/b/c", "d").unwrap(), "http://a/b/d");
        assert_eq!(resolve("http://a/b", "//e/f").unwrap(), "http://e/f");
        assert_eq!(resolve("http://a/b", "https://x/").unwrap(), "https://x/");
    }

    #[test]
    fn refusals_are_named_and_native_sends_fail() {
        let err = send(&Request::get("http://example.com/")).unwrap_err();
        assert_eq!(err.code(), Some("http-unavailable"));
        assert_eq!(HttpError("oops".into()).code(), None);
    }
}
