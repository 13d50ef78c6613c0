//! JavaScript functions on the engine: the JavaScript PII filter gives exactly the Rust PII
//! filter's output on every sample event, Segment's programming model holds, and hostile code
//! ends with its named error while the next event runs.

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_runtime::engine::{Engine, InvokeError, Isolation, JsCodeError, Limits, Outcome};
use sluice_tests::{engine, example_js, function, js_engine, sample_events};

fn parsed(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Forward { event } => serde_json::from_str(event).expect("forwarded JSON"),
        other => json!({ "not-forwarded": format!("{other:?}") }),
    }
}

/// `value` with every number as a float: JavaScript has one number type, so `666.0` comes
/// back as `666`, the same JSON number.
fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), |f| json!(f)),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn the_javascript_pii_filter_matches_the_rust_one_on_every_sample_event() {
    let engine = engine();
    let rust = function(&engine, "pii-filter");
    let js = js_engine(&engine)
        .function(&example_js("pii-filter-js"))
        .expect("the example compiles");
    let events = sample_events();
    let settings_sets = [
        "{}".to_string(),
        json!({"redaction": "hash", "hashUserId": true, "dropFields": ["context.ip", "properties.phone"]})
            .to_string(),
    ];
    // Output equality is the point here, not speed: a loaded machine must not fail it.
    let limits = Limits {
        deadline: std::time::Duration::from_secs(5),
        ..Limits::default()
    };
    for settings in &settings_sets {
        let mut same = 0;
        for event in &events {
            let a = rust.invoke(event, settings, &limits, Isolation::default());
            let b = js.invoke(event, settings, &limits, Isolation::default());
            let (a, b) = (a.result.expect("rust runs"), b.result.expect("js runs"));
            assert_eq!(
                numbers_as_floats(parsed(&a)),
                numbers_as_floats(parsed(&b)),
                "settings {settings}, event {event}"
            );
            same += 1;
        }
        assert_eq!(same, events.len());
    }
}

/// Text the sample events rarely hold: the Rust rules' own edge cases (guest-sdk/src/pii.rs)
/// and random strings over the characters the rules care about, emoji included.
fn tricky_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "https://shop.example.com/checkout?email=grace.dijkstra668@example.com",
        "mail grace@example.com.",
        "(…grace@example.com-)",
        "...grace@example.com",
        "x@sub.example.com.42",
        "user@localhost",
        "a@b.c",
        "a@@b.com",
        ".@example.com",
        "x@1.2.3.4",
        "(555) 922-5727.bob@x.com",
        "ssn: 123-45-6789.",
        "666-13-6779 / 900-12-3456",
        "x123-45-6789",
        "1-123-45-6789",
        "4111 1111 1111 1111",
        "4111-1111-1111-1112",
        "4111111111111111_",
        "4111  1111 1111 1111",
        "+1 (555) 922-5727",
        "+1(555)922-5727",
        "+44 20 7946 0958",
        "555.922.5727",
        "tel 555-922-5727 (home)",
        "2026-11-01T00:00:07Z",
        "12345678.90",
        "999.999.999.999",
        "1.234.567.890",
        "+1 555",
        "from 10.0.0.1:8080.",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.4.5",
        "v1.2.3.4",
        "2001:db8::8a2e:370:7334",
        "::ffff:192.168.1.1",
        "host ::1. done",
        "[fe80::1]:443",
        "12:30:45",
        "00:1a:2b:3c:4d:5e",
        "fe80::1g",
        "café ☕ grace@example.com — ok",
        "☎5559225727☎",
        "naïve ☕ 日本語 — 505.62",
        // Where the regular expression decides alone: what follows or precedes a match.
        "a@b.com-+x@c.org a@b.com_x@c.org a@b.com.%y@c.org a@b.com--",
        "1.2.3.4.+a@b.com 10.0.0.1:8080 1.2.3.4 5678 192.168.100.200.1 1.2.3.4-(5",
        "+1-555-922-5727:07 555.922.5727 (home) x-+1-555-922-5727 +1-555-922-5727-x",
        "555-922-5727 123 -123-45-6789 123-45-6789-1 4111111111111111 1234",
    ]
    .map(String::from)
    .to_vec();
    let alphabet: Vec<char> = "0145 9-.:@afxmZ_+()é☕😀".chars().collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1024) as usize
    };
    for _ in 0..3000 {
        let len = next() % 48;
        texts.push(
            (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect(),
        );
    }
    texts
}

#[test]
fn the_javascript_pii_filter_matches_the_rust_one_on_edge_cases() {
    let engine = engine();
    let rust = function(&engine, "pii-filter");
    let js = js_engine(&engine)
        .function(&example_js("pii-filter-js"))
        .expect("the example compiles");
    let limits = Limits {
        deadline: std::time::Duration::from_secs(5),
        ..Limits::default()
    };
    let texts = tricky_texts();
    for settings in [json!({}), json!({"redaction": "hash"})] {
        for chunk in texts.chunks(100) {
            let event = json!({"type": "track", "event": "Edge", "properties": {"texts": chunk}});
            let (event, settings) = (event.to_string(), settings.to_string());
            let a = rust.invoke(&event, &settings, &limits, Isolation::default());
            let b = js.invoke(&event, &settings, &limits, Isolation::default());
            let (a, b) = (a.result.expect("rust runs"), b.result.expect("js runs"));
            assert_eq!(parsed(&a), parsed(&b), "settings {settings}, event {event}");
        }
    }
}

fn run(engine: &Arc<Engine>, code: &str, event: Value) -> Result<Outcome, InvokeError> {
    let f = js_engine(engine).function(code).expect("compiles");
    f.invoke(
        &event.to_string(),
        r#"{"greeting":"hi"}"#,
        &Limits::default(),
        Isolation::default(),
    )
    .result
}

#[test]
fn handlers_return_values_and_errors_follow_segment() {
    let engine = engine();
    let track = json!({"type": "track", "event": "Signed Up", "properties": {"plan": "pro"}});
    let code = r#"
        async function onTrack(event, settings) {
            switch (event.properties.plan) {
                case "pro": event.properties.greeting = settings.greeting; return event;
                case "none": return null;
                case "two": return [event, { ...event, event: "Copy" }];
                case "retry": throw new RetryError("later");
                case "invalid": throw new InvalidEventPayload("no plan");
                case "drop": throw new DropEvent("unwanted");
                default: throw new TypeError("bad plan " + event.properties.plan);
            }
        }
        function onIdentify(event) { console.log("identify", event.userId); return event; }
    "#;
    let f = js_engine(&engine).function(code).expect("compiles");
    let invoke = |event: Value| {
        f.invoke(
            &event.to_string(),
            r#"{"greeting":"hi"}"#,
            &Limits::default(),
            Isolation::default(),
        )
    };
    let out = invoke(track.clone()).result.unwrap();
    assert_eq!(parsed(&out)["properties"]["greeting"], "hi");
    let with = |plan: &str| {
        let mut e = track.clone();
        e["properties"]["plan"] = json!(plan);
        invoke(e).result.unwrap()
    };
    assert_eq!(with("none"), Outcome::Drop);
    match with("two") {
        Outcome::FanOut { events } => assert_eq!(events.len(), 2),
        other => panic!("{other:?}"),
    }
    let kind = |o: Outcome| match o {
        Outcome::Error { kind, message } => (kind, message),
        other => panic!("{other:?}"),
    };
    assert_eq!(kind(with("retry")).0, "retry-error");
    assert_eq!(kind(with("invalid")).0, "invalid-event-payload");
    assert_eq!(kind(with("drop")).0, "drop-event");
    let (k, message) = kind(with("other"));
    assert_eq!(k, "unknown");
    assert!(message.contains("TypeError: bad plan other"), "{message}");
    // No handler for the type: event-not-supported.
    let (k, _) = kind(invoke(json!({"type": "page"})).result.unwrap());
    assert_eq!(k, "event-not-supported");
    let identify = invoke(json!({"type": "identify", "userId": "u1"}));
    assert!(matches!(identify.result, Ok(Outcome::Forward { .. })));
    assert!(
        identify
            .logs
            .iter()
            .any(|l| l.level == "info" && l.message == "identify u1"),
        "{:?}",
        identify.logs
    );
}

#[test]
fn globals_offer_hashing_ids_time_and_base64_but_no_io() {
    let engine = engine();
    let code = r#"
        function onTrack(event) {
            event.properties = {
                sha: crypto.sha256("abc"),
                node: crypto.createHash("sha256").update("abc").digest("hex"),
                uuid: crypto.randomUUID(),
                now: Date.now(),
                b64: btoa("hello"),
                back: atob("aGVsbG8="),
                fetch: typeof fetch,
                require: typeof require,
            };
            return event;
        }
    "#;
    let out = parsed(&run(&engine, code, json!({"type": "track"})).unwrap());
    let p = &out["properties"];
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(
        (p["sha"].as_str(), p["node"].as_str()),
        (Some(abc), Some(abc))
    );
    assert_eq!(p["uuid"].as_str().map(str::len), Some(36));
    assert!(p["now"].as_f64().unwrap() > 1.7e12);
    assert_eq!(
        (p["b64"].as_str(), p["back"].as_str()),
        (Some("aGVsbG8="), Some("hello"))
    );
    // `fetch` exists (destination and source functions use it) but refuses in an insert
    // function (`js_web.rs`); there are no modules to `require`.
    assert_eq!(
        (p["fetch"].as_str(), p["require"].as_str()),
        (Some("function"), Some("undefined"))
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let engine = engine();
    let js = js_engine(&engine);
    match js.function("function onTrack(event) {\n  return event +;\n}") {
        Err(JsCodeError::Syntax {
            line,
            column,
            message,
        }) => {
            assert_eq!(line, 2, "{message}");
            // Within `  return event +;` (17 characters), never past its end.
            assert!((2..=18).contains(&column), "{column}: {message}");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("bad code compiled"),
    }
    assert!(matches!(
        js.function("throw new Error('at load')"),
        Err(JsCodeError::Syntax { .. })
    ));
}

#[test]
fn hostile_code_is_contained_and_the_next_event_runs() {
    let engine = engine();
    let code = r#"
        function onTrack(event) {
            switch (event.event) {
                case "loop": while (true) {}
                case "grow": { const all = []; while (true) all.push(new ArrayBuffer(1 << 20)); }
                case "recurse": { const f = (n) => f(n + 1) + 1; return f(0); }
                case "forever": return new Promise(() => {});
                default: return event;
            }
        }
    "#;
    let f = js_engine(&engine).function(code).expect("compiles");
    // Fuel, not the clock, must stop the loop and the growth must meet the memory cap first,
    // however loaded the machine is: a deadline far beyond what the default fuel lasts.
    let limits = Limits {
        deadline: std::time::Duration::from_secs(10),
        ..Limits::default()
    };
    let invoke = |name: &str| {
        f.invoke(
            &json!({"type": "track", "event": name}).to_string(),
            "{}",
            &limits,
            Isolation::default(),
        )
        .result
    };
    let fine = |r: Result<Outcome, InvokeError>| {
        assert!(matches!(r, Ok(Outcome::Forward { .. })), "{r:?}")
    };
    fine(invoke("fine"));
    let code_of = |r: Result<Outcome, InvokeError>| r.expect_err("fails").code();
    assert_eq!(code_of(invoke("loop")), "out-of-fuel");
    fine(invoke("fine"));
    assert_eq!(code_of(invoke("grow")), "memory-limit");
    fine(invoke("fine"));
    assert_eq!(code_of(invoke("recurse")), "stack-overflow");
    fine(invoke("fine"));
    assert_eq!(code_of(invoke("forever")), "promise-never-settles");
    fine(invoke("fine"));
}

#[test]
fn the_engine_is_compiled_once_for_many_functions() {
    let dir = tempfile::tempdir().unwrap();
    let db = sluice_runtime::storage::open_db(dir.path()).unwrap();
    let engine = engine();
    let store = sluice_runtime::storage::ComponentStore::open(&db, engine.clone()).unwrap();
    for i in 0..3 {
        let code = format!("function onTrack(e) {{ e.n = {i}; return e; }}");
        let stored = store.put_script(&code).expect("stored");
        let f = store.function(&stored.digest).expect("loads");
        let out = f.invoke(
            r#"{"type":"track"}"#,
            "{}",
            &Limits::default(),
            Isolation::default(),
        );
        assert_eq!(parsed(&out.result.unwrap())["n"], i);
    }
    assert_eq!(
        engine.compile_count(),
        1,
        "one Cranelift compilation, of the engine"
    );
    // A second store on the same database loads the engine's artifact instead.
    let again = sluice_runtime::engine::Engine::new(&Default::default()).unwrap();
    drop(store);
    let store = sluice_runtime::storage::ComponentStore::open(&db, again.clone()).unwrap();
    store
        .put_script("function onTrack(e) { return e; }")
        .unwrap();
    assert_eq!(again.compile_count(), 0, "the stored artifact was reused");
}

#[test]
fn on_batch_takes_a_whole_batch_in_order() {
    let engine = engine();
    let code = r#"
        async function onBatch(events, settings) {
            return events.map((e, i) => i === 1 ? null : { ...e, position: i, size: events.length });
        }
    "#;
    let f = js_engine(&engine).function(code).expect("compiles");
    let events: Vec<String> = (0..3)
        .map(|i| json!({"type": "track", "event": format!("e{i}")}).to_string())
        .collect();
    let batch = f.invoke_batch(&events, "{}", &Limits::default(), Isolation::default());
    let results: Vec<Outcome> = batch.results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results[1], Outcome::Drop);
    for i in [0, 2] {
        let out = parsed(&results[i]);
        assert_eq!(
            (out["position"].as_u64(), out["size"].as_u64()),
            (Some(i as u64), Some(3))
        );
        assert_eq!(out["event"], format!("e{i}"));
    }
}
