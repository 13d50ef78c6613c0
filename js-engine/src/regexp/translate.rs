//! JavaScript regular expression syntax, translated into the `regex` crate's: the subset whose
//! meaning the translation keeps exactly, and `None` for everything else (the engine then keeps
//! QuickJS's own matcher, which is always correct).
//!
//! What is translated: literals, `.`, classes (ranges, negation, `\d \w \s` and their negations
//! inside and outside), groups (capturing, named, non-capturing), alternation, greedy and lazy
//! quantifiers, `^ $` (with and without `m`), `\b \B`, and the escapes `\t \n \v \f \r \0 \xHH
//! \uHHHH \u{H..} \cX`. `\d \w \b` are ASCII and `\s` is JavaScript's white space, as in
//! JavaScript; `.` excludes JavaScript's four line terminators unless `s` is set. With `i`, ASCII
//! letters match both cases (JavaScript's canonicalisation never maps a non-ASCII character
//! onto an ASCII one), and any cased non-ASCII character in the pattern falls back.
//!
//! What falls back: backreferences, lookaround, `\p{..}`, the `d` and `v` flags, `i` with `u`,
//! Annex B oddities (a lone `{`, `]` or `}`, octal escapes, `\c` without a letter, class escapes
//! as range ends), quantified groups that can match the empty string, very large counted
//! repetitions. Captures inside a repeated group are kept but marked inexact (JavaScript resets
//! them on each iteration, `regex` does not), so only operations that ignore captures use them.

/// The flags of a JavaScript regular expression that the translation supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `g`: every match, from `lastIndex` 0.
    pub global: bool,
    /// `i`: case-insensitive.
    pub ignore_case: bool,
    /// `m`: `^`/`$` at line terminators.
    pub multiline: bool,
    /// `s`: `.` matches line terminators.
    pub dot_all: bool,
    /// `u`: the input is code points, not UTF-16 code units.
    pub unicode: bool,
    /// `y`: matches only at `lastIndex`.
    pub sticky: bool,
}

impl Flags {
    /// The flags in `text` (as `RegExp.prototype.flags` gives them); `None` for a flag the
    /// translation does not support (`d`, `v`) or does not know.
    pub fn parse(text: &str) -> Option<Flags> {
        let mut flags = Flags::default();
        for c in text.chars() {
            let slot = match c {
                'g' => &mut flags.global,
                'i' => &mut flags.ignore_case,
                'm' => &mut flags.multiline,
                's' => &mut flags.dot_all,
                'u' => &mut flags.unicode,
                'y' => &mut flags.sticky,
                _ => return None,
            };
            *slot = true;
        }
        Some(flags)
    }
}

/// A pattern the `regex` crate can run with JavaScript's meaning.
#[derive(Clone, Debug)]
pub struct Translated {
    /// The pattern in `regex` syntax (Unicode mode, UTF-8 haystacks).
    pub pattern: String,
    /// The name of each capture group, group 1 first.
    pub group_names: Vec<Option<String>>,
    /// False when a capture group sits inside a repeated group: the overall match is exact,
    /// the captures may not be.
    pub captures_exact: bool,
    /// True when `^` or `$` are used with the `m` flag: then input with `\r`, U+2028 or U+2029
    /// (line terminators for JavaScript, not for `regex`) must fall back.
    pub line_anchors: bool,
    /// The flags.
    pub flags: Flags,
}

/// Translates the pattern `source` with `flags`; `None` when the meaning could change.
/// Costs one pass over the pattern.
pub fn translate(source: &str, flags: &str) -> Option<Translated> {
    let flags = Flags::parse(flags)?;
    if flags.ignore_case && flags.unicode {
        return None;
    }
    let mut parser = Parser {
        chars: source.chars().collect(),
        pos: 0,
        flags,
        group_names: Vec::new(),
        captures_exact: true,
        line_anchors: false,
    };
    let piece = parser.disjunction()?;
    if parser.pos != parser.chars.len() {
        return None;
    }
    Some(Translated {
        pattern: piece.text,
        group_names: parser.group_names,
        captures_exact: parser.captures_exact,
        line_anchors: parser.line_anchors,
        flags,
    })
}

/// Repetition counts above this fall back (the compiled automaton would grow too large).
const MAX_COUNT: u32 = 1000;

/// JavaScript's `\s`: WhiteSpace and LineTerminator, as class items.
const SPACE_ITEMS: &str = r"\t\n\x0B\x0C\r\x20\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
const DIGIT_ITEMS: &str = "0-9";
const WORD_ITEMS: &str = "0-9A-Za-z_";

/// A translated piece of pattern.
struct Piece {
    text: String,
    /// It can match the empty string.
    nullable: bool,
    /// It contains a capture group.
    captures: bool,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    flags: Flags,
    group_names: Vec<Option<String>>,
    captures_exact: bool,
    line_anchors: bool,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn disjunction(&mut self) -> Option<Piece> {
        let mut alternatives = vec![self.alternative()?];
        while self.eat('|') {
            alternatives.push(self.alternative()?);
        }
        if alternatives.len() == 1 {
            return alternatives.pop();
        }
        let nullable = alternatives.iter().any(|p| p.nullable);
        let captures = alternatives.iter().any(|p| p.captures);
        let text = alternatives
            .into_iter()
            .map(|p| p.text)
            .collect::<Vec<_>>()
            .join("|");
        Some(Piece {
            text,
            nullable,
            captures,
        })
    }

    fn alternative(&mut self) -> Option<Piece> {
        let mut out = Piece {
            text: String::new(),
            nullable: true,
            captures: false,
        };
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let term = self.term()?;
            out.text.push_str(&term.text);
            out.nullable &= term.nullable;
            out.captures |= term.captures;
        }
        Some(out)
    }

    fn term(&mut self) -> Option<Piece> {
        if let Some(assertion) = self.assertion()? {
            return Some(assertion);
        }
        let start_groups = self.group_names.len();
        let atom = self.atom()?;
        let Some((min, max, lazy)) = self.quantifier()? else {
            return Some(atom);
        };
        if max.is_none_or(|m| m > 1) && atom.nullable {
            return None;
        }
        if atom.nullable && atom.captures {
            // JavaScript leaves the captures of an empty optional iteration undefined.
            self.captures_exact = false;
        }
        if max.is_none_or(|m| m > 1) && self.group_names.len() > start_groups {
            self.captures_exact = false;
        }
        let count = match max {
            None if min == 0 => "*".to_string(),
            None if min == 1 => "+".to_string(),
            None => format!("{{{min},}}"),
            Some(1) if min == 0 => "?".to_string(),
            Some(m) if m == min => format!("{{{min}}}"),
            Some(m) => format!("{{{min},{m}}}"),
        };
        Some(Piece {
            text: format!("(?:{}){count}{}", atom.text, if lazy { "?" } else { "" }),
            nullable: atom.nullable || min == 0,
            captures: atom.captures,
        })
    }

    /// `^ $ \b \B`, or `None` when the next term is not an assertion; lookaround fails.
    fn assertion(&mut self) -> Option<Option<Piece>> {
        let text = match (self.peek(), self.peek_at(1)) {
            (Some('^'), _) => {
                self.pos += 1;
                self.anchor("(?m:^)", r"\A")
            }
            (Some('$'), _) => {
                self.pos += 1;
                self.anchor("(?m:$)", r"\z")
            }
            (Some('\\'), Some('b')) => {
                self.pos += 2;
                r"(?-u:\b)"
            }
            (Some('\\'), Some('B')) => {
                self.pos += 2;
                r"(?-u:\B)"
            }
            _ => return Some(None),
        };
        // An assertion cannot be quantified in the syntax the translation accepts.
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return None;
        }
        Some(Some(Piece {
            text: text.to_string(),
            nullable: true,
            captures: false,
        }))
    }

    fn anchor(&mut self, multiline: &'static str, single: &'static str) -> &'static str {
        if self.flags.multiline {
            self.line_anchors = true;
            multiline
        } else {
            single
        }
    }

    fn atom(&mut self) -> Option<Piece> {
        let c = self.peek()?;
        self.pos += 1;
        let text = match c {
            '.' => {
                if self.flags.dot_all {
                    "(?s:.)".to_string()
                } else {
                    r"[^\n\r\x{2028}\x{2029}]".to_string()
                }
            }
            '(' => return self.group(),
            '[' => self.class()?,
            '\\' => self.atom_escape()?,
            '*' | '+' | '?' | '{' | '}' | ']' | ')' | '|' => return None,
            c => self.literal(c)?,
        };
        Some(Piece {
            text,
            nullable: false,
            captures: false,
        })
    }

    fn group(&mut self) -> Option<Piece> {
        let mut name = None;
        let capturing = if self.eat('?') {
            match self.peek()? {
                ':' => {
                    self.pos += 1;
                    false
                }
                '<' if !matches!(self.peek_at(1), Some('=' | '!')) => {
                    self.pos += 1;
                    name = Some(self.group_name()?);
                    true
                }
                _ => return None, // lookaround, modifiers
            }
        } else {
            true
        };
        if capturing {
            self.group_names.push(name);
        }
        let inner = self.disjunction()?;
        if !self.eat(')') {
            return None;
        }
        Some(Piece {
            text: if capturing {
                format!("({})", inner.text)
            } else {
                format!("(?:{})", inner.text)
            },
            nullable: inner.nullable,
            captures: capturing || inner.captures,
        })
    }

    fn group_name(&mut self) -> Option<String> {
        let mut name = String::new();
        loop {
            match self.peek()? {
                '>' => {
                    self.pos += 1;
                    break;
                }
                '\\' => return None,
                c => {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        (!name.is_empty()).then_some(name)
    }

    /// `{n}`, `{n,}`, `{n,m}`, `*`, `+`, `?`, each optionally lazy: (min, max, lazy).
    #[allow(clippy::type_complexity)]
    fn quantifier(&mut self) -> Option<Option<(u32, Option<u32>, bool)>> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.pos += 1;
                let min = self.number()?;
                let max = if self.eat(',') {
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number()?)
                    }
                } else {
                    Some(min)
                };
                if self.peek() != Some('}') || min > MAX_COUNT || max.is_some_and(|m| m > MAX_COUNT)
                {
                    return None;
                }
                (min, max)
            }
            _ => return Some(None),
        };
        self.pos += 1;
        let lazy = self.eat('?');
        Some(Some((min, max, lazy)))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        let mut value: u32 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            value = value.checked_mul(10)?.checked_add(d)?;
            self.pos += 1;
        }
        (self.pos > start).then_some(value)
    }

    /// An escape outside a class (`\b`/`\B` are assertions, handled before).
    fn atom_escape(&mut self) -> Option<String> {
        let set = match self.peek()? {
            'd' => format!("[{DIGIT_ITEMS}]"),
            'D' => format!("[^{DIGIT_ITEMS}]"),
            'w' => format!("[{WORD_ITEMS}]"),
            'W' => format!("[^{WORD_ITEMS}]"),
            's' => format!("[{SPACE_ITEMS}]"),
            'S' => format!("[^{SPACE_ITEMS}]"),
            _ => {
                let c = self.character_escape(false)?;
                return self.literal(c);
            }
        };
        self.pos += 1;
        Some(set)
    }

    /// A character escape after `\`: the character it stands for.
    fn character_escape(&mut self, in_class: bool) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        let value = match c {
            't' => '\t',
            'n' => '\n',
            'v' => '\u{b}',
            'f' => '\u{c}',
            'r' => '\r',
            'b' if in_class => '\u{8}',
            '-' if in_class => '-',
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => '\0',
            'c' => {
                let letter = self.peek().filter(char::is_ascii_alphabetic)?;
                self.pos += 1;
                char::from_u32(u32::from(letter) % 32)?
            }
            'x' => {
                let value = self.hex_digits(2)?;
                char::from_u32(value)?
            }
            'u' => self.unicode_escape()?,
            c if c.is_ascii_punctuation() => c,
            _ => return None, // backreferences, octal, \k, \p, Annex B identity escapes
        };
        Some(value)
    }

    fn hex_digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0;
        for _ in 0..count {
            let d = self.peek()?.to_digit(16)?;
            value = value * 16 + d;
            self.pos += 1;
        }
        Some(value)
    }

    /// `\uHHHH` or, with `u`, `\u{H...}`; surrogates (halves of a pair) fall back.
    fn unicode_escape(&mut self) -> Option<char> {
        let value = if self.flags.unicode && self.eat('{') {
            let start = self.pos;
            let mut value: u32 = 0;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                value = value.checked_mul(16)?.checked_add(d)?;
                self.pos += 1;
            }
            if self.pos == start || !self.eat('}') {
                return None;
            }
            value
        } else {
            self.hex_digits(4)?
        };
        char::from_u32(value)
    }

    /// A literal character, as `regex` syntax; with `i`, ASCII letters match either case.
    fn literal(&self, c: char) -> Option<String> {
        if !self.flags.unicode && c > '\u{FFFF}' {
            return None; // two code units for JavaScript: a quantifier would take the second
        }
        if self.flags.ignore_case {
            if c.is_ascii_alphabetic() {
                return Some(format!(
                    "[{}{}]",
                    c.to_ascii_lowercase(),
                    c.to_ascii_uppercase()
                ));
            }
            if !c.is_ascii() && is_cased(c) {
                return None;
            }
        }
        Some(escaped(c))
    }

    /// A class `[...]` (the `[` already read), as `regex` syntax.
    fn class(&mut self) -> Option<String> {
        let negated = self.eat('^');
        let mut items = String::new();
        let mut empty = true;
        loop {
            let c = self.peek()?;
            if c == ']' {
                self.pos += 1;
                break;
            }
            empty = false;
            let start = self.class_atom()?;
            if self.peek() == Some('-') && self.peek_at(1) != Some(']') {
                self.pos += 1;
                let end = self.class_atom()?;
                let (ClassAtom::Char(lo), ClassAtom::Char(hi)) = (start, end) else {
                    return None; // a class escape as a range end (Annex B)
                };
                if lo > hi {
                    return None;
                }
                items.push_str(&self.class_range(lo, hi)?);
            } else {
                match start {
                    ClassAtom::Char(c) => items.push_str(&self.class_range(c, c)?),
                    ClassAtom::Set(set) => items.push_str(&set),
                }
            }
        }
        if empty {
            // `[]` matches nothing, `[^]` any character.
            return if negated {
                Some("(?s:.)".to_string())
            } else {
                None
            };
        }
        Some(format!("[{}{items}]", if negated { "^" } else { "" }))
    }

    fn class_atom(&mut self) -> Option<ClassAtom> {
        let c = self.peek()?;
        self.pos += 1;
        if c != '\\' {
            return Some(ClassAtom::Char(c));
        }
        let set = match self.peek()? {
            'd' => DIGIT_ITEMS.to_string(),
            'D' => format!("[^{DIGIT_ITEMS}]"),
            'w' => WORD_ITEMS.to_string(),
            'W' => format!("[^{WORD_ITEMS}]"),
            's' => SPACE_ITEMS.to_string(),
            'S' => format!("[^{SPACE_ITEMS}]"),
            _ => return self.character_escape(true).map(ClassAtom::Char),
        };
        self.pos += 1;
        Some(ClassAtom::Set(set))
    }

    /// The class items for `lo-hi`; with `i`, the other case of its ASCII letters too.
    fn class_range(&self, lo: char, hi: char) -> Option<String> {
        if !self.flags.unicode && hi > '\u{FFFF}' {
            return None;
        }
        let mut out = range_text(lo, hi);
        if self.flags.ignore_case {
            if !hi.is_ascii() && (lo..=hi).any(|c| !c.is_ascii() && is_cased(c)) {
                return None;
            }
            for (from, to) in [('a', 'z'), ('A', 'Z')] {
                let (a, b) = (lo.max(from), hi.min(to));
                if a <= b {
                    let swap = |c: char| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    };
                    out.push_str(&range_text(swap(a), swap(b)));
                }
            }
        }
        Some(out)
    }
}

enum ClassAtom {
    Char(char),
    /// Class items of an escape such as `\d` (or a nested negated class for `\D`).
    Set(String),
}

fn range_text(lo: char, hi: char) -> String {
    if lo == hi {
        escaped(lo)
    } else {
        format!("{}-{}", escaped(lo), escaped(hi))
    }
}

/// A character as `regex` syntax that means only itself, inside or outside a class.
fn escaped(c: char) -> String {
    if c.is_ascii_alphanumeric() || c == '_' {
        c.to_string()
    } else {
        format!("\\x{{{:X}}}", u32::from(c))
    }
}

/// The character has another case (so `i` could match something else for it).
fn is_cased(c: char) -> bool {
    let mut lower = c.to_lowercase();
    let mut upper = c.to_uppercase();
    let caseless = lower.next() == Some(c)
        && lower.next().is_none()
        && upper.next() == Some(c)
        && upper.next().is_none();
    !caseless
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(source: &str, flags: &str) -> Option<String> {
        translate(source, flags).map(|t| t.pattern)
    }

    #[test]
    fn translates_the_pii_patterns() {
        for source in [
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            r"\b(?:\d[ -]?){12,18}\d\b",
            r"(?:\+\d{1,3}[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}\b",
            r"\D",
        ] {
            assert!(translate(source, "g").is_some(), "{source}");
        }
    }

    #[test]
    fn keeps_javascript_meanings() {
        assert_eq!(
            pattern(r"^a.$", "").as_deref(),
            Some(r"\Aa[^\n\r\x{2028}\x{2029}]\z")
        );
        assert_eq!(pattern(r"\d", "").as_deref(), Some("[0-9]"));
        assert_eq!(pattern(r"a", "i").as_deref(), Some("[aA]"));
        assert_eq!(pattern(r"[b-e]", "i").as_deref(), Some("[b-eB-E]"));
        assert_eq!(pattern(r"[^]", "").as_deref(), Some("(?s:.)"));
        let t = translate(r"(?<year>\d{4})-(\d\d)", "").unwrap();
        assert_eq!(t.group_names, vec![Some("year".to_string()), None]);
        assert!(t.captures_exact);
    }

    #[test]
    fn falls_back_when_unsure() {
        for (source, flags) in [
            (r"(a)\1", ""),
            (r"a(?=b)", ""),
            (r"(?<!a)b", ""),
            (r"\p{L}", "u"),
            (r"a{", ""),
            (r"(a*)*", ""),
            (r"é", "i"),
            (r"a", "iu"),
            (r"a", "d"),
            (r"[\d-z]", ""),
            (r"\k<x>(?<x>a)", ""),
            (r"[]", ""),
        ] {
            assert!(translate(source, flags).is_none(), "{source} /{flags}");
        }
    }

    /// The conformance corpus (checked against node through the engine by
    /// tests/tests/js_regexp.rs) says which cases run on the compiled engine: hold it to that,
    /// so the conformance test covers the compiled path and not just the fallback.
    #[test]
    fn the_conformance_corpus_says_which_cases_are_compiled() {
        let corpus: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/js-conformance/regexp-corpus.json"
        ))
        .unwrap();
        for case in corpus.as_array().unwrap() {
            let source = case["pattern"].as_str().unwrap();
            let flags = case["flags"].as_str().unwrap();
            let fast = case["fast"].as_bool().unwrap();
            let compiled = translate(source, flags).and_then(|t| {
                regex_automata::meta::Regex::new(&t.pattern)
                    .map_err(|e| panic!("/{source}/{flags} -> {}: {e}", t.pattern))
                    .ok()
            });
            assert_eq!(compiled.is_some(), fast, "/{source}/{flags}");
        }
    }

    #[test]
    fn marks_captures_in_repeated_groups_inexact() {
        assert!(!translate(r"(?:(a)|b)+", "").unwrap().captures_exact);
        assert!(!translate(r"(a*)?", "").unwrap().captures_exact);
        assert!(translate(r"(a)+", "").is_some());
    }
}
