//! A JavaScript function's start-up: its code is compiled to QuickJS bytecode once, at upload,
//! and stored beside the code (verified before use); fresh instances start from the engine's
//! build-time snapshot and load that bytecode instead of parsing.

use sluice_runtime::engine::{InvokeError, Isolation, Limits, Outcome};
use sluice_runtime::storage::{ComponentStore, open_db};
use sluice_tests::{engine, js_engine};

/// Throws from line 4 of the code for `Fail` events, so error positions can be checked.
const CODE: &str = "// a comment\nconst suffix = '!';\nfunction onTrack(event) {\n  if (event.event === 'Fail') throw new TypeError('bad ' + event.event);\n  event.event += suffix;\n  return event;\n}\n";

fn invoke(store: &ComponentStore, digest: &str, event: &str) -> Result<Outcome, InvokeError> {
    let function = store.function(digest).expect("the stored code loads");
    function
        .invoke(event, "{}", &Limits::default(), Isolation::Fresh)
        .result
}

/// The code runs and a throw names its position in the code, as when it was parsed.
fn assert_runs_as_uploaded(store: &ComponentStore, digest: &str) {
    let out = invoke(store, digest, r#"{"type":"track","event":"Signed Up"}"#).unwrap();
    assert!(
        matches!(&out, Outcome::Forward { event } if event.contains("Signed Up!")),
        "{out:?}"
    );
    let err = invoke(store, digest, r#"{"type":"track","event":"Fail"}"#).unwrap();
    let Outcome::Error { message, .. } = &err else {
        panic!("expected an error, got {err:?}");
    };
    assert!(message.contains("TypeError: bad Fail"), "{message}");
    assert!(message.contains("function.js:4"), "{message}");
}

#[test]
fn stored_bytecode_survives_a_restart_and_corrupt_bytecode_is_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let db = open_db(dir.path()).unwrap();
        let store = ComponentStore::open(&db, engine()).unwrap();
        let digest = store.put_script(CODE).unwrap().digest;
        assert_runs_as_uploaded(&store, &digest);
        digest
    };
    let db = open_db(dir.path()).unwrap();
    let bytecode = db.open_tree("bytecode").unwrap();
    let (key, value) = bytecode
        .iter()
        .next()
        .expect("upload stored the bytecode")
        .unwrap();
    assert!(
        key.starts_with(digest.as_bytes()),
        "keyed by the code's digest"
    );
    // A new process loads the bytecode (no check instance) and runs it.
    let store = ComponentStore::open(&db, engine()).unwrap();
    assert_runs_as_uploaded(&store, &digest);
    drop(store);

    // Flip the last byte: the checksum fails, the code is compiled again and re-stored.
    let mut corrupt = value.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    bytecode.insert(&key, corrupt.clone()).unwrap();
    let store = ComponentStore::open(&db, engine()).unwrap();
    assert_runs_as_uploaded(&store, &digest);
    let restored = bytecode.get(&key).unwrap().expect("stored again");
    assert_eq!(restored.as_ref(), value.as_ref(), "the same bytecode again");
}

#[test]
fn a_fresh_instance_starts_from_the_snapshot_and_loads_bytecode() {
    let engine = engine();
    let js = js_engine(&engine);
    let (function, bytecode) = js.function_with_bytecode(CODE).unwrap();
    assert!(!bytecode.is_empty(), "the engine compiled the code");
    let event = r#"{"type":"track","event":"Signed Up"}"#;
    let fresh = function.invoke(event, "{}", &Limits::default(), Isolation::Fresh);
    assert!(matches!(fresh.result, Ok(Outcome::Forward { .. })));
    // Setting QuickJS up (runtime, context, prelude) costs ~5 M fuel; the snapshot has it done,
    // so a fresh instance pays for the bytecode and the event only.
    assert!(
        fresh.fuel_used < 1_000_000,
        "a fresh instance used {} fuel: is the embedded engine the snapshot?",
        fresh.fuel_used
    );
    // The same code parsed from source (no bytecode) runs the same.
    let parsed = js.function_from_bytecode(CODE, std::sync::Arc::from([]));
    let again = parsed.invoke(event, "{}", &Limits::default(), Isolation::Fresh);
    assert_eq!(format!("{:?}", again.result), format!("{:?}", fresh.result));
}

#[test]
fn math_random_is_seeded_per_instance_not_by_the_snapshot() {
    let engine = engine();
    let code =
        "function onTrack(event) { event.r = [Math.random(), Math.random()]; return event; }";
    let function = js_engine(&engine).function(code).unwrap();
    let draw = || {
        let run = function.invoke(
            r#"{"type":"track"}"#,
            "{}",
            &Limits::default(),
            Isolation::Fresh,
        );
        match run.result {
            Ok(Outcome::Forward { event }) => {
                let v: serde_json::Value = serde_json::from_str(&event).unwrap();
                let pair = [v["r"][0].as_f64().unwrap(), v["r"][1].as_f64().unwrap()];
                assert!(pair.iter().all(|x| (0.0..1.0).contains(x)), "{pair:?}");
                assert_ne!(pair[0], pair[1]);
                pair
            }
            other => panic!("{other:?}"),
        }
    };
    let (a, b) = (draw(), draw());
    assert_ne!(a, b, "two fresh instances drew the same numbers");
}
