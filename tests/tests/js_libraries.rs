//! Segment's preinstalled libraries in JavaScript functions, on the real engine: lodash as `_`,
//! moment-timezone as `moment`, `uuidv5`, `xml2js`, and `cache.load`/`cache.delete`; a
//! function that never names them does not pay for them, and code may reuse their names.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_runtime::engine::{Function, Invocation, Isolation, Limits, Outcome};
use sluice_tests::{engine, js_engine};

const TRACK: &str = r#"{"type":"track","event":"Signed Up"}"#;

/// A function of `code` on the built-in engine.
fn function(code: &str) -> Function {
    js_engine(&engine())
        .function(code)
        .expect("the code compiles")
}

/// One event through `function` under the default limits, the instance kept warm.
fn invoke(function: &Function, event: &str) -> Invocation {
    function.invoke(event, "{}", &Limits::default(), Isolation::default())
}

/// Limits for code that uses `moment`: its first use costs more than the default fuel (see
/// `the_first_use_fits_the_default_fuel`).
fn roomy() -> Limits {
    Limits {
        fuel: 200_000_000,
        deadline: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// The forwarded event of `run`, parsed.
fn forwarded(run: &Invocation) -> Value {
    match &run.result {
        Ok(Outcome::Forward { event }) => serde_json::from_str(event).expect("forwarded JSON"),
        other => panic!("expected a forwarded event, got {other:?}"),
    }
}

/// What a handler returning `{ out: <expression> }` gives, on a fresh instance of `code`.
fn evaluate(prefix: &str, expression: &str) -> Value {
    evaluate_under(&Limits::default(), prefix, expression)
}

fn evaluate_under(limits: &Limits, prefix: &str, expression: &str) -> Value {
    let code =
        format!("{prefix}\nasync function onTrack(event) {{ return {{ out: {expression} }}; }}");
    let run = function(&code).invoke(TRACK, "{}", limits, Isolation::default());
    forwarded(&run)["out"].clone()
}

#[test]
fn lodash_is_the_global_underscore() {
    let out = evaluate(
        "",
        r#"[_.VERSION, _.get({a: {b: [1, {c: 3}]}}, "a.b[1].c"), _.chunk([1, 2, 3, 4, 5], 2),
            _.snakeCase("Hello World-fooBar"), _.get({}, "x.y", "default")]"#,
    );
    assert_eq!(
        out,
        json!([
            "4.17.21",
            3,
            [[1, 2], [3, 4], [5]],
            "hello_world_foo_bar",
            "default"
        ])
    );
}

#[test]
fn moment_has_time_zones() {
    // 2024-03-10 is New York's switch to daylight time (07:00 UTC): noon UTC is after it.
    let out = evaluate_under(
        &roomy(),
        "",
        r#"[moment.tz("2024-03-10T12:00:00Z", "America/New_York").format(),
            moment.tz("2024-01-10T12:00:00Z", "America/New_York").format(),
            moment.tz("2024-07-01T12:00:00Z", "Asia/Kolkata").format("YYYY-MM-DD HH:mm Z"),
            moment.utc("2024-02-29T10:00:00Z").add(1, "year").toISOString(),
            typeof moment.tz.version]"#,
    );
    assert_eq!(
        out,
        json!([
            "2024-03-10T08:00:00-04:00",
            "2024-01-10T07:00:00-05:00",
            "2024-07-01 17:30 +05:30",
            "2025-02-28T10:00:00.000Z",
            "string"
        ])
    );
}

#[test]
fn uuidv5_gives_rfc_4122_name_based_uuids() {
    // Expected values computed with node 20 and the uuidv5 1.0.0 package
    // (`require("uuidv5")("dns", "www.example.com")`), and the same from Python's
    // `uuid.uuid5(uuid.NAMESPACE_DNS, "www.example.com")` (and NAMESPACE_URL).
    let out = evaluate(
        "",
        r#"[uuidv5("dns", "www.example.com"), uuidv5.uuidv5("url", "http://google.com/page"),
            uuidv5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com")]"#,
    );
    assert_eq!(
        out,
        json!([
            "2ed6657d-e927-568b-95e1-2665a8aea6a2",
            "e5721de5-c6bf-518f-884d-01479eda0d84",
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        ])
    );
}

#[test]
fn xml2js_parses_and_builds_xml() {
    let out = evaluate(
        r#"const xml = "<order id='7'><item sku='a'>Pen</item><item sku='b'>Ink</item></order>";"#,
        r#"await (async () => {
            const parsed = await xml2js.parseStringPromise(xml);
            let viaCallback;
            xml2js.parseString("<a><b>1</b></a>", (err, result) => { viaCallback = err ? String(err) : result; });
            let error;
            try { await xml2js.parseStringPromise("<a><b></a>"); } catch (e) { error = e.message.split("\n")[0]; }
            const built = new xml2js.Builder({ headless: true, renderOpts: { pretty: false } })
                .buildObject({ root: { x: 1 } });
            return [parsed, viaCallback, error, built];
        })()"#,
    );
    assert_eq!(
        out,
        json!([
            {"order": {"$": {"id": "7"}, "item": [{"_": "Pen", "$": {"sku": "a"}}, {"_": "Ink", "$": {"sku": "b"}}]}},
            {"a": {"b": ["1"]}},
            "Unexpected close tag",
            "<root><x>1</x></root>"
        ])
    );
}

#[test]
fn cache_load_calls_the_loader_once_per_ttl_and_again_after_delete() {
    let code = r#"
        let calls = 0;
        const loader = async () => ++calls;
        async function onTrack(event) {
            const op = event.properties.op;
            if (op === "delete") cache.delete("k");
            if (op === "fail") {
                try { await cache.load("bad", 60000, async () => { ++calls; throw new Error("down"); }); }
                catch (e) { event.properties.failed = e.message; }
                event.properties.retried = await cache.load("bad", 60000, loader);
            }
            if (op === "expired") event.properties.zeroTtl = [await cache.load("z", 0, loader), await cache.load("z", 0, loader)];
            const [a, b] = await Promise.all([cache.load("k", 60000, loader), cache.load("k", 60000, loader)]);
            event.properties.values = [a, b, await cache.load("k", 60000, loader)];
            event.properties.calls = calls;
            return event;
        }"#;
    let f = function(code);
    let event = |op: &str| json!({"type": "track", "properties": {"op": op}}).to_string();
    let props = |op: &str| forwarded(&invoke(&f, &event(op)))["properties"].clone();
    // Concurrent loads share one call; a later event of the warm instance hits the cache.
    assert_eq!(props("first")["values"], json!([1, 1, 1]));
    assert_eq!(props("again")["calls"], json!(1));
    let after_delete = props("delete");
    assert_eq!(after_delete["values"], json!([2, 2, 2]));
    assert_eq!(after_delete["calls"], json!(2));
    // A rejected loader stores nothing: the next load calls its loader.
    let failed = props("fail");
    assert_eq!(failed["failed"], json!("down"));
    assert_eq!(failed["retried"], json!(4));
    // A TTL of 0 ms has expired by the next load.
    assert_eq!(props("expired")["zeroTtl"], json!([5, 6]));
    // A fresh instance starts with an empty cache.
    let fresh = f.invoke(&event("x"), "{}", &Limits::default(), Isolation::Fresh);
    assert_eq!(forwarded(&fresh)["properties"]["values"], json!([1, 1, 1]));
}

#[test]
fn a_library_is_evaluated_only_when_named() {
    let descriptor = "Object.getOwnPropertyDescriptor(globalThis, name)";
    let code = format!(
        r#"const state = (name) => typeof {descriptor}.get === "function" ? "lazy" : typeof {descriptor}.value;
        function onTrack(event) {{
            const before = ["_", "moment", "uuidv5", "xml2js"].map(state);
            if (event.event === "use") _.noop();
            event.states = [before, ["_", "moment"].map(state), Object.keys(globalThis).includes("_")];
            return event;
        }}"#
    );
    let f = function(&code);
    let plain = forwarded(&invoke(&f, TRACK));
    assert_eq!(
        plain["states"],
        json!([["lazy", "lazy", "lazy", "lazy"], ["lazy", "lazy"], false])
    );
    let used = forwarded(&invoke(&f, r#"{"type":"track","event":"use"}"#));
    assert_eq!(
        used["states"],
        json!([
            ["lazy", "lazy", "lazy", "lazy"],
            ["function", "lazy"],
            false
        ])
    );
}

#[test]
fn user_code_may_take_the_libraries_names() {
    let out = evaluate_under(
        &roomy(),
        "const _ = 1;\nvar moment;\nfunction uuidv5() { return 'mine'; }\nxml2js = 'assigned';",
        "[_, typeof moment, typeof moment.tz, uuidv5(), xml2js]",
    );
    assert_eq!(out, json!([1, "function", "function", "mine", "assigned"]));
    let out = evaluate("let cache = 'own';", "[cache, typeof _.map]");
    assert_eq!(out, json!(["own", "function"]));
}

#[test]
fn the_first_use_fits_the_default_fuel() {
    let first = |expression: &str| {
        let run = invoke(
            &function(&format!(
                "function onTrack(e) {{ e.v = {expression}; return e; }}"
            )),
            TRACK,
        );
        forwarded(&run);
        run.fuel_used
    };
    let base = first("1");
    // Measured 2026-12-01: lodash 26.8 M, uuidv5 4.8 M, xml2js 11.2 M; moment 59 M, over the
    // default 50 M (a known gap, see js-engine/README.md "Libraries"), so not here.
    for (name, expression, bound) in [
        ("lodash", "_.VERSION", 30_000_000),
        ("uuidv5", "typeof uuidv5", 6_000_000),
        ("xml2js", "typeof xml2js.parseString", 13_000_000),
    ] {
        let cost = first(expression) - base;
        println!("first use of {name}: {cost} fuel");
        assert!(cost < bound, "{name}'s first use costs {cost} fuel");
    }
}
