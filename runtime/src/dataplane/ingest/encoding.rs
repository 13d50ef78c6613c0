//! `Content-Encoding` of tracking API request bodies: `gzip` (and `x-gzip`) and `deflate`
//! (zlib, or raw deflate as some clients send) are decoded before the body is parsed;
//! `identity` is nothing; anything else is refused (415). Several Segment libraries gzip
//! their batches.
//!
//! The size limit applies to the decoded body, and decoding is a stream that stops one byte
//! past the limit: a decompression bomb costs at most `limit` bytes of memory and the time to
//! inflate them, never the size it would expand to.

use std::io::Read;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Why a request body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// 415: a coding sluice does not decode (`br`, `zstd`, ...).
    #[error(
        "Content-Encoding `{0}` is not supported; send the body as is, or with gzip or deflate"
    )]
    Unsupported(String),
    /// 400: the body is not what its `Content-Encoding` says (a plain body labelled gzip).
    #[error("the body is labelled `Content-Encoding: {coding}` but is not {coding} data: {reason}")]
    Corrupt {
        /// The coding the header named.
        coding: &'static str,
        /// What the decoder found.
        reason: String,
    },
    /// 413: the decoded body is larger than the tracking API accepts.
    #[error("the decoded request body is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in decoded bytes.
        limit: usize,
    },
}

impl EncodingError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            EncodingError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EncodingError::Corrupt { .. } => StatusCode::BAD_REQUEST,
            EncodingError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The error `type` in the response body.
    pub fn kind(&self) -> &'static str {
        match self {
            EncodingError::Unsupported(_) => "unsupported-media-type",
            EncodingError::Corrupt { .. } => "input-validation",
            EncodingError::TooLarge { .. } => "payload-too-large",
        }
    }
}

/// A coding sluice decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// The codings named by every `Content-Encoding` header, in the order they were applied,
/// `identity` left out.
fn codings(headers: &HeaderMap) -> Result<Vec<Coding>, EncodingError> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| {
            EncodingError::Unsupported(String::from_utf8_lossy(value.as_bytes()).into())
        })?;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "identity" => {}
                "gzip" | "x-gzip" => codings.push(Coding::Gzip),
                "deflate" => codings.push(Coding::Deflate),
                _ => return Err(EncodingError::Unsupported(name.to_string())),
            }
        }
    }
    Ok(codings)
}

/// Reads `decoder` to its end or to one byte past `limit`, whichever comes first.
fn inflate(
    decoder: impl Read,
    coding: &'static str,
    limit: usize,
) -> Result<Vec<u8>, EncodingError> {
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| EncodingError::Corrupt {
            coding,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(EncodingError::TooLarge { limit });
    }
    Ok(out)
}

/// Whether `bytes` start with a zlib header (RFC 1950: deflate, and a header checksum).
fn zlib_header(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// The body with every `Content-Encoding` the headers name undone, in reverse order of
/// application; the body itself when there is none. Costs one pass per coding, bounded by
/// `limit` decoded bytes.
///
/// # Errors
/// [`EncodingError::Unsupported`] for a coding other than gzip, deflate or identity;
/// [`EncodingError::Corrupt`] when the body is not what the header says;
/// [`EncodingError::TooLarge`] when the decoded body is over `limit` bytes.
pub fn decode(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, EncodingError> {
    let mut body = body;
    for coding in codings(headers)?.into_iter().rev() {
        let decoded = match coding {
            Coding::Gzip => inflate(MultiGzDecoder::new(&body[..]), "gzip", limit)?,
            Coding::Deflate if zlib_header(&body) => {
                inflate(ZlibDecoder::new(&body[..]), "deflate", limit)?
            }
            Coding::Deflate => inflate(DeflateDecoder::new(&body[..]), "deflate", limit)?,
        };
        body = Bytes::from(decoded);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;

    fn labelled(coding: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_str(coding).unwrap(),
        );
        headers
    }

    fn gzip(text: &[u8]) -> Bytes {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap().into()
    }

    #[test]
    fn gzip_and_both_deflates_decode_and_identity_passes() {
        let text = br#"{"batch":[]}"#;
        assert_eq!(
            decode(&labelled("gzip"), gzip(text), 100).unwrap(),
            &text[..]
        );
        assert_eq!(
            decode(&labelled("X-Gzip"), gzip(text), 100).unwrap(),
            &text[..]
        );
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::fast());
        zlib.write_all(text).unwrap();
        let zlib = Bytes::from(zlib.finish().unwrap());
        assert_eq!(decode(&labelled("deflate"), zlib, 100).unwrap(), &text[..]);
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::fast());
        raw.write_all(text).unwrap();
        let raw = Bytes::from(raw.finish().unwrap());
        assert_eq!(decode(&labelled("deflate"), raw, 100).unwrap(), &text[..]);
        let plain = Bytes::from_static(text);
        assert_eq!(
            decode(&HeaderMap::new(), plain.clone(), 100).unwrap(),
            plain
        );
        assert_eq!(
            decode(&labelled("identity"), plain.clone(), 100).unwrap(),
            plain
        );
        // Two codings are undone in reverse order.
        let twice = gzip(&gzip(text));
        assert_eq!(
            decode(&labelled("gzip, gzip"), twice, 100).unwrap(),
            &text[..]
        );
    }

    #[test]
    fn unsupported_corrupt_and_oversized_bodies_are_refused_by_name() {
        let plain = Bytes::from_static(br#"{"type":"track"}"#);
        assert_eq!(
            decode(&labelled("br"), plain.clone(), 100),
            Err(EncodingError::Unsupported("br".into()))
        );
        assert_eq!(
            decode(&labelled("br"), plain.clone(), 100)
                .unwrap_err()
                .status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let corrupt = decode(&labelled("gzip"), plain, 100).unwrap_err();
        assert_eq!(corrupt.status(), StatusCode::BAD_REQUEST);
        assert!(corrupt.to_string().contains("not gzip data"), "{corrupt}");

        let mut bomb = GzEncoder::new(Vec::new(), Compression::best());
        for _ in 0..64 {
            bomb.write_all(&[0u8; 1 << 20]).unwrap();
        }
        let bomb = bomb.finish().unwrap();
        assert!(
            bomb.len() < 100 << 10,
            "64 MiB of zeros compress to {} bytes",
            bomb.len()
        );
        assert_eq!(
            decode(&labelled("gzip"), bomb.into(), 500 << 10),
            Err(EncodingError::TooLarge { limit: 500 << 10 })
        );
    }
}
