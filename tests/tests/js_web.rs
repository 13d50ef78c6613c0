//! The web globals of Segment's function runtime in the JavaScript engine (issue 16): URL and
//! URLSearchParams (WHATWG's parsing), Headers, Request and Response bodies, TextEncoder and
//! TextDecoder, timers and AbortController. Run as an insert function on the real engine: its
//! result is an event carrying what the code computed. `fetch` in an insert function is
//! refused with its named error. Each expected value is what node 20 gives for the same code.

use serde_json::{Value, json};
use sluice_runtime::engine::{Isolation, Limits, Outcome};
use sluice_tests::{engine, js_engine};

/// Runs `body` (an async function body that returns a value) as `onTrack`; the value.
fn run(body: &str) -> Value {
    let engine = engine();
    let code = format!(
        "async function onTrack(event) {{ const result = await (async () => {{ {body} }})(); return {{ ...event, result }}; }}"
    );
    let function = js_engine(&engine)
        .function(&code)
        .unwrap_or_else(|e| panic!("compiles: {e}"));
    let invocation = function.invoke(
        r#"{"type":"track","event":"x","userId":"u"}"#,
        "{}",
        &Limits::default(),
        Isolation::Fresh,
    );
    match invocation.result {
        Ok(Outcome::Forward { event }) => {
            let event: Value = serde_json::from_str(&event).unwrap();
            event["result"].clone()
        }
        other => panic!("{code}\n=> {other:?}"),
    }
}

#[test]
fn urls_parse_and_serialise_as_whatwg_says() {
    let got = run(r#"
        const u = new URL("HTTPS://User:pw@Example.COM:443/a/../b/c?x=1&y=two words#frag");
        const r = new URL("../d?q", "http://h.test/a/b/c");
        u.searchParams.append("z", "ü&=");
        u.pathname = "/new path";
        const p = new URLSearchParams({ b: "2", a: "1" });
        p.sort();
        let threw = "";
        try { new URL("not a url"); } catch (e) { threw = `${e.name}: ${e.message}`; }
        return [u.href, u.origin, u.host, u.port, u.username, u.searchParams.get("y"), r.href,
                p.toString(), [...new URLSearchParams("?a=1&a=2&b=%20x").getAll("a")], threw,
                URL.canParse("http://x"), JSON.stringify({ u: new URL("http://x/y") })];
    "#);
    assert_eq!(
        got,
        json!([
            "https://User:pw@example.com/new%20path?x=1&y=two+words&z=%C3%BC%26%3D#frag",
            "https://example.com",
            "example.com",
            "",
            "User",
            "two words",
            "http://h.test/a/d?q",
            "a=1&b=2",
            ["1", "2"],
            "TypeError: Invalid URL",
            true,
            "{\"u\":\"http://x/y\"}"
        ])
    );
}

#[test]
fn headers_bodies_and_text_codecs_behave_as_in_node() {
    let got = run(r#"
        const h = new Headers({ "Content-Type": "text/plain", "X-A": "1" });
        h.append("x-a", "2");
        h.set("Set-Cookie", "a=1");
        h.append("set-cookie", "b=2");
        let bad = "";
        try { h.set("bad name", "v"); } catch (e) { bad = e.name; }
        const res = new Response(JSON.stringify({ ok: true }), { status: 201, headers: { "x-y": "z" } });
        const json = await res.json();
        let reread = "";
        try { await res.text(); } catch (e) { reread = e.name; }
        const req = new Request("http://api.test/v1", { method: "post", body: new URLSearchParams({ a: "b c" }) });
        const bytes = new TextEncoder().encode("héllo");
        let fatal = "";
        try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.name; }
        return [h.get("x-a"), [...h].map(([k]) => k), h.getSetCookie(), bad, res.status, res.ok,
                json, reread, req.method, req.headers.get("content-type"), await req.text(),
                Array.from(bytes), new TextDecoder().decode(bytes), fatal,
                Response.json({ a: 1 }).headers.get("content-type")];
    "#);
    assert_eq!(
        got,
        json!([
            "1, 2",
            ["content-type", "set-cookie", "set-cookie", "x-a"],
            ["a=1", "b=2"],
            "TypeError",
            201,
            true,
            {"ok": true},
            "TypeError",
            "POST",
            "application/x-www-form-urlencoded;charset=UTF-8",
            "a=b+c",
            [104, 195, 169, 108, 108, 111],
            "héllo",
            "TypeError",
            "application/json"
        ])
    );
}

#[test]
fn timers_run_in_order_and_abort_signals_fire() {
    let got = run(r#"
        const order = [];
        setTimeout(() => order.push("t0"), 0);
        const cancelled = setTimeout(() => order.push("never"), 0);
        clearTimeout(cancelled);
        await Promise.resolve();
        order.push("micro");
        await new Promise((resolve) => setTimeout(resolve, 0));
        const controller = new AbortController();
        let heard = "";
        controller.signal.addEventListener("abort", (e) => { heard = e.type; });
        controller.abort();
        const already = AbortSignal.abort("why");
        return [order, controller.signal.aborted, controller.signal.reason.name, heard,
                already.reason, typeof DOMException];
    "#);
    assert_eq!(
        got,
        json!([
            ["micro", "t0"],
            true,
            "AbortError",
            "abort",
            "why",
            "function"
        ])
    );
}

#[test]
fn fetch_in_an_insert_function_is_refused_by_name() {
    let got = run(r#"
        try {
          await fetch("http://127.0.0.1:9/");
          return "fetched";
        } catch (e) {
          return [e.name, e.code, e.message.split(";")[0]];
        }
    "#);
    assert_eq!(
        got,
        json!([
            "TypeError",
            "http-not-allowed",
            "http-not-allowed: fetch: insert functions cannot use the network"
        ])
    );
}
