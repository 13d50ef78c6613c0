//! Names in the warehouse: Segment's snake_case (as `segmentio/go-snakecase`), SQL keywords
//! and leading digits escaped with `_`, names longer than PostgreSQL's 63 bytes shortened with
//! a hash so that two long names never meet. Pure; every function is a pass over the name.

/// PostgreSQL's identifier limit (bytes); DuckDB takes longer ones, but one rule for both
/// keeps a source's tables the same in either warehouse.
pub const MAX_NAME: usize = 63;

/// The tables sluice loads itself; a track event named like one gets a `_` prefix.
pub const BUILT_IN_TABLES: [&str; 8] = [
    "tracks",
    "identifies",
    "users",
    "pages",
    "screens",
    "groups",
    "aliases",
    "discards",
];

/// Words that PostgreSQL (or DuckDB) reserves: a column so named would need quoting in every
/// query an analyst writes, so it gets a `_` prefix instead (`_from`, as Redshift's `_open`).
const RESERVED: [&str; 80] = [
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
    "pivot",
    "unpivot",
    "qualify",
];

/// `name` in snake_case as Segment writes it: ASCII letters and digits kept, anything else
/// separates words (runs collapse, ends trimmed, other characters dropped), an upper-case
/// letter after a lower-case letter or a digit starts a word, and so does the last capital of
/// a run followed by a lower-case letter (`sampleText` -> `sample_text`, `FOO:BAR$BAZ` ->
/// `foo_bar_baz`, `Base64Encode` -> `base64_encode`, `HTTPServer` -> `http_server`).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    let mut split = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            split = !out.is_empty();
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                split = !out.is_empty();
            }
        }
        if split {
            out.push('_');
            split = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A snake_case name made safe as a table or column: `None` when nothing of it is left; a
/// leading digit or an SQL keyword gets `_`; over [`MAX_NAME`] bytes it keeps its first 54
/// bytes, `_` and 8 hex digits of its hash.
pub fn identifier(snake: &str) -> Option<String> {
    if snake.is_empty() {
        return None;
    }
    let escaped = if snake.starts_with(|c: char| c.is_ascii_digit()) || RESERVED.contains(&snake) {
        format!("_{snake}")
    } else {
        snake.to_string()
    };
    Some(shorten(escaped))
}

fn shorten(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    // snake_case names are ASCII, so any byte index is a char boundary.
    format!("{}_{}", &name[..MAX_NAME - 9], &hash[..8])
}

/// The table of a track event named `event`: its snake_case, `_`-prefixed when it is one of
/// [`BUILT_IN_TABLES`]; `None` when the name has no ASCII letter or digit.
pub fn event_table(event: &str) -> Option<String> {
    let snake = snake_case(event);
    if BUILT_IN_TABLES.contains(&snake.as_str()) {
        return Some(shorten(format!("_{snake}")));
    }
    identifier(&snake)
}

/// The schema of a source: `prefix` then the slug's snake_case (`ios-app` -> `ios_app`).
pub fn schema(prefix: &str, slug: &str) -> String {
    let snake = snake_case(&format!("{prefix}{slug}"));
    identifier(&snake).unwrap_or_else(|| "source".into())
}

/// `name` quoted as an SQL identifier (both databases quote with `"`).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_go_snakecase() {
        for (raw, snake) in [
            ("sampleText", "sample_text"),
            ("FOO:BAR$BAZ", "foo_bar_baz"),
            ("Base64Encode", "base64_encode"),
            ("HTTPServer", "http_server"),
            ("Order Completed", "order_completed"),
            ("  --trim__me--  ", "trim_me"),
            ("already_snake", "already_snake"),
            ("café au lait", "caf_au_lait"),
            ("日本", ""),
            ("userID", "user_id"),
        ] {
            assert_eq!(snake_case(raw), snake, "{raw}");
        }
    }

    #[test]
    fn keywords_digits_and_long_names_are_escaped() {
        assert_eq!(identifier("from").as_deref(), Some("_from"));
        assert_eq!(identifier("user").as_deref(), Some("_user"));
        assert_eq!(identifier("3d_view").as_deref(), Some("_3d_view"));
        assert_eq!(identifier("plain").as_deref(), Some("plain"));
        assert_eq!(identifier(""), None);
        let long = "a".repeat(80);
        let other = format!("{}b", "a".repeat(79));
        let (a, b) = (identifier(&long).unwrap(), identifier(&other).unwrap());
        assert_eq!(a.len(), MAX_NAME);
        assert_eq!(b.len(), MAX_NAME);
        assert_ne!(a, b, "two long names that share a prefix stay apart");
        assert!(a.starts_with(&"a".repeat(54)));
    }

    #[test]
    fn event_tables_and_schemas() {
        assert_eq!(
            event_table("Order Completed").as_deref(),
            Some("order_completed")
        );
        assert_eq!(event_table("Tracks").as_deref(), Some("_tracks"));
        assert_eq!(event_table("🙂"), None);
        assert_eq!(schema("", "ios-app"), "ios_app");
        assert_eq!(schema("t1_", "Web"), "t1_web");
        assert_eq!(schema("", "2024"), "_2024");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
