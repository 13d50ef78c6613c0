//! `sluice send --write-key <key> <file.jsonl>`: bulk ingestion through the tracking API,
//! the way Segment's libraries send: `POST /v1/batch` with the write key as the HTTP Basic
//! user, batches within Segment's limits, 429s waited out (`Retry-After`), a `messageId` given
//! to events without one so that a resent batch is deduplicated, events the server refuses
//! reported by line and the rest sent on.

use std::io::{BufRead, BufReader, IsTerminal as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::client::{base_url, envelope, server_error};
use crate::dataplane::ingest::DUPLICATES_HEADER;
use crate::dataplane::ingest::normalize::{MAX_BATCH_EVENTS, MAX_REQUEST_BYTES};

/// Arguments of `sluice send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Events, one JSON object per line (`-` for stdin), each with its `type`.
    pub file: PathBuf,
    /// The source's write key (`sluice sources get <id>` shows it).
    #[arg(long, env = "SLUICE_WRITE_KEY", hide_env_values = true)]
    pub write_key: String,
    /// The tracking API's base URL (the server's `ingest_listen` address, if it has one).
    #[arg(long, env = "SLUICE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Give every event a new `messageId`, so that events sent before (within the server's
    /// deduplication window, 24 h by default) are ingested again instead of dropped as
    /// duplicates.
    #[arg(long)]
    pub new_ids: bool,
}

/// `{"batch":[]}`: what a request adds around its events.
const ENVELOPE: usize = 12;
/// Attempts of one request that met a server error (5xx) or a broken connection.
const ATTEMPTS: u32 = 5;
/// The longest `Retry-After` honoured as given.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// An event read from the file.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    /// 1-based line number in the file.
    number: usize,
    /// The event as sent (JSON text).
    text: String,
}

/// An event that was not ingested, and why.
#[derive(Debug, Clone, serde::Serialize)]
struct Refused {
    line: usize,
    message: String,
}

/// Events grouped into requests under the limits: at most [`MAX_BATCH_EVENTS`] events and
/// [`MAX_REQUEST_BYTES`] bytes of body each.
#[derive(Debug, Default)]
struct Batch {
    lines: Vec<Line>,
    bytes: usize,
}

impl Batch {
    /// Whether `line` can join without passing a limit.
    fn fits(&self, line: &Line) -> bool {
        let commas = self.lines.len();
        self.lines.len() < MAX_BATCH_EVENTS
            && ENVELOPE + self.bytes + commas + line.text.len() <= MAX_REQUEST_BYTES
    }

    fn push(&mut self, line: Line) {
        self.bytes += line.text.len();
        self.lines.push(line);
    }

    fn remove(&mut self, index: usize) -> Line {
        let line = self.lines.remove(index);
        self.bytes -= line.text.len();
        line
    }

    fn body(&self) -> String {
        let events: Vec<&str> = self.lines.iter().map(|l| l.text.as_str()).collect();
        format!("{{\"batch\":[{}]}}", events.join(","))
    }
}

/// What happened, for the summary.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    sent: usize,
    /// Events the server already had (same `messageId` within its deduplication window),
    /// dropped rather than ingested again; counted from its `X-Sluice-Duplicates` header.
    duplicates: usize,
    requests: usize,
    waited_for_429: usize,
    refused: Vec<Refused>,
}

pub(super) fn send(args: SendArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::new(file)), size)
    };
    let progress = progress_bar(size);
    let sender = Sender::new(&args)?;
    let mut summary = Summary::default();
    let sent = send_lines(input, &args, &sender, &mut summary, &progress);
    // Cleared however it ended, so an error is not printed over a half-drawn bar.
    progress.finish_and_clear();
    sent?;
    report(&summary, started.elapsed(), args.json);
    if !summary.refused.is_empty() {
        bail!("{} event(s) were not sent", summary.refused.len());
    }
    Ok(())
}

/// Reads `input`, batches its events and sends them; what happened goes in `summary`.
fn send_lines(
    input: Box<dyn BufRead>,
    args: &SendArgs,
    sender: &Sender,
    summary: &mut Summary,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut batch = Batch::default();
    for (index, line) in input.lines().enumerate() {
        let raw = line.with_context(|| format!("cannot read {}", args.file.display()))?;
        progress.inc(raw.len() as u64 + 1);
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line = match prepare(&raw, args.new_ids) {
            Ok(text) => Line { number, text },
            Err(message) => {
                summary.refused.push(Refused {
                    line: number,
                    message,
                });
                continue;
            }
        };
        if !Batch::default().fits(&line) {
            summary.refused.push(Refused {
                line: number,
                message: format!(
                    "the event alone is over the request limit of {MAX_REQUEST_BYTES} bytes"
                ),
            });
            continue;
        }
        if !batch.fits(&line) {
            sender.send(std::mem::take(&mut batch), summary, progress)?;
        }
        batch.push(line);
    }
    sender.send(batch, summary, progress)
}

/// The line as the event to send: a JSON object, given a `messageId` if it has none (or a
/// new one in any case with `new_ids`).
fn prepare(raw: &str, new_ids: bool) -> Result<String, String> {
    let mut event: Value =
        serde_json::from_str(raw).map_err(|e| format!("not a JSON object: {e}"))?;
    let Some(object) = event.as_object_mut() else {
        return Err("not a JSON object".into());
    };
    // Segment's libraries do the same: a resent request (after a timeout, say) is then
    // recognised by the server's deduplication instead of ingested twice.
    if new_ids || !object.contains_key("messageId") {
        object.insert(
            "messageId".into(),
            Value::String(uuid::Uuid::now_v7().to_string()),
        );
    }
    Ok(event.to_string())
}

fn progress_bar(size: Option<u64>) -> ProgressBar {
    // Drawn for a person only: a redirected stderr (CI, a log file) gets no bar.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    }
}

fn report(summary: &Summary, elapsed: Duration, json: bool) {
    if json {
        println!("{}", json!(summary));
        return;
    }
    for refused in &summary.refused {
        eprintln!("line {}: {}", refused.line, refused.message);
    }
    println!(
        "sent {} events in {} requests in {:.1?}; {} new, {} duplicates, {} refused{}",
        summary.sent,
        summary.requests,
        elapsed,
        summary.sent - summary.duplicates,
        summary.duplicates,
        summary.refused.len(),
        match summary.waited_for_429 {
            0 => String::new(),
            n => format!("; waited {n} times for a busy source (429)"),
        }
    );
    if summary.duplicates > 0 {
        eprintln!(
            "note: {} events were dropped as duplicates: the source already received their \
             messageId (within its deduplication window); send with --new-ids to ingest them \
             again",
            summary.duplicates
        );
    }
}

/// Posts batches to `/v1/batch`.
struct Sender {
    url: String,
    write_key: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// How the server answered one request.
enum Answer {
    /// 200, with how many of the events were duplicates.
    Accepted(usize),
    /// 429: wait this long and send it again.
    Busy(Duration),
    /// 400 naming one event of the batch.
    RefusedEvent(usize, String),
    /// 400 for the request as a whole.
    RefusedBatch(String),
    /// 5xx or a broken connection: worth another attempt.
    Failed(String),
}

impl Sender {
    fn new(args: &SendArgs) -> anyhow::Result<Sender> {
        Ok(Sender {
            url: format!("{}/v1/batch", base_url(&args.url)?),
            write_key: args.write_key.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .context("cannot build the HTTP client")?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?,
        })
    }

    /// Sends `batch` until it is accepted, leaving out the events the server refuses.
    fn send(
        &self,
        mut batch: Batch,
        summary: &mut Summary,
        progress: &ProgressBar,
    ) -> anyhow::Result<()> {
        let mut failures = 0;
        while !batch.lines.is_empty() {
            summary.requests += 1;
            match self.post(batch.body())? {
                Answer::Accepted(duplicates) => {
                    summary.sent += batch.lines.len();
                    summary.duplicates += duplicates;
                    progress.set_message(format!("{} sent", summary.sent));
                    return Ok(());
                }
                Answer::Busy(wait) => {
                    summary.waited_for_429 += 1;
                    progress.set_message(format!("source busy, waiting {wait:?}"));
                    std::thread::sleep(wait);
                }
                Answer::RefusedEvent(index, message) if index < batch.lines.len() => {
                    let line = batch.remove(index);
                    summary.refused.push(Refused {
                        line: line.number,
                        message,
                    });
                }
                Answer::RefusedEvent(_, message) | Answer::RefusedBatch(message) => {
                    for line in batch.lines.drain(..) {
                        summary.refused.push(Refused {
                            line: line.number,
                            message: message.clone(),
                        });
                    }
                }
                Answer::Failed(error) => {
                    failures += 1;
                    if failures >= ATTEMPTS {
                        bail!(
                            "{error} (after {ATTEMPTS} attempts; {} events were sent before, \
                             up to line {})",
                            summary.sent,
                            batch
                                .lines
                                .first()
                                .map_or(0, |l| l.number.saturating_sub(1))
                        );
                    }
                    std::thread::sleep(Duration::from_millis(500 << failures));
                }
            }
        }
        Ok(())
    }

    fn post(&self, body: String) -> anyhow::Result<Answer> {
        let request = self
            .http
            .post(&self.url)
            .basic_auth(&self.write_key, Some(""))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let result = self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let duplicates = response
                .headers()
                .get(DUPLICATES_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, duplicates, bytes))
        });
        let (status, retry_after, duplicates, bytes) = match result {
            Ok(answer) => answer,
            Err(e) if e.is_connect() => {
                return Ok(Answer::Failed(format!(
                    "cannot reach sluice at {}: is `sluice serve` running there?",
                    self.url
                )));
            }
            Err(e) => return Ok(Answer::Failed(format!("POST {}: {e}", self.url))),
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(match status.as_u16() {
            200..=299 => Answer::Accepted(duplicates),
            429 => Answer::Busy(Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_WAIT)),
            400 | 413 => {
                let message = body["errors"][0]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_string();
                // `batch[<i>]` names the event at fault; the others are fine.
                let index = body["errors"][0]["field"]
                    .as_str()
                    .and_then(|f| f.strip_prefix("batch["))
                    .and_then(|f| f.strip_suffix(']'))
                    .and_then(|i| i.parse::<usize>().ok());
                match index {
                    Some(i) => {
                        // The server's message starts with the field; the report names the line.
                        let message = message
                            .strip_prefix(&format!("batch[{i}]: "))
                            .unwrap_or(&message)
                            .to_string();
                        Answer::RefusedEvent(i, message)
                    }
                    None => Answer::RefusedBatch(message),
                }
            }
            500..=599 => Answer::Failed(server_error(status.as_u16(), &body)),
            401 => bail!(
                "{} (pass the source's write key with --write-key or SLUICE_WRITE_KEY; \
                 `sluice sources get <source>` shows it)",
                envelope(401, &body)
            ),
            // A wrong write key or a disabled source: nothing else will get through either.
            _ => return Err(anyhow!("{}", server_error(status.as_u16(), &body))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(lines: Vec<Line>) -> Vec<Batch> {
        let mut out = vec![Batch::default()];
        for line in lines {
            if !out.last().is_some_and(|b| b.fits(&line)) {
                out.push(Batch::default());
            }
            if let Some(last) = out.last_mut() {
                last.push(line);
            }
        }
        out
    }

    #[test]
    fn batches_stay_within_segments_limits_and_keep_order() {
        // Many small events: the count limit decides.
        let small: Vec<Line> = (0..6000)
            .map(|i| Line {
                number: i,
                text: format!("{{\"type\":\"track\",\"n\":{i}}}"),
            })
            .collect();
        let made = batches(small.clone());
        assert_eq!(
            made.iter().map(|b| b.lines.len()).collect::<Vec<_>>(),
            vec![2500, 2500, 1000]
        );
        let flat: Vec<Line> = made.into_iter().flat_map(|b| b.lines).collect();
        assert_eq!(flat, small);

        // Big events: the size limit decides, and a full body is exactly what was counted.
        let big: Vec<Line> = (0..100)
            .map(|i| Line {
                number: i,
                text: format!("\"{}\"", "x".repeat(20_000 + i)),
            })
            .collect();
        let made = batches(big);
        assert!(made.len() > 1);
        for batch in &made {
            assert!(
                batch.body().len() <= MAX_REQUEST_BYTES,
                "{}",
                batch.body().len()
            );
        }
        let first = &made[0];
        let next = &made[1].lines[0];
        assert!(
            first.body().len() + 1 + next.text.len() > MAX_REQUEST_BYTES,
            "batches are full"
        );
    }

    #[test]
    fn events_get_a_message_id_unless_they_have_one() {
        let given = prepare(r#"{"type":"track","messageId":"m-1"}"#, false).unwrap();
        assert!(given.contains(r#""messageId":"m-1""#));
        let renewed = prepare(r#"{"type":"track","messageId":"m-1"}"#, true).unwrap();
        assert!(!renewed.contains(r#""messageId":"m-1""#), "{renewed}");
        let made: Value =
            serde_json::from_str(&prepare(r#"{"type":"track"}"#, false).unwrap()).unwrap();
        assert!(made["messageId"].as_str().is_some_and(|id| id.len() == 36));
        assert!(prepare("[1]", false).is_err());
        assert!(
            prepare("{", false)
                .unwrap_err()
                .starts_with("not a JSON object")
        );
    }
}
