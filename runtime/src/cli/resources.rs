//! `sluice sources|destinations|tracking-plans|tokens ...`: the control plane's resources from
//! the command line, one subcommand per API operation (a destination's dead letters are in
//! `dead_letters`).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::client::{Client, ClientArgs};
use super::table::{print_object, print_rows};

/// A resource as the API names it.
pub(super) struct Kind {
    /// Collection path, e.g. `/sources`.
    pub path: &'static str,
    /// The `data` field of a single item.
    pub one: &'static str,
    /// The `data` field of a list.
    pub many: &'static str,
    /// Table columns: header and JSON pointer.
    pub columns: &'static [(&'static str, &'static str)],
}

const SOURCES: Kind = Kind {
    path: "/sources",
    one: "source",
    many: "sources",
    columns: &[
        ("id", "/id"),
        ("slug", "/slug"),
        ("name", "/name"),
        ("type", "/metadata/id"),
        ("enabled", "/enabled"),
        ("write keys", "/writeKeys"),
    ],
};
const DESTINATIONS: Kind = Kind {
    path: "/destinations",
    one: "destination",
    many: "destinations",
    columns: &[
        ("id", "/id"),
        ("name", "/name"),
        ("type", "/metadata/id"),
        ("source", "/sourceId"),
        ("enabled", "/enabled"),
    ],
};
const TRACKING_PLANS: Kind = Kind {
    path: "/tracking-plans",
    one: "trackingPlan",
    many: "trackingPlans",
    columns: &[
        ("id", "/id"),
        ("name", "/name"),
        ("type", "/type"),
        ("sources", "/sourceIds"),
    ],
};
const TOKENS: Kind = Kind {
    path: "/tokens",
    one: "token",
    many: "tokens",
    columns: &[
        ("id", "/id"),
        ("description", "/description"),
        ("role", "/permissions/0/roleName"),
        ("created", "/createdAt"),
        ("expires", "/expiresAt"),
    ],
};

/// `sluice sources ...`.
#[derive(Debug, Subcommand)]
pub enum SourcesCmd {
    /// List sources.
    List,
    /// Create a source; its write key is what clients send events with.
    Create {
        /// Unique slug (a-z, 0-9, `-`, `_`).
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// Source type from the catalog: http, javascript, ios, android, server.
        #[arg(long = "type", default_value = "http")]
        kind: String,
        /// Create it disabled (it accepts no events).
        #[arg(long)]
        disabled: bool,
    },
    /// Show one source.
    Get {
        /// Source id.
        id: String,
    },
    /// Delete a source with its destinations.
    Delete {
        /// Source id.
        id: String,
    },
}

/// `sluice destinations ...`.
#[derive(Debug, Subcommand)]
pub enum DestinationsCmd {
    /// List destinations, optionally of one source.
    List {
        /// Only this source's destinations.
        #[arg(long)]
        source: Option<String>,
    },
    /// Connect a destination to a source.
    Create {
        /// The source whose events it receives.
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
    },
    /// Show one destination.
    Get {
        /// Destination id.
        id: String,
    },
    /// Delete a destination.
    Delete {
        /// Destination id.
        id: String,
    },
    /// List a destination's failed events (dead letters), oldest first, with their last error.
    FailedEvents {
        /// Destination id.
        id: String,
    },
    /// Put a destination's failed events back on its delivery queue, with fresh retries.
    Replay {
        /// Destination id.
        id: String,
        /// Wait until every replayed event is delivered or failed again, showing progress.
        #[arg(long)]
        wait: bool,
    },
}

/// `sluice tracking-plans ...`.
#[derive(Debug, Subcommand)]
pub enum TrackingPlansCmd {
    /// List tracking plans.
    List,
    /// Create a tracking plan.
    Create {
        /// Display name.
        name: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show one tracking plan.
    Get {
        /// Plan id.
        id: String,
    },
    /// Delete a tracking plan.
    Delete {
        /// Plan id.
        id: String,
    },
}

/// `sluice tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// List API tokens (secrets are never shown again).
    List,
    /// Create a token; its secret is printed once.
    Create {
        /// What it is for.
        #[arg(long)]
        description: String,
        /// A role from `GET /roles`, by name or id (required: no token is an owner by default).
        #[arg(long)]
        role: String,
        /// When it stops working: an RFC 3339 time (`2027-01-31T12:00:00Z`). Default: never.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

pub(super) fn sources(cmd: SourcesCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match cmd {
        SourcesCmd::List => list(&client, &SOURCES, "", args.json),
        SourcesCmd::Create {
            slug,
            name,
            kind,
            disabled,
        } => {
            let body =
                json!({"slug": slug, "name": name, "metadataId": kind, "enabled": !disabled});
            created(&client, &SOURCES, &body, args.json)
        }
        SourcesCmd::Get { id } => get(&client, &SOURCES, &id, args.json),
        SourcesCmd::Delete { id } => delete(&client, &SOURCES, &id),
    }
}

pub(super) fn destinations(cmd: DestinationsCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match cmd {
        DestinationsCmd::List { source } => {
            let query = source.map(|s| format!("?sourceId={s}")).unwrap_or_default();
            list(&client, &DESTINATIONS, &query, args.json)
        }
        DestinationsCmd::Create {
            source,
            kind,
            name,
            settings,
        } => {
            let mut map = Map::new();
            for setting in settings {
                let Some((key, value)) = setting.split_once('=') else {
                    bail!("--setting `{setting}` is not KEY=VALUE");
                };
                // JSON values (numbers, booleans, objects) are taken as JSON, anything else as text.
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
                map.insert(key.to_string(), value);
            }
            let body =
                json!({"sourceId": source, "metadataId": kind, "name": name, "settings": map});
            created(&client, &DESTINATIONS, &body, args.json)
        }
        DestinationsCmd::Get { id } => get(&client, &DESTINATIONS, &id, args.json),
        DestinationsCmd::Delete { id } => delete(&client, &DESTINATIONS, &id),
        DestinationsCmd::FailedEvents { id } => {
            super::dead_letters::failed_events(&client, &id, args.json)
        }
        DestinationsCmd::Replay { id, wait } => {
            super::dead_letters::replay(&client, &id, wait, args.json)
        }
    }
}

pub(super) fn tracking_plans(cmd: TrackingPlansCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match cmd {
        TrackingPlansCmd::List => list(&client, &TRACKING_PLANS, "", args.json),
        TrackingPlansCmd::Create { name, description } => created(
            &client,
            &TRACKING_PLANS,
            &json!({"name": name, "description": description}),
            args.json,
        ),
        TrackingPlansCmd::Get { id } => get(&client, &TRACKING_PLANS, &id, args.json),
        TrackingPlansCmd::Delete { id } => delete(&client, &TRACKING_PLANS, &id),
    }
}

pub(super) fn tokens(cmd: TokensCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match cmd {
        TokensCmd::List => list(&client, &TOKENS, "", args.json),
        TokensCmd::Create {
            description,
            role,
            expires_at,
        } => {
            let mut body = json!({"description": description, "permissions": [{"roleId": role, "resources": []}]});
            if let Some(at) = expires_at {
                body["expiresAt"] = Value::String(at);
            }
            let data = client.post(TOKENS.path, &body)?;
            let token = data.get(TOKENS.one).cloned().unwrap_or(data);
            if args.json {
                println!("{token}");
            } else {
                let secret = token.get("value").and_then(Value::as_str).unwrap_or("-");
                println!(
                    "Token {} created. Its secret is shown only this once:",
                    cell_str(&token, "id")
                );
                println!("{secret}");
            }
            Ok(())
        }
        TokensCmd::Revoke { id } => delete(&client, &TOKENS, &id),
    }
}

pub(super) fn list(client: &Client, kind: &Kind, query: &str, json: bool) -> anyhow::Result<()> {
    let items = client.list_all(&format!("{}{query}", kind.path), kind.many)?;
    print_rows(&items, kind.columns, json);
    Ok(())
}

pub(super) fn get(client: &Client, kind: &Kind, id: &str, json: bool) -> anyhow::Result<()> {
    let data = client.get(&format!("{}/{id}", kind.path))?;
    print_object(data.get(kind.one).unwrap_or(&data), json);
    Ok(())
}

fn created(client: &Client, kind: &Kind, body: &Value, json: bool) -> anyhow::Result<()> {
    let data = client.post(kind.path, body)?;
    let item = data
        .get(kind.one)
        .cloned()
        .context("the server's answer has no item")?;
    if json {
        println!("{item}");
    } else {
        print_rows(std::slice::from_ref(&item), kind.columns, false);
    }
    Ok(())
}

fn delete(client: &Client, kind: &Kind, id: &str) -> anyhow::Result<()> {
    client.delete(&format!("{}/{id}", kind.path))?;
    println!("deleted {id}");
    Ok(())
}

pub(super) fn cell_str(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}
