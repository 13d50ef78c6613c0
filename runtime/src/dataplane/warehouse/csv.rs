//! A load's rows as CSV for DuckDB's own bulk path: DuckDB reads a CSV file with
//! `read_csv` in parallel, typed by the columns it is told, which costs a fraction of handing
//! it the same rows a value at a time through its appender (BENCHMARKS.md, issue 15). The
//! file is what PostgreSQL's `COPY` text is to PostgreSQL: written once, read in one
//! statement that can also skip the rows whose id is stored (the anti-join), so no staging
//! table is written. Pure apart from the file written.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use super::naming::quote;
use super::plan::TableLoad;
use super::types::{Cell, ColumnType};

/// Writes a plan's rows to `path` (replacing it): one line per row, the columns in the
/// plan's order; text always quoted (`"` doubled), a null an empty unquoted field, a
/// timestamp its microseconds since the epoch (an integer parses faster than a date).
/// Cost: one pass over the cells, formatting each, through a 1 MiB buffer.
///
/// # Errors
/// The file could not be written.
pub fn write(path: &Path, rows: &[Vec<Cell>]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut line = String::with_capacity(4096);
    for row in rows {
        line.clear();
        row_text(&mut line, row);
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// One row as a CSV line (with its `\n`).
fn row_text(out: &mut String, row: &[Cell]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Writing to a String cannot fail.
        match cell {
            Cell::Null => {}
            Cell::Int(v) | Cell::Timestamp(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Float(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
            Cell::Text(t) => quoted(out, t),
        }
    }
    out.push('\n');
}

fn quoted(out: &mut String, text: &str) {
    out.push('"');
    // Most text holds no quote: then it is copied whole.
    if text.contains('"') {
        out.push_str(&text.replace('"', "\"\""));
    } else {
        out.push_str(text);
    }
    out.push('"');
}

/// A subquery that reads the file [`write`] wrote for `plan` as rows with the plan's column
/// names and types: `(SELECT ... FROM read_csv(...))`, to insert from or merge from.
pub fn source(path: &Path, plan: &TableLoad) -> String {
    let mut types = String::new();
    let mut picked = String::new();
    for (i, (name, kind)) in plan.columns.iter().enumerate() {
        if i > 0 {
            types.push_str(", ");
            picked.push_str(", ");
        }
        let _ = write!(types, "'c{i}': '{}'", read_as(*kind));
        match kind {
            ColumnType::Timestamp => {
                let _ = write!(picked, "make_timestamp(c{i}) AS {}", quote(name));
            }
            _ => {
                let _ = write!(picked, "c{i} AS {}", quote(name));
            }
        }
    }
    format!(
        "(SELECT {picked} FROM read_csv({}, columns = {{{types}}}, header = false, \
         auto_detect = false, delim = ',', quote = '\"', escape = '\"', new_line = '\\n', \
         allow_quoted_nulls = false))",
        literal(&path.to_string_lossy())
    )
}

/// The type a column is read as from the file.
fn read_as(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Int | ColumnType::Timestamp => "BIGINT",
        ColumnType::Float => "DOUBLE",
        ColumnType::Bool => "BOOLEAN",
        ColumnType::Text => "VARCHAR",
    }
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_as_csv() {
        let mut out = String::new();
        row_text(
            &mut out,
            &[
                Cell::Text("a \"b\",\nc".into()),
                Cell::Null,
                Cell::Int(-3),
                Cell::Float(1.5),
                Cell::Bool(true),
                Cell::Timestamp(7),
                Cell::Text("".into()),
            ],
        );
        assert_eq!(out, "\"a \"\"b\"\",\nc\",,-3,1.5,true,7,\"\"\n");
    }

    #[test]
    fn the_source_names_and_types_the_columns() {
        let plan = TableLoad {
            table: "t".into(),
            create: false,
            add: vec![],
            widen: vec![],
            columns: vec![
                ("id".into(), ColumnType::Text),
                ("at".into(), ColumnType::Timestamp),
            ],
            rows: vec![],
            upsert: false,
        };
        let sql = source(Path::new("/d/it's.csv"), &plan);
        assert!(
            sql.starts_with(
                "(SELECT c0 AS \"id\", make_timestamp(c1) AS \"at\" FROM read_csv('/d/it''s.csv', \
                 columns = {'c0': 'VARCHAR', 'c1': 'BIGINT'}"
            ),
            "{sql}"
        );
    }
}
