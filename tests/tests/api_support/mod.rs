//! Shared by the `api_*` tests: a real `sluice` control plane on an ephemeral port over a
//! temporary data directory, and a small HTTP client for it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sluice_runtime::api::{self, AppState, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The owner token every test server is bootstrapped with.
pub const OWNER: &str = "owner-secret-for-tests";

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Where its data lives.
    pub dir: PathBuf,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A response: status, headers and JSON body (`Value::Null` when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `body.data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The first error's `type`.
    pub fn error_type(&self) -> &str {
        self.body["errors"][0]["type"].as_str().unwrap_or("")
    }

    /// The first error's `field`.
    pub fn field(&self) -> &str {
        self.body["errors"][0]["field"].as_str().unwrap_or("")
    }
}

impl Server {
    /// A server over `dir` with the default configuration.
    pub async fn start(dir: &Path) -> Server {
        Server::start_with(dir, Config::default()).await
    }

    /// A server over `dir` with `config`.
    pub async fn start_with(dir: &Path, config: Config) -> Server {
        let (state, listener) = Server::open(dir, config).await;
        Server::serving(dir, listener, |listener, stopped| {
            tokio::spawn(sluice_runtime::server::run(listener, state, stopped))
        })
    }

    /// A server over `dir` with `config` whose data plane stages (the pipeline, deliveries) do
    /// not run: what ingestion does while nothing consumes what it stores.
    pub async fn start_without_stages(dir: &Path, config: Config) -> Server {
        let (state, listener) = Server::open(dir, config).await;
        let app = sluice_runtime::server::app(state)
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        Server::serving(dir, listener, |listener, stopped| {
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await?;
                anyhow::Ok(())
            })
        })
    }

    /// The state over `dir` with the owner bootstrapped, and a listener on an ephemeral port.
    async fn open(dir: &Path, config: Config) -> (AppState, tokio::net::TcpListener) {
        let state = AppState::open(dir, config).expect("the data directory opens");
        api::auth::bootstrap(&state.store, Some(OWNER)).expect("bootstrap");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        (state, listener)
    }

    /// The server `spawn` starts on `listener`, stopped when the future it is given resolves.
    fn serving(
        dir: &Path,
        listener: tokio::net::TcpListener,
        spawn: impl FnOnce(
            tokio::net::TcpListener,
            futures_util::future::BoxFuture<'static, ()>,
        ) -> JoinHandle<anyhow::Result<()>>,
    ) -> Server {
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = spawn(
            listener,
            Box::pin(async move {
                let _ = stopped.await;
            }),
        );
        Server {
            url,
            dir: dir.to_path_buf(),
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The text of `/metrics` (Prometheus' exposition format).
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics has a body")
    }

    /// Stops the server (in-flight requests finish, the database is flushed and closed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// How many items `GET path` lists under `data.<field>`.
    ///
    /// # Panics
    /// When the answer has no such list (an error, say), so that a count of 0 is never assumed.
    pub async fn count(&self, path: &str, field: &str) -> usize {
        let reply = self.get(path).await;
        match reply.data()[field].as_array() {
            Some(items) => items.len(),
            None => panic!("GET {path}: no `{field}` list in {}", reply.body),
        }
    }

    /// A request with `token` (none when `None`) and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET as the owner.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(OWNER), None).await
    }

    /// POST as the owner.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(OWNER), Some(body)).await
    }

    /// PATCH as the owner.
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(OWNER), Some(body))
            .await
    }

    /// PUT as the owner.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(OWNER), Some(body)).await
    }

    /// DELETE as the owner.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(OWNER), None).await
    }

    /// Creates a source with `slug` and returns its id.
    pub async fn source(&self, slug: &str) -> String {
        let r = self
            .post(
                "/sources",
                serde_json::json!({"slug": slug, "enabled": true, "metadataId": "http"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.data()["source"]["id"]
            .as_str()
            .expect("an id")
            .to_string()
    }

    /// Creates a `file` destination `name` on `source_id` writing to `path` (relative to
    /// `<data dir>/files/`, see [`Server::file`]); returns its id.
    pub async fn file_destination(&self, source_id: &str, name: &str, path: &str) -> String {
        let r = self
            .post(
                "/destinations",
                serde_json::json!({"sourceId": source_id, "metadataId": "file", "name": name,
                                   "settings": {"path": path}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.data()["destination"]["id"]
            .as_str()
            .expect("an id")
            .to_string()
    }

    /// Where a file destination with `path` writes: `<data dir>/files/<path>`.
    pub fn file(&self, path: &str) -> PathBuf {
        self.dir.join("files").join(path)
    }

    /// POSTs `batch` to `/v1/batch` with write key `key` (HTTP Basic, as Segment's libraries
    /// send it) and asserts the 200: the events are durable.
    pub async fn send_batch(&self, key: &str, batch: Vec<Value>) {
        let response = self
            .client
            .post(format!("{}/v1/batch", self.url))
            .basic_auth(key, Some(""))
            .json(&serde_json::json!({ "batch": batch }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), StatusCode::OK, "POST /v1/batch");
    }

    /// The first write key of source `source_id`.
    pub async fn write_key(&self, source_id: &str) -> String {
        let r = self.get(&format!("/sources/{source_id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.data()["source"]["writeKeys"][0]
            .as_str()
            .expect("a write key")
            .to_string()
    }

    /// Creates a token with these permissions and returns its secret.
    pub async fn token(&self, permissions: Value) -> String {
        let r = self
            .post(
                "/tokens",
                serde_json::json!({"description": "test", "permissions": permissions}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.data()["token"]["value"]
            .as_str()
            .expect("a secret")
            .to_string()
    }

    /// The audit event types recorded for `resource_id`, oldest first.
    pub async fn audit_types(&self, resource_id: &str) -> Vec<String> {
        let r = self
            .get(&format!("/audit-events?resourceId={resource_id}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.data()["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// The JSON lines of `file` once it holds at least `n` (polled every 50 ms, up to 20 s).
///
/// # Panics
/// When it never holds `n` lines, naming the file.
pub async fn lines(file: &Path, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} never held {n} lines", file.display());
}

/// Waits until `check` holds, up to 20 s; panics naming `what` otherwise.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

impl Server {
    /// Destination `dest`'s dead letters once there are at least `n`, waiting up to 20 s.
    pub async fn failed_events(&self, dest: &str, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let r = self
                .get(&format!("/destinations/{dest}/failed-events"))
                .await;
            let failed = r.data()["failedEvents"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if failed.len() >= n {
                return failed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {n} dead letters of {dest}");
    }
}

impl Server {
    /// Uploads a function (`body`: `POST /functions`'s) and deploys it: its id.
    pub async fn deploy_function(&self, body: Value) -> String {
        let f = self.post("/functions", body).await;
        assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
        let id = f.data()["function"]["id"]
            .as_str()
            .expect("the function's id")
            .to_string();
        let r = self
            .post(&format!("/functions/{id}/deploy"), serde_json::json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        id
    }
}
