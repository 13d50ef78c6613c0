//! `sluice run`: a local runner for function authors, the same engine and limits as the server,
//! for components (`.wasm`) and JavaScript (`.js`); `--expect` turns a run into a test.
//! Insert functions run here; destination and source functions (`--kind`) in `run_net`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::RunArgs;
use super::expect;
use crate::engine::{
    Engine, EngineConfig, Function, Invocation, InvokeError, Isolation, JsCodeError, JsEngine,
    Limits, Outcome, digest_hex,
};

pub(super) fn run(args: RunArgs) -> anyhow::Result<()> {
    match run_events(args) {
        // The reader went away (`sluice run ... | head`): not an error.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn run_events(args: RunArgs) -> anyhow::Result<()> {
    if args.kind != "insert" {
        return super::run_net::run(args);
    }
    if !args.allow_host.is_empty() || args.receiver {
        bail!(
            "--allow-host and --receiver are for destination and source functions (--kind destination|source): insert functions never reach the network"
        );
    }
    let settings: serde_json::Value =
        serde_json::from_str(&args.settings).context("--settings is not valid JSON")?;
    if !settings.is_object() {
        bail!("--settings must be a JSON object, like '{{\"hashUserId\": true}}'");
    }
    let settings = settings.to_string();
    let function = load(&args.function)?;

    let limits = limits(&args, Limits::default());
    let isolation = if args.fresh {
        Isolation::Fresh
    } else {
        Isolation::default()
    };

    let input = input(&args)?;
    let run = Run {
        function: &function,
        settings: &settings,
        limits: &limits,
        isolation,
        batch: args.batch,
        quiet: args.quiet,
    };
    match &args.expect {
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            run.events(input, &mut out)?;
            out.flush()?;
        }
        Some(expected) => {
            let mut out = Vec::new();
            run.events(input, &mut out)?;
            expect::check(&out, expected)?;
        }
    }
    Ok(())
}

/// `limits` with what `--fuel`, `--deadline-ms` and `--memory-mib` change.
pub(super) fn limits(args: &RunArgs, mut limits: Limits) -> Limits {
    if let Some(fuel) = args.fuel {
        limits.fuel = fuel;
    }
    if let Some(ms) = args.deadline_ms {
        limits.deadline = Duration::from_millis(ms);
    }
    if let Some(mib) = args.memory_mib {
        limits.memory_bytes = mib << 20;
    }
    limits
}

/// The events file of `args` (or stdin for `-`), line by line.
pub(super) fn input(args: &RunArgs) -> anyhow::Result<Box<dyn BufRead>> {
    let Some(events) = args.events_file.as_ref().or(args.events.as_ref()) else {
        bail!("no events: give a file of events (`sluice run <function> events.jsonl`)");
    };
    if events.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file = std::fs::File::open(events)
        .with_context(|| format!("cannot open events file {}", events.display()))?;
    Ok(Box::new(BufReader::new(file)))
}

/// Whether `path` names JavaScript code rather than a component.
pub(super) fn is_javascript(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("js" | "mjs")
    )
}

/// A function and how to run it.
struct Run<'a> {
    function: &'a Function,
    settings: &'a str,
    limits: &'a Limits,
    isolation: Isolation,
    batch: usize,
    quiet: bool,
}

impl Run<'_> {
    /// Runs every event of `input`, writes what comes out to `out`, and the summary to stderr.
    fn events(&self, input: Box<dyn BufRead>, out: &mut impl Write) -> anyhow::Result<()> {
        let mut summary = Summary::default();
        let mut batch: Vec<(usize, String)> = Vec::new();
        for (index, line) in input.lines().enumerate() {
            let line = line.context("cannot read the events file")?;
            if line.trim().is_empty() {
                continue;
            }
            batch.push((index + 1, line));
            if batch.len() >= self.batch.max(1) {
                self.flush(&mut batch, &mut summary, out)?;
            }
        }
        self.flush(&mut batch, &mut summary, out)?;
        summary.print();
        Ok(())
    }
}

/// The function to run: JavaScript code (`.js`, `.mjs`) on the built-in JavaScript engine, or
/// a component (a path, or an example's name).
fn load(name: &str) -> anyhow::Result<Function> {
    let engine = Engine::new(&EngineConfig::default())?;
    let started = Instant::now();
    let path = Path::new(name);
    if is_javascript(path) {
        let code = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let wasm = JsEngine::builtin_wasm().ok_or(JsCodeError::Unavailable)?;
        let component = super::cache::component(&engine, wasm)?;
        let js = JsEngine::from_component(Arc::clone(&engine), digest_hex(wasm), &component)?;
        let function = js
            .function(&code)
            .with_context(|| format!("{} was refused", path.display()))?;
        eprintln!("loaded {} in {:?}", path.display(), started.elapsed());
        return Ok(function);
    }
    let path = resolve_component(name)?;
    let wasm = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let refused = || format!("{} was refused", path.display());
    let component_header = wasm.len() >= 8 && wasm.starts_with(b"\0asm") && wasm[6..8] != [0, 0];
    if !component_header {
        // The full upload checks name what it is instead (a core module, not WebAssembly).
        engine.compile(&wasm).with_context(refused)?;
    }
    let component = super::cache::component(&engine, &wasm).with_context(refused)?;
    let pre = engine.link(&component).with_context(refused)?;
    eprintln!("compiled {} in {:?}", path.display(), started.elapsed());
    Ok(Function::new(Arc::clone(&engine), digest_hex(&wasm), pre))
}

impl Run<'_> {
    /// Runs the events of `batch` (emptying it), records them in `summary` and writes what
    /// comes out to `out`.
    fn flush(
        &self,
        batch: &mut Vec<(usize, String)>,
        summary: &mut Summary,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let (function, settings, limits, isolation, quiet) = (
            self.function,
            self.settings,
            self.limits,
            self.isolation,
            self.quiet,
        );
        if batch.is_empty() {
            return Ok(());
        }
        let results: Vec<Invocation> = if batch.len() == 1 {
            vec![function.invoke(&batch[0].1, settings, limits, isolation)]
        } else {
            let events: Vec<String> = batch.iter().map(|(_, e)| e.clone()).collect();
            let run = function.invoke_batch(&events, settings, limits, isolation);
            let share = run.duration / events.len() as u32;
            let fuel = run.fuel_used / events.len() as u64;
            for log in &run.logs {
                eprintln!("[{}] {}", log.level, log.message);
            }
            run.results
                .into_iter()
                .map(|result| Invocation {
                    result,
                    fuel_used: fuel,
                    duration: share,
                    logs: Vec::new(),
                })
                .collect()
        };
        for ((line, _), invocation) in batch.drain(..).zip(results) {
            summary.record(&invocation);
            for log in &invocation.logs {
                eprintln!("line {line}: [{}] {}", log.level, log.message);
            }
            if quiet {
                continue;
            }
            match &invocation.result {
                Ok(Outcome::Forward { event }) => writeln!(out, "{event}")?,
                Ok(Outcome::FanOut { events }) => {
                    for event in events {
                        writeln!(out, "{event}")?;
                    }
                }
                Ok(Outcome::Drop) => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"sluice": {"line": line, "outcome": "drop"}})
                )?,
                Ok(Outcome::Error { kind, message }) => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"sluice": {"line": line, "outcome": "error", "kind": kind, "message": message}})
                )?,
                Err(err) => {
                    let backtrace = match err {
                        InvokeError::Trap { backtrace, .. } => backtrace.clone(),
                        _ => None,
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"sluice": {"line": line, "outcome": "failed", "error": err.code(),
                        "message": err.to_string(), "backtrace": backtrace}})
                    )?
                }
            }
        }
        Ok(())
    }
}

/// Finds a component: a path as given, or an example's build output in the target directory.
pub(super) fn resolve_component(name: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(name);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let file = format!("{}.wasm", name.replace('-', "_"));
    // The examples are built into the target directory this binary sits in
    // (`<target>/debug/sluice` next to `<target>/wasm32-wasip2/wasm/`), wherever it is run
    // from; then `$CARGO_TARGET_DIR`, then `./target`.
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf));
    let targets = beside_binary.into_iter().chain(
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from("target")]),
    );
    let candidates: Vec<PathBuf> = targets
        .map(|t| t.join("wasm32-wasip2").join("wasm").join(&file))
        .collect();
    if let Some(found) = candidates.iter().find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    bail!(
        "no component at `{name}`, and no example build at {}; build it with \
         `cargo build -p {name} --target wasm32-wasip2 --profile wasm` (or run scripts/build-components)",
        looked.join(" or ")
    )
}

/// Outcomes, time and fuel over a run, printed to stderr at its end.
#[derive(Default)]
pub(super) struct Summary {
    outcomes: BTreeMap<String, u64>,
    fuel: Vec<u64>,
    times: Vec<Duration>,
}

impl Summary {
    pub(super) fn record(&mut self, invocation: &Invocation) {
        let key = match &invocation.result {
            Ok(Outcome::Forward { .. }) => "forward".to_string(),
            Ok(Outcome::FanOut { .. }) => "fan-out".to_string(),
            Ok(Outcome::Drop) => "drop".to_string(),
            Ok(Outcome::Error { kind, .. }) => format!("error:{kind}"),
            Err(err) => format!("failed:{}", InvokeError::code(err)),
        };
        self.record_as(key, invocation);
    }

    /// Records `invocation` under the outcome `key` (a destination's are `delivered`, ...).
    pub(super) fn record_as(&mut self, key: String, invocation: &Invocation) {
        *self.outcomes.entry(key).or_default() += 1;
        self.fuel.push(invocation.fuel_used);
        self.times.push(invocation.duration);
    }

    pub(super) fn print(&mut self) {
        let n = self.times.len();
        eprintln!("{n} events");
        for (outcome, count) in &self.outcomes {
            eprintln!("  {outcome:<28} {count}");
        }
        if n == 0 {
            return;
        }
        self.times.sort();
        self.fuel.sort();
        let total: Duration = self.times.iter().sum();
        eprintln!(
            "time/event: mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
            total / n as u32,
            self.times[n / 2],
            self.times[(n * 99 / 100).min(n - 1)],
            self.times[n - 1]
        );
        eprintln!(
            "fuel/event: mean {}, p50 {}, max {}",
            self.fuel.iter().sum::<u64>() / n as u64,
            self.fuel[n / 2],
            self.fuel[n - 1]
        );
    }
}
