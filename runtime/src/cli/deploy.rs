//! `sluice functions deploy PATH [--attach X]`: upload a `.wasm`, a `.js`, a JavaScript
//! function directory (its `index.js`, as `sluice new --lang js` makes it) or a Rust crate
//! directory (built for wasm32-wasip2 first); deploy it; attach it, or update the settings of
//! the instance already attached. A failed attach undoes the deployment.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use super::client::Client;
use super::functions::FUNCTIONS;
use super::resolve::resolve_integration;
use super::resources::cell_str;

/// What `deploy` was asked.
pub(super) struct Request<'a> {
    pub path: &'a Path,
    pub name: Option<String>,
    pub kind: &'a str,
    pub settings: &'a [String],
    pub attach: Option<&'a str>,
    pub instance_settings: Option<&'a str>,
}

/// Deploys (and attaches); returns the deployed function.
///
/// # Errors
/// The code cannot be read or built, the server refuses it, or attaching fails (after which
/// the deployment is undone: a new function deleted, an existing one's previous version
/// deployed again).
pub(super) fn deploy(client: &Client, request: &Request<'_>) -> anyhow::Result<Value> {
    // Checked before anything changes on the server.
    let settings: Option<Value> = match request.instance_settings {
        Some(text) => {
            Some(serde_json::from_str(text).context("--instance-settings is not valid JSON")?)
        }
        None => None,
    };
    let integration = match request.attach {
        Some(given) => Some(resolve_integration(client, given)?),
        None => None,
    };
    let (source, default_name) = load_source(request.path)?;
    let name = request.name.clone().unwrap_or(default_name);
    let existing = client
        .list_all(FUNCTIONS.path, FUNCTIONS.many)?
        .into_iter()
        .find(|f| f.get("displayName").and_then(Value::as_str) == Some(name.as_str()));
    let previous = existing.as_ref().map(|f| {
        f.get("deployedVersionId")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let deployed = upload(client, &source, &name, request, existing.as_ref())?;
    let Some(integration) = integration else {
        return Ok(deployed);
    };
    if let Err(e) = attach(client, &deployed, &integration, settings) {
        let id = cell_str(&deployed, "id");
        let undone = match previous {
            None => client
                .delete(&format!("{}/{id}", FUNCTIONS.path))
                .map(|_| format!("the new function {id} was deleted")),
            Some(Some(version)) => client
                .post(
                    &format!("{}/{id}/deploy", FUNCTIONS.path),
                    &json!({"versionId": version}),
                )
                .map(|_| format!("function {id} runs version {version} again")),
            Some(None) => client
                .post(&format!("{}/{id}/deploy", FUNCTIONS.path), &json!({}))
                .map(|_| format!("function {id} was left deployed (it had no earlier deployment)")),
        };
        let undone = undone.unwrap_or_else(|u| format!("undoing the deployment failed too: {u}"));
        return Err(e.context(format!("attaching to {integration} failed; {undone}")));
    }
    Ok(deployed)
}

/// Creates the function (or a new version of the one named `name`) and deploys it.
fn upload(
    client: &Client,
    source: &Source,
    name: &str,
    request: &Request<'_>,
    existing: Option<&Value>,
) -> anyhow::Result<Value> {
    let declared = request
        .settings
        .iter()
        .map(|s| {
            let (setting, kind) = s.split_once(':').unwrap_or((s, "STRING"));
            json!({"name": setting, "label": setting, "type": kind.to_uppercase()})
        })
        .collect::<Vec<_>>();
    let mut body = json!({});
    match source {
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
            let id = cell_str(function, "id");
            client.patch(&format!("{}/{id}", FUNCTIONS.path), &body)?
        }
        None => {
            body["displayName"] = json!(name);
            body["resourceType"] = json!(request.kind);
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

/// Attaches `function` to `integration` (a source or destination id); when an instance of it
/// is attached there already, its settings are replaced by `settings` if given.
fn attach(
    client: &Client,
    function: &Value,
    integration: &str,
    settings: Option<Value>,
) -> anyhow::Result<()> {
    let id = cell_str(function, "id");
    let attached = client
        .list_all(
            &format!("/insert-function-instances?functionId={id}&integrationId={integration}"),
            "insertFunctionInstances",
        )?
        .into_iter()
        .find(|i| {
            i.get("functionId").and_then(Value::as_str) == Some(id.as_str())
                && i.get("integrationId").and_then(Value::as_str) == Some(integration)
        });
    match (attached, settings) {
        (Some(instance), Some(settings)) => {
            let instance = cell_str(&instance, "id");
            client.patch(
                &format!("/insert-function-instances/{instance}"),
                &json!({"settings": settings}),
            )?;
            eprintln!(
                "already attached to {integration}; instance {instance} has the new settings"
            );
        }
        (Some(_), None) => eprintln!("already attached to {integration} (settings unchanged)"),
        (None, settings) => {
            let settings = settings.unwrap_or_else(|| json!({}));
            client.post(
                "/insert-function-instances",
                &json!({"functionId": id, "integrationId": integration, "settings": settings}),
            )?;
            eprintln!("attached to {integration}");
        }
    }
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
        // A JavaScript function's directory (`sluice new --lang js`): its `index.js`, named
        // after the directory.
        let script = path.join("index.js");
        if script.is_file() && !path.join("Cargo.toml").is_file() {
            let dir_name = std::fs::canonicalize(path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or(stem);
            let code = std::fs::read_to_string(&script)
                .with_context(|| format!("cannot read {}", script.display()))?;
            return Ok((Source::JavaScript(code), dir_name));
        }
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
            "{} is not a .wasm, a .js, a directory with an index.js, or a Rust crate directory",
            path.display()
        ),
    }
}

/// Builds a function crate for wasm32-wasip2 and returns its component and package name.
fn build_crate(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{} has neither an index.js (a JavaScript function) nor a Cargo.toml (a Rust \
             function crate); `sluice new NAME` makes either",
            dir.display()
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = Command::new(&cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {cargo} metadata in {}", dir.display()))?;
    if !metadata.status.success() {
        bail!(
            "{} is not a Rust crate cargo can read: {}",
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
