//! Finding and redacting personal data (PII) in event text.
//!
//! Insert functions may run on a fresh WebAssembly instance per event, so
//! there is no regex engine here: compiling patterns on every instantiation
//! would cost more than the whole per-event budget. Each kind is a small
//! hand-written scanner over the UTF-8 bytes; one left-to-right pass finds
//! everything and nothing is allocated when nothing is found.
//!
//! # Detection rules
//!
//! Other ports (e.g. JavaScript) must reproduce these byte for byte.
//!
//! A *digit* is `0-9`; a *word byte* is ASCII `[A-Za-z0-9_]`. Non-ASCII bytes
//! and the positions outside the text belong to no class, so they are never
//! part of a match and always act as boundaries. *Before* / *after* are the
//! bytes just before a candidate's first byte and just after its last.
//!
//! **Scan.** Start at byte `i = 0`. At `i` try Email, Ssn, CardNumber, Phone,
//! Ipv6, Ipv4 in that order; the first that matches is reported and scanning
//! resumes at its end, otherwise at `i + 1`. So matches never overlap, the
//! leftmost start wins, and ties go to the earlier kind.
//!
//! - **Email**, tried when `i` is 0, the byte before `i` is not a local byte,
//!   or `i` is where the previous match ended. Local bytes: `[A-Za-z0-9._%+-]`.
//!   Take the maximal run of local bytes from `i` and drop its leading `.`s;
//!   it must be non-empty and followed by `@`. The domain is labels of
//!   `[A-Za-z0-9-]+`, crossing a `.` only when a label byte follows it. The
//!   match ends after the last label, other than the first, that is 2+ ASCII
//!   letters once its trailing `-`s are dropped (they stay unmatched); if no
//!   label qualifies there is no email.
//! - **Ssn**: `ddd-dd-dddd`; before and after are neither word bytes nor `-`.
//!   The SSA's validity rules (no area `000`, `666` or `9dd`, ...) are
//!   deliberately not applied: ITINs use `9dd`, test data uses `666`, and a
//!   filter that lets an SSN-shaped value through is the worse mistake.
//! - **CardNumber**: starts at a digit; before is not a word byte. Groups are
//!   maximal digit runs joined by exactly one ` ` or `-`. Candidate ends are
//!   group ends where the digits so far number 13..=19 and after is not a word
//!   byte; the longest candidate passing the Luhn checksum wins.
//! - **Phone**: starts at `+`, `(` or a digit; before is not a word byte, `+`,
//!   `-` or `.`. An optional `+` is followed by groups: a maximal digit run,
//!   or at most once `(` digits `)`. Groups are joined by one ` `, `-` or `.`,
//!   or by nothing next to the `(...)` group; a separator not followed by a
//!   group ends the number before it. Reject unless the whole number has
//!   10..=15 digits and after is neither a word byte nor `:` + digit (a clock
//!   time). Also reject two groups joined by `.` (a decimal) and four groups
//!   joined by `.` with at most 3 digits each, no `+` and no `(` (IPv4-shaped).
//! - **Ipv6**: tried where a maximal run of `[0-9A-Fa-f:.]` starts and before
//!   is not a word byte; after must not be a word byte. The run must contain a
//!   hex digit and parse with Rust's `std::net::Ipv6Addr` (up to 8 groups of
//!   1-4 hex digits; one `::` standing for one or more zero groups; optional
//!   trailing dotted IPv4 without leading zeros; no zone). If it does not parse
//!   but ends in `.` or `:`, the run minus that byte is tried instead.
//! - **Ipv4**: four `.`-joined octets, each a maximal digit run of 1-3 digits,
//!   0..=255, no leading `0` unless exactly `0`. Before is not a word byte nor
//!   a `.` preceded by a digit; after is not a word byte nor `.` + digit.
//!
//! # Replacement
//!
//! [`Redaction::Mask`] writes `[LABEL]` (see [`PiiKind::label`]);
//! [`Redaction::Hash`] writes [`hash_hex`] of the normalised match: Email in
//! ASCII lowercase; Phone, CardNumber and Ssn as their digits only (a Phone
//! keeps its leading `+`); IPs as written. Text between matches is unchanged.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Kinds of personal data the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A telephone number, national or international.
    Phone,
    /// A payment card number that passes the Luhn checksum.
    CardNumber,
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A US Social Security number.
    Ssn,
}

impl PiiKind {
    /// The label used in masks: `EMAIL`, `PHONE`, `CARD`, `IP` (both IP
    /// versions, so downstream consumers need not care which) or `SSN`.
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::CardNumber => "CARD",
            PiiKind::Ipv4 | PiiKind::Ipv6 => "IP",
            PiiKind::Ssn => "SSN",
        }
    }
}

/// One detected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiMatch {
    /// What was found.
    pub kind: PiiKind,
    /// Byte offset of the first matched byte; always a char boundary.
    pub start: usize,
    /// Byte offset just past the match; always a char boundary.
    pub end: usize,
}

/// How a found value is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redaction {
    /// Replace with `[LABEL]`, e.g. `[EMAIL]`.
    #[default]
    Mask,
    /// Replace with the SHA-256 hex of the normalised value, so the same
    /// person still joins across events without being readable.
    Hash,
}

/// Every match in `text`, sorted by start and non-overlapping.
pub fn find(text: &str) -> Vec<PiiMatch> {
    // An empty iterator collects into a Vec without allocating.
    Scanner::new(text).collect()
}

/// Whether `text` holds any personal data; stops at the first match.
pub fn contains_pii(text: &str) -> bool {
    Scanner::new(text).next().is_some()
}

/// `text` with every match replaced, or `None` (without allocating) when
/// nothing was found.
pub fn redact_str(text: &str, how: Redaction) -> Option<String> {
    redact_counted(text, how).map(|(out, _)| out)
}

/// Redacts every string value inside `value` (nested objects and arrays
/// included; object keys, numbers and booleans are left alone) and returns
/// how many matches were replaced.
pub fn redact_value(value: &mut Value, how: Redaction) -> usize {
    let mut count = 0;
    // An explicit stack: a hand-built Value can nest deeper than the stack.
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some((out, n)) = redact_counted(s, how) {
                    *s = out;
                    count += n;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
    count
}

/// Lowercase hex SHA-256 of the UTF-8 bytes of `text`.
pub fn hash_hex(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
    out
}

fn redact_counted(text: &str, how: Redaction) -> Option<(String, usize)> {
    let mut scanner = Scanner::new(text);
    let first = scanner.next()?;
    let mut out = String::with_capacity(text.len() + 16);
    let (mut copied, mut count) = (0, 0);
    for m in std::iter::once(first).chain(scanner) {
        out.push_str(slice(text, copied, m.start));
        let found = slice(text, m.start, m.end);
        match how {
            Redaction::Mask => {
                out.push('[');
                out.push_str(m.kind.label());
                out.push(']');
            }
            Redaction::Hash => out.push_str(&hash_hex(&normalised(m.kind, found))),
        }
        copied = m.end;
        count += 1;
    }
    out.push_str(slice(text, copied, text.len()));
    Some((out, count))
}

fn normalised(kind: PiiKind, found: &str) -> Cow<'_, str> {
    match kind {
        PiiKind::Email => Cow::Owned(found.to_ascii_lowercase()),
        PiiKind::Ipv4 | PiiKind::Ipv6 => Cow::Borrowed(found),
        PiiKind::Phone | PiiKind::CardNumber | PiiKind::Ssn => {
            let plus = kind == PiiKind::Phone && found.starts_with('+');
            let digits = found.chars().filter(char::is_ascii_digit);
            Cow::Owned(plus.then_some('+').into_iter().chain(digits).collect())
        }
    }
}

/// Matches are ASCII-delimited so this never misses, but input must not be
/// able to reach a panic even if that invariant were broken.
fn slice(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end).unwrap_or("")
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn is_v6(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// The byte at `i`, or 0 outside the text: 0 is in no class, so the edges of
/// the text behave like any other boundary.
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn before(b: &[u8], i: usize) -> u8 {
    i.checked_sub(1).map_or(0, |k| at(b, k))
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    last_end: usize,
    /// A failed local run fails the same way from any later start inside it,
    /// so re-trying after a match that ends mid-run would only go quadratic.
    email_dead_until: usize,
    has_at: bool,
    has_colon: bool,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        let b = text.as_bytes();
        Scanner {
            b,
            pos: 0,
            last_end: 0,
            email_dead_until: 0,
            has_at: b.contains(&b'@'),
            has_colon: b.contains(&b':'),
        }
    }

    /// Cheap filter so bytes that start nothing (most prose) cost one test.
    fn may_start(&self, c: u8) -> bool {
        c.is_ascii_digit()
            || c == b'+'
            || c == b'('
            || (self.has_at && is_local(c))
            || (self.has_colon && is_v6(c))
    }

    fn match_at(&mut self, i: usize) -> Option<(PiiKind, usize, usize)> {
        let (b, c) = (self.b, at(self.b, i));
        let email_start = i == self.last_end || !is_local(before(b, i));
        if self.has_at && is_local(c) && email_start && i >= self.email_dead_until {
            match email(b, i) {
                Ok((start, end)) => return Some((PiiKind::Email, start, end)),
                Err(run_end) => self.email_dead_until = run_end,
            }
        }
        let digit = c.is_ascii_digit();
        if digit {
            if let Some(end) = ssn(b, i) {
                return Some((PiiKind::Ssn, i, end));
            }
            if let Some(end) = card(b, i) {
                return Some((PiiKind::CardNumber, i, end));
            }
        }
        if (digit || c == b'+' || c == b'(')
            && let Some(end) = phone(b, i)
        {
            return Some((PiiKind::Phone, i, end));
        }
        if self.has_colon
            && is_v6(c)
            && let Some(end) = ipv6(b, i)
        {
            return Some((PiiKind::Ipv6, i, end));
        }
        if digit {
            return ipv4(b, i).map(|end| (PiiKind::Ipv4, i, end));
        }
        None
    }
}

impl Iterator for Scanner<'_> {
    type Item = PiiMatch;

    fn next(&mut self) -> Option<PiiMatch> {
        while let Some(&c) = self.b.get(self.pos) {
            let i = self.pos;
            if self.may_start(c)
                && let Some((kind, start, end)) = self.match_at(i)
            {
                self.pos = end;
                self.last_end = end;
                return Some(PiiMatch { kind, start, end });
            }
            self.pos = i + 1;
        }
        None
    }
}

/// `Ok((start, end))`, or `Err(end of the local run)` so the caller can skip it.
fn email(b: &[u8], i: usize) -> Result<(usize, usize), usize> {
    let mut j = i;
    while is_local(at(b, j)) {
        j += 1;
    }
    let start = (i..j).find(|&k| at(b, k) != b'.').unwrap_or(j);
    if start == j || at(b, j) != b'@' {
        return Err(j);
    }
    let mut p = j + 1;
    let (mut labels, mut end) = (0, None);
    loop {
        let label = p;
        while is_label(at(b, p)) {
            p += 1;
        }
        if p == label {
            break;
        }
        let mut t = p;
        while t > label && at(b, t - 1) == b'-' {
            t -= 1;
        }
        let tld = b.get(label..t).unwrap_or_default();
        if labels > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
            end = Some(t);
        }
        labels += 1;
        if at(b, p) == b'.' && is_label(at(b, p + 1)) {
            p += 1;
        } else {
            break;
        }
    }
    end.map(|end| (start, end)).ok_or(j)
}

fn ssn(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i + 11)?;
    // Every SSN-shaped value counts, valid for the SSA or not (see the rules above).
    let shaped = s.iter().enumerate().all(|(k, &c)| match k {
        3 | 6 => c == b'-',
        _ => c.is_ascii_digit(),
    });
    let edge = |c: u8| is_word(c) || c == b'-';
    if !shaped || edge(before(b, i)) || edge(at(b, i + 11)) {
        return None;
    }
    Some(i + 11)
}

fn card(b: &[u8], i: usize) -> Option<usize> {
    if is_word(before(b, i)) {
        return None;
    }
    // Luhn sums for every prefix at once: sums[x] doubles the digits whose
    // index has parity x; a prefix of n digits doubles parity n % 2, because
    // its last digit stays single.
    let mut sums = [0u32; 2];
    let (mut n, mut p, mut best) = (0, i, None);
    loop {
        while at(b, p).is_ascii_digit() {
            if n == 19 {
                return best;
            }
            let d = u32::from(at(b, p) - b'0');
            sums[n % 2] += if d > 4 { 2 * d - 9 } else { 2 * d };
            sums[1 - n % 2] += d;
            n += 1;
            p += 1;
        }
        if n >= 13 && !is_word(at(b, p)) && sums[n % 2].is_multiple_of(10) {
            best = Some(p);
        }
        if matches!(at(b, p), b' ' | b'-') && at(b, p + 1).is_ascii_digit() {
            p += 1;
        } else {
            return best;
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Groups {
    digits: usize,
    count: usize,
    dots: usize,
    longest: usize,
    paren: bool,
}

impl Groups {
    /// Reads one group at `p`; returns its end. A bare digit run stops past 15
    /// digits, as the number is rejected anyway and this bounds the work; a
    /// `(` run must be read to its end to learn whether it is a group at all.
    fn read(&mut self, b: &[u8], p: usize) -> Option<usize> {
        let open = at(b, p) == b'(' && !self.paren;
        let start = p + usize::from(open);
        let mut q = start;
        while at(b, q).is_ascii_digit() && (open || self.digits <= 15) {
            q += 1;
            self.digits += 1;
        }
        if q == start || (open && at(b, q) != b')') {
            return None;
        }
        self.count += 1;
        self.longest = self.longest.max(q - start);
        self.paren |= open;
        Some(q + usize::from(open))
    }
}

fn phone(b: &[u8], i: usize) -> Option<usize> {
    let prev = before(b, i);
    if is_word(prev) || matches!(prev, b'+' | b'-' | b'.') {
        return None;
    }
    let plus = at(b, i) == b'+';
    let mut g = Groups::default();
    let mut p = g.read(b, i + usize::from(plus))?;
    while g.digits <= 15 {
        let sep = at(b, p);
        let joined = usize::from(matches!(sep, b' ' | b'-' | b'.'));
        let mut next = g;
        let Some(end) = next.read(b, p + joined) else {
            break;
        };
        next.dots += usize::from(sep == b'.' && joined == 1);
        g = next;
        p = end;
    }
    let after = at(b, p);
    let clock = after == b':' && at(b, p + 1).is_ascii_digit();
    let decimal = g.count == 2 && g.dots == 1;
    let ipv4_shaped = g.count == 4 && g.dots == 3 && g.longest <= 3 && !plus && !g.paren;
    let ok = (10..=15).contains(&g.digits) && !is_word(after) && !clock;
    (ok && !decimal && !ipv4_shaped).then_some(p)
}

fn ipv6(b: &[u8], i: usize) -> Option<usize> {
    let prev = before(b, i);
    if is_v6(prev) || is_word(prev) {
        return None;
    }
    let mut j = i;
    while is_v6(at(b, j)) {
        j += 1;
        // The longest valid form is 45 bytes, plus one trimmable byte.
        if j - i > 46 {
            return None;
        }
    }
    let run = b.get(i..j)?;
    // Parsing is the costly step, so runs that cannot be addresses stop here.
    let colons = run.iter().filter(|&&c| c == b':').count();
    if is_word(at(b, j)) || colons < 2 || !run.iter().any(u8::is_ascii_hexdigit) {
        return None;
    }
    if parses_v6(run) {
        return Some(j);
    }
    let trimmed = run.strip_suffix(b".").or_else(|| run.strip_suffix(b":"))?;
    parses_v6(trimmed).then_some(j - 1)
}

fn parses_v6(run: &[u8]) -> bool {
    std::str::from_utf8(run).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
}

fn ipv4(b: &[u8], i: usize) -> Option<usize> {
    let prev = before(b, i);
    if is_word(prev) || (prev == b'.' && before(b, i - 1).is_ascii_digit()) {
        return None;
    }
    let mut p = i;
    for octet in 0..4 {
        if octet > 0 {
            if at(b, p) != b'.' {
                return None;
            }
            p += 1;
        }
        let start = p;
        let mut value = 0u32;
        while at(b, p).is_ascii_digit() && p - start < 4 {
            value = value * 10 + u32::from(at(b, p) - b'0');
            p += 1;
        }
        let len = p - start;
        if len == 0 || len > 3 || value > 255 || (len > 1 && at(b, start) == b'0') {
            return None;
        }
    }
    let after = at(b, p);
    let dotted_on = after == b'.' && at(b, p + 1).is_ascii_digit();
    (!is_word(after) && !dotted_on).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PiiKind::*;
    use serde_json::json;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        let found = find(text).into_iter();
        found.map(|m| (m.kind, &text[m.start..m.end])).collect()
    }

    fn mask(text: &str) -> String {
        redact_str(text, Redaction::Mask).unwrap_or_else(|| text.to_owned())
    }

    /// `items` is a `", "`-separated list, each of which must match whole.
    fn whole(kind: PiiKind, items: &str) {
        for text in items.split(", ") {
            assert_eq!(kinds(text), vec![(kind, text)], "{text:?}");
        }
    }

    /// `items` is a `", "`-separated list in which nothing may be found.
    fn clean(items: &str) {
        for text in items.split(", ") {
            assert_eq!(kinds(text), vec![], "{text:?}");
            assert!(!contains_pii(text));
            assert_eq!(redact_str(text, Redaction::Mask), None);
        }
    }

    #[test]
    fn emails() {
        whole(
            Email,
            "grace@example.com, a.b+tag%x@mail.example.co.uk, x_y-z@a-b.io",
        );
        let url = "https://shop.example.com/checkout?email=grace.dijkstra668@example.com";
        assert_eq!(mask(url), "https://shop.example.com/checkout?email=[EMAIL]");
        assert_eq!(mask("mail grace@example.com."), "mail [EMAIL].");
        assert_eq!(mask("(…grace@example.com-)"), "(…[EMAIL]-)");
        assert_eq!(mask("...grace@example.com"), "...[EMAIL]");
        assert_eq!(mask("x@sub.example.com.42"), "[EMAIL].42");
        clean("user@localhost, @example.com, a@b.c, a@@b.com, .@example.com, no at");
        assert_eq!(kinds("x@1.2.3.4"), vec![(Ipv4, "1.2.3.4")]);
    }

    #[test]
    fn mixed_sentence() {
        let text = "call me at +1-555-922-5727 or write a.b@mail.example.org";
        assert_eq!(mask(text), "call me at [PHONE] or write [EMAIL]");
        let spans: Vec<_> = find(text).iter().map(|m| (m.start, m.end)).collect();
        assert_eq!(spans, vec![(11, 26), (36, 56)]);
        // A match ending inside a local run still lets an email start after it.
        assert_eq!(mask("(555) 922-5727.bob@x.com"), "[PHONE].[EMAIL]");
    }

    #[test]
    fn ssns() {
        whole(Ssn, "123-45-6789");
        assert_eq!(mask("ssn: 123-45-6789."), "ssn: [SSN].");
        // ITINs (9dd) and values the SSA never issues (666) are SSN-shaped: redacted too.
        assert_eq!(mask("666-13-6779 / 900-12-3456"), "[SSN] / [SSN]");
        clean("x123-45-6789, 1234-56-789, 123-45-678, 12-345-6789");
        assert_eq!(kinds("1-123-45-6789"), vec![(Phone, "1-123-45-6789")]);
    }

    #[test]
    fn cards() {
        whole(
            CardNumber,
            "4111 1111 1111 1111, 4111-1111-1111-1111, 4111111111111111",
        );
        assert_eq!(
            mask("card 4111111111111111 12 items"),
            "card [CARD] 12 items"
        );
        let luhn_fails = find("4111 1111 1111 1112");
        assert!(luhn_fails.iter().all(|m| m.kind != CardNumber));
        clean("4111-1111-1111-1112, x4111111111111111, 4111111111111111_");
        assert_eq!(
            kinds("4111  1111 1111 1111"),
            vec![(Phone, "1111 1111 1111")]
        );
    }

    #[test]
    fn phones() {
        whole(
            Phone,
            "+1-555-922-5727, +1 (555) 922-5727, 555-922-5727, (555) 922-5727",
        );
        whole(
            Phone,
            "+44 20 7946 0958, 5559225727, 555.922.5727, +1(555)922-5727",
        );
        assert_eq!(mask("tel: (555) 922-5727, thanks"), "tel: [PHONE], thanks");
        assert_eq!(mask("tel 555-922-5727 (home)"), "tel [PHONE] (home)");
        clean("2026-11-01T00:00:07Z, 2026-11-01 00:00:07, 505.62, 12345678.90, ord_37349461");
        clean("5.2.0, 12345678, sku-0006, order-5559225727, 9b975338-eade-4845-544c-efd37f75b7e0");
        clean("5559225727x, 1234567890123456, 999.999.999.999, 1.234.567.890, +1 555");
    }

    #[test]
    fn ips() {
        whole(Ipv4, "149.214.102.115, 0.0.0.0, 255.255.255.255");
        assert_eq!(mask("from 10.0.0.1:8080."), "from [IP]:8080.");
        clean("256.1.1.1, 1.2.3, 5.2.0, 01.2.3.4, 1.2.3.4.5, v1.2.3.4");
        whole(
            Ipv6,
            "2001:db8::8a2e:370:7334, ::1, fe80::1, ::ffff:192.168.1.1",
        );
        assert_eq!(mask("host ::1. done"), "host [IP]. done");
        assert_eq!(mask("[fe80::1]:443"), "[[IP]]:443");
        clean("12:30:45, ::, at 12:30, 00:1a:2b:3c:4d:5e, g::1, fe80::1g");
    }

    #[test]
    fn hashing() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hash_hex(""), empty);
        let hashed = redact_str("Grace@Example.com", Redaction::Hash);
        assert_eq!(hashed, Some(hash_hex("grace@example.com")));
        let hashed = redact_str("tel +1 (555) 922-5727!", Redaction::Hash);
        assert_eq!(hashed, Some(format!("tel {}!", hash_hex("+15559225727"))));
        let hashed = redact_str("4111-1111-1111-1111 123-45-6789", Redaction::Hash);
        let want = format!("{} {}", hash_hex("4111111111111111"), hash_hex("123456789"));
        assert_eq!(hashed, Some(want));
        assert_eq!(redact_str("::1", Redaction::Hash), Some(hash_hex("::1")));
    }

    #[test]
    fn multibyte_text() {
        let text = "café ☕ grace@example.com — ok";
        assert_eq!(mask(text), "café ☕ [EMAIL] — ok");
        assert_eq!(mask("☎5559225727☎"), "☎[PHONE]☎");
        clean("naïve ☕ 日本語 — 505.62");
    }

    #[test]
    fn redacts_json_values() {
        let mut event = json!({
            "userId": "grace@example.com",
            "properties": {
                "grace@example.com": "key stays",
                "contacts": ["555-922-5727", {"ip": "149.214.102.115 and ::1"}],
                "revenue": 505.62, "phone": 5559225727u64, "vip": true, "sku": "sku-0006"
            }
        });
        assert_eq!(redact_value(&mut event, Redaction::Mask), 4);
        let want = json!({
            "userId": "[EMAIL]",
            "properties": {
                "grace@example.com": "key stays",
                "contacts": ["[PHONE]", {"ip": "[IP] and [IP]"}],
                "revenue": 505.62, "phone": 5559225727u64, "vip": true, "sku": "sku-0006"
            }
        });
        assert_eq!(event, want);
        assert_eq!(redact_value(&mut event, Redaction::Mask), 0);
    }

    #[test]
    fn random_text_keeps_invariants() {
        let alphabet: Vec<char> = "0145 9-.:@afxmZ_+()é☕😀".chars().collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % 1024).unwrap_or(0)
        };
        for _ in 0..600 {
            let len = next() % 48;
            let text: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            let found = find(&text);
            let mut prev_end = 0;
            for m in &found {
                assert!(prev_end <= m.start && m.start < m.end && m.end <= text.len());
                assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
                prev_end = m.end;
            }
            assert_eq!(contains_pii(&text), !found.is_empty(), "{text:?}");
            let redacted = redact_str(&text, Redaction::Hash);
            assert_eq!(redacted.is_none(), found.is_empty());
        }
    }

    #[test]
    fn adversarial_input_stays_linear() {
        for unit in "123-45-6789.|1 |a.|1:|5559225727.|(1|1.1.|a@|9(|1-".split('|') {
            let text = unit.repeat(200_000 / unit.len());
            assert!(find(&text).len() <= text.len());
        }
    }
}
