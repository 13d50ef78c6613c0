//! `sluice tracking-plans ...`: tracking plans from the command line: list, create, show (with
//! their rules), delete, their rules (list, set from a file, remove) and the sources they are
//! enforced on (connect, disconnect).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs};
use super::resolve::resolve;
use super::resources::{Kind, SOURCES, created, delete, list};
use super::table::{print_object, print_rows};

pub(super) const TRACKING_PLANS: Kind = Kind {
    path: "/tracking-plans",
    one: "trackingPlan",
    many: "trackingPlans",
    noun: "tracking plan",
    command: "tracking-plans",
    names: &["/name"],
    columns: &[
        ("id", "/id"),
        ("name", "/name"),
        ("type", "/type"),
        ("sources", "/sourceIds"),
    ],
};

/// The columns of a rule.
const RULE_COLUMNS: &[(&str, &str)] = &[
    ("type", "/type"),
    ("key", "/key"),
    ("version", "/version"),
    ("required", "/jsonSchema/properties/properties/required"),
];

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
    /// Show one tracking plan with its rules.
    Get {
        /// Plan id or name.
        id: String,
    },
    /// Delete a tracking plan.
    Delete {
        /// Plan id or name.
        id: String,
    },
    /// List a plan's rules.
    Rules {
        /// Plan id or name.
        id: String,
    },
    /// Add or replace rules from a file: a JSON list of rules (`{"type": "TRACK", "key":
    /// "Order Completed", "jsonSchema": {...}}`) or `{"rules": [...]}`. Rules of the same type,
    /// key and version are replaced; `--replace-all` replaces the whole set.
    SetRules {
        /// Plan id or name.
        id: String,
        /// The rules file.
        #[arg(long)]
        file: PathBuf,
        /// Replace every rule of the plan with the file's.
        #[arg(long)]
        replace_all: bool,
    },
    /// Remove a plan's rule.
    RemoveRule {
        /// Plan id or name.
        id: String,
        /// The rule's type: TRACK, IDENTIFY, GROUP, PAGE, SCREEN, COMMON.
        #[arg(long = "type")]
        kind: String,
        /// The event name, for TRACK rules.
        #[arg(long)]
        key: Option<String>,
    },
    /// Enforce a plan on a source.
    Connect {
        /// Plan id or name.
        id: String,
        /// Source id, slug or name.
        #[arg(long)]
        source: String,
    },
    /// Stop enforcing a plan on a source.
    Disconnect {
        /// Plan id or name.
        id: String,
        /// Source id, slug or name.
        #[arg(long)]
        source: String,
    },
}

pub(super) fn tracking_plans(cmd: TrackingPlansCmd, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let json = args.json;
    let plan = |id: &str| resolve(&client, &TRACKING_PLANS, id);
    match cmd {
        TrackingPlansCmd::List => list(&client, &TRACKING_PLANS, "", json),
        TrackingPlansCmd::Create { name, description } => created(
            &client,
            &TRACKING_PLANS,
            &json!({"name": name, "description": description}),
            json,
        ),
        TrackingPlansCmd::Get { id } => show(&client, &plan(&id)?, json),
        TrackingPlansCmd::Delete { id } => delete(&client, &TRACKING_PLANS, &plan(&id)?),
        TrackingPlansCmd::Rules { id } => {
            print_rows(&rules(&client, &plan(&id)?)?, RULE_COLUMNS, json);
            Ok(())
        }
        TrackingPlansCmd::SetRules {
            id,
            file,
            replace_all,
        } => {
            let id = plan(&id)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let given: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let body = match given {
                Value::Array(list) => json!({"rules": list}),
                other => other,
            };
            let path = format!("{}/{id}/rules", TRACKING_PLANS.path);
            let data = if replace_all {
                client.put(&path, &body)?
            } else {
                client.patch(&path, &body)?
            };
            let now = data["rules"].as_array().cloned().unwrap_or_default();
            print_rows(&now, RULE_COLUMNS, json);
            Ok(())
        }
        TrackingPlansCmd::RemoveRule { id, kind, key } => {
            let id = plan(&id)?;
            let body = json!({"rules": [{"type": kind.to_uppercase(), "key": key}]});
            let path = format!("{}/{id}/rules", TRACKING_PLANS.path);
            let data = client.delete_with(&path, &body)?;
            let now = data["rules"].as_array().cloned().unwrap_or_default();
            print_rows(&now, RULE_COLUMNS, json);
            Ok(())
        }
        TrackingPlansCmd::Connect { id, source } => {
            let (id, source) = (plan(&id)?, resolve(&client, &SOURCES, &source)?);
            let path = format!("{}/{id}/sources", TRACKING_PLANS.path);
            client.post(&path, &json!({"sourceId": source}))?;
            println!("tracking plan {id} is enforced on source {source}");
            Ok(())
        }
        TrackingPlansCmd::Disconnect { id, source } => {
            let (id, source) = (plan(&id)?, resolve(&client, &SOURCES, &source)?);
            let path = format!("{}/{id}/sources?sourceId={source}", TRACKING_PLANS.path);
            client.delete(&path)?;
            println!("tracking plan {id} is no longer enforced on source {source}");
            Ok(())
        }
    }
}

/// Every rule of plan `id`.
fn rules(client: &Client, id: &str) -> anyhow::Result<Vec<Value>> {
    client.list_all(&format!("{}/{id}/rules", TRACKING_PLANS.path), "rules")
}

/// The plan's fields, then its rules as a table (with --json: the plan with a `rules` list).
fn show(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let data = client.get(&format!("{}/{id}", TRACKING_PLANS.path))?;
    let mut plan = data.get(TRACKING_PLANS.one).cloned().unwrap_or(data);
    let rules = rules(client, id)?;
    if json {
        plan["rules"] = Value::Array(rules);
        println!("{plan}");
        return Ok(());
    }
    print_object(&plan, false);
    println!("rules:");
    print_rows(&rules, RULE_COLUMNS, false);
    Ok(())
}
