//! `sluice functions logs <id> [--follow]`: what a function logged while processing real
//! events (`GET /functions/{id}/logs`), printed once or followed by polling every second.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::client::Client;

/// How often `--follow` asks for new lines.
const POLL: Duration = Duration::from_secs(1);

/// Prints the function's log lines (one JSON object per line with `json`); with `follow`,
/// keeps printing new lines until interrupted.
pub(super) fn logs(client: &Client, id: &str, follow: bool, json: bool) -> anyhow::Result<()> {
    let path = format!("/functions/{id}/logs");
    let mut seen = fetch(client, &path)?;
    print(&seen, json)?;
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(POLL);
        let now = fetch(client, &path)?;
        print(fresh(&seen, &now), json)?;
        seen = now;
    }
}

fn fetch(client: &Client, path: &str) -> anyhow::Result<Vec<Value>> {
    let data = client.get(path)?;
    Ok(data
        .get("logs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The lines of `now` that `before` did not have. The server keeps a bounded list per
/// function, appending at the end and dropping from the front, and its lines have no ids; so
/// `now` is a suffix of `before` followed by new lines, and the new lines start after the
/// longest suffix of `before` that `now` begins with. Nothing in common (a restart, or more
/// new lines than the bound in one poll): everything is new.
fn fresh<'a>(before: &[Value], now: &'a [Value]) -> &'a [Value] {
    for dropped in 0..before.len() {
        let kept = &before[dropped..];
        if now.len() >= kept.len() && now[..kept.len()] == *kept {
            return &now[kept.len()..];
        }
    }
    now
}

fn print(lines: &[Value], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        if json {
            writeln!(out, "{line}")?;
        } else {
            let field = |name: &str| line.get(name).and_then(Value::as_str).unwrap_or("-");
            writeln!(
                out,
                "{}  {:<5}  {}  (event {}, instance {})",
                field("at"),
                field("level"),
                field("message"),
                field("messageId"),
                field("instanceId"),
            )?;
        }
    }
    out.flush().context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(names: &[&str]) -> Vec<Value> {
        names.iter().map(|n| json!({"message": n})).collect()
    }

    #[test]
    fn only_lines_not_seen_before_are_new() {
        let a = lines(&["1", "2", "3"]);
        assert_eq!(
            fresh(&a, &lines(&["1", "2", "3", "4"])),
            lines(&["4"]).as_slice()
        );
        // The bound dropped the oldest two while two arrived.
        assert_eq!(
            fresh(&a, &lines(&["3", "4", "5"])),
            lines(&["4", "5"]).as_slice()
        );
        assert!(fresh(&a, &a).is_empty());
        // A restarted server: nothing in common.
        assert_eq!(fresh(&a, &lines(&["x"])), lines(&["x"]).as_slice());
        // Repeated identical lines are not mistaken for old ones.
        let same = lines(&["r", "r"]);
        assert_eq!(
            fresh(&same, &lines(&["r", "r", "r"])),
            lines(&["r"]).as_slice()
        );
        assert_eq!(fresh(&[], &a), a.as_slice());
    }
}
