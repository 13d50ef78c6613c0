//! How client commands print: an aligned table for people, JSON with `--json`.

use serde_json::Value;

/// Prints `rows` (JSON objects) as a table of `columns` (header, JSON pointer), or as JSON.
pub fn print_rows(rows: &[Value], columns: &[(&str, &str)], json: bool) {
    if json {
        println!("{}", Value::Array(rows.to_vec()));
        return;
    }
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(_, pointer)| cell(row.pointer(pointer)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| h.to_uppercase()).collect());
    for row in cells {
        line(row);
    }
}

/// Prints one object: `key: value` lines, or JSON.
pub fn print_object(value: &Value, json: bool) {
    if json {
        println!("{value}");
        return;
    }
    match value.as_object() {
        Some(map) => {
            for (key, v) in map {
                println!("{key}: {}", cell(Some(v)));
            }
        }
        None => println!("{value}"),
    }
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}
