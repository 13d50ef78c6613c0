//! The example functions, as components on the real engine, turn the sample events into the
//! exact expected output.

use std::sync::LazyLock;

use pii_filter::PiiFilter;
use regex::Regex;
use serde_json::{Value, json};
use sluice_guest::{Context, Output, handle_json};
use sluice_runtime::engine::{Isolation, Limits, Outcome};
use sluice_tests::{engine, function, sample_events};

fn forwarded(outcome: &Result<Outcome, sluice_runtime::engine::InvokeError>) -> Value {
    match outcome {
        Ok(Outcome::Forward { event }) => serde_json::from_str(event).expect("forwarded JSON"),
        other => panic!("expected a forwarded event, got {other:?}"),
    }
}

#[test]
fn pii_filter_redacts_the_first_sample_event_exactly() {
    let engine = engine();
    let pii = function(&engine, "pii-filter");
    let events = sample_events();
    let run = pii.invoke(&events[0], "{}", &Limits::default(), Isolation::default());
    let expected = json!({
        "type": "track",
        "messageId": "9b975338-eade-4845-544c-efd37f75b7e0",
        "timestamp": "2026-11-01T00:00:00Z",
        "context": {
            "ip": "[IP]",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
            "locale": "en-US",
            "timezone": "Europe/Berlin",
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "page": {
                "path": "/checkout",
                "url": "https://shop.example.com/checkout?email=[EMAIL]",
                "referrer": "https://search.example.com/"
            },
            "traits": {"email": "[EMAIL]"}
        },
        "userId": "user_053485",
        "event": "Payment Info Entered",
        "properties": {
            "orderId": "ord_37349461",
            "currency": "EUR",
            "revenue": 505.62,
            "products": [
                {"product_id": "sku-0006", "name": "Backpack", "price": 167.37, "quantity": 3},
                {"product_id": "sku-0002", "name": "Espresso Grinder", "price": 338.25, "quantity": 1}
            ],
            "email": "[EMAIL]",
            "phone": "[PHONE]",
            "note": "call me at [PHONE] or write [EMAIL]"
        }
    });
    assert_eq!(forwarded(&run.result), expected);
    assert!(run.fuel_used > 0);
}

#[test]
fn pii_filter_settings_drop_fields_and_hash_user_ids() {
    let engine = engine();
    let pii = function(&engine, "pii-filter");
    let events = sample_events();
    let identify = events
        .iter()
        .find(|e| e.contains(r#""type":"identify""#))
        .expect("an identify event");
    let settings = json!({"dropFields": ["traits.ssn", "traits.address.street", "context.ip"],
                          "hashUserId": true, "redaction": "hash"});
    let run = pii.invoke(
        identify,
        &settings.to_string(),
        &Limits::default(),
        Isolation::default(),
    );
    let out = forwarded(&run.result);
    let input: Value = serde_json::from_str(identify).unwrap();
    assert!(out["traits"].get("ssn").is_none());
    assert!(out["traits"]["address"].get("street").is_none());
    assert_eq!(
        out["traits"]["address"]["city"],
        input["traits"]["address"]["city"]
    );
    assert!(out["context"].get("ip").is_none());
    let user_id = input["userId"].as_str().unwrap();
    assert_eq!(out["userId"], sluice_guest::pii::hash_hex(user_id));
    let email = input["traits"]["email"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(out["traits"]["email"], sluice_guest::pii::hash_hex(&email));
    assert_eq!(out["traits"]["firstName"], input["traits"]["firstName"]);
}

/// An oracle written independently of the SDK's scanner: none of these may survive the filter.
fn leaks(text: &str) -> Vec<String> {
    static ORACLE: LazyLock<Vec<Regex>> = LazyLock::new(|| {
        [
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            r"\+\d{1,3}-\d{3}-\d{3}-\d{4}",
            r"\b\d{3}-\d{2}-\d{4}\b",
            r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
            r"\b\d{16}\b",
        ]
        .iter()
        .map(|p| Regex::new(p).unwrap())
        .collect()
    });
    ORACLE
        .iter()
        .flat_map(|re| re.find_iter(text).map(|m| m.as_str().to_string()))
        .collect()
}

#[test]
fn pii_filter_component_leaks_nothing_and_matches_native_on_every_sample_event() {
    let engine = engine();
    let pii = function(&engine, "pii-filter");
    let events = sample_events();
    assert!(events.len() >= 10_000, "the whole sample is used");
    let native_ctx = Context::local(json!({}), 0);
    let mut redacted = 0;
    for chunk in events.chunks(100) {
        let batch = pii.invoke_batch(chunk, "{}", &Limits::default(), Isolation::default());
        assert_eq!(batch.results.len(), chunk.len());
        for (input, result) in chunk.iter().zip(&batch.results) {
            let out = forwarded(result);
            let Output::Forward(native) = handle_json::<PiiFilter>(input, &native_ctx) else {
                panic!("native filter did not forward {input}");
            };
            assert_eq!(
                out,
                serde_json::from_str::<Value>(&native).unwrap(),
                "component and native differ on {input}"
            );
            for section in ["properties", "traits", "context"] {
                let text = out.get(section).map(Value::to_string).unwrap_or_default();
                let leaked = leaks(&text);
                assert!(leaked.is_empty(), "{section} leaks {leaked:?} in {out}");
            }
            let input: Value = serde_json::from_str(input).unwrap();
            assert_eq!(out["messageId"], input["messageId"]);
            assert_eq!(out["type"], input["type"]);
            if input["properties"].get("card_number").is_some() {
                assert_eq!(out["properties"]["card_number"], "[CARD]");
            }
            if input["traits"].get("ssn").is_some() {
                assert_eq!(out["traits"]["ssn"], "[SSN]");
            }
            redacted += 1;
        }
    }
    assert_eq!(redacted, events.len());
}

#[test]
fn router_routes_order_completed_to_the_named_destination_only() {
    let engine = engine();
    let router = function(&engine, "router");
    let events = sample_events();
    let settings = json!({"routes": {"Order Completed": "Warehouse"}}).to_string();
    let mut routed = 0;
    for input in events
        .iter()
        .filter(|e| e.contains(r#""type":"track""#))
        .take(500)
    {
        let run = router.invoke(input, &settings, &Limits::default(), Isolation::default());
        let out = forwarded(&run.result);
        let mut expected: Value = serde_json::from_str(input).unwrap();
        if expected["event"] == "Order Completed" {
            expected["integrations"] = json!({"All": false, "Warehouse": true});
            assert_eq!(run.logs.len(), 1, "one routing log line");
            routed += 1;
        }
        assert_eq!(out, expected);
    }
    assert!(routed > 10, "the sample has Order Completed events");
    let drop_unrouted = json!({"routes": {}, "dropUnrouted": true}).to_string();
    let run = router.invoke(
        &events[0],
        &drop_unrouted,
        &Limits::default(),
        Isolation::default(),
    );
    assert_eq!(run.result, Ok(Outcome::Drop));
}

#[test]
fn enrich_normalises_names_and_derives_properties() {
    let engine = engine();
    let enrich = function(&engine, "enrich");
    let events = sample_events();
    let run = enrich.invoke(
        &events[0],
        &json!({"eventCase": "snake"}).to_string(),
        &Limits::default(),
        Isolation::default(),
    );
    let out = forwarded(&run.result);
    assert_eq!(out["event"], "payment_info_entered");
    assert_eq!(out["properties"]["itemCount"], 4);
    assert_eq!(out["properties"]["revenueCents"], 50562);
    assert_eq!(out["properties"]["emailDomain"], "example.com");
    let mut rest = out.clone();
    for key in ["itemCount", "revenueCents", "emailDomain"] {
        rest["properties"].as_object_mut().unwrap().remove(key);
    }
    rest["event"] = json!("Payment Info Entered");
    assert_eq!(
        rest,
        serde_json::from_str::<Value>(&events[0]).unwrap(),
        "nothing else changes"
    );

    let alias = events
        .iter()
        .find(|e| e.contains(r#""type":"alias""#))
        .unwrap();
    let run = enrich.invoke(alias, "{}", &Limits::default(), Isolation::default());
    assert!(
        matches!(
            &run.result,
            Ok(Outcome::Error {
                kind: "event-not-supported",
                ..
            })
        ),
        "{:?}",
        run.result
    );
}
