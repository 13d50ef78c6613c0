//! `sluice sources|tokens ...` and what every resource command shares: a resource as the API
//! names it ([`Kind`]), and listing, showing, creating, updating and deleting one. Destinations
//! are in `destinations`, tracking plans in `plans`, functions in `functions`.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs};
use super::resolve::resolve;
use super::table::{print_object, print_rows};

/// A resource as the API names it.
pub(super) struct Kind {
    /// Collection path, e.g. `/sources`.
    pub path: &'static str,
    /// The `data` field of a single item.
    pub one: &'static str,
    /// The `data` field of a list.
    pub many: &'static str,
    /// What a person calls one (`source`).
    pub noun: &'static str,
    /// The command that lists them (`sources`).
    pub command: &'static str,
    /// Fields (JSON pointers) by which a person may name one instead of its id.
    pub names: &'static [&'static str],
    /// Table columns: header and JSON pointer.
    pub columns: &'static [(&'static str, &'static str)],
}

pub(super) const SOURCES: Kind = Kind {
    path: "/sources",
    one: "source",
    many: "sources",
    noun: "source",
    command: "sources",
    names: &["/slug", "/name"],
    columns: &[
        ("id", "/id"),
        ("slug", "/slug"),
        ("name", "/name"),
        ("type", "/metadata/id"),
        ("enabled", "/enabled"),
        ("write keys", "/writeKeys"),
    ],
};
const TOKENS: Kind = Kind {
    path: "/tokens",
    one: "token",
    many: "tokens",
    noun: "token",
    command: "tokens",
    names: &[],
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
        /// Source id, slug or name.
        id: String,
    },
    /// Change a source's slug or name.
    Update {
        /// Source id, slug or name.
        id: String,
        /// New slug.
        #[arg(long)]
        slug: Option<String>,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Enable a source: it accepts events again.
    Enable {
        /// Source id, slug or name.
        id: String,
    },
    /// Disable a source: its write keys are refused (403) until it is enabled.
    Disable {
        /// Source id, slug or name.
        id: String,
    },
    /// Delete a source with its destinations.
    Delete {
        /// Source id, slug or name.
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
    let json = args.json;
    match cmd {
        SourcesCmd::List => list(&client, &SOURCES, "", json),
        SourcesCmd::Create {
            slug,
            name,
            kind,
            disabled,
        } => {
            let body =
                json!({"slug": slug, "name": name, "metadataId": kind, "enabled": !disabled});
            created(&client, &SOURCES, &body, json)
        }
        SourcesCmd::Get { id } => get(&client, &SOURCES, &resolve(&client, &SOURCES, &id)?, json),
        SourcesCmd::Update { id, slug, name } => {
            if slug.is_none() && name.is_none() {
                bail!("nothing to change: give --slug or --name");
            }
            let id = resolve(&client, &SOURCES, &id)?;
            let body = json!({"slug": slug, "name": name});
            updated(&client, &SOURCES, &id, &strip_nulls(body), json)
        }
        SourcesCmd::Enable { id } => {
            let id = resolve(&client, &SOURCES, &id)?;
            updated(&client, &SOURCES, &id, &json!({"enabled": true}), json)
        }
        SourcesCmd::Disable { id } => {
            let id = resolve(&client, &SOURCES, &id)?;
            updated(&client, &SOURCES, &id, &json!({"enabled": false}), json)
        }
        SourcesCmd::Delete { id } => delete(&client, &SOURCES, &resolve(&client, &SOURCES, &id)?),
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

pub(super) fn created(
    client: &Client,
    kind: &Kind,
    body: &Value,
    json: bool,
) -> anyhow::Result<()> {
    let data = client.post(kind.path, body)?;
    let item = data
        .get(kind.one)
        .cloned()
        .context("the server's answer has no item")?;
    print_item(kind, &item, json);
    Ok(())
}

/// `PATCH` of one item; prints it as changed.
pub(super) fn updated(
    client: &Client,
    kind: &Kind,
    id: &str,
    body: &Value,
    json: bool,
) -> anyhow::Result<()> {
    let data = client.patch(&format!("{}/{id}", kind.path), body)?;
    let item = data
        .get(kind.one)
        .cloned()
        .context("the server's answer has no item")?;
    print_item(kind, &item, json);
    Ok(())
}

fn print_item(kind: &Kind, item: &Value, json: bool) {
    if json {
        println!("{item}");
    } else {
        print_rows(std::slice::from_ref(item), kind.columns, false);
    }
}

pub(super) fn delete(client: &Client, kind: &Kind, id: &str) -> anyhow::Result<()> {
    client.delete(&format!("{}/{id}", kind.path))?;
    println!("deleted {} {id}", kind.noun);
    Ok(())
}

/// `value` without its `null` fields (options not given stay unchanged on a PATCH).
pub(super) fn strip_nulls(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    value
}

pub(super) fn cell_str(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}
