//! A warehouse: where connected sources' events are loaded into Segment's relational schema
//! (one schema per source), and what a warehouse's settings mean to the loader.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::MetadataRef;

/// The sync interval when a warehouse's settings name none: hourly, as Segment's Business tier.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 3600;

/// A warehouse.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Warehouse {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Catalog type (`postgres` or `duckdb`).
    pub metadata: MetadataRef,
    /// Always `default`.
    pub workspace_id: String,
    /// Whether loads run.
    pub enabled: bool,
    /// Connection settings (checked against the type's options).
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Connected sources.
    pub source_ids: Vec<String>,
    /// Selective sync: what is left out (a source, a collection of it, or one property).
    #[serde(default)]
    pub sync_overrides: Vec<SyncOverride>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// One selective sync setting, as Segment's `syncOverrides` item: the whole source when
/// `collection` is absent, a table when `property` is absent, else one column.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncOverride {
    /// The source.
    pub source_id: String,
    /// A table (`tracks`, `order_completed`), as loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// A column of that table, as loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Whether it loads.
    pub enabled: bool,
}

impl Warehouse {
    /// How often it syncs: the `syncIntervalSeconds` setting, else hourly.
    pub fn sync_interval_secs(&self) -> u64 {
        self.settings
            .get("syncIntervalSeconds")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_SYNC_INTERVAL_SECS)
    }

    /// A string setting.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(Value::as_str)
    }

    /// Whether selective sync lets `source_id`'s `collection` (and `property` of it) load.
    /// The most specific override wins; nothing is turned off by default.
    pub fn syncs(&self, source_id: &str, collection: Option<&str>, property: Option<&str>) -> bool {
        let level = |o: &SyncOverride| match (&o.collection, &o.property) {
            (None, None) => Some(0),
            (Some(c), None) if Some(c.as_str()) == collection => Some(1),
            (Some(c), Some(p))
                if Some(c.as_str()) == collection && Some(p.as_str()) == property =>
            {
                Some(2)
            }
            _ => None,
        };
        let mut best: Option<(u8, bool)> = None;
        for o in self
            .sync_overrides
            .iter()
            .filter(|o| o.source_id == source_id)
        {
            if let Some(l) = level(o)
                && best.is_none_or(|(b, _)| l >= b)
            {
                best = Some((l, o.enabled));
            }
        }
        // A source turned off leaves out all of it, whatever a table's own setting says.
        let source_off = self
            .sync_overrides
            .iter()
            .any(|o| o.source_id == source_id && o.collection.is_none() && !o.enabled);
        !source_off && best.is_none_or(|(_, enabled)| enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn warehouse(overrides: Value) -> Warehouse {
        serde_json::from_value(json!({
            "id": "w", "name": "w", "workspaceId": "default", "enabled": true,
            "metadata": {"id": "duckdb", "name": "DuckDB", "slug": "duckdb", "description": "", "categories": []},
            "settings": {"syncIntervalSeconds": 5}, "sourceIds": ["s"], "syncOverrides": overrides,
            "createdAt": "", "updatedAt": ""
        }))
        .unwrap()
    }

    #[test]
    fn selective_sync_most_specific_wins_and_a_source_off_is_all_off() {
        let w = warehouse(json!([
            {"sourceId": "s", "collection": "tracks", "enabled": false},
            {"sourceId": "s", "collection": "tracks", "property": "event", "enabled": true},
            {"sourceId": "s", "collection": "pages", "property": "url", "enabled": false}
        ]));
        assert_eq!(w.sync_interval_secs(), 5);
        assert!(w.syncs("s", None, None));
        assert!(!w.syncs("s", Some("tracks"), None));
        assert!(w.syncs("s", Some("tracks"), Some("event")));
        assert!(w.syncs("s", Some("pages"), None));
        assert!(!w.syncs("s", Some("pages"), Some("url")));
        assert!(w.syncs("other", Some("tracks"), None));
        let off = warehouse(json!([
            {"sourceId": "s", "enabled": false},
            {"sourceId": "s", "collection": "pages", "enabled": true}
        ]));
        assert!(!off.syncs("s", Some("pages"), None));
    }
}
