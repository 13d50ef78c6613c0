//! `sluice destinations ...`: a source's destinations from the command line: list, create,
//! show, update (name, settings), enable, disable, delete (refused while events are queued
//! unless `--force`), and their dead letters (in `dead_letters`).

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::client::{Client, ClientArgs};
use super::resolve::resolve;
use super::resources::{Kind, SOURCES, created, get, list, strip_nulls, updated};

pub(super) const DESTINATIONS: Kind = Kind {
    path: "/destinations",
    one: "destination",
    many: "destinations",
    noun: "destination",
    command: "destinations",
    names: &["/name"],
    columns: &[
        ("id", "/id"),
        ("name", "/name"),
        ("type", "/metadata/id"),
        ("source", "/sourceId"),
        ("enabled", "/enabled"),
    ],
};

/// `sluice destinations ...`.
#[derive(Debug, Subcommand)]
pub enum DestinationsCmd {
    /// List destinations, optionally of one source.
    List {
        /// Only this source's destinations (id, slug or name).
        #[arg(long)]
        source: Option<String>,
    },
    /// Connect a destination to a source.
    Create {
        /// The source whose events it receives (id, slug or name).
        #[arg(long)]
        source: String,
        /// Destination type from the catalog: webhook, file.
        #[arg(long = "type")]
        kind: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// A setting, `key=value` (repeatable), e.g. `--setting url=https://hooks.example.com/x`.
        #[arg(long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Create it disabled (nothing is delivered to it until it is enabled).
        #[arg(long)]
        disabled: bool,
    },
    /// Show one destination.
    Get {
        /// Destination id or name.
        id: String,
    },
    /// Change a destination's name or settings (the settings given replace those of the same
    /// key; the others are kept).
    Update {
        /// Destination id or name.
        id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// A setting, `key=value` (repeatable).
        #[arg(long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Enable a destination: delivery to it resumes.
    Enable {
        /// Destination id or name.
        id: String,
    },
    /// Disable a destination: events are no longer delivered to it (those that arrive while it
    /// is disabled are not kept for it).
    Disable {
        /// Destination id or name.
        id: String,
    },
    /// Delete a destination. Refused while events are queued for it, unless --force.
    Delete {
        /// Destination id or name.
        id: String,
        /// Delete it even with events queued: they are moved to its dead letters (still shown
        /// by `failed-events`).
        #[arg(long)]
        force: bool,
    },
    /// List a destination's failed events (dead letters), oldest first, with their last error.
    FailedEvents {
        /// Destination id or name.
        id: String,
    },
    /// Put a destination's failed events back on its delivery queue, with fresh retries.
    Replay {
        /// Destination id or name.
        id: String,
        /// Wait until every replayed event is delivered or failed again, showing progress;
        /// exits non-zero when any failed again.
        #[arg(long)]
        wait: bool,
    },
}

pub(super) fn destinations(cmd: DestinationsCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let json = args.json;
    let one = |id: &str| resolve(&client, &DESTINATIONS, id);
    match cmd {
        DestinationsCmd::List { source } => {
            let query = match source {
                Some(s) => format!("?sourceId={}", resolve(&client, &SOURCES, &s)?),
                None => String::new(),
            };
            list(&client, &DESTINATIONS, &query, json)
        }
        DestinationsCmd::Create {
            source,
            kind,
            name,
            settings,
            disabled,
        } => {
            let source = resolve(&client, &SOURCES, &source)?;
            let body = json!({"sourceId": source, "metadataId": kind, "name": name,
                              "settings": parse_settings(&settings)?, "enabled": !disabled});
            created(&client, &DESTINATIONS, &body, json)
        }
        DestinationsCmd::Get { id } => get(&client, &DESTINATIONS, &one(&id)?, json),
        DestinationsCmd::Update { id, name, settings } => {
            if name.is_none() && settings.is_empty() {
                bail!("nothing to change: give --name or --setting KEY=VALUE");
            }
            let id = one(&id)?;
            let mut body = json!({"name": name});
            if !settings.is_empty() {
                let current = client.get(&format!("{}/{id}", DESTINATIONS.path))?;
                let mut merged = current
                    .pointer("/destination/settings")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                merged.extend(parse_settings(&settings)?);
                body["settings"] = Value::Object(merged);
            }
            updated(&client, &DESTINATIONS, &id, &strip_nulls(body), json)
        }
        DestinationsCmd::Enable { id } => updated(
            &client,
            &DESTINATIONS,
            &one(&id)?,
            &json!({"enabled": true}),
            json,
        ),
        DestinationsCmd::Disable { id } => updated(
            &client,
            &DESTINATIONS,
            &one(&id)?,
            &json!({"enabled": false}),
            json,
        ),
        DestinationsCmd::Delete { id, force } => {
            let id = one(&id)?;
            let query = if force { "?force=true" } else { "" };
            let data = client.delete(&format!("{}/{id}{query}", DESTINATIONS.path))?;
            let moved = data
                .get("deadLettered")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if json {
                println!("{}", json!({"deleted": id, "deadLettered": moved}));
            } else if moved > 0 {
                println!(
                    "deleted destination {id}; its {moved} queued events are dead letters now \
                     (`sluice destinations failed-events {id}`)"
                );
            } else {
                println!("deleted destination {id}");
            }
            Ok(())
        }
        DestinationsCmd::FailedEvents { id } => {
            // A destination deleted with --force keeps its dead letters: try the id as given.
            let id = one(&id).unwrap_or(id);
            super::dead_letters::failed_events(&client, &id, json)
        }
        DestinationsCmd::Replay { id, wait } => {
            super::dead_letters::replay(&client, &one(&id)?, wait, json)
        }
    }
}

/// `KEY=VALUE` settings: JSON values (numbers, booleans, objects) are taken as JSON, anything
/// else as text.
fn parse_settings(settings: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for setting in settings {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--setting `{setting}` is not KEY=VALUE");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        map.insert(key.to_string(), value);
    }
    Ok(map)
}
