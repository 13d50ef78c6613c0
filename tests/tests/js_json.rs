//! Events reach a handler with `JSON.parse`'s meaning (key order, duplicate keys, `-0`, big
//! integers, escapes, lone surrogates, a `__proto__` key), and the handler's result reaches
//! the host as follows: exactly the JSON text node's `JSON.stringify`
//! gives for every case of `tests/js-conformance/json-cases.js` (numbers, escapes, lone
//! surrogates, skipped values, key order, `toJSON`, boxed primitives, Dates; a cycle or a
//! BigInt a TypeError), and a function that replaces `JSON.stringify` or puts `toJSON` on the
//! built-in prototypes cannot change the events the host receives.

use serde_json::{Value, json};
use sluice_runtime::engine::{Isolation, Limits, Outcome};
use sluice_tests::{engine, js_engine, workspace_root};

fn conformance_file(name: &str) -> String {
    let path = workspace_root().join("tests/js-conformance").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PREFIX: &str = r#"{"type":"track","messageId":"m","properties":"#;

#[test]
fn results_are_serialised_exactly_as_json_stringify_does() {
    let expected: Vec<Value> =
        serde_json::from_str(&conformance_file("json-expected.json")).expect("expected results");
    let code = format!(
        "{}\nfunction onTrack(event) {{\n\
           return {{ type: 'track', messageId: 'm', properties: JSON_CASES[event.properties.index]() }};\n\
         }}\n",
        conformance_file("json-cases.js")
    );
    let engine = engine();
    let f = js_engine(&engine)
        .function(&code)
        .expect("the cases compile");
    for (index, want) in expected.iter().enumerate() {
        let event = json!({"type": "track", "properties": {"index": index}}).to_string();
        let run = f.invoke(&event, "{}", &Limits::default(), Isolation::default());
        match (run.result, want) {
            (Ok(Outcome::Forward { event }), want) if want.get("json").is_some() => {
                let body = event
                    .strip_prefix(PREFIX)
                    .and_then(|rest| rest.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("case {index}: unexpected shape {event}"));
                assert_eq!(Some(body), want["json"].as_str(), "case {index}");
            }
            (Ok(Outcome::Error { message, .. }), want) if want.get("threw").is_some() => {
                let name = want["threw"].as_str().unwrap_or_default();
                assert!(message.starts_with(name), "case {index}: {message}");
            }
            (other, want) => panic!("case {index}: got {other:?}, node gives {want}"),
        }
    }
}

#[test]
fn a_function_cannot_hijack_the_json_the_host_receives() {
    let code = r#"
        function onTrack(event) {
          Object.prototype.toJSON = () => ({ hijacked: true });
          Array.prototype.toJSON = () => 'hijacked';
          Date.prototype.toJSON = () => 'hijacked';
          Date.prototype.toISOString = () => 'hijacked';
          JSON.stringify = () => '{"hijacked":true}';
          event.properties.when = new Date(Date.UTC(2026, 10, 30));
          return event;
        }
    "#;
    let engine = engine();
    let f = js_engine(&engine).function(code).expect("compiles");
    // The first event sets the traps; the next ones run on the same (warm) realm after them.
    for n in 0..3 {
        let event = json!({"type": "track", "messageId": format!("m{n}"), "event": "Order",
                           "properties": {"items": [1, 2], "nested": {"a": "b"}}});
        let run = f.invoke(
            &event.to_string(),
            "{}",
            &Limits::default(),
            Isolation::default(),
        );
        let Ok(Outcome::Forward { event: sent }) = run.result else {
            panic!("event {n}: {:?}", run.result);
        };
        let mut want = event.clone();
        want["properties"]["when"] = json!("2026-11-30T00:00:00.000Z");
        assert_eq!(
            serde_json::from_str::<Value>(&sent).expect("JSON"),
            want,
            "event {n}: {sent}"
        );
    }
}

#[test]
fn events_reach_the_handler_as_json_parse_reads_them() {
    // The same function in node gives `expected` (checked when this test was written).
    let code = r#"
        function onTrack(event) {
          const p = event.properties;
          event.properties = {
            keys: Object.keys(p),
            dup: p.dup,
            negZero: Object.is(p.negZero, -0),
            big: p.big === 12345678901234567890,
            frac: p.frac,
            int: p.int, over: p.over,
            esc: [p.esc.length, p.esc.charCodeAt(0), p.esc.codePointAt(p.esc.indexOf('\u{1F600}'))],
            lone: [p.lone.length, p.lone.charCodeAt(0)],
            nested: [Array.isArray(p.nested[0]), Object.keys(p.nested[2][0]),
                     Object.getPrototypeOf(p.nested[2][0]) === Object.prototype],
            literals: [p.t, p.f, p.n],
          };
          return event;
        }
    "#;
    let event = r#"{"type":"track","properties":{"b":1,"a":2,"10":"ten","2":"two","dup":"first","x":0,"dup":"second","negZero":-0,"big":12345678901234567890,"frac":1.5e-7,"int":2147483647,"over":2147483648,"esc":"tab\t quote\" nl\n \u00e9 \ud83d\ude00 \/","lone":"\ud800x","nested":[[],{},[{"__proto__":1}]],"t":true,"f":false,"n":null}}"#;
    let expected = json!({"keys":["2","10","b","a","dup","x","negZero","big","frac","int","over","esc","lone","nested","t","f","n"],
        "dup":"second","negZero":true,"big":true,"frac":1.5e-7,"int":2147483647,"over":2_147_483_648_u64,
        "esc":[22,116,128512],"lone":[2,55296],"nested":[true,["__proto__"],true],"literals":[true,false,null]});
    let engine = engine();
    let f = js_engine(&engine).function(code).expect("compiles");
    let run = f.invoke(event, "{}", &Limits::default(), Isolation::default());
    let Ok(Outcome::Forward { event: sent }) = run.result else {
        panic!("{:?}", run.result);
    };
    let sent: Value = serde_json::from_str(&sent).expect("JSON");
    assert_eq!(sent["properties"], expected);
}
