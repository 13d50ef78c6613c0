//! `sluice run --expect <file>`: a run as a test. The output lines are compared, in order, with
//! the file's: each expected line is a JSON value the output line must contain (an object's
//! fields are compared only where the expected object has them, so engine-worded messages or
//! added fields do not break a test; arrays and scalars must be equal).

use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The most differences listed before the rest are only counted.
const SHOWN: usize = 10;

/// Compares `output` (what the run wrote, JSON lines) with the file `expected`; prints the
/// verdict to stdout.
///
/// # Errors
/// The file cannot be read or is not JSON lines, or the output differs (with the differences).
pub(super) fn check(output: &[u8], expected: &Path) -> anyhow::Result<()> {
    let wanted = std::fs::read_to_string(expected)
        .with_context(|| format!("cannot read {}", expected.display()))?;
    let wanted: Vec<Value> =
        json_lines(&wanted).with_context(|| format!("{} is not JSON lines", expected.display()))?;
    let got = json_lines(&String::from_utf8_lossy(output)).context("the run's output")?;
    let mut differences = Vec::new();
    for (i, (want, have)) in wanted.iter().zip(&got).enumerate() {
        if !contains(have, want) {
            differences.push(format!(
                "output line {}:\n  expected (at least): {want}\n  got:                 {have}",
                i + 1
            ));
        }
    }
    if wanted.len() != got.len() {
        differences.push(format!(
            "{} output lines, {} expected",
            got.len(),
            wanted.len()
        ));
    }
    if differences.is_empty() {
        println!(
            "ok: {} output lines as {} expects",
            got.len(),
            expected.display()
        );
        return Ok(());
    }
    for difference in differences.iter().take(SHOWN) {
        println!("{difference}");
    }
    if differences.len() > SHOWN {
        println!("... and {} more", differences.len() - SHOWN);
    }
    bail!(
        "the output differs from {} ({} differences)",
        expected.display(),
        differences.len()
    )
}

fn json_lines(text: &str) -> anyhow::Result<Vec<Value>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// Whether `have` has everything `want` has.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(k, w)| have.get(k).is_some_and(|h| contains(h, w))),
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expected_fields_must_be_there_others_may_be() {
        let have = json!({"sluice": {"line": 3, "outcome": "error", "kind": "validation-error", "message": "no id"}});
        assert!(contains(
            &have,
            &json!({"sluice": {"outcome": "error", "kind": "validation-error"}})
        ));
        assert!(!contains(
            &have,
            &json!({"sluice": {"kind": "event-not-supported"}})
        ));
        assert!(
            !contains(&json!({"a": [1, 2]}), &json!({"a": [1]})),
            "arrays are equal or not"
        );
        assert!(
            !contains(&json!({}), &json!({"a": null})),
            "a missing field is not null"
        );
    }

    #[test]
    fn a_differing_run_fails_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("expected.jsonl");
        std::fs::write(&file, "{\"a\":1}\n{\"b\":2}\n").unwrap();
        assert!(check(b"{\"a\":1,\"x\":0}\n{\"b\":2}\n", &file).is_ok());
        let err = check(b"{\"a\":1}\n{\"b\":3}\n", &file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 differences"), "{err}");
        assert!(
            check(b"{\"a\":1}\n", &file).is_err(),
            "a missing line fails"
        );
    }
}
