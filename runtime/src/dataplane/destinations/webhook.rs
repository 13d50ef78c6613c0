//! The `webhook` destination: POSTs each event as JSON to the configured `url` (or, with
//! `batchSize` above 1, `{"batch": [events]}`, Segment's batch shape), with the configured
//! `headers`, and, when a `sharedSecret` is set, an `X-Signature` header holding the
//! lowercase hex HMAC-SHA256 of the exact body bytes under that secret.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Attempt, Sending, Sink};
use crate::dataplane::deliver::retry::{Verdict, classify_status};
use crate::dataplane::event::Event;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Signature";

/// HMAC-SHA256 (RFC 2104) of `message` under `key`, lowercase hex.
pub fn sign(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `webhook` destination, its settings read once.
pub struct Webhook {
    client: reqwest::Client,
    url: Option<String>,
    headers: Vec<(String, String)>,
    secret: Option<String>,
    batch_size: usize,
}

impl Webhook {
    /// From `settings` (`url`, `headers`, `sharedSecret`, `batchSize`), sending with `client`.
    pub fn new(client: reqwest::Client, settings: &Map<String, Value>) -> Webhook {
        let headers = settings
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Webhook {
            client,
            url: settings
                .get("url")
                .and_then(Value::as_str)
                .map(str::to_string),
            headers,
            secret: settings
                .get("sharedSecret")
                .and_then(Value::as_str)
                .map(str::to_string),
            batch_size: settings
                .get("batchSize")
                .and_then(Value::as_u64)
                .map_or(1, |n| n.clamp(1, 1000) as usize),
        }
    }

    /// The body: the event's own bytes, or `{"batch": [...]}` assembled from them.
    fn body(&self, events: &[Event]) -> Vec<u8> {
        match events {
            [event] if self.batch_size == 1 => event.json.to_vec(),
            _ => {
                let size = events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 16;
                let mut body = Vec::with_capacity(size);
                body.extend_from_slice(b"{\"batch\":[");
                for (i, e) in events.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(&e.json);
                }
                body.extend_from_slice(b"]}");
                body
            }
        }
    }

    async fn post(&self, events: &[Event]) -> Attempt {
        let Some(url) = &self.url else {
            return Attempt::failed(Verdict::GiveUp, "the destination has no `url`");
        };
        let body = self.body(events);
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, sign(secret.as_bytes(), &body));
        }
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match classify_status(status, retry_after.as_deref()) {
                    Verdict::Success => Attempt::success(),
                    verdict => {
                        let said = body_start(response).await;
                        Attempt::failed(verdict, format!("the webhook answered {status}{said}"))
                    }
                }
            }
            // A request that cannot even be built (a bad URL or header) will never work.
            Err(e) if e.is_builder() => Attempt::failed(
                Verdict::GiveUp,
                format!("invalid request to {url}: {}", causes(&e)),
            ),
            // Connection refused, reset, timeout: all worth another try.
            Err(e) => Attempt::failed(
                Verdict::Retry { after: None },
                format!("POST {url} failed: {}", causes(&e)),
            ),
        }
    }
}

/// The most of a refusing receiver's body kept with the failure.
const BODY_KEPT: usize = 512;

/// `: <the start of the body>` of a refusing answer (what the receiver said went wrong), read
/// up to [`BODY_KEPT`] bytes; empty when it sent none.
async fn body_start(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < BODY_KEPT {
        match response.chunk().await {
            Ok(Some(piece)) => kept.extend_from_slice(&piece),
            _ => break,
        }
    }
    let cut = kept.len() > BODY_KEPT;
    kept.truncate(BODY_KEPT);
    let text = String::from_utf8_lossy(&kept);
    let text = text.trim();
    match (text.is_empty(), cut) {
        (true, _) => String::new(),
        (false, false) => format!(": {text}"),
        (false, true) => format!(": {text}..."),
    }
}

/// The error with each of its causes (`connection refused` is a cause's cause of reqwest's
/// "error sending request").
fn causes(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

impl Sink for Webhook {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn send<'a>(&'a self, events: &'a [Event]) -> Sending<'a> {
        Box::pin(self.post(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            sign(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
