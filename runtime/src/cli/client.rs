//! The `sluice` commands that talk to a running server: connection settings, requests, and
//! server errors turned into their message.

use std::time::Duration;

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
        let Some(token) = args.token.clone().filter(|t| !t.trim().is_empty()) else {
            bail!(
                "no API token: set SLUICE_TOKEN or pass --token (the server prints one on its first start)"
            );
        };
        let base = base_url(&args.url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Client {
            base,
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

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::DELETE, path, None)
    }

    /// `DELETE path` with a JSON body (naming what to delete).
    pub fn delete_with(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::DELETE, path, Some(body))
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

    /// One request; a 429 is waited out and sent again (up to [`RATE_LIMITED_ATTEMPTS`]
    /// times), honouring `Retry-After` and backing off when there is none.
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (status, retry_after, bytes) = self.once(&method, &url, body)?;
            if status == 429 && attempt < RATE_LIMITED_ATTEMPTS {
                std::thread::sleep(rate_limited_wait(retry_after, attempt));
                continue;
            }
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if !(200..300).contains(&status) {
                return Err(anyhow!("{}", server_error(status, &json)));
            }
            return Ok(json.get("data").cloned().unwrap_or(json));
        }
    }

    /// One request: the status, `Retry-After` in seconds, and the body.
    fn once(
        &self,
        method: &reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Option<u64>, bytes::Bytes)> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?);
        }
        self.runtime
            .block_on(async {
                let response = request.send().await?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                Ok::<_, reqwest::Error>((status, retry_after, response.bytes().await?))
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
            })
    }
}

/// Attempts of a request the server answers 429 (rate limited) before giving up.
const RATE_LIMITED_ATTEMPTS: u32 = 6;
/// The longest wait between two of them.
const RATE_LIMITED_MAX_WAIT: Duration = Duration::from_secs(60);

/// How long to wait after the `attempt`th 429: the server's `Retry-After`, else 1 s doubled
/// per attempt; at most [`RATE_LIMITED_MAX_WAIT`].
fn rate_limited_wait(retry_after: Option<u64>, attempt: u32) -> Duration {
    let wait = match retry_after {
        Some(secs) => Duration::from_secs(secs),
        None => Duration::from_secs(1 << attempt.saturating_sub(1).min(6)),
    };
    wait.min(RATE_LIMITED_MAX_WAIT)
}

/// `--url`/`SLUICE_URL` checked: an http(s) URL, without its trailing `/`.
///
/// # Errors
/// It has no scheme (`127.0.0.1:8080`) or another one, naming the fix.
pub(super) fn base_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(url.to_string());
    }
    if url.contains("://") {
        bail!("the server URL `{url}` (--url or SLUICE_URL) must start with http:// or https://");
    }
    bail!(
        "the server URL `{url}` (--url or SLUICE_URL) has no scheme; use http://{url} \
         (or https://{url})"
    )
}

/// The server's error envelope as one line: `422: `url` must be ... (field settings.url)`,
/// with what to do for a refused token or a rate limit.
pub(super) fn server_error(status: u16, body: &Value) -> String {
    let said = envelope(status, body);
    match status {
        401 => format!(
            "{said} (the API token was refused: set SLUICE_TOKEN or pass --token with a token of \
             this server; `sluice serve` prints one on its first start)"
        ),
        429 => format!("{said} (rate limited; tried {RATE_LIMITED_ATTEMPTS} times)"),
        _ => said,
    }
}

/// The server's error envelope as one line, as it said it.
pub(super) fn envelope(status: u16, body: &Value) -> String {
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
