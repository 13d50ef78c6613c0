//! A cheap necessary condition for a match: a set of bytes of which every match contains at
//! least one (`@` for an e-mail pattern, the digits for a phone or card pattern). A haystack
//! without any of them cannot match, which a byte scan (a `memchr` for one byte) finds faster
//! than the automaton: most strings of an event go through every pattern of a scrub and match
//! none.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Bytes one of which every match contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Required {
    /// One byte: found with `memchr`.
    Byte(u8),
    /// Several: found with a table scan.
    Set(Box<[bool; 256]>),
}

impl Required {
    /// What `hir` requires; `None` when some match needs no particular byte (the empty match,
    /// or a set too wide to be worth a scan).
    pub fn of(hir: &Hir) -> Option<Required> {
        let set = required(hir)?;
        let count = set.iter().filter(|&&b| b).count();
        // A set that most text hits (say `.` or `\w`) costs a scan that rarely says no.
        match count {
            0 | 128.. => None,
            1 => set
                .iter()
                .position(|&b| b)
                .and_then(|b| u8::try_from(b).ok())
                .map(Required::Byte),
            _ => Some(Required::Set(set)),
        }
    }

    /// Whether `haystack` contains a required byte (else no match can be in it).
    pub fn found_in(&self, haystack: &[u8]) -> bool {
        match self {
            Required::Byte(byte) => memchr::memchr(*byte, haystack).is_some(),
            Required::Set(set) => haystack.iter().any(|&b| set[usize::from(b)]),
        }
    }
}

/// The bytes of which every match of `hir` contains one; `None` if there is no such set.
fn required(hir: &Hir) -> Option<Box<[bool; 256]>> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(literal) => literal.0.first().map(|&b| one_of([b])),
        HirKind::Class(class) => Some(first_bytes(class)),
        HirKind::Repetition(repetition) if repetition.min > 0 => required(&repetition.sub),
        HirKind::Repetition(_) => None,
        HirKind::Capture(capture) => required(&capture.sub),
        // Any part's set will do: the smallest is the most selective.
        HirKind::Concat(parts) => parts
            .iter()
            .filter_map(required)
            .min_by_key(|set| set.iter().filter(|&&b| b).count()),
        HirKind::Alternation(branches) => {
            let mut union = Box::new([false; 256]);
            for branch in branches {
                let set = required(branch)?;
                for (slot, &b) in union.iter_mut().zip(set.iter()) {
                    *slot |= b;
                }
            }
            Some(union)
        }
    }
}

fn one_of(bytes: impl IntoIterator<Item = u8>) -> Box<[bool; 256]> {
    let mut set = Box::new([false; 256]);
    for b in bytes {
        set[usize::from(b)] = true;
    }
    set
}

/// The bytes a character of `class` can start with (in UTF-8).
fn first_bytes(class: &Class) -> Box<[bool; 256]> {
    match class {
        Class::Bytes(bytes) => one_of(
            bytes
                .ranges()
                .iter()
                .flat_map(|range| range.start()..=range.end()),
        ),
        Class::Unicode(unicode) => {
            let mut set = Box::new([false; 256]);
            for range in unicode.ranges() {
                let (start, end) = (u32::from(range.start()), u32::from(range.end()));
                for b in start.min(0x80)..end.min(0x7F) + 1 {
                    set[b as usize] = true;
                }
                // Any non-ASCII character: every lead byte (a superset is still a necessary
                // condition).
                if end >= 0x80 {
                    set[0xC2..=0xF4].fill(true);
                }
            }
            set
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regexp::translate::translate;
    use regex_automata::util::syntax::parse;

    /// The requirement of the JavaScript pattern `source` with `flags`, as translated.
    fn of(source: &str, flags: &str) -> Option<Required> {
        let translated = translate(source, flags).expect("translatable");
        Required::of(&parse(&translated.pattern).expect("parses"))
    }

    #[test]
    fn a_literal_in_the_middle_is_required() {
        let email = of(
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            "g",
        );
        assert_eq!(email, Some(Required::Byte(b'@')));
        let email = email.unwrap();
        assert!(email.found_in(b"a@b.co"));
        assert!(!email.found_in(b"no at sign"));
        let ipv4 = r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|1\d\d|[1-9]?\d)\b";
        assert_eq!(of(ipv4, "g"), Some(Required::Byte(b'.')));
    }

    #[test]
    fn classes_and_alternations_give_sets() {
        let digits = of(r"\b(?:\d[ -]?){12,18}\d\b", "g").unwrap();
        assert!(digits.found_in(b"x 7"));
        assert!(!digits.found_in(b"no digits - at all"));
        let either = of("ab|cd", "").unwrap();
        assert!(either.found_in(b"zzc") && !either.found_in(b"bd"));
        let accent = of("é|x", "").unwrap();
        assert!(accent.found_in("é".as_bytes()) && !accent.found_in(b"e"));
        assert!(of("k", "i").unwrap().found_in(b"K"));
    }

    #[test]
    fn patterns_that_can_match_anything_have_no_requirement() {
        for source in ["", "a*", "a|", "(?:ab)?", r"\b", ".", r"[\s\S]", "[^a]"] {
            assert_eq!(of(source, ""), None, "{source}");
        }
    }
}
