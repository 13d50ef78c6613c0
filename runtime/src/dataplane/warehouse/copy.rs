//! A load's rows as PostgreSQL's `COPY ... FROM STDIN` text: tab-separated, `\N` for null,
//! backslash escapes, timestamps as RFC 3339. Encoded on the flattening thread, so that the
//! load only streams it (see [`super::catalog`]). Pure.

use std::fmt::Write;

use bytes::Bytes;

use super::types::{Cell, write_timestamp};

/// The size of each piece [`encode`] makes: a large batch is never one buffer.
const PIECE: usize = 1 << 20;

/// `rows` as `COPY` text, in pieces of about 1 MiB (whole rows each). Cost: one pass over
/// the cells, formatting each.
pub fn encode(rows: &[Vec<Cell>]) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut buffer = String::with_capacity(PIECE + 4096);
    for row in rows {
        copy_row(&mut buffer, row);
        if buffer.len() >= PIECE {
            pieces.push(Bytes::from(std::mem::replace(
                &mut buffer,
                String::with_capacity(PIECE + 4096),
            )));
        }
    }
    if !buffer.is_empty() {
        pieces.push(Bytes::from(buffer));
    }
    pieces
}

/// One row in `COPY`'s text format: tab-separated, `\N` for null, backslash escapes.
fn copy_row(out: &mut String, row: &[Cell]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        // Writing to a String cannot fail.
        match cell {
            Cell::Null => out.push_str("\\N"),
            Cell::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Float(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Bool(v) => out.push(if *v { 't' } else { 'f' }),
            Cell::Timestamp(us) => write_timestamp(out, *us),
            Cell::Text(t) => escape(out, t),
        }
    }
    out.push('\n');
}

fn escape(out: &mut String, text: &str) {
    // Most text holds nothing to escape: then it is copied whole.
    if !text
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t' | 0))
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // PostgreSQL text cannot hold NUL.
            '\0' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_format() {
        let mut out = String::new();
        copy_row(
            &mut out,
            &[
                Cell::Text("a\tb\\c\nd".into()),
                Cell::Null,
                Cell::Int(-3),
                Cell::Float(1.5),
                Cell::Bool(true),
                Cell::Timestamp(0),
            ],
        );
        assert_eq!(
            out,
            "a\\tb\\\\c\\nd\t\\N\t-3\t1.5\tt\t1970-01-01T00:00:00Z\n"
        );
    }
}
