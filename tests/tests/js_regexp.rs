//! RegExp conformance: every case of `tests/js-conformance/regexp-corpus.json` (patterns x
//! inputs, with Unicode, empty matches, sticky and global iteration, replacement patterns and
//! functions, named groups; cases on the compiled engine and cases that fall back to QuickJS's)
//! run by `regexp-runner.js` inside a real JavaScript function on the engine component gives
//! exactly what node gives (`regexp-expected.json`, written by `generate.js` under node).

use serde_json::Value;
use sluice_runtime::engine::{Isolation, Limits, Outcome};
use sluice_tests::{engine, js_engine, workspace_root};

fn conformance_file(name: &str) -> String {
    let path = workspace_root().join("tests/js-conformance").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of each case's results in `regexp-expected.json` (one case per line, as
/// `generate.js` writes them). Compared as text: results with lone surrogates (JavaScript's
/// `\ud83d`) are valid JSON for JavaScript but not for `serde_json`.
fn expected_lines() -> Vec<String> {
    conformance_file("regexp-expected.json")
        .lines()
        .filter(|line| line.starts_with("[{") || line.starts_with("[]"))
        .map(|line| line.trim_end_matches(',').to_string())
        .collect()
}

/// Per input and operation, where `got` differs from `want` (both JSON texts of one case).
fn differences(case: &Value, got: &str, want: &str) -> Vec<String> {
    let pattern = format!(
        "/{}/{}",
        case["pattern"].as_str().unwrap_or(""),
        case["flags"].as_str().unwrap_or("")
    );
    let (Ok(got), Ok(want)) = (
        serde_json::from_str::<Value>(got),
        serde_json::from_str::<Value>(want),
    ) else {
        return vec![format!("{pattern}\n  sluice: {got}\n  node:   {want}")];
    };
    let inputs = case["inputs"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let (got, want) = (&got[index], &want[index]);
        for (op, want_op) in want.as_object().into_iter().flatten() {
            if &got[op] != want_op {
                out.push(format!(
                    "{pattern} on {input}: {op}\n  sluice: {}\n  node:   {want_op}",
                    got[op]
                ));
            }
        }
    }
    if out.is_empty() {
        out.push(format!(
            "{pattern}: texts differ\n  sluice: {got}\n  node:   {want}"
        ));
    }
    out
}

#[test]
fn regexp_operations_give_what_node_gives_on_every_corpus_case() {
    let corpus = conformance_file("regexp-corpus.json");
    let cases: Vec<Value> = serde_json::from_str(&corpus).expect("corpus");
    let expected = expected_lines();
    assert_eq!(cases.len(), expected.len(), "run generate.js again");
    let code = format!(
        "{}\nconst CORPUS = {corpus};\n\
         function onTrack(event) {{\n\
           event.properties = {{ results: runRegExpCase(CORPUS[event.properties.index]) }};\n\
           return event;\n\
         }}\n",
        conformance_file("regexp-runner.js")
    );
    let engine = engine();
    let f = js_engine(&engine)
        .function(&code)
        .expect("the runner compiles");
    // Conformance, not speed: a loaded machine must not fail it.
    let limits = Limits {
        deadline: std::time::Duration::from_secs(10),
        fuel: 2_000_000_000,
        ..Limits::default()
    };
    const PREFIX: &str =
        r#"{"type":"track","event":"regexp","messageId":"m","properties":{"results":"#;
    let mut failures = Vec::new();
    for (index, (case, want)) in cases.iter().zip(&expected).enumerate() {
        let event = format!("{PREFIX}{index}}}}}").replace(r#""results":"#, r#""index":"#);
        let run = f.invoke(&event, "{}", &limits, Isolation::default());
        let got = match run.result {
            Ok(Outcome::Forward { event }) => event
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.strip_suffix("}}"))
                .map(str::to_string)
                .unwrap_or(event),
            other => format!("{other:?}"),
        };
        if &got != want {
            failures.extend(differences(case, &got, want));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences from node:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The natives' edges (`regexp-edges.js`): arguments that are not strings, replacements that
/// are neither strings nor functions, sticky and frozen RegExps, a replaced `exec`, throwing
/// and re-entrant replacement functions, lone surrogates, the natives' `length` and `name`.
#[test]
fn regexp_edges_give_what_node_gives() {
    let expected: Vec<Value> =
        serde_json::from_str(&conformance_file("regexp-edges-expected.json")).expect("expected");
    let code = format!(
        "{}\nfunction onTrack(event) {{ event.properties = {{ edges: runRegExpEdges() }}; return event; }}\n",
        conformance_file("regexp-edges.js")
    );
    let engine = engine();
    let f = js_engine(&engine)
        .function(&code)
        .expect("the edges compile");
    let limits = Limits {
        deadline: std::time::Duration::from_secs(10),
        fuel: 2_000_000_000,
        ..Limits::default()
    };
    let run = f.invoke(
        r#"{"type":"track","event":"edges","messageId":"m","properties":{}}"#,
        "{}",
        &limits,
        Isolation::default(),
    );
    let Ok(Outcome::Forward { event }) = &run.result else {
        panic!("the edges did not run: {:?}", run.result);
    };
    let event: Value = serde_json::from_str(event).expect("forwarded JSON");
    let got = event["properties"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(got.len(), expected.len(), "one result per edge");
    let differences: Vec<String> = got
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (got, want))| got != want)
        .map(|(index, (got, want))| format!("edge {index}: sluice {got}, node {want}"))
        .collect();
    assert!(
        differences.is_empty(),
        "{} differences from node:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
