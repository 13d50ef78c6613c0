//! `sluice warehouses`: create warehouses, connect sources, check the connection, run a sync
//! now, read the sync reports and turn tables or columns off (selective sync).

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use super::client::{Client, ClientArgs};
use super::table::{print_object, print_rows};

/// What to do with warehouses.
#[derive(Debug, clap::Subcommand)]
pub enum WarehousesCmd {
    /// List warehouses.
    List,
    /// Show one warehouse.
    Get {
        /// Warehouse id.
        id: String,
    },
    /// Create a warehouse: `duckdb` (embedded, no server) or `postgres`.
    Create {
        /// The type: `duckdb` or `postgres`.
        #[arg(long = "type", default_value = "duckdb")]
        kind: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Settings as a JSON object (`{"hostname": "db", "database": "events", "username": "u"}`).
        #[arg(long, default_value = "{}")]
        settings: String,
        /// Seconds between syncs (sets `syncIntervalSeconds`; default hourly).
        #[arg(long)]
        interval: Option<u64>,
    },
    /// Delete a warehouse (its loaded tables stay in the database).
    Delete {
        /// Warehouse id.
        id: String,
    },
    /// Connect a source: its events load into the warehouse from now on.
    Connect {
        /// Warehouse id.
        id: String,
        /// Source id.
        source: String,
    },
    /// Disconnect a source.
    Disconnect {
        /// Warehouse id.
        id: String,
        /// Source id.
        source: String,
    },
    /// Connect to the warehouse now: CONNECTED, or FAILED with the database's error.
    State {
        /// Warehouse id.
        id: String,
    },
    /// Run a sync now and print its reports.
    Sync {
        /// Warehouse id.
        id: String,
    },
    /// The sync reports, newest first.
    Syncs {
        /// Warehouse id.
        id: String,
        /// Only this source's.
        #[arg(long)]
        source: Option<String>,
    },
    /// Turn a source, one of its tables, or one column off or on for this warehouse.
    SelectiveSync {
        /// Warehouse id.
        id: String,
        /// Source id.
        #[arg(long)]
        source: String,
        /// A table (`tracks`, `order_completed`); without it, the whole source.
        #[arg(long)]
        collection: Option<String>,
        /// A column of that table.
        #[arg(long, requires = "collection")]
        property: Option<String>,
        /// Turn it off (otherwise on).
        #[arg(long)]
        off: bool,
    },
}

const COLUMNS: [(&str, &str); 5] = [
    ("id", "/id"),
    ("name", "/name"),
    ("type", "/metadata/id"),
    ("enabled", "/enabled"),
    ("sources", "/sourceIds"),
];

const REPORTS: [(&str, &str); 7] = [
    ("source", "/sourceId"),
    ("start", "/start"),
    ("status", "/status"),
    ("duration", "/humanDuration"),
    ("events", "/count"),
    ("tables", "/tables"),
    ("notices", "/notices"),
];

pub(super) fn warehouses(cmd: WarehousesCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let json = args.json;
    match cmd {
        WarehousesCmd::List => {
            let all = client.list_all("/warehouses", "warehouses")?;
            print_rows(&all, &COLUMNS, json);
        }
        WarehousesCmd::Get { id } => {
            let data = client.get(&format!("/warehouses/{id}"))?;
            print_object(&data["warehouse"], json);
        }
        WarehousesCmd::Create {
            kind,
            name,
            settings,
            interval,
        } => {
            let mut settings: Map<String, Value> = serde_json::from_str(&settings)
                .context("--settings must be a JSON object, like '{\"hostname\": \"db\"}'")?;
            if let Some(seconds) = interval {
                settings.insert("syncIntervalSeconds".into(), json!(seconds));
            }
            let mut body = json!({"metadataId": kind, "settings": settings});
            if let Some(name) = name {
                body["name"] = Value::String(name);
            }
            let data = client.post("/warehouses", &body)?;
            print_object(&data["warehouse"], json);
        }
        WarehousesCmd::Delete { id } => {
            client.delete(&format!("/warehouses/{id}"))?;
            println!("deleted {id}");
        }
        WarehousesCmd::Connect { id, source } => {
            client.post(
                &format!("/warehouses/{id}/connected-sources/{source}"),
                &json!({}),
            )?;
            println!("source {source} connected to warehouse {id}");
        }
        WarehousesCmd::Disconnect { id, source } => {
            client.delete(&format!("/warehouses/{id}/connected-sources/{source}"))?;
            println!("source {source} disconnected from warehouse {id}");
        }
        WarehousesCmd::State { id } => {
            let data = client.get(&format!("/warehouses/{id}/connection-state"))?;
            print_object(&data, json);
        }
        WarehousesCmd::Sync { id } => {
            let data = client.post(&format!("/warehouses/{id}/syncs"), &json!({}))?;
            let reports = data["reports"].as_array().cloned().unwrap_or_default();
            if reports.is_empty() && !json {
                println!("nothing was staged: nothing to load");
            } else {
                print_rows(&reports, &REPORTS, json);
            }
        }
        WarehousesCmd::Syncs { id, source } => {
            let path = match source {
                Some(s) => format!("/warehouses/{id}/connected-sources/{s}/syncs"),
                None => format!("/warehouses/{id}/syncs"),
            };
            let reports = client.list_all(&path, "reports")?;
            print_rows(&reports, &REPORTS, json);
        }
        WarehousesCmd::SelectiveSync {
            id,
            source,
            collection,
            property,
            off,
        } => {
            let mut item = json!({"sourceId": source, "enabled": !off});
            if let Some(c) = collection {
                item["collection"] = Value::String(c);
            }
            if let Some(p) = property {
                item["property"] = Value::String(p);
            }
            let data = client.patch(
                &format!("/warehouses/{id}/selective-sync"),
                &json!({"syncOverrides": [item]}),
            )?;
            let overrides = data["syncOverrides"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            print_rows(
                &overrides,
                &[
                    ("source", "/sourceId"),
                    ("collection", "/collection"),
                    ("property", "/property"),
                    ("enabled", "/enabled"),
                ],
                json,
            );
        }
    }
    Ok(())
}
