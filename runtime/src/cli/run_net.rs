//! `sluice run --kind destination|source`: destination and source functions on the network
//! engine, with the server's limits, on a tokio runtime of the command's own. `--allow-host`
//! entries join the settings' `allowedHosts`; `--receiver` adds a local HTTP receiver
//! (`receiver`) to send to. A destination's output is one line per event saying whether it
//! was delivered; a source's is the events each webhook body made.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::RunArgs;
use super::expect;
use super::receiver::Receiver;
use super::run::{Summary, input, is_javascript, limits, resolve_component};
use crate::dataplane::net_functions::invocation_limits;
use crate::engine::net::{HttpLimits, NetCode, NetEngine, NetFunction};
use crate::engine::{
    EngineConfig, FunctionKind, Invocation, InvokeError, JsCodeError, JsEngine, Limits, Outcome,
    Script,
};

/// The URL a local webhook request claims to have been sent to.
const WEBHOOK_URL: &str = "http://localhost/v1/functions/local";

/// Runs `args` (a destination or source function) over its input.
///
/// # Errors
/// Bad settings or input, code that cannot load, or output that differs from `--expect`.
pub(super) fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.batch > 1 || args.fresh {
        bail!(
            "--batch and --fresh are for insert functions; a {} function runs one event at a time on warm instances",
            args.kind
        );
    }
    // Two workers: one for the function's fibers, one for the receiver it may be waiting on.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    let kind = match args.kind.as_str() {
        "source" => FunctionKind::Source,
        _ => FunctionKind::Destination,
    };
    let receiver = match args.receiver {
        true => Some(Receiver::start().await?),
        false => None,
    };
    let settings = settings(&args.settings, &args.allow_host, receiver.as_ref())?;
    let code = load(&args.function, kind)?;
    let function = code
        .function(&settings, HttpLimits::default())
        .context("--settings or --allow-host")?;
    let run = NetRun {
        function: &function,
        kind,
        limits: limits(&args, invocation_limits()),
        receiver: receiver.as_ref(),
        quiet: args.quiet,
        path: &args.function,
    };
    let input = input(&args)?;
    match &args.expect {
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            run.lines(input, &mut out).await?;
            out.flush()?;
        }
        Some(expected) => {
            let mut out = Vec::new();
            run.lines(input, &mut out).await?;
            expect::check(&out, expected)?;
        }
    }
    Ok(())
}

/// The settings a run uses: `--settings` with `{{receiver}}` replaced by the receiver's URL,
/// and `--allow-host` entries (and the receiver) added to its `allowedHosts`.
fn settings(text: &str, allow: &[String], receiver: Option<&Receiver>) -> anyhow::Result<String> {
    let text = match receiver {
        Some(receiver) => text.replace("{{receiver}}", &receiver.url()),
        None => text.to_string(),
    };
    let mut value: Value = serde_json::from_str(&text).context("--settings is not valid JSON")?;
    let Some(object) = value.as_object_mut() else {
        bail!("--settings must be a JSON object, like '{{\"url\": \"https://api.example.com\"}}'");
    };
    let hosts = object.entry("allowedHosts").or_insert_with(|| json!([]));
    let Some(hosts) = hosts.as_array_mut() else {
        bail!("--settings: `allowedHosts` must be a list of `host` or `host:port` strings");
    };
    hosts.extend(allow.iter().map(|host| json!(host)));
    if let Some(receiver) = receiver {
        hosts.push(json!(receiver.host()));
    }
    Ok(value.to_string())
}

/// The code to run: JavaScript (`.js`, `.mjs`) on the engine built into this binary, or a
/// component (a path, or an example's name) compiled for the network engine.
fn load(name: &str, kind: FunctionKind) -> anyhow::Result<NetCode> {
    let started = Instant::now();
    let engine = NetEngine::new(&EngineConfig::default())?;
    let path = Path::new(name);
    if is_javascript(path) {
        let code = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let wasm = JsEngine::builtin_wasm().ok_or(JsCodeError::Unavailable)?;
        let javascript = engine.javascript(wasm)?;
        let code = javascript.code(Script::new(&code, Arc::from([]), kind))?;
        eprintln!("loaded {} in {:?}", path.display(), started.elapsed());
        return Ok(code);
    }
    let path = resolve_component(name)?;
    let wasm = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let code = engine
        .compile(&wasm)
        .with_context(|| format!("{} was refused", path.display()))?;
    eprintln!("compiled {} in {:?}", path.display(), started.elapsed());
    Ok(code)
}

/// A destination or source function and how to run it.
struct NetRun<'a> {
    function: &'a NetFunction,
    kind: FunctionKind,
    limits: Limits,
    receiver: Option<&'a Receiver>,
    quiet: bool,
    /// The code's path, to name it when it does not compile.
    path: &'a str,
}

impl NetRun<'_> {
    /// Runs each line of `input` in turn, writes what came of it to `out`, and the summary
    /// and the function's logs to stderr.
    async fn lines(&self, input: Box<dyn BufRead>, out: &mut impl Write) -> anyhow::Result<()> {
        let mut summary = Summary::default();
        for (index, line) in input.lines().enumerate() {
            let line = line.context("cannot read the events file")?;
            if line.trim().is_empty() {
                continue;
            }
            let number = index + 1;
            let text = match self.kind {
                FunctionKind::Source => webhook_request(&line, number)?,
                _ => line,
            };
            let invocation = self.function.invoke(&text, &self.limits).await;
            self.refuse_broken_code(&invocation)?;
            match self.kind {
                FunctionKind::Source => summary.record(&invocation),
                _ => summary.record_as(delivery(&invocation), &invocation),
            }
            for log in &invocation.logs {
                eprintln!("line {number}: [{}] {}", log.level, log.message);
            }
            let requests = self.receiver.map(Receiver::take);
            if self.quiet {
                continue;
            }
            let lines = match self.kind {
                FunctionKind::Source => source_lines(number, &invocation),
                _ => vec![destination_line(number, &invocation, requests)],
            };
            for line in lines {
                writeln!(out, "{line}")?;
            }
        }
        summary.print();
        Ok(())
    }

    /// Code that does not compile fails every event alike: stop at the first with the reason.
    fn refuse_broken_code(&self, invocation: &Invocation) -> anyhow::Result<()> {
        match &invocation.result {
            Err(InvokeError::Contract(message)) if message.contains("does not compile") => {
                bail!("{} was refused: {message}", self.path)
            }
            _ => Ok(()),
        }
    }
}

/// A destination's outcome in the summary: `delivered`, `skipped:<kind>`, `error:<kind>`
/// or `failed:<sandbox code>`.
fn delivery(invocation: &Invocation) -> String {
    match &invocation.result {
        Ok(Outcome::Error { kind, .. })
            if matches!(*kind, "event-not-supported" | "drop-event") =>
        {
            format!("skipped:{kind}")
        }
        Ok(Outcome::Error { kind, .. }) => format!("error:{kind}"),
        Ok(_) => "delivered".to_string(),
        Err(err) => format!("failed:{}", err.code()),
    }
}

/// A webhook body (input line `number`, a JSON object) as the request a source function gets:
/// a JSON POST, its body the line as it is.
fn webhook_request(body: &str, number: usize) -> anyhow::Result<String> {
    let parsed: Value = serde_json::from_str(body)
        .with_context(|| format!("line {number} is not JSON (a webhook body, a JSON object)"))?;
    if !parsed.is_object() {
        bail!("line {number} is not a JSON object (a webhook body)");
    }
    Ok(json!({
        "method": "POST",
        "url": WEBHOOK_URL,
        "headers": {"content-type": "application/json"},
        "body": body,
    })
    .to_string())
}

/// What a destination made of one event, read as the pipeline reads it: delivered (an
/// unsupported event or `DropEvent` too, as in Segment), or the error and whether the
/// pipeline would retry it; with the requests the event caused, when there is a receiver.
fn destination_line(number: usize, invocation: &Invocation, requests: Option<Vec<Value>>) -> Value {
    let mut line = match &invocation.result {
        Ok(Outcome::Error { kind, message })
            if matches!(*kind, "event-not-supported" | "drop-event") =>
        {
            json!({"line": number, "delivered": true, "skipped": {"kind": kind, "message": message}})
        }
        Ok(Outcome::Error { kind, message }) => json!({
            "line": number, "delivered": false,
            "error": {"kind": kind, "message": message}, "retryable": *kind == "retry-error",
        }),
        Ok(_) => json!({"line": number, "delivered": true}),
        Err(err) => error_line(number, err),
    };
    if let Some(requests) = requests {
        line["requests"] = Value::Array(requests);
    }
    line
}

/// What a source made of one webhook request: the events it emitted, one line each, or its
/// error.
fn source_lines(number: usize, invocation: &Invocation) -> Vec<Value> {
    let parse = |text: &String| serde_json::from_str(text).unwrap_or_else(|_| json!(text));
    match &invocation.result {
        Ok(Outcome::FanOut { events }) => events.iter().map(parse).collect(),
        Ok(Outcome::Forward { event }) => vec![parse(event)],
        Ok(Outcome::Drop) => Vec::new(),
        Ok(Outcome::Error { kind, message }) => vec![json!({
            "line": number,
            "error": {"kind": kind, "message": message}, "retryable": *kind == "retry-error",
        })],
        Err(err) => vec![error_line(number, err)],
    }
}

/// The sandbox stopped the function (a trap, fuel, the deadline).
fn error_line(number: usize, err: &InvokeError) -> Value {
    json!({
        "line": number, "delivered": false,
        "error": {"kind": err.code(), "message": err.to_string()},
        "retryable": err.is_retryable(),
    })
}
