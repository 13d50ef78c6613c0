//! Segment's libraries in the JavaScript engine (issue 16): what a fresh instance costs, and
//! what the first use of each library (`_`, `moment`, `uuidv5`, `xml2js`) adds, in time and
//! fuel. Compares other engine builds given in `SLUICE_JS_ENGINES` (`label=path.wasm,...`).
//!
//! Run: `cargo bench -p sluice-tests --bench js_libraries`.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_runtime::engine::{Invocation, Isolation, JsEngine, Limits, Outcome};
use sluice_tests::{engine, js_engine, median};

const TRACK: &str = r#"{"type":"track","event":"Signed Up"}"#;

/// Room for `moment`, whose first use costs more than the default fuel.
fn roomy() -> Limits {
    Limits {
        fuel: 200_000_000,
        deadline: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn forwarded(run: &Invocation) -> Value {
    match &run.result {
        Ok(Outcome::Forward { event }) => serde_json::from_str(event).expect("forwarded JSON"),
        other => panic!("expected a forwarded event, got {other:?}"),
    }
}

/// Fresh-instance cost of a pass-through function and of each library's first use, on the
/// built-in engine and on the engine builds named in `SLUICE_JS_ENGINES`
/// (`label=path.wasm,...`: the engine before this change, the unsnapshotted engine, which
/// parses a library on first use), as noted in js-engine/README.md:
/// `cargo bench -p sluice-tests --bench js_libraries`.
fn main() {
    let engine = engine();
    let mut engines = vec![("built-in".to_string(), js_engine(&engine))];
    for pair in std::env::var("SLUICE_JS_ENGINES")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((label, path)) = pair.split_once('=') {
            let wasm = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            engines.push((
                label.into(),
                JsEngine::compile(engine.clone(), &wasm).unwrap(),
            ));
        }
    }
    let show = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    for (label, js) in &engines {
        let fresh = |expression: &str, passes: usize| {
            let code = format!("function onTrack(e) {{ e.v = {expression}; return e; }}");
            let f = js.function(&code).unwrap();
            let mut times = Vec::new();
            let mut run = None;
            for _ in 0..passes {
                let start = Instant::now();
                let one = f.invoke(TRACK, "{}", &roomy(), Isolation::Fresh);
                times.push(start.elapsed());
                run = Some(one);
            }
            let run = run.unwrap();
            (median(times), run.fuel_used, forwarded(&run)["v"].clone())
        };
        let (time, fuel, _) = fresh("1", 400);
        println!("{label}: fresh pass-through {} ({fuel} fuel)", show(time));
        for library in ["_", "moment", "uuidv5", "xml2js"] {
            let expression = format!("typeof {library} === 'undefined' ? null : typeof {library}");
            let (t, f, v) = fresh(&expression, 40);
            if !v.is_null() {
                let extra = f - fuel;
                println!(
                    "{label}: fresh, first use of {library}: {} ({extra} fuel more)",
                    show(t)
                );
            }
        }
    }
}
