//! `sluice functions ...`: deploy a function (in `deploy`), list, show, delete, its versions
//! and rollback, detach it, test it on a file of events, and show its logs (in `logs`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs};
use super::deploy::{Request, deploy};
use super::resolve::{resolve, resolve_integration};
use super::resources::{Kind, cell_str, delete, list};
use super::table::{print_object, print_rows};

pub(super) const FUNCTIONS: Kind = Kind {
    path: "/functions",
    one: "function",
    many: "functions",
    noun: "function",
    command: "functions",
    names: &["/displayName"],
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
    /// Show one function (its code with --code).
    Get {
        /// Function id or name.
        id: String,
        /// Print only the latest version's JavaScript code.
        #[arg(long)]
        code: bool,
    },
    /// Upload a function and deploy it: a component (`.wasm`), JavaScript (`.js`, or a
    /// directory with an `index.js` as `sluice new --lang js` makes it), or a Rust function
    /// crate directory (built for wasm32-wasip2 first). A function with the same name gets a
    /// new version instead.
    Deploy {
        /// A `.wasm`, a `.js`, a JavaScript function directory or a crate directory.
        path: PathBuf,
        /// Display name (default: the file, directory or crate name).
        #[arg(long)]
        name: Option<String>,
        /// INSERT_SOURCE, INSERT_DESTINATION, SOURCE or DESTINATION.
        #[arg(long = "type", default_value = "INSERT_SOURCE")]
        kind: String,
        /// A declared setting, `name:TYPE` (STRING, BOOLEAN, ARRAY, TEXT_MAP); repeatable.
        #[arg(long = "setting", value_name = "NAME:TYPE")]
        settings: Vec<String>,
        /// Attach the function to this source (or, for INSERT_DESTINATION, destination), by id,
        /// slug or name, so that it runs on its events. When it is attached there already,
        /// --instance-settings replace that instance's settings. If attaching fails, the
        /// deployment is undone.
        #[arg(long, value_name = "SOURCE|DESTINATION")]
        attach: Option<String>,
        /// The attached instance's settings, a JSON object (with --attach).
        #[arg(long, value_name = "JSON", requires = "attach")]
        instance_settings: Option<String>,
    },
    /// Detach a function from a source or destination (its instances there are deleted).
    Detach {
        /// Function id or name.
        id: String,
        /// The source or destination (id, slug or name).
        #[arg(long)]
        from: String,
    },
    /// Delete a function with its versions (refused while it is attached somewhere).
    Delete {
        /// Function id or name.
        id: String,
    },
    /// List a function's versions, oldest first, with the deployed one marked.
    Versions {
        /// Function id or name.
        id: String,
    },
    /// Run an earlier version again: restore it as the latest version and deploy it in one
    /// step (pipelines run it from their next batch).
    Rollback {
        /// Function id or name.
        id: String,
        /// The version to go back to (default: the one saved before the deployed one).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
    },
    /// Show what a function logged while processing real events (oldest first; one JSON
    /// object per line with --json).
    Logs {
        /// Function id or name.
        id: String,
        /// Keep printing new lines as they come (polls every second) until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
    /// Run a function on sample events without touching any pipeline: the outcome of each, the
    /// event it made and what it changed, and what it logged. A destination function sends
    /// each event out (to the hosts its `allowedHosts` lists); a source function gets each line
    /// as a webhook body. Exits non-zero when an event failed: the sandbox stopped the
    /// function, or it threw something other than Segment's named errors.
    Test {
        /// Function id or name.
        id: String,
        /// Events, one JSON object per line (webhook bodies for a source function).
        #[arg(long)]
        events: PathBuf,
        /// Setting values, a JSON object.
        #[arg(long, default_value = "{}")]
        settings: String,
        /// A host (`host` or `host:port`) a destination or source function may reach, added
        /// to the settings' `allowedHosts`; repeatable.
        #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
        allow_host: Vec<String>,
    },
}

pub(super) fn functions(cmd: FunctionsCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let json = args.json;
    let function = |id: &str| resolve(&client, &FUNCTIONS, id);
    match cmd {
        FunctionsCmd::List => list(&client, &FUNCTIONS, "", json),
        FunctionsCmd::Get { id, code } => show(&client, &function(&id)?, code, json),
        FunctionsCmd::Deploy {
            path,
            name,
            kind,
            settings,
            attach,
            instance_settings,
        } => {
            let request = Request {
                path: &path,
                name,
                kind: &kind,
                settings: &settings,
                attach: attach.as_deref(),
                instance_settings: instance_settings.as_deref(),
            };
            let deployed = deploy(&client, &request)?;
            if json {
                print_object(&deployed, true);
            } else {
                print_rows(std::slice::from_ref(&deployed), FUNCTIONS.columns, false);
            }
            Ok(())
        }
        FunctionsCmd::Detach { id, from } => detach(&client, &function(&id)?, &from),
        FunctionsCmd::Delete { id } => delete(&client, &FUNCTIONS, &function(&id)?),
        FunctionsCmd::Versions { id } => {
            let id = function(&id)?;
            let versions =
                client.list_all(&format!("{}/{id}/versions", FUNCTIONS.path), "versions")?;
            print_rows(
                &versions,
                &[
                    ("version", "/id"),
                    ("runtime", "/runtime"),
                    ("created", "/createdAt"),
                    ("deployed", "/isDeployed"),
                ],
                json,
            );
            Ok(())
        }
        FunctionsCmd::Rollback { id, to } => rollback(&client, &function(&id)?, to, json),
        FunctionsCmd::Test {
            id,
            events,
            settings,
            allow_host,
        } => {
            let settings = test_settings(&settings, &allow_host)?;
            test(&client, &function(&id)?, &events, &settings, json)
        }
        FunctionsCmd::Logs { id, follow } => {
            super::logs::logs(&client, &function(&id)?, follow, json)
        }
    }
}

/// The function's fields without its code (which can be long), or only the code.
fn show(client: &Client, id: &str, code: bool, json: bool) -> anyhow::Result<()> {
    let data = client.get(&format!("{}/{id}", FUNCTIONS.path))?;
    let mut function = data.get(FUNCTIONS.one).cloned().unwrap_or(data);
    if code {
        match function.get("code").and_then(Value::as_str) {
            Some(code) => println!("{code}"),
            None => bail!("function {id} is a component (.wasm): it has no code to show"),
        }
        return Ok(());
    }
    if json {
        println!("{function}");
        return Ok(());
    }
    let lines = function
        .as_object_mut()
        .and_then(|f| f.remove("code"))
        .and_then(|c| c.as_str().map(|c| c.lines().count()));
    print_object(&function, false);
    if let Some(lines) = lines {
        println!("code: {lines} lines (`sluice functions get {id} --code` prints it)");
    }
    Ok(())
}

/// Deletes every instance of function `id` on `from`.
fn detach(client: &Client, id: &str, from: &str) -> anyhow::Result<()> {
    let integration = resolve_integration(client, from)?;
    let instances = client.list_all(
        &format!("/insert-function-instances?functionId={id}&integrationId={integration}"),
        "insertFunctionInstances",
    )?;
    if instances.is_empty() {
        bail!("function {id} is not attached to {integration}");
    }
    for instance in &instances {
        let instance = cell_str(instance, "id");
        client.delete(&format!("/insert-function-instances/{instance}"))?;
    }
    println!("detached function {id} from {integration}");
    Ok(())
}

/// Restores `to` (default: the version saved before the deployed one) and deploys it.
fn rollback(client: &Client, id: &str, to: Option<String>, json: bool) -> anyhow::Result<()> {
    let versions = client.list_all(&format!("{}/{id}/versions", FUNCTIONS.path), "versions")?;
    let to = match to {
        Some(to) => to,
        None => {
            let deployed = versions
                .iter()
                .position(|v| v.get("isDeployed").and_then(Value::as_bool) == Some(true))
                .context("the function has no deployed version to roll back from")?;
            let Some(before) = deployed.checked_sub(1).and_then(|i| versions.get(i)) else {
                bail!("the deployed version is the function's first: there is none before it");
            };
            cell_str(before, "id")
        }
    };
    let data = client.post(
        &format!("{}/{id}/versions?deploy=true", FUNCTIONS.path),
        &json!({"versionId": to}),
    )?;
    let function = data.get(FUNCTIONS.one).cloned().unwrap_or(data);
    if json {
        println!("{function}");
    } else {
        println!(
            "function {id} runs the code of version {to} again, deployed as version {}",
            cell_str(&function, "deployedVersionId")
        );
    }
    Ok(())
}

/// `--settings` with the `--allow-host` entries added to its `allowedHosts`.
fn test_settings(settings: &str, allow: &[String]) -> anyhow::Result<Value> {
    let mut settings: Value =
        serde_json::from_str(settings).context("--settings is not valid JSON")?;
    if allow.is_empty() {
        return Ok(settings);
    }
    let Some(object) = settings.as_object_mut() else {
        bail!("--settings must be a JSON object");
    };
    let hosts = object.entry("allowedHosts").or_insert_with(|| json!([]));
    let Some(hosts) = hosts.as_array_mut() else {
        bail!("--settings: `allowedHosts` must be a list of `host` or `host:port` strings");
    };
    hosts.extend(allow.iter().map(|host| json!(host)));
    Ok(settings)
}

/// Runs function `id` on the events of the file `events` through `POST /functions/{id}/test`
/// (100 at a time, the endpoint's most) and prints the report.
fn test(
    client: &Client,
    id: &str,
    events: &Path,
    settings: &Value,
    json: bool,
) -> anyhow::Result<()> {
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
    for chunk in events.chunks(100) {
        let data = client.post(
            &format!("/functions/{id}/test"),
            &json!({"events": chunk, "settings": settings}),
        )?;
        if let Some(Value::Array(page)) = data.get("results") {
            results.extend(page.iter().cloned());
        }
    }
    let failed = results.iter().filter(|r| is_failure(r)).count();
    if json {
        println!("{}", Value::Array(results));
    } else {
        let function = client.get(&format!("{}/{id}", FUNCTIONS.path))?;
        let function = function.get(FUNCTIONS.one).unwrap_or(&function);
        let destination = function["resourceType"] == "DESTINATION";
        print_report(&mut results, destination);
    }
    if failed > 0 {
        bail!("{failed} of {} events ended in an error", events.len());
    }
    Ok(())
}

/// Whether a result is a failure of the function: the sandbox stopped it (a trap, fuel, the
/// deadline) or it threw something other than Segment's named errors (`unknown`, a refused
/// `fetch` included). The named ones (`ValidationError`, `EventNotSupported`, `DropEvent`,
/// `RetryError`, ...) are the function's deliberate answers, which a sample event may well be
/// meant to get.
fn is_failure(result: &Value) -> bool {
    let error = &result["error"];
    error["origin"] == "sandbox" || error["kind"] == "unknown"
}

/// The results as a table (a destination's successes read `delivered`), then each event's
/// logs.
fn print_report(results: &mut [Value], destination: bool) {
    for (index, result) in results.iter_mut().enumerate() {
        result["index"] = json!(index);
        result["changed"] = json!(changes(result));
        result["output"] = match (&result["event"], &result["events"]) {
            (Value::Null, Value::Null) => Value::Null,
            (Value::Null, many) => json!(many.to_string()),
            (one, _) => json!(one.to_string()),
        };
        if destination && result["error"].is_null() {
            result["outcome"] = json!("delivered");
        }
        // A JavaScript error's stack is for the logs below, not the table.
        if let Some(message) = result["error"]["message"].as_str() {
            let first = message.lines().next().unwrap_or_default().to_string();
            result["error"]["message"] = json!(first);
        }
    }
    print_rows(
        results,
        &[
            ("#", "/index"),
            ("outcome", "/outcome"),
            ("kind", "/error/kind"),
            ("message", "/error/message"),
            ("changes", "/changed"),
            ("output", "/output"),
            ("fuel", "/fuelUsed"),
            ("us", "/durationUs"),
        ],
        false,
    );
    for result in results.iter() {
        let Some(logs) = result["logs"].as_array().filter(|l| !l.is_empty()) else {
            continue;
        };
        println!("event {} logged:", result["index"]);
        for log in logs {
            println!(
                "  [{}] {}",
                log["level"].as_str().unwrap_or("?"),
                log["message"].as_str().unwrap_or_default()
            );
        }
    }
}

/// A result's changes in short: `~properties.email`, `+context.x`, `-traits.phone`.
fn changes(result: &Value) -> String {
    result["changes"]
        .as_array()
        .map(|changes| {
            changes
                .iter()
                .map(|c| {
                    let sign = match c["op"].as_str() {
                        Some("added") => "+",
                        Some("removed") => "-",
                        _ => "~",
                    };
                    format!("{sign}{}", c["path"].as_str().unwrap_or("?"))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
