//! The `sluice` commands that talk to a running server: connection settings, requests, and
//! server errors turned into their message.

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

/// Where the server is and who is asking; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(
        long,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// An API token (see `sluice serve`'s first start, or `sluice tokens create`).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A blocking client of the control plane. Each call returns the response's `data`.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client for `args`.
    ///
    /// # Errors
    /// No token was given, or the async runtime cannot start.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        let Some(token) = args.token.clone() else {
            bail!(
                "no API token: set SLUICE_TOKEN or pass --token (the server prints one on its first start)"
            );
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Client {
            base: args.url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
            runtime,
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body))
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PATCH, path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::DELETE, path, None)
    }

    /// Every item of a paginated list (`data.<field>`), following `pagination.next`.
    pub fn list_all(&self, path: &str, field: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{separator}pagination.count=1000&pagination.cursor={c}"),
                None => format!("{path}{separator}pagination.count=1000"),
            };
            let data = self.get(&page_path)?;
            if let Some(Value::Array(page)) = data.get(field) {
                items.extend(page.iter().cloned());
            }
            match data.pointer("/pagination/next").and_then(Value::as_str) {
                Some(next) if Some(next) != cursor.as_deref() => cursor = Some(next.to_string()),
                _ => return Ok(items),
            }
        }
    }

    /// `GET path`, whose body is read as it arrives (a Server-Sent Events stream): `opened`
    /// runs once the server accepted the request, then `chunk` gets each piece of the body
    /// until it returns `false` or the body ends.
    ///
    /// # Errors
    /// The server cannot be reached, answers an error, the connection breaks, or `chunk` fails.
    pub fn stream(
        &self,
        path: &str,
        opened: impl FnOnce(),
        mut chunk: impl FnMut(&[u8]) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        self.runtime.block_on(async {
            let mut response = request
                .send()
                .await
                .map_err(|e| self.unreachable(&url, e))?;
            let status = response.status();
            if !status.is_success() {
                let bytes = response.bytes().await.unwrap_or_default();
                let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                return Err(anyhow!("{}", server_error(status.as_u16(), &json)));
            }
            opened();
            while let Some(piece) = response
                .chunk()
                .await
                .map_err(|e| anyhow!("the stream from {url} broke: {e}"))?
            {
                if !chunk(&piece)? {
                    break;
                }
            }
            Ok(())
        })
    }

    /// A request error in words: an unreachable server says so.
    fn unreachable(&self, url: &str, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow!(
                "cannot reach sluice at {}: is `sluice serve` running there?",
                self.base
            )
        } else {
            anyhow!("{url}: {e}")
        }
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?);
        }
        let (status, bytes) = self
            .runtime
            .block_on(async {
                let response = request.send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            })
            .map_err(|e| {
                if e.is_connect() {
                    anyhow!(
                        "cannot reach sluice at {}: is `sluice serve` running there?",
                        self.base
                    )
                } else {
                    anyhow!("{method} {url}: {e}")
                }
            })?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(anyhow!("{}", server_error(status.as_u16(), &json)));
        }
        Ok(json.get("data").cloned().unwrap_or(json))
    }
}

/// The server's error envelope as one line: `422: `url` must be ... (field settings.url)`.
pub(super) fn server_error(status: u16, body: &Value) -> String {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
                    match e.get("field").and_then(Value::as_str) {
                        Some(field) => format!("{message} (field {field})"),
                        None => message.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        format!("the server answered {status}")
    } else {
        format!("{status}: {}", errors.join("; "))
    }
}
