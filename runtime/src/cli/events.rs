//! `sluice events ...`: the event debugger from the command line. `list` shows a source's
//! recent events with what each stage did (`GET /events`); `tail` follows the live debugger
//! (`GET /sources/{id}/events/live`, Server-Sent Events), one readable line per update.

use std::io::Write as _;

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs};
use super::resolve::resolve;
use super::resources::SOURCES;
use super::sse::SseReader;
use super::table::print_rows;

/// `sluice events ...`.
#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// A source's recent events, newest first, with what each stage did to them.
    List {
        /// The source (id, slug or name).
        #[arg(long)]
        source: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Follow a source's events live: one line per stage an event goes through (raw JSON per
    /// update with --json). Runs until interrupted or the server stops.
    Tail {
        /// The source (id, slug or name).
        #[arg(long)]
        source: String,
    },
}

pub(super) fn events(cmd: EventsCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match cmd {
        EventsCmd::List { source, limit } => {
            let source = resolve(&client, &SOURCES, &source)?;
            list(&client, &source, limit, args.json)
        }
        EventsCmd::Tail { source } => {
            let source = resolve(&client, &SOURCES, &source)?;
            tail(&client, &source, args.json)
        }
    }
}

fn list(client: &Client, source: &str, limit: usize, json: bool) -> anyhow::Result<()> {
    let data = client.get(&format!("/events?sourceId={source}&limit={limit}"))?;
    let events = data
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if json {
        println!("{}", Value::Array(events));
        return Ok(());
    }
    let rows: Vec<Value> = events
        .iter()
        .map(|trace| {
            let stages: Vec<String> = trace["stages"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|s| format!("{}:{}", text(&s["stage"]), text(&s["status"])))
                        .collect()
                })
                .unwrap_or_default();
            let all = trace["stages"].as_array().cloned().unwrap_or_default();
            json!({
                "messageId": trace["messageId"],
                "event": describe_event(&trace["event"]),
                "stages": stages.join(" "),
                "reason": reasons(&all),
            })
        })
        .collect();
    print_rows(
        &rows,
        &[
            ("message id", "/messageId"),
            ("event", "/event"),
            ("stages", "/stages"),
            ("reason", "/reason"),
        ],
        false,
    );
    Ok(())
}

fn tail(client: &Client, source: &str, json: bool) -> anyhow::Result<()> {
    let mut reader = SseReader::default();
    let mut out = std::io::stdout().lock();
    client.stream(
        &format!("/sources/{source}/events/live"),
        // On stderr, so that stdout holds nothing but updates (and scripts can wait for it).
        || eprintln!("watching source {source}; Ctrl-C to stop"),
        |bytes| {
            for event in reader.push(bytes) {
                let line = match event.name.as_str() {
                    "stage" if json => event.data,
                    "stage" => match serde_json::from_str::<Value>(&event.data) {
                        Ok(update) => readable(&update),
                        Err(_) => event.data,
                    },
                    "lagged" => {
                        eprintln!("(missed {} updates: this terminal fell behind)", event.data);
                        continue;
                    }
                    _ => continue,
                };
                // The reader went away (`sluice events tail ... | head`): stop quietly.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    eprintln!("the server closed the stream");
    Ok(())
}

/// One update as a line: time, event, stage, status and what matters for that stage.
fn readable(update: &Value) -> String {
    let stage = &update["stage"];
    let at = text(&stage["at"]);
    // `2026-01-02T10:11:12.345678Z` -> `10:11:12.345`.
    let time: String = at
        .split('T')
        .nth(1)
        .unwrap_or(&at)
        .chars()
        .take(12)
        .collect();
    let what = match text(&stage["stage"]).as_str() {
        "ingest" => describe_event(&update["event"]),
        _ => stage_detail(stage),
    };
    format!(
        "{time:<12}  {}  {:<20}  {:<10}  {what}",
        text(&update["messageId"]),
        text(&stage["stage"]),
        text(&stage["status"]),
    )
    .trim_end()
    .to_string()
}

/// What matters of one stage past ingestion: violations, the route, a delivery's attempt and
/// error, a function's result or error.
fn stage_detail(stage: &Value) -> String {
    let detail = &stage["detail"];
    let destination = |d: &Value| text(&d["destinationId"]);
    match text(&stage["stage"]).as_str() {
        "ingest" => String::new(),
        "enforce" => match detail["violations"].as_array().map(Vec::len) {
            Some(n) if n > 0 => format!(
                "{n} violation(s): {}",
                text(&detail["violations"][0]["message"])
            ),
            _ => String::new(),
        },
        "route" => format!("-> {}", destination(detail)),
        "deliver" => {
            let error = match &detail["detail"] {
                Value::Null => String::new(),
                other => format!(": {}", text(other)),
            };
            format!(
                "-> {} (attempt {}){error}",
                destination(detail),
                text(&detail["attempt"])
            )
        }
        _ => match &detail["result"] {
            Value::Null => String::new(),
            Value::Object(r) if r.contains_key("kind") => {
                format!("{}: {}", text(&r["kind"]), text(&r["message"]))
            }
            other => text(other),
        },
    }
}

/// Why an event did not simply go through: the detail of each stage that did not succeed
/// (`function:error` says where; this says what the function said).
fn reasons(stages: &[Value]) -> String {
    stages
        .iter()
        .filter(|s| {
            !matches!(
                s["status"].as_str(),
                Some("accepted" | "validated" | "forward" | "fan-out" | "routed" | "delivered")
            )
        })
        .map(|s| (text(&s["stage"]), stage_detail(s)))
        .filter(|(_, detail)| !detail.is_empty() && detail != "-")
        .map(|(stage, detail)| format!("{stage}: {detail}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `track "Order Completed" user u-42`, `identify user u-42`, `page "Home" anonymous a-1`.
fn describe_event(event: &Value) -> String {
    let kind = text(&event["type"]);
    let name = ["event", "name"]
        .iter()
        .find_map(|f| event[*f].as_str())
        .map(|n| format!(" {n:?}"))
        .unwrap_or_default();
    let who = match (event["userId"].as_str(), event["anonymousId"].as_str()) {
        (Some(user), _) => format!(" user {user}"),
        (None, Some(anonymous)) => format!(" anonymous {anonymous}"),
        _ => String::new(),
    };
    format!("{kind}{name}{who}")
}

/// A JSON value as text: strings bare, `-` for nothing, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_read_as_one_line_each() {
        let ingest = json!({"sourceId": "s", "messageId": "m1",
            "event": {"type": "track", "event": "Order Completed", "userId": "u-42"},
            "stage": {"stage": "ingest", "status": "accepted", "detail": null, "at": "2026-01-02T10:11:12.345678Z"}});
        assert_eq!(
            readable(&ingest),
            "10:11:12.345  m1  ingest                accepted    track \"Order Completed\" user u-42"
        );
        let deliver = json!({"sourceId": "s", "messageId": "m1",
            "stage": {"stage": "deliver", "status": "retrying", "at": "2026-01-02T10:11:13Z",
                "detail": {"destinationId": "d1", "attempt": 2, "detail": "503 Service Unavailable"}}});
        assert!(
            readable(&deliver).ends_with("retrying    -> d1 (attempt 2): 503 Service Unavailable"),
            "{}",
            readable(&deliver)
        );
        let function = json!({"messageId": "m2", "stage": {"stage": "function", "status": "error", "at": "x",
            "detail": {"result": {"kind": "validation-error", "message": "no userId"}}}});
        assert!(
            readable(&function).ends_with("validation-error: no userId"),
            "{}",
            readable(&function)
        );
    }
}
