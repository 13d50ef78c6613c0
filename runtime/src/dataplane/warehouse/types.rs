//! Column types: inferred from JSON values (integer, float, boolean, text, and timestamp for
//! RFC 3339 strings), and a value's conversion to its column's type, which either fits (an
//! integer into a float column, anything into a text column) or is refused with the reason
//! the `discards` table records. Pure.

use serde_json::{Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Text in a cell: shared, so that a row copied to a second table (a track's event table)
/// or a column name repeated on every row costs a count, not an allocation.
pub type Text = std::sync::Arc<str>;

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
    Text(Text),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// A flattened value, typed once when its event is read: a JSON string that is an RFC 3339
/// time keeps its instant (parsed here, not again when loaded) beside its text, which a text
/// column (or a `discards` row) still needs. Null and `""` never become one: they make no cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// A number as sent (an integer column takes it only when it is an `i64`).
    Number(Number),
    /// Text that is no time.
    Text(Text),
    /// RFC 3339 text and its instant in microseconds since the epoch.
    Time(Text, i64),
}

impl Scalar {
    /// A JSON string's value: a time when it reads as one, else text; `None` for `""`.
    pub fn text(text: &str) -> Option<Scalar> {
        if text.is_empty() {
            return None;
        }
        Some(match timestamp(text) {
            Some(micros) => Scalar::Time(text.into(), micros),
            None => Scalar::Text(text.into()),
        })
    }

    /// The value as its JSON (what a `discards` row, or a rejected key, records).
    pub fn into_json(self) -> Value {
        match self {
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Number(n) => Value::Number(n),
            Scalar::Text(t) | Scalar::Time(t, _) => Value::String(t.to_string()),
        }
    }
}

/// The type a value asks for (`None` for empty text, which never creates a column).
pub fn infer(value: &Scalar) -> Option<ColumnType> {
    match value {
        Scalar::Bool(_) => Some(ColumnType::Bool),
        Scalar::Number(n) if n.is_i64() => Some(ColumnType::Int),
        Scalar::Number(_) => Some(ColumnType::Float),
        Scalar::Time(..) => Some(ColumnType::Timestamp),
        Scalar::Text(t) if t.is_empty() => None,
        Scalar::Text(_) => Some(ColumnType::Text),
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
    let mut out = String::with_capacity(32);
    write_timestamp(&mut out, micros);
    out
}

/// [`format_timestamp`] appended to `out`: the date, `T`, the time, the fraction only when
/// there is one (without trailing zeros), `Z`. Written by hand because COPY formats one per
/// timestamp cell, and a general formatter costs several times this.
pub fn write_timestamp(out: &mut String, micros: i64) {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000) else {
        return;
    };
    let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
    if !(0..=9999).contains(&year) {
        // RFC 3339 has four-digit years only (the general formatter, too, writes nothing).
        return;
    }
    push_digits(out, year as u32, 4);
    out.push('-');
    push_digits(out, u32::from(month), 2);
    out.push('-');
    push_digits(out, u32::from(day), 2);
    out.push('T');
    push_digits(out, u32::from(t.hour()), 2);
    out.push(':');
    push_digits(out, u32::from(t.minute()), 2);
    out.push(':');
    push_digits(out, u32::from(t.second()), 2);
    let fraction = t.microsecond();
    if fraction > 0 {
        let mut width = 6;
        let mut f = fraction;
        while f % 10 == 0 {
            f /= 10;
            width -= 1;
        }
        out.push('.');
        push_digits(out, f, width);
    }
    out.push('Z');
}

/// `n`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, mut n: u32, width: usize) {
    let mut buf = [b'0'; 6];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(buf[..width].iter().map(|&b| char::from(b)));
}

/// Why a value does not fit its column (what `discards.reason` says).
pub fn refusal(value: &Scalar, column: ColumnType) -> String {
    let got = match value {
        Scalar::Bool(_) => "a boolean",
        Scalar::Number(n) if n.is_i64() => "an integer",
        Scalar::Number(_) => "a float",
        Scalar::Text(_) | Scalar::Time(..) => "text",
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

/// `value` converted to `column`'s type (text moves into its cell), or the value back when it
/// does not fit.
///
/// # Errors
/// The value itself, refused.
pub fn coerce(value: Scalar, column: ColumnType) -> Result<Cell, Scalar> {
    match (column, value) {
        (ColumnType::Text, Scalar::Text(s) | Scalar::Time(s, _)) => Ok(Cell::Text(s)),
        (ColumnType::Text, Scalar::Number(n)) => Ok(Cell::Text(n.to_string().into())),
        (ColumnType::Text, Scalar::Bool(b)) => Ok(Cell::Text(b.to_string().into())),
        (ColumnType::Int, Scalar::Number(n)) => n.as_i64().map(Cell::Int).ok_or(Scalar::Number(n)),
        (ColumnType::Float, Scalar::Number(n)) => {
            n.as_f64().map(Cell::Float).ok_or(Scalar::Number(n))
        }
        (ColumnType::Bool, Scalar::Bool(b)) => Ok(Cell::Bool(b)),
        (ColumnType::Timestamp, Scalar::Time(_, micros)) => Ok(Cell::Timestamp(micros)),
        (_, value) => Err(value),
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

    /// A JSON value as flattening types it (`None`: it makes no cell).
    fn scalar(value: Value) -> Option<Scalar> {
        match value {
            Value::Bool(b) => Some(Scalar::Bool(b)),
            Value::Number(n) => Some(Scalar::Number(n)),
            Value::String(s) => Scalar::text(&s),
            _ => None,
        }
    }

    fn infer_json(value: Value) -> Option<ColumnType> {
        scalar(value).and_then(|s| infer(&s))
    }

    fn coerce_json(value: Value, column: ColumnType) -> Option<Cell> {
        scalar(value).and_then(|s| coerce(s, column).ok())
    }

    #[test]
    fn inference_from_values() {
        assert_eq!(infer_json(json!(1)), Some(ColumnType::Int));
        assert_eq!(infer_json(json!(1.5)), Some(ColumnType::Float));
        assert_eq!(infer_json(json!(u64::MAX)), Some(ColumnType::Float));
        assert_eq!(infer_json(json!(true)), Some(ColumnType::Bool));
        assert_eq!(infer_json(json!("hi")), Some(ColumnType::Text));
        assert_eq!(
            infer_json(json!("2026-01-02T03:04:05.678Z")),
            Some(ColumnType::Timestamp)
        );
        assert_eq!(
            infer_json(json!("2026-01-02T03:04:05+02:00")),
            Some(ColumnType::Timestamp)
        );
        assert_eq!(infer_json(json!("2026-01-02")), Some(ColumnType::Text));
        assert_eq!(infer_json(json!(null)), None);
        assert_eq!(infer_json(json!("")), None);
    }

    #[test]
    fn times_are_parsed_once_and_look_alikes_stay_text() {
        assert_eq!(
            Scalar::text("2026-01-02T03:04:05+02:00"),
            Some(Scalar::Time(
                "2026-01-02T03:04:05+02:00".into(),
                1_767_315_845_000_000
            ))
        );
        for look_alike in [
            "2026-01-02T03:04:05",
            "2026-13-02T03:04:05Z",
            "2026-01-02 03:04:05 UTC",
            "1234-5678T-not a time at all",
            "2026-01-02T03:04:05Zextra",
        ] {
            assert_eq!(
                Scalar::text(look_alike),
                Some(Scalar::Text(look_alike.into())),
                "{look_alike}"
            );
        }
        // A time in a text column keeps its text as sent.
        let time = Scalar::text("2026-01-02T03:04:05.5+02:00").unwrap();
        assert_eq!(
            coerce(time, ColumnType::Text),
            Ok(Cell::Text("2026-01-02T03:04:05.5+02:00".into()))
        );
    }

    #[test]
    fn timestamps_format_as_the_general_formatter_does() {
        for micros in [
            0,
            1,
            10,
            500_000,
            123_456,
            1_767_315_845_000_000,
            1_767_315_845_120_000,
            -1,
            -86_400_000_001,
            253_402_300_799_999_999,
        ] {
            let general = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(format_timestamp(micros), general, "{micros}");
        }
        assert_eq!(format_timestamp(253_402_300_800_000_000), "");
    }

    #[test]
    fn coercion_fits_or_refuses() {
        assert_eq!(
            coerce_json(json!(3), ColumnType::Float),
            Some(Cell::Float(3.0))
        );
        assert_eq!(coerce_json(json!(3.5), ColumnType::Int), None);
        assert_eq!(
            coerce_json(json!(3.5), ColumnType::Text),
            Some(Cell::Text("3.5".into()))
        );
        assert_eq!(coerce_json(json!("x"), ColumnType::Int), None);
        assert_eq!(coerce_json(json!("x"), ColumnType::Timestamp), None);
        assert_eq!(
            coerce_json(json!("1970-01-01T00:00:01Z"), ColumnType::Timestamp),
            Some(Cell::Timestamp(1_000_000))
        );
        assert_eq!(format_timestamp(1_000_000), "1970-01-01T00:00:01Z");
        assert_eq!(
            refusal(&Scalar::Text("x".into()), ColumnType::Int),
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
