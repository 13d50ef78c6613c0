//! Components are stored once by digest; compiled artifacts survive restarts and are verified
//! before use.

use sluice_runtime::engine::{Isolation, Limits, Outcome};
use sluice_runtime::storage::{ComponentStore, StorageError, open_db};
use sluice_tests::{component, engine};

#[test]
fn identical_code_is_stored_and_compiled_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).unwrap();
    let engine = engine();
    let store = ComponentStore::open(&db, engine.clone()).unwrap();
    let wasm = component("router");
    let first = store.put(&wasm).unwrap();
    let second = store.put(&wasm).unwrap();
    assert!(first.new);
    assert!(!second.new);
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.digest, blake3_hex(&wasm));
    assert_eq!(engine.compile_count(), 1);
    assert_eq!(store.wasm(&first.digest).unwrap(), wasm);
    assert!(matches!(
        store.function("00ff"),
        Err(StorageError::NotFound(_))
    ));
}

#[test]
fn a_restart_loads_stored_artifacts_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let db = open_db(dir.path()).unwrap();
        let store = ComponentStore::open(&db, engine()).unwrap();
        store.put(&component("pii-filter")).unwrap().digest
    };
    // A new process: a new engine and the database reopened from disk.
    let db = open_db(dir.path()).unwrap();
    let engine = engine();
    let store = ComponentStore::open(&db, engine.clone()).unwrap();
    let function = store.function(&digest).unwrap();
    assert_eq!(engine.compile_count(), 0, "loaded from the stored artifact");
    let run = function.invoke(
        r#"{"type":"track","event":"x","properties":{"email":"a@b.example.com"}}"#,
        "{}",
        &Limits::default(),
        Isolation::default(),
    );
    assert!(matches!(run.result, Ok(Outcome::Forward { event }) if event.contains("[EMAIL]")));
}

#[test]
fn a_corrupt_or_foreign_artifact_is_recompiled_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let db = open_db(dir.path()).unwrap();
        let store = ComponentStore::open(&db, engine()).unwrap();
        store.put(&component("router")).unwrap().digest
    };
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let artifacts = db.open_tree("artifacts").unwrap();
        for entry in artifacts.iter() {
            let (key, value) = entry.unwrap();
            let mut flipped = value.to_vec();
            let last = flipped.len() - 1;
            flipped[last] ^= 0xff;
            artifacts.insert(key, flipped).unwrap();
        }
        db.flush().unwrap();
    }
    let db = open_db(dir.path()).unwrap();
    let engine = engine();
    let store = ComponentStore::open(&db, engine.clone()).unwrap();
    let function = store.function(&digest).unwrap();
    assert_eq!(
        engine.compile_count(),
        1,
        "the corrupt artifact was not deserialized"
    );
    let run = function.invoke(
        r#"{"type":"track","event":"x"}"#,
        "{}",
        &Limits::default(),
        Isolation::default(),
    );
    assert!(matches!(run.result, Ok(Outcome::Forward { .. })));
}

fn blake3_hex(bytes: &[u8]) -> String {
    sluice_runtime::engine::digest_hex(bytes)
}

#[test]
fn each_insert_function_instance_gets_its_own_warm_pool_over_shared_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).unwrap();
    let engine = engine();
    let store = ComponentStore::open(&db, engine.clone()).unwrap();
    let digest = store.put(&component("hostile")).unwrap().digest;
    let a = store.function_for("instance-a", &digest, "{}").unwrap();
    let event = r#"{"type":"track","event":"count","properties":{}}"#;
    let run = a.invoke(event, "{}", &Limits::default(), Isolation::default());
    assert!(run.result.is_ok(), "{:?}", run.result);
    assert_eq!(a.warm_instances(), 1);
    // The same instance gets the same pool back; another instance, or new settings, a new one.
    let again = store.function_for("instance-a", &digest, "{}").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &again));
    let b = store.function_for("instance-b", &digest, "{}").unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(b.warm_instances(), 0, "nothing of instance-a's is reused");
    let changed = store
        .function_for("instance-a", &digest, r#"{"apiKey":"new"}"#)
        .unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &changed));
    assert_eq!(changed.warm_instances(), 0);
    assert_eq!(engine.compile_count(), 1, "the compiled code is shared");
    // A deleted instance's pool is dropped.
    store.retain_instances(|id| id == "instance-a");
    let reloaded = store.function_for("instance-b", &digest, "{}").unwrap();
    assert!(!std::sync::Arc::ptr_eq(&b, &reloaded));
    let kept = store
        .function_for("instance-a", &digest, r#"{"apiKey":"new"}"#)
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&changed, &kept));
}
