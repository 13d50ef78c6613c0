//! `sluice destinations failed-events <id>` and `sluice destinations replay <id> [--wait]`:
//! a destination's dead letters (`GET /destinations/{id}/failed-events`), and putting them
//! back on its delivery queue (`POST .../failed-events/replay`), optionally watching them
//! settle with a progress bar (and exiting non-zero when any failed again).

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::client::Client;
use super::table::print_rows;

/// How often `--wait` reads the delivery counts.
const POLL: Duration = Duration::from_millis(500);
/// The delivery-metrics window `--wait` reads: the longest, so nothing settled during the
/// wait falls out of it.
const WINDOW_MINUTES: u32 = 1440;

pub(super) fn failed_events(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let data = client.get(&format!("/destinations/{id}/failed-events"))?;
    let failed = data
        .get("failedEvents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    print_rows(
        &failed,
        &[
            ("id", "/id"),
            ("message id", "/event/messageId"),
            ("type", "/event/type"),
            ("attempts", "/attempts"),
            ("failed at", "/failedAt"),
            ("last error", "/lastError"),
        ],
        json,
    );
    Ok(())
}

pub(super) fn replay(client: &Client, id: &str, wait: bool, json: bool) -> anyhow::Result<()> {
    let before = counts(client, id)?;
    let data = client.post(
        &format!("/destinations/{id}/failed-events/replay"),
        &json!({}),
    )?;
    let replayed = data.get("replayed").and_then(Value::as_u64).unwrap_or(0);
    if !wait || replayed == 0 {
        if json {
            println!("{}", json!({"replayed": replayed}));
        } else {
            println!("replayed {replayed} failed events of destination {id}");
        }
        return Ok(());
    }
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(replayed).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} settled {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    // Settled = delivered or failed again since the replay; counts for the whole destination,
    // so live traffic to it during the wait counts too.
    let (delivered, failed) = loop {
        let now = counts(client, id)?;
        let delivered = now.0.saturating_sub(before.0);
        let failed = now.1.saturating_sub(before.1);
        progress.set_position((delivered + failed).min(replayed));
        progress.set_message(format!("({delivered} delivered, {failed} failed again)"));
        if delivered + failed >= replayed {
            break (delivered, failed);
        }
        std::thread::sleep(POLL);
    };
    progress.finish_and_clear();
    if json {
        println!(
            "{}",
            json!({"replayed": replayed, "delivered": delivered, "failed": failed})
        );
    } else {
        println!(
            "replayed {replayed} failed events of destination {id}: {delivered} delivered, {failed} failed again"
        );
    }
    if failed > 0 {
        bail!(
            "{failed} of {replayed} replayed events failed again; `sluice destinations \
             failed-events {id}` shows why"
        );
    }
    Ok(())
}

/// The destination's delivered and failed counts over the window.
fn counts(client: &Client, id: &str) -> anyhow::Result<(u64, u64)> {
    let data = client.get(&format!(
        "/destinations/{id}/delivery-metrics?minutes={WINDOW_MINUTES}"
    ))?;
    let count = |name: &str| {
        data.pointer(&format!("/counts/{name}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok((count("delivered"), count("failed")))
}
