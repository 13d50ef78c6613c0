//! Matching a translated pattern with JavaScript's rules on top of `regex-automata`: searches
//! from a position (sticky ones anchored there), global iteration that steps over empty
//! matches, `$`-patterns in replacement strings, and UTF-16 indices (what JavaScript's
//! `index` and `lastIndex` count) for UTF-8 haystacks.

use regex_automata::meta::{Config, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};

use super::required::Required;
use super::translate::{Flags, Translated};

/// A byte range in the haystack.
pub type Span = (usize, usize);

/// A compiled pattern. Building one costs microseconds to milliseconds (the cache keeps it per
/// instance); a search costs time linear in the haystack.
pub struct Compiled {
    regex: Regex,
    captures: Captures,
    translated: Translated,
    /// Bytes one of which every match contains: text without them is not searched.
    required: Option<Required>,
}

impl Compiled {
    /// Compiles a translated pattern; `None` if `regex` refuses it (e.g. too large).
    ///
    /// Without literal prefilters and the one-pass DFA: on the scrub's patterns they made
    /// compiling ~27x dearer (a fresh instance compiles every pattern it uses) for no gain
    /// in search time (the lazy DFA does the searching).
    pub fn new(translated: Translated) -> Option<Compiled> {
        let config = Config::new().auto_prefilter(false).onepass(false);
        let hir = regex_automata::util::syntax::parse(&translated.pattern).ok()?;
        let regex = Regex::builder()
            .configure(config)
            .build_from_hir(&hir)
            .ok()?;
        let captures = regex.create_captures();
        Some(Compiled {
            regex,
            captures,
            translated,
            required: Required::of(&hir),
        })
    }

    /// The pattern's flags.
    pub fn flags(&self) -> Flags {
        self.translated.flags
    }

    /// The names of the capture groups, group 1 first.
    pub fn group_names(&self) -> &[Option<String>] {
        &self.translated.group_names
    }

    /// Whether the pattern has named groups (then `groups` is an object, else undefined).
    pub fn has_named_groups(&self) -> bool {
        self.translated.group_names.iter().any(Option::is_some)
    }

    /// Whether captures (not just the overall match) are exactly JavaScript's.
    pub fn captures_exact(&self) -> bool {
        self.translated.captures_exact
    }

    /// Whether `haystack` can be matched here with JavaScript's meaning: without `u`, a
    /// character outside the BMP is two units for JavaScript (and one for `regex`); with `m`
    /// anchors, `\r`, U+2028 and U+2029 are line ends for JavaScript only.
    /// `ascii` says `haystack` is all ASCII, which settles both without a look.
    pub fn accepts(&self, haystack: &str, ascii: bool) -> bool {
        if !self.translated.line_anchors {
            return ascii || self.translated.flags.unicode || !haystack.bytes().any(|b| b >= 0xF0);
        }
        if ascii {
            return !haystack.contains('\r');
        }
        if !self.translated.flags.unicode && haystack.bytes().any(|b| b >= 0xF0) {
            return false;
        }
        !haystack.contains(['\r', '\u{2028}', '\u{2029}'])
    }

    /// Whether a match may start at or after `start`: the required bytes are there.
    fn may_match(&self, haystack: &str, start: usize) -> bool {
        match (&self.required, haystack.as_bytes().get(start..)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(required), Some(rest)) => required.found_in(rest),
        }
    }

    fn input<'h>(&self, haystack: &'h str, start: usize) -> Input<'h> {
        let anchored = if self.translated.flags.sticky {
            Anchored::Yes
        } else {
            Anchored::No
        };
        Input::new(haystack)
            .span(start..haystack.len())
            .anchored(anchored)
    }

    /// The first match at or after byte `start` (exactly at `start` when sticky).
    pub fn find(&self, haystack: &str, start: usize) -> Option<Span> {
        if !self.may_match(haystack, start) {
            return None;
        }
        self.regex
            .search(&self.input(haystack, start))
            .map(|m| (m.start(), m.end()))
    }

    /// Like [`Compiled::find`], with every group's span (`None` for a group that did not
    /// take part); index 0 is the whole match.
    pub fn captures(&mut self, haystack: &str, start: usize) -> Option<Vec<Option<Span>>> {
        if self.translated.group_names.is_empty() {
            // Just the whole match: the search without captures is cheaper.
            return self.find(haystack, start).map(|span| vec![Some(span)]);
        }
        if !self.may_match(haystack, start) {
            return None;
        }
        let input = self.input(haystack, start);
        self.regex.search_captures(&input, &mut self.captures);
        if !self.captures.is_match() {
            return None;
        }
        let groups = self.translated.group_names.len() + 1;
        Some(
            (0..groups)
                .map(|i| self.captures.get_group(i).map(|s| (s.start, s.end)))
                .collect(),
        )
    }

    /// Every match as a global (`g`) search finds them from byte 0: after an empty match
    /// the search resumes one character later; sticky matches must follow one another.
    pub fn all(&self, haystack: &str) -> Vec<Span> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(span) = self.find(haystack, at) {
            out.push(span);
            at = if span.0 == span.1 {
                next_char(haystack, span.1)
            } else {
                span.1
            };
        }
        out
    }
}

/// The byte index one character after `at` (past the end when `at` is the end).
pub fn next_char(haystack: &str, at: usize) -> usize {
    haystack[at..]
        .chars()
        .next()
        .map_or(haystack.len() + 1, |c| at + c.len_utf8())
}

/// The UTF-16 index of byte `at` in `haystack` (a character boundary). Callers that know
/// the haystack is ASCII skip this: the index is `at`.
pub fn utf16_index(haystack: &str, at: usize) -> usize {
    haystack[..at].chars().map(char::len_utf16).sum()
}

/// The byte index of UTF-16 index `index`. Inside a surrogate pair: the pair's start when
/// `code_points` (with `u`, JavaScript reads the code point that unit belongs to), else `None`.
/// An index past the end gives a byte index past the end (a search there finds nothing).
/// Callers that know the haystack is ASCII skip this: the byte index is `index`.
pub fn byte_index(haystack: &str, index: usize, code_points: bool) -> Option<usize> {
    let mut units = 0;
    for (at, c) in haystack.char_indices() {
        if units == index {
            return Some(at);
        }
        units += c.len_utf16();
        if units > index {
            return code_points.then_some(at);
        }
    }
    Some(haystack.len() + (index - units))
}

/// Whether a replacement string refers to captures (`$1`, `$<name>`).
pub fn template_uses_captures(template: &str) -> bool {
    template
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && (w[1].is_ascii_digit() || w[1] == b'<'))
}

/// One match as a replacement template sees it.
pub struct Found<'a> {
    /// The haystack.
    pub haystack: &'a str,
    /// Whether the haystack is all ASCII (byte indices are UTF-16 indices).
    pub ascii: bool,
    /// Every group's span, the whole match first.
    pub groups: &'a [Option<Span>],
    /// The group names (group 1 first); all `None` means `$<` stays literal.
    pub names: &'a [Option<String>],
}

impl Found<'_> {
    /// The UTF-16 index of byte `at` of the haystack.
    pub fn utf16_index(&self, at: usize) -> usize {
        if self.ascii {
            at
        } else {
            utf16_index(self.haystack, at)
        }
    }

    fn group(&self, index: usize) -> &str {
        match self.groups.get(index).copied().flatten() {
            Some((start, end)) => &self.haystack[start..end],
            None => "",
        }
    }
}

/// Appends `template` with JavaScript's `$$ $& $\` $' $n $nn $<name>` substituted
/// (GetSubstitution).
pub fn expand(template: &str, found: &Found<'_>, out: &mut String) {
    let bytes = template.as_bytes();
    let captures = found.groups.len() - 1;
    let (start, end) = found.groups[0].unwrap_or((0, 0));
    let named = found.names.iter().any(Option::is_some);
    let mut i = 0;
    let mut literal_from = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        out.push_str(&template[literal_from..i]);
        let next = bytes[i + 1];
        let consumed = match next {
            b'$' => {
                out.push('$');
                2
            }
            b'&' => {
                out.push_str(&found.haystack[start..end]);
                2
            }
            b'`' => {
                out.push_str(&found.haystack[..start]);
                2
            }
            b'\'' => {
                out.push_str(&found.haystack[end..]);
                2
            }
            b'0'..=b'9' => {
                let one = usize::from(next - b'0');
                let two = bytes
                    .get(i + 2)
                    .filter(|d| d.is_ascii_digit())
                    .map(|d| one * 10 + usize::from(d - b'0'));
                match two {
                    Some(index) if (1..=captures).contains(&index) => {
                        out.push_str(found.group(index));
                        3
                    }
                    Some(0) => {
                        out.push_str(&template[i..i + 3]);
                        3
                    }
                    _ if (1..=captures).contains(&one) => {
                        out.push_str(found.group(one));
                        2
                    }
                    _ => {
                        out.push_str(&template[i..i + 2]);
                        2
                    }
                }
            }
            b'<' if named => match template[i + 2..].find('>') {
                Some(close) => {
                    let name = &template[i + 2..i + 2 + close];
                    if let Some(index) = found.names.iter().position(|n| n.as_deref() == Some(name))
                    {
                        out.push_str(found.group(index + 1));
                    }
                    close + 3
                }
                None => {
                    out.push_str("$<");
                    2
                }
            },
            _ => {
                out.push('$');
                1
            }
        };
        i += consumed;
        literal_from = i;
    }
    out.push_str(&template[literal_from..]);
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;
    use super::*;

    fn compiled(source: &str, flags: &str) -> Compiled {
        Compiled::new(translate(source, flags).unwrap()).unwrap()
    }

    #[test]
    fn global_iteration_steps_over_empty_matches() {
        let re = compiled("x*", "g");
        assert_eq!(re.all("abc"), vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
        let re = compiled("a|", "g");
        assert_eq!(re.all("aab"), vec![(0, 1), (1, 2), (2, 2), (3, 3)]);
    }

    #[test]
    fn sticky_matches_only_where_asked() {
        let re = compiled("a", "y");
        assert_eq!(re.find("ba", 0), None);
        assert_eq!(re.find("ba", 1), Some((1, 2)));
        let re = compiled(r"\bb", "");
        assert_eq!(re.find("ab b", 1), Some((3, 4)));
    }

    #[test]
    fn indices_count_utf16_units() {
        let s = "é😀a";
        assert_eq!(utf16_index(s, s.len()), 4);
        assert_eq!(byte_index(s, 3, false), Some(6));
        assert_eq!(byte_index(s, 2, false), None);
        assert_eq!(byte_index(s, 2, true), Some(2));
        assert_eq!(byte_index(s, 5, false), Some(s.len() + 1));
    }

    #[test]
    fn replacement_patterns_follow_get_substitution() {
        let mut re = compiled(r"(?<a>b)(c)", "");
        let groups = re.captures("abcd", 0).unwrap();
        let names = re.group_names().to_vec();
        let found = Found {
            haystack: "abcd",
            ascii: true,
            groups: &groups,
            names: &names,
        };
        let mut out = String::new();
        expand(
            "[$&|$1|$2|$3|$01|$10|$00|$<a>|$<z>|$$|$`|$'|$]",
            &found,
            &mut out,
        );
        assert_eq!(out, "[bc|b|c|$3|b|b0|$00|b||$|a|d|$]");
    }
}
