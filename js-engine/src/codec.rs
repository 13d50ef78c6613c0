//! The byte-level helpers behind the JavaScript globals: SHA-256 hex digests, base64 with
//! `btoa`/`atob` semantics, version-4 UUID formatting, and JSON string quoting. Pure Rust, so they are unit-tested
//! on the host.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of the UTF-8 bytes of `text` (`crypto.sha256`).
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// A version-4 (random) UUID in its usual text form, from 16 random bytes.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `btoa`: base64 of a "binary string" (each character one byte, U+0000..U+00FF). `None` when
/// a character is outside that range (the browser's `InvalidCharacterError`).
pub fn btoa(text: &str) -> Option<String> {
    let bytes = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(base64_encode(&bytes))
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `atob`: decodes base64 into a "binary string" (one character per byte), with the browser's
/// forgiving rules: ASCII whitespace is ignored, padding is optional. `None` when the input is
/// not base64.
pub fn atob(text: &str) -> Option<String> {
    let mut digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r'))
        .collect();
    if digits.len().is_multiple_of(4) && digits.ends_with(b"=") {
        digits.pop();
        if digits.ends_with(b"=") {
            digits.pop();
        }
    }
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = String::with_capacity(digits.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for d in digits {
        let v = match d {
            b'A'..=b'Z' => d - b'A',
            b'a'..=b'z' => d - b'a' + 26,
            b'0'..=b'9' => d - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(char::from(((acc >> bits) & 0xff) as u8));
        }
    }
    Some(out)
}

/// Appends `bytes` (WTF-8) as a JSON string: `"`, `\\` and controls escaped as JavaScript
/// does, lone surrogates as `\udXXX`.
pub fn json_quote(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    let mut plain = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            _ => None,
        };
        let surrogate = b == 0xED && bytes.get(i + 1).is_some_and(|n| *n >= 0xA0);
        if escape.is_none() && b >= 0x20 && !surrogate {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[plain..i]);
        if let Some(escape) = escape {
            out.extend_from_slice(escape);
            i += 1;
        } else if surrogate {
            let unit = 0xD000
                | (u32::from(bytes[i + 1] & 0x3F) << 6)
                | u32::from(bytes.get(i + 2).copied().unwrap_or(0x80) & 0x3F);
            out.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                out.push(HEX[((unit >> shift) & 0xF) as usize]);
            }
            i += 3;
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]);
            i += 1;
        }
        plain = i;
    }
    out.extend_from_slice(&bytes[plain.min(bytes.len())..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_digest() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base64_round_trips_binary_strings() {
        for s in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "\u{ff}\u{0}\u{80}",
        ] {
            let enc = btoa(s).unwrap();
            assert_eq!(atob(&enc).as_deref(), Some(s), "{s:?} -> {enc}");
        }
        assert_eq!(btoa("foobar").as_deref(), Some("Zm9vYmFy"));
        assert_eq!(btoa("fo").as_deref(), Some("Zm8="));
    }

    #[test]
    fn btoa_refuses_wide_characters() {
        assert_eq!(btoa("€"), None);
    }

    #[test]
    fn atob_is_forgiving_but_not_lax() {
        assert_eq!(atob("Zm8").as_deref(), Some("fo"));
        assert_eq!(atob(" Zm9v\nYmFy ").as_deref(), Some("foobar"));
        assert_eq!(atob("Zm9vY"), None);
        assert_eq!(atob("Zm9v!"), None);
    }

    #[test]
    fn json_quote_escapes_as_javascript_does() {
        let mut out = Vec::new();
        json_quote("a\"b\\c\n\u{1}\u{7f}é😀".as_bytes(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001\u{7f}é😀\""
        );
        // A lone surrogate, as QuickJS hands it over (WTF-8).
        let mut out = Vec::new();
        json_quote(&[b'x', 0xED, 0xA0, 0xBD], &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\"x\\ud83d\"");
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let u = uuid_v4([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
