//! Column types: inferred from JSON values (integer, float, boolean, text, and timestamp for
//! RFC 3339 strings), and a value's conversion to its column's type, which either fits (an
//! integer into a float column, anything into a text column) or is refused with the reason
//! the `discards` table records. Pure.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A warehouse column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// 64-bit integer.
    Int,
    /// Double precision.
    Float,
    /// Boolean.
    Bool,
    /// Text (also arrays, as JSON text).
    Text,
    /// A point in time, microseconds, UTC.
    Timestamp,
}

impl ColumnType {
    /// The type's name in `dialect`.
    pub fn sql(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (ColumnType::Int, _) => "BIGINT",
            (ColumnType::Float, Dialect::Postgres) => "DOUBLE PRECISION",
            (ColumnType::Float, Dialect::DuckDb) => "DOUBLE",
            (ColumnType::Bool, _) => "BOOLEAN",
            (ColumnType::Text, Dialect::Postgres) => "TEXT",
            (ColumnType::Text, Dialect::DuckDb) => "VARCHAR",
            (ColumnType::Timestamp, Dialect::Postgres) => "TIMESTAMPTZ",
            (ColumnType::Timestamp, Dialect::DuckDb) => "TIMESTAMP",
        }
    }

    /// The type an `information_schema.columns.data_type` stands for (a column an analyst
    /// changed by hand is honoured: the warehouse's schema wins).
    pub fn from_sql(data_type: &str) -> ColumnType {
        let t = data_type.to_ascii_lowercase();
        if t.contains("timestamp") || t == "date" {
            ColumnType::Timestamp
        } else if t.starts_with("int") || t.ends_with("int") {
            ColumnType::Int
        } else if t.contains("double")
            || t.contains("float")
            || t.contains("real")
            || t.contains("numeric")
            || t.contains("decimal")
        {
            ColumnType::Float
        } else if t.contains("bool") {
            ColumnType::Bool
        } else {
            ColumnType::Text
        }
    }
}

/// The SQL a warehouse speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// DuckDB.
    DuckDb,
}

/// One value ready to load.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// The type a non-null value asks for (`None` for null: it never creates a column).
pub fn infer(value: &Value) -> Option<ColumnType> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(ColumnType::Bool),
        Value::Number(n) if n.is_i64() => Some(ColumnType::Int),
        Value::Number(_) => Some(ColumnType::Float),
        Value::String(s) if timestamp(s).is_some() => Some(ColumnType::Timestamp),
        Value::String(s) if s.is_empty() => None,
        _ => Some(ColumnType::Text),
    }
}

/// `text` as microseconds since the epoch, if it is an RFC 3339 time.
pub fn timestamp(text: &str) -> Option<i64> {
    // A cheap shape check first: most strings are not times, and parsing costs more.
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// Microseconds since the epoch as RFC 3339 (what PostgreSQL's COPY reads).
pub fn format_timestamp(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Why a value does not fit its column (what `discards.reason` says).
pub fn refusal(value: &Value, column: ColumnType) -> String {
    let got = match value {
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() => "an integer",
        Value::Number(_) => "a float",
        Value::String(_) => "text",
        _ => "a list",
    };
    let want = match column {
        ColumnType::Int => "an integer",
        ColumnType::Float => "a float",
        ColumnType::Bool => "a boolean",
        ColumnType::Text => "text",
        ColumnType::Timestamp => "a timestamp",
    };
    format!("{got} does not fit a column of {want}")
}

/// `value` converted to `column`'s type, or `None` when it does not fit.
pub fn coerce(value: &Value, column: ColumnType) -> Option<Cell> {
    match (column, value) {
        (_, Value::Null) => Some(Cell::Null),
        (ColumnType::Text, Value::String(s)) => Some(Cell::Text(s.clone())),
        (ColumnType::Text, other) => Some(Cell::Text(other.to_string())),
        (ColumnType::Int, Value::Number(n)) => n.as_i64().map(Cell::Int),
        (ColumnType::Float, Value::Number(n)) => n.as_f64().map(Cell::Float),
        (ColumnType::Bool, Value::Bool(b)) => Some(Cell::Bool(*b)),
        (ColumnType::Timestamp, Value::String(s)) => timestamp(s).map(Cell::Timestamp),
        _ => None,
    }
}

/// The column type that holds both `a` and `b`, when one widens into the other (an integer
/// column becomes a float column); `None` when they conflict.
pub fn widen(a: ColumnType, b: ColumnType) -> Option<ColumnType> {
    match (a, b) {
        _ if a == b => Some(a),
        (ColumnType::Int, ColumnType::Float) | (ColumnType::Float, ColumnType::Int) => {
            Some(ColumnType::Float)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inference_from_values() {
        assert_eq!(infer(&json!(1)), Some(ColumnType::Int));
        assert_eq!(infer(&json!(1.5)), Some(ColumnType::Float));
        assert_eq!(infer(&json!(u64::MAX)), Some(ColumnType::Float));
        assert_eq!(infer(&json!(true)), Some(ColumnType::Bool));
        assert_eq!(infer(&json!("hi")), Some(ColumnType::Text));
        assert_eq!(
            infer(&json!("2026-01-02T03:04:05.678Z")),
            Some(ColumnType::Timestamp)
        );
        assert_eq!(
            infer(&json!("2026-01-02T03:04:05+02:00")),
            Some(ColumnType::Timestamp)
        );
        assert_eq!(infer(&json!("2026-01-02")), Some(ColumnType::Text));
        assert_eq!(infer(&json!(null)), None);
        assert_eq!(infer(&json!("")), None);
    }

    #[test]
    fn coercion_fits_or_refuses() {
        assert_eq!(coerce(&json!(3), ColumnType::Float), Some(Cell::Float(3.0)));
        assert_eq!(coerce(&json!(3.5), ColumnType::Int), None);
        assert_eq!(
            coerce(&json!(3.5), ColumnType::Text),
            Some(Cell::Text("3.5".into()))
        );
        assert_eq!(coerce(&json!("x"), ColumnType::Int), None);
        assert_eq!(coerce(&json!("x"), ColumnType::Timestamp), None);
        assert_eq!(
            coerce(&json!("1970-01-01T00:00:01Z"), ColumnType::Timestamp),
            Some(Cell::Timestamp(1_000_000))
        );
        assert_eq!(format_timestamp(1_000_000), "1970-01-01T00:00:01Z");
        assert_eq!(
            refusal(&json!("x"), ColumnType::Int),
            "text does not fit a column of an integer"
        );
        assert_eq!(
            widen(ColumnType::Int, ColumnType::Float),
            Some(ColumnType::Float)
        );
        assert_eq!(widen(ColumnType::Int, ColumnType::Text), None);
    }

    #[test]
    fn manual_types_are_read_back() {
        assert_eq!(ColumnType::from_sql("bigint"), ColumnType::Int);
        assert_eq!(ColumnType::from_sql("double precision"), ColumnType::Float);
        assert_eq!(
            ColumnType::from_sql("TIMESTAMP WITH TIME ZONE"),
            ColumnType::Timestamp
        );
        assert_eq!(ColumnType::from_sql("VARCHAR"), ColumnType::Text);
        assert_eq!(ColumnType::from_sql("BOOLEAN"), ColumnType::Bool);
    }
}
