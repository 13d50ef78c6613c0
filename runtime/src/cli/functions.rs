//! `sluice functions ...`: deploy a function from a `.wasm`, a `.js` or a Rust crate directory,
//! list functions, test one on a file of events, and show its logs (in `logs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs};
use super::resources::{Kind, cell_str, get, list};
use super::table::{print_object, print_rows};

const FUNCTIONS: Kind = Kind {
    path: "/functions",
    one: "function",
    many: "functions",
    columns: &[
        ("id", "/id"),
        ("name", "/displayName"),
        ("type", "/resourceType"),
        ("runtime", "/runtime"),
        ("version", "/versionId"),
        ("deployed", "/deployedVersionId"),
    ],
};

/// `sluice functions ...`.
#[derive(Debug, Subcommand)]
pub enum FunctionsCmd {
    /// List functions.
    List,
    /// Show one function.
    Get {
        /// Function id.
        id: String,
    },
    /// Upload a function and deploy it: a component (`.wasm`), JavaScript (`.js`), or a Rust
    /// function crate directory (built for wasm32-wasip2 first). A function with the same name
    /// gets a new version instead.
    Deploy {
        /// A `.wasm`, a `.js`, or a crate directory.
        path: PathBuf,
        /// Display name (default: the file or crate name).
        #[arg(long)]
        name: Option<String>,
        /// INSERT_SOURCE, INSERT_DESTINATION, SOURCE or DESTINATION.
        #[arg(long = "type", default_value = "INSERT_SOURCE")]
        kind: String,
        /// A declared setting, `name:TYPE` (STRING, BOOLEAN, ARRAY, TEXT_MAP); repeatable.
        #[arg(long = "setting", value_name = "NAME:TYPE")]
        settings: Vec<String>,
        /// Attach the function to this source (or, for INSERT_DESTINATION, destination) so that
        /// it runs on its events; nothing happens if it is attached there already.
        #[arg(long, value_name = "ID")]
        attach: Option<String>,
        /// The attached instance's settings, a JSON object (with --attach).
        #[arg(long, value_name = "JSON", default_value = "{}", requires = "attach")]
        instance_settings: String,
    },
    /// Show what a function logged while processing real events (oldest first; one JSON
    /// object per line with --json).
    Logs {
        /// Function id.
        id: String,
        /// Keep printing new lines as they come (polls every second) until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
    /// Run a function on sample events without touching any pipeline.
    Test {
        /// Function id.
        id: String,
        /// Events, one JSON object per line.
        #[arg(long)]
        events: PathBuf,
        /// Setting values, a JSON object.
        #[arg(long, default_value = "{}")]
        settings: String,
    },
}

pub(super) fn functions(cmd: FunctionsCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match cmd {
        FunctionsCmd::List => list(&client, &FUNCTIONS, "", args.json),
        FunctionsCmd::Get { id } => get(&client, &FUNCTIONS, &id, args.json),
        FunctionsCmd::Deploy {
            path,
            name,
            kind,
            settings,
            attach,
            instance_settings,
        } => {
            let deployed = deploy(&client, &path, name, &kind, &settings)?;
            if let Some(integration) = attach {
                attach_to(&client, &deployed, &integration, &instance_settings)?;
            }
            if args.json {
                print_object(&deployed, true);
            } else {
                print_rows(std::slice::from_ref(&deployed), FUNCTIONS.columns, false);
            }
            Ok(())
        }
        FunctionsCmd::Test {
            id,
            events,
            settings,
        } => test(&client, &id, &events, &settings, args.json),
        FunctionsCmd::Logs { id, follow } => super::logs::logs(&client, &id, follow, args.json),
    }
}

/// Uploads (or updates) and deploys the function at `path`; returns the deployed function.
fn deploy(
    client: &Client,
    path: &Path,
    name: Option<String>,
    kind: &str,
    settings: &[String],
) -> anyhow::Result<Value> {
    let (source, default_name) = load_source(path)?;
    let name = name.unwrap_or(default_name);
    let declared = settings
        .iter()
        .map(|s| {
            let (setting, kind) = s.split_once(':').unwrap_or((s, "STRING"));
            json!({"name": setting, "label": setting, "type": kind.to_uppercase()})
        })
        .collect::<Vec<_>>();
    let existing = client
        .list_all(FUNCTIONS.path, FUNCTIONS.many)?
        .into_iter()
        .find(|f| f.get("displayName").and_then(Value::as_str) == Some(name.as_str()));
    let mut body = json!({});
    match &source {
        Source::Wasm(bytes) => {
            body["wasm"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Source::JavaScript(code) => body["code"] = json!(code),
    }
    if !declared.is_empty() {
        body["settings"] = json!(declared);
    }
    let function = match existing {
        Some(function) => {
            let id = cell_str(&function, "id");
            client.patch(&format!("{}/{id}", FUNCTIONS.path), &body)?
        }
        None => {
            body["displayName"] = json!(name);
            body["resourceType"] = json!(kind);
            client.post(FUNCTIONS.path, &body)?
        }
    };
    let function = function
        .get(FUNCTIONS.one)
        .cloned()
        .context("the server's answer has no function")?;
    let id = cell_str(&function, "id");
    let data = client.post(&format!("{}/{id}/deploy", FUNCTIONS.path), &json!({}))?;
    Ok(data.get(FUNCTIONS.one).cloned().unwrap_or(data))
}

/// Attaches `function` to `integration` (a source or destination id) unless an instance of it
/// is attached there already.
fn attach_to(
    client: &Client,
    function: &Value,
    integration: &str,
    settings: &str,
) -> anyhow::Result<()> {
    let settings: Value =
        serde_json::from_str(settings).context("--instance-settings is not valid JSON")?;
    let id = cell_str(function, "id");
    let attached = client
        .list_all("/insert-function-instances", "insertFunctionInstances")?
        .into_iter()
        .any(|i| {
            i.get("functionId").and_then(Value::as_str) == Some(id.as_str())
                && i.get("integrationId").and_then(Value::as_str) == Some(integration)
        });
    if attached {
        eprintln!("already attached to {integration}");
        return Ok(());
    }
    client.post(
        "/insert-function-instances",
        &json!({"functionId": id, "integrationId": integration, "settings": settings}),
    )?;
    eprintln!("attached to {integration}");
    Ok(())
}

enum Source {
    Wasm(Vec<u8>),
    JavaScript(String),
}

/// Reads what to upload, building a crate directory first; also returns a default name.
fn load_source(path: &Path) -> anyhow::Result<(Source, String)> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("function")
        .to_string();
    if path.is_dir() {
        let (wasm, crate_name) = build_crate(path)?;
        let bytes =
            std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        return Ok((Source::Wasm(bytes), crate_name));
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("wasm") => Ok((
            Source::Wasm(
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            ),
            stem,
        )),
        Some("js") | Some("mjs") => Ok((
            Source::JavaScript(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            ),
            stem,
        )),
        _ => bail!(
            "{} is not a .wasm, a .js or a crate directory",
            path.display()
        ),
    }
}

/// Builds a function crate for wasm32-wasip2 and returns its component and package name.
fn build_crate(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = Command::new(&cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {cargo} metadata in {}", dir.display()))?;
    if !metadata.status.success() {
        bail!(
            "{} is not a Rust crate: {}",
            dir.display(),
            String::from_utf8_lossy(&metadata.stderr).trim()
        );
    }
    let metadata: Value =
        serde_json::from_slice(&metadata.stdout).context("cargo metadata's output")?;
    let package = metadata
        .pointer("/packages/0/name")
        .and_then(Value::as_str)
        .context("no package in the crate")?;
    let target_dir = metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .context("no target directory")?;
    eprintln!("building {package} for wasm32-wasip2 ...");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {cargo} build"))?;
    if !status.success() {
        bail!("building {package} failed (see cargo's output above)");
    }
    let wasm = Path::new(target_dir)
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    Ok((wasm, package.to_string()))
}

fn test(
    client: &Client,
    id: &str,
    events: &Path,
    settings: &str,
    json: bool,
) -> anyhow::Result<()> {
    let settings: Value = serde_json::from_str(settings).context("--settings is not valid JSON")?;
    let text = std::fs::read_to_string(events)
        .with_context(|| format!("cannot read {}", events.display()))?;
    let events: Vec<Value> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("line {} is not JSON", i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut results = Vec::new();
    // The test endpoint takes at most 100 events per call.
    for chunk in events.chunks(100) {
        let data = client.post(
            &format!("/functions/{id}/test"),
            &json!({"events": chunk, "settings": settings}),
        )?;
        if let Some(Value::Array(page)) = data.get("results") {
            results.extend(page.iter().cloned());
        }
    }
    for (index, result) in results.iter_mut().enumerate() {
        result["index"] = json!(index);
    }
    print_rows(
        &results,
        &[
            ("#", "/index"),
            ("outcome", "/outcome"),
            ("kind", "/error/kind"),
            ("message", "/error/message"),
            ("fuel", "/fuelUsed"),
            ("us", "/durationUs"),
        ],
        json,
    );
    Ok(())
}
