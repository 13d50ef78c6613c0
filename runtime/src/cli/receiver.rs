//! `sluice run --receiver`: a local HTTP receiver for testing destination functions offline
//! over real HTTP. It listens on 127.0.0.1 (a free port), answers every request 200 `{}`, and
//! records each one (method, path, body) so that the run can show what an event caused.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Uri, header};
use serde_json::{Value, json};

/// A running receiver; it stops with the runtime it was started on.
pub(super) struct Receiver {
    /// `127.0.0.1:PORT`, the `allowedHosts` entry that lets a function reach it.
    host: String,
    /// The requests received and not yet taken, oldest first.
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Binds a free port on 127.0.0.1 and serves on the current tokio runtime.
    ///
    /// # Errors
    /// No port could be bound.
    pub(super) async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot start the receiver on 127.0.0.1")?;
        let host = listener
            .local_addr()
            .context("the receiver has no address")?
            .to_string();
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let recorded = requests.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let recorded = recorded.clone();
            async move {
                if let Ok(mut requests) = recorded.lock() {
                    requests.push(record(&method, &uri, &body));
                }
                ([(header::CONTENT_TYPE, "application/json")], "{}")
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { host, requests })
    }

    /// Its `allowedHosts` entry, `127.0.0.1:PORT`.
    pub(super) fn host(&self) -> &str {
        &self.host
    }

    /// Its base URL, `http://127.0.0.1:PORT` (what `{{receiver}}` stands for).
    pub(super) fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The requests received since the last call. A function's request is recorded before
    /// it is answered, so once an invocation has ended every request it made is here.
    pub(super) fn take(&self) -> Vec<Value> {
        self.requests
            .lock()
            .map(|mut requests| std::mem::take(&mut *requests))
            .unwrap_or_default()
    }
}

/// One request as a run shows it: the body parsed when it is JSON, else as text.
fn record(method: &Method, uri: &Uri, body: &[u8]) -> Value {
    let text = String::from_utf8_lossy(body);
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()));
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    json!({"method": method.as_str(), "path": path, "body": body})
}
