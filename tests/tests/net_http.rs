//! Outgoing HTTP from the sandbox (issue 16): a Rust component (`examples/http-post`, through
//! `sluice_guest::http` on `wasi:http`) on the network engine against real HTTP servers on
//! loopback, each allow-listed explicitly. Every refusal is named; the server stays healthy;
//! a thousand requests in flight do not need a thousand threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use sluice_runtime::engine::net::{HttpLimits, NetCode, NetEngine, NetFunction};
use sluice_runtime::engine::{EngineConfig, InvokeError, Limits, Outcome};
use sluice_tests::{component, threads};

const EVENT: &str = r#"{"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1","properties":{"total":10}}"#;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Released when this many requests are in flight at once (0: never waits).
    hold_until: AtomicUsize,
    bodies: std::sync::Mutex<Vec<String>>,
    release: tokio::sync::Notify,
}

struct Receiver {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server still answers (nothing a function did broke it).
    async fn assert_healthy(&self) {
        let response = reqwest::get(self.url("/health"))
            .await
            .expect("the receiver answers");
        assert_eq!(response.status(), 200);
    }
}

async fn track(seen: &Seen) -> InFlightGuard<'_> {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    InFlightGuard(seen)
}

struct InFlightGuard<'a>(&'a Seen);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn ok(State(seen): State<Arc<Seen>>, body: Bytes) -> StatusCode {
    let _guard = track(&seen).await;
    seen.bodies
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::OK
}

async fn slow(State(seen): State<Arc<Seen>>, Query(q): Query<Value>) -> StatusCode {
    let _guard = track(&seen).await;
    let ms = q
        .get("ms")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    StatusCode::OK
}

/// Waits until `hold_until` requests are in flight together, then all answer.
async fn hold(State(seen): State<Arc<Seen>>) -> StatusCode {
    let guard = track(&seen).await;
    let target = seen.hold_until.load(Ordering::SeqCst);
    let released = seen.release.notified();
    if seen.in_flight.load(Ordering::SeqCst) >= target {
        seen.release.notify_waiters();
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(60), released).await;
    }
    drop(guard);
    StatusCode::OK
}

async fn big(State(seen): State<Arc<Seen>>) -> Vec<u8> {
    let _guard = track(&seen).await;
    vec![b'x'; 2 << 20]
}

async fn redirect(State(seen): State<Arc<Seen>>, Query(q): Query<Value>) -> Response {
    let _guard = track(&seen).await;
    let to = q
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or("/ok")
        .to_string();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn status(State(seen): State<Arc<Seen>>, Query(q): Query<Value>) -> Response {
    let _guard = track(&seen).await;
    let code = q
        .get("code")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, "7".parse().unwrap());
    (StatusCode::from_u16(code).unwrap(), headers, "nope").into_response()
}

async fn receiver() -> Receiver {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/ok", any(ok))
        .route("/slow", any(slow))
        .route("/hold", any(hold))
        .route("/big", any(big))
        .route("/redirect", any(redirect))
        .route("/status", any(status))
        .route("/health", get(|| async { "ok" }))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { addr, seen }
}

fn code() -> NetCode {
    let engine = NetEngine::new(&EngineConfig::default()).expect("the network engine starts");
    engine
        .compile(&component("http-post"))
        .expect("http-post compiles on the network engine")
}

fn function(code: &NetCode, settings: Value, http: HttpLimits) -> NetFunction {
    code.function(&settings.to_string(), http)
        .expect("the settings are valid")
}

fn limits() -> Limits {
    Limits {
        deadline: Duration::from_secs(10),
        fuel: 500_000_000,
        ..Limits::default()
    }
}

/// The message of an invocation that ended with the function's error.
fn error(outcome: &Result<Outcome, InvokeError>) -> (&'static str, String) {
    match outcome {
        Ok(Outcome::Error { kind, message }) => (kind, message.clone()),
        other => panic!("expected the function's error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_gets_the_event() {
    let server = receiver().await;
    let code = code();
    let f = function(
        &code,
        json!({"url": server.url("/ok"), "allowedHosts": [format!("127.0.0.1:{}", server.port())]}),
        HttpLimits::default(),
    );
    let done = f.invoke(EVENT, &limits()).await;
    assert!(
        matches!(done.result, Ok(Outcome::Forward { .. })),
        "{:?}",
        done.result
    );
    let bodies = server.seen.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["userId"], "u1");
    assert_eq!(body["properties"]["total"], 10);
    // A 5xx is the function's RetryError with the status and Retry-After; a 400 its error.
    let retry = function(
        &code,
        json!({"url": server.url("/status?code=503"), "allowedHosts": [format!("127.0.0.1:{}", server.port())]}),
        HttpLimits::default(),
    );
    let (kind, message) = error(&retry.invoke(EVENT, &limits()).await.result);
    assert_eq!(
        (kind, message.as_str()),
        ("retry-error", "status 503 retry-after=7")
    );
    server.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_in_the_allow_list_is_refused() {
    let server = receiver().await;
    let code = code();
    for allowed in [
        json!([]),
        json!(["api.example.com"]),
        json!([format!("127.0.0.1:{}", server.port() + 1)]),
    ] {
        let f = function(
            &code,
            json!({"url": server.url("/ok"), "allowedHosts": allowed}),
            HttpLimits::default(),
        );
        let (kind, message) = error(&f.invoke(EVENT, &limits()).await.result);
        assert_eq!(kind, "unknown");
        assert_eq!(
            message,
            format!(
                "http-not-allowed: host 127.0.0.1:{} is not in the allow-list (the setting allowedHosts)",
                server.port()
            )
        );
    }
    // Without allowedHosts at all, nothing is reachable.
    let f = function(
        &code,
        json!({"url": server.url("/ok")}),
        HttpLimits::default(),
    );
    assert!(
        error(&f.invoke(EVENT, &limits()).await.result)
            .1
            .starts_with("http-not-allowed: ")
    );
    assert_eq!(
        server.seen.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
    server.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_refused_unless_the_address_is_listed() {
    let server = receiver().await;
    let code = code();
    let url = format!("http://localhost:{}/ok", server.port());
    let f = function(
        &code,
        json!({"url": url, "allowedHosts": [format!("localhost:{}", server.port())]}),
        HttpLimits::default(),
    );
    let (_, message) = error(&f.invoke(EVENT, &limits()).await.result);
    assert!(
        message.starts_with("http-private-address: host localhost resolves to "),
        "{message}"
    );
    assert_eq!(server.seen.hits.load(Ordering::SeqCst), 0);
    // Listing the addresses themselves allows it.
    let f = function(
        &code,
        json!({"url": url, "allowedHosts": [format!("localhost:{}", server.port()), "127.0.0.1", "::1"]}),
        HttpLimits::default(),
    );
    let done = f.invoke(EVENT, &limits()).await;
    assert!(
        matches!(done.result, Ok(Outcome::Forward { .. })),
        "{:?}",
        done.result
    );
    assert_eq!(server.seen.hits.load(Ordering::SeqCst), 1);
    server.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_checked_again() {
    let server = receiver().await;
    let code = code();
    let allowed = json!([format!("127.0.0.1:{}", server.port())]);
    let away = server.url("/redirect?to=http://metadata.internal.example/latest");
    let f = function(
        &code,
        json!({"url": away, "allowedHosts": allowed}),
        HttpLimits::default(),
    );
    let (_, message) = error(&f.invoke(EVENT, &limits()).await.result);
    assert_eq!(
        message,
        "http-not-allowed: host metadata.internal.example:80 is not in the allow-list (the setting allowedHosts)"
    );
    // A redirect within the allow-list is followed.
    let f = function(
        &code,
        json!({"url": server.url("/redirect?to=/ok"), "allowedHosts": allowed}),
        HttpLimits::default(),
    );
    let done = f.invoke(EVENT, &limits()).await;
    assert!(
        matches!(done.result, Ok(Outcome::Forward { .. })),
        "{:?}",
        done.result
    );
    assert_eq!(
        server.seen.hits.load(Ordering::SeqCst),
        3,
        "two redirects and the final /ok"
    );
    server.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_cap_is_cut() {
    let server = receiver().await;
    let code = code();
    let http = HttpLimits {
        max_response_bytes: 1 << 20,
        ..HttpLimits::default()
    };
    let f = function(
        &code,
        json!({"url": server.url("/big"), "allowedHosts": [format!("127.0.0.1:{}", server.port())]}),
        http,
    );
    let done = f.invoke(EVENT, &limits()).await;
    let (_, message) = error(&done.result);
    assert_eq!(
        message,
        format!(
            "http-response-too-large: the response from 127.0.0.1:{} is over the 1048576 byte cap",
            server.port()
        )
    );
    server.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_times_out_and_the_deadline_bounds_waiting() {
    let server = receiver().await;
    let code = code();
    let allowed = json!([format!("127.0.0.1:{}", server.port())]);
    let http = HttpLimits {
        timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let f = function(
        &code,
        json!({"url": server.url("/slow?ms=3000"), "allowedHosts": allowed}),
        http,
    );
    let started = Instant::now();
    let (_, message) = error(&f.invoke(EVENT, &limits()).await.result);
    assert_eq!(
        message,
        format!(
            "http-timeout: 127.0.0.1:{} did not answer within 300 ms",
            server.port()
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The invocation's own deadline ends a function that waits longer than it may.
    let f = function(
        &code,
        json!({"url": server.url("/slow?ms=3000"), "allowedHosts": allowed}),
        HttpLimits::default(),
    );
    let short = Limits {
        deadline: Duration::from_millis(200),
        ..limits()
    };
    let started = Instant::now();
    let done = f.invoke(EVENT, &short).await;
    assert_eq!(
        done.result.as_ref().map_err(InvokeError::code),
        Err("deadline-exceeded")
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    server.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_capped() {
    let server = receiver().await;
    let code = code();
    let http = HttpLimits {
        max_in_flight: 8,
        ..HttpLimits::default()
    };
    let f = function(
        &code,
        json!({"url": server.url("/slow?ms=200"), "flood": 200, "allowedHosts": [format!("127.0.0.1:{}", server.port())]}),
        http,
    );
    let done = f.invoke(EVENT, &limits()).await;
    let Ok(Outcome::Forward { event }) = &done.result else {
        panic!("the flood reports what it got: {:?}", done.result);
    };
    let summary: Value = serde_json::from_str(event).unwrap();
    assert_eq!(summary["properties"]["sent"], 200, "{summary}");
    assert_eq!(summary["properties"]["ok"], 8, "{summary}");
    assert_eq!(summary["properties"]["refused"], 192, "{summary}");
    assert_eq!(
        summary["properties"]["codes"],
        json!(["http-too-many-requests"])
    );
    assert!(server.seen.max_in_flight.load(Ordering::SeqCst) <= 8);
    assert_eq!(f.in_flight(), 0, "every permit came back");
    server.assert_healthy().await;
}

/// The threads of this process now.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_in_flight_need_no_thousand_threads() {
    const N: usize = 1000;
    let server = receiver().await;
    server.seen.hold_until.store(N, Ordering::SeqCst);
    let code = code();
    let http = HttpLimits {
        max_in_flight: N,
        timeout: Duration::from_secs(60),
        ..HttpLimits::default()
    };
    let f = Arc::new(function(
        &code,
        json!({"url": server.url("/hold"), "allowedHosts": [format!("127.0.0.1:{}", server.port())]}),
        http,
    ));
    let before = threads();
    let long = Limits {
        deadline: Duration::from_secs(60),
        ..limits()
    };
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let peak = peak.clone();
        let seen = server.seen.clone();
        tokio::spawn(async move {
            while seen.hits.load(Ordering::SeqCst) < N {
                peak.fetch_max(threads(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak.fetch_max(threads(), Ordering::SeqCst);
        })
    };
    let calls: Vec<_> = (0..N)
        .map(|_| {
            let f = f.clone();
            let long = long.clone();
            tokio::spawn(async move { f.invoke(EVENT, &long).await })
        })
        .collect();
    for call in calls {
        let done = call.await.unwrap();
        assert!(
            matches!(done.result, Ok(Outcome::Forward { .. })),
            "{:?}",
            done.result
        );
    }
    watcher.await.unwrap();
    assert_eq!(
        server.seen.max_in_flight.load(Ordering::SeqCst),
        N,
        "all were in flight at once"
    );
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("threads: {before} before, {peak} at the peak with {N} requests in flight");
    assert!(
        peak < before + 32,
        "{N} requests in flight used {peak} threads ({before} before)"
    );
    server.assert_healthy().await;
}
