//! The `webhook` destination: POSTs each event as JSON to the configured `url` (or, with
//! `batchSize` above 1, `{"batch": [events]}`, Segment's batch shape), with the configured
//! `headers`, and, when a `sharedSecret` is set, an `X-Signature` header holding the
//! lowercase hex HMAC-SHA256 of the exact body bytes under that secret.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::deliver::retry::{Verdict, classify_status};

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

/// One POST of `events` with `settings` (`url`, `headers`, `sharedSecret`, `batchSize`).
pub async fn send(
    client: &reqwest::Client,
    settings: &Map<String, Value>,
    events: &[&Value],
) -> (Verdict, Option<String>) {
    let Some(url) = settings.get("url").and_then(Value::as_str) else {
        return (Verdict::GiveUp, Some("the destination has no `url`".into()));
    };
    let batched = settings
        .get("batchSize")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1);
    let body = match events {
        [event] if !batched => serde_json::to_vec(event),
        _ => serde_json::to_vec(&serde_json::json!({ "batch": events })),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return (Verdict::GiveUp, Some(e.to_string())),
    };
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(headers) = settings.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                request = request.header(name.as_str(), value);
            }
        }
    }
    if let Some(secret) = settings.get("sharedSecret").and_then(Value::as_str) {
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
            let verdict = classify_status(status, retry_after.as_deref());
            let error =
                (verdict != Verdict::Success).then(|| format!("the webhook answered {status}"));
            (verdict, error)
        }
        // A request that cannot even be built (a bad URL or header) will never work.
        Err(e) if e.is_builder() => (Verdict::GiveUp, Some(format!("invalid request: {e}"))),
        // Connection refused, reset, timeout: all worth another try.
        Err(e) => (
            Verdict::Retry { after: None },
            Some(format!("request failed: {e}")),
        ),
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
