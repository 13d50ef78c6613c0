//! Where in the user's code an error happened, read from QuickJS's stack text.
//!
//! QuickJS reports positions only inside the `stack` string: a syntax error's is
//! `    at function.js:3:17`, a runtime error's `    at onTrack (function.js:3:17)`. The user's
//! code is evaluated as its own script under [`USER_FILE`], apart from the engine's prelude, so
//! the numbers are 1-based positions in the code exactly as uploaded.

/// The file name the user's code is evaluated under; it appears in stack traces.
pub const USER_FILE: &str = "function.js";

/// A 1-based line and column in the user's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Position {
    /// Where an error with no readable position is reported.
    pub const START: Position = Position { line: 1, column: 1 };
}

/// The first `function.js:LINE:COLUMN` in `stack`, i.e. the innermost frame in the user's code.
pub fn first_user_position(stack: &str) -> Option<Position> {
    let needle = format!("{USER_FILE}:");
    let mut rest = stack;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        if let Some(pos) = parse_line_column(rest) {
            return Some(pos);
        }
    }
    None
}

/// Sharpens the column of a parse error. QuickJS's parser reports the line right, but its column
/// may point at the start of the statement or past the token it stopped at (even past the end
/// of the line). When the message names the offending token (`unexpected token in
/// expression: '}'`), the column of that token's last occurrence at or before the reported
/// column is used, else its first one after it. Whatever happens, the column stays within the
/// line (at most one past its last character). Columns count characters.
pub fn refine_parse_column(source: &str, at: Position, message: &str) -> Position {
    let Some(line) = source.lines().nth(at.line.saturating_sub(1) as usize) else {
        return at;
    };
    let within = Position {
        line: at.line,
        column: at.column.min(line.chars().count() as u32 + 1),
    };
    let token = message
        .strip_suffix('\'')
        .and_then(|m| m.rfind(": '").map(|i| &m[i + 3..]))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return within;
    };
    let columns = line
        .match_indices(token)
        .map(|(byte, _)| line[..byte].chars().count() as u32 + 1);
    let (mut before, mut after) = (None, None);
    for column in columns {
        if column <= at.column {
            before = Some(column);
        } else if after.is_none() {
            after = Some(column);
        }
    }
    match before.or(after) {
        Some(column) => Position {
            line: at.line,
            column,
        },
        None => within,
    }
}

/// Parses `LINE:COLUMN` at the start of `text` (anything may follow).
fn parse_line_column(text: &str) -> Option<Position> {
    let (line, rest) = leading_number(text)?;
    let rest = rest.strip_prefix(':')?;
    let (column, _) = leading_number(rest)?;
    Some(Position {
        line: line.max(1),
        column: column.max(1),
    })
}

fn leading_number(text: &str) -> Option<(u32, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n = text[..end].parse().ok()?;
    Some((n, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_syntax_error_position() {
        assert_eq!(
            first_user_position("    at function.js:3:17\n"),
            Some(Position {
                line: 3,
                column: 17
            })
        );
    }

    #[test]
    fn reads_innermost_user_frame() {
        let stack = "    at sha256 (sluice:prelude:40:5)\n    at onTrack (function.js:12:9)\n    at <eval> (function.js:20:1)\n";
        assert_eq!(
            first_user_position(stack),
            Some(Position {
                line: 12,
                column: 9
            })
        );
    }

    #[test]
    fn refines_column_to_the_named_token() {
        let source = "function f() {\n  let x = ;\n}";
        let at = Position { line: 2, column: 3 };
        let refined = refine_parse_column(source, at, "unexpected token in expression: ';'");
        assert_eq!(
            refined,
            Position {
                line: 2,
                column: 11
            }
        );
        // Reported past the token, past the end of the line: the token before it.
        let past = Position {
            line: 2,
            column: 14,
        };
        assert_eq!(
            refine_parse_column(source, past, "unexpected token in expression: ';'"),
            Position {
                line: 2,
                column: 11
            }
        );
        // No token named, or not found: unchanged, but never past the end of the line.
        assert_eq!(
            refine_parse_column(source, past, "expecting ')'"),
            Position {
                line: 2,
                column: 12
            }
        );
        assert_eq!(refine_parse_column(source, at, "expecting ')'x"), at);
        assert_eq!(refine_parse_column(source, at, "unexpected token: '@'"), at);
        assert_eq!(
            refine_parse_column(source, Position { line: 9, column: 1 }, "x: ';'"),
            Position { line: 9, column: 1 }
        );
    }

    #[test]
    fn skips_malformed_mentions() {
        assert_eq!(
            first_user_position("function.js: nope\n    at x (function.js:2:4)"),
            Some(Position { line: 2, column: 4 })
        );
        assert_eq!(first_user_position("    at x (native)"), None);
    }
}
