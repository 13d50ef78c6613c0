//! Whole numbers as JSON has them: `260` and `260.0` are the same number to JSON and to JSON
//! Schema's `integer`, and some clients (and generated ones) write the second. serde's
//! integers refuse it, so fields that count (a rule's version, an instance's order, a test's
//! limits) read through here.

use serde::Deserialize;
use serde::de::{Deserializer, Error};
use serde_json::Number;

/// Largest integer an `f64` holds exactly (2^53): beyond it `7.0`-style input is refused.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// A whole number that fits `T`, given as `7` or `7.0`; cost: one number parse.
///
/// # Errors
/// A fraction, a negative number or one that does not fit `T`.
pub fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let n = Number::deserialize(d)?;
    let value = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=EXACT).contains(f))
            .map(|f| f as u64)
    });
    value
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| D::Error::custom(format!("`{n}` is not a whole number in range")))
}

/// [`whole`], or `null`/absent (use with `#[serde(default)]`).
///
/// # Errors
/// As [`whole`].
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole")] u64);
    match Option::<Whole>::deserialize(d)? {
        None => Ok(None),
        Some(Whole(v)) => T::try_from(v)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("`{v}` is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Input {
        #[serde(deserialize_with = "super::whole")]
        n: u32,
        #[serde(default, deserialize_with = "super::optional")]
        m: Option<u32>,
    }

    fn read(text: &str) -> Result<(u32, Option<u32>), String> {
        serde_json::from_str::<Input>(text)
            .map(|i| (i.n, i.m))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_whole_numbers_and_fractions_are_not() {
        assert_eq!(read(r#"{"n": 260}"#), Ok((260, None)));
        assert_eq!(read(r#"{"n": 260.0, "m": 3.0}"#), Ok((260, Some(3))));
        assert_eq!(read(r#"{"n": 1, "m": null}"#), Ok((1, None)));
        for bad in [
            r#"{"n": 2.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 4294967296}"#,
            r#"{"n": "1"}"#,
            r#"{"n": 1, "m": 4294967296.0}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert!(
            read(r#"{"n": 2.5}"#)
                .unwrap_err()
                .contains("not a whole number")
        );
    }
}
