//! Example insert function: a transform that normalises event names and adds derived properties.
//!
//! Settings: `eventCase`, one of `"snake"` (`order_completed`), `"title"` (`Order Completed`,
//! the default) or `"lower"` (`order completed`). Derived properties on track events that
//! carry `products`: `itemCount` (the sum of quantities) and `revenueCents` (the revenue as
//! whole cents); on any event with an e-mail in `properties`, `traits` or `context.traits`,
//! `emailDomain`.

use sluice_guest::{Context, Event, FunctionError, InsertFunction, Map, Outcome, Value};

/// The enricher.
pub struct Enrich;

/// Rewrites an event name in the chosen case; words are split on spaces, `_`, `-` and case
/// changes, so `orderCompleted`, `order_completed` and `Order Completed` agree.
pub fn normalise_name(name: &str, case: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == ' ' || c == '_' || c == '-' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    match case {
        "snake" => words.join("_"),
        "lower" => words.join(" "),
        _ => words
            .iter()
            .map(|w| {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" "),
    }
}

fn email_domain(maps: [&Map<String, Value>; 2]) -> Option<String> {
    maps.iter()
        .find_map(|m| m.get("email").and_then(Value::as_str))
        .and_then(|email| email.rsplit_once('@'))
        .map(|(_, domain)| domain.to_ascii_lowercase())
}

fn enrich(mut event: Event, ctx: &Context) -> Event {
    let case = ctx.setting::<String>("eventCase").unwrap_or_default();
    if let Some(name) = event.event.as_mut() {
        *name = normalise_name(name, &case);
    }
    if let Some(Value::Array(products)) = event.properties.get("products") {
        let items: f64 = products
            .iter()
            .filter_map(|p| p.get("quantity").and_then(Value::as_f64))
            .sum();
        event
            .properties
            .insert("itemCount".into(), Value::from(items as u64));
    }
    if let Some(revenue) = event.properties.get("revenue").and_then(Value::as_f64) {
        let cents = (revenue * 100.0).round() as i64;
        event
            .properties
            .insert("revenueCents".into(), Value::from(cents));
    }
    let context_traits = match event.context.get("traits") {
        Some(Value::Object(traits)) => Some(traits),
        _ => None,
    };
    let empty = Map::new();
    let domain = email_domain([&event.properties, &event.traits])
        .or_else(|| email_domain([context_traits.unwrap_or(&empty), &empty]));
    if let Some(domain) = domain {
        let target = if event.traits.is_empty() {
            &mut event.properties
        } else {
            &mut event.traits
        };
        target.insert("emailDomain".into(), Value::String(domain));
    }
    event
}

impl InsertFunction for Enrich {
    fn on_track(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(enrich(event, ctx).into())
    }
    fn on_identify(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(enrich(event, ctx).into())
    }
    fn on_page(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(enrich(event, ctx).into())
    }
    fn on_screen(event: Event, ctx: &Context) -> Result<Outcome, FunctionError> {
        Ok(enrich(event, ctx).into())
    }
}

sluice_guest::export!(Enrich);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree_across_cases() {
        for input in [
            "orderCompleted",
            "order_completed",
            "Order Completed",
            "ORDER-completed",
        ] {
            assert_eq!(normalise_name(input, "snake"), "order_completed", "{input}");
        }
        assert_eq!(
            normalise_name("order_completed", "title"),
            "Order Completed"
        );
        assert_eq!(
            normalise_name("Order Completed", "lower"),
            "order completed"
        );
    }
}
