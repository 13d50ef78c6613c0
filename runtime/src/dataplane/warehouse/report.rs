//! Sync reports, shaped as Segment's `SyncV1` (source, start, end, status, duration, count,
//! notices) plus the rows written per table, kept in sled (`wh.syncs`, keyed
//! `<warehouse>/<time-ordered id>`, the newest [`KEEP`] per warehouse); and the tables and
//! columns each source has loaded (`wh.collections`), which selective sync lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::workspace::{new_id, now};

/// Reports kept per warehouse.
pub const KEEP: usize = 500;

/// How a sync of one source ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncStatus {
    /// Everything staged was loaded.
    Success,
    /// The load failed: nothing of the failed part was committed; it is retried.
    Failed,
}

/// A note on a sync (`level` `info`, `warning` or `error`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// `info`, `warning` or `error`.
    pub level: String,
    /// What happened.
    pub message: String,
    /// When.
    pub created_at: String,
}

/// One source's part of one sync.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Report id (time-ordered).
    pub id: String,
    /// The warehouse.
    pub warehouse_id: String,
    /// The source.
    pub source_id: String,
    /// When the sync started (RFC 3339).
    pub start: String,
    /// When it ended.
    pub end: Option<String>,
    /// How it ended.
    pub status: SyncStatus,
    /// Seconds it took.
    pub duration: f64,
    /// The same for people (`1.2s`).
    pub human_duration: String,
    /// Events of this source the sync took from staging.
    pub count: u64,
    /// Rows written per table.
    pub tables: BTreeMap<String, u64>,
    /// What to know: values sent to `discards`, the error of a failed load.
    pub notices: Vec<Notice>,
}

impl SyncReport {
    /// A report of `source_id` that started at `start`.
    pub fn new(warehouse_id: &str, source_id: &str, start: &str) -> SyncReport {
        SyncReport {
            id: new_id(),
            warehouse_id: warehouse_id.to_string(),
            source_id: source_id.to_string(),
            start: start.to_string(),
            end: None,
            status: SyncStatus::Success,
            duration: 0.0,
            human_duration: String::new(),
            count: 0,
            tables: BTreeMap::new(),
            notices: Vec::new(),
        }
    }

    /// Adds a notice.
    pub fn notice(&mut self, level: &str, message: impl Into<String>) {
        self.notices.push(Notice {
            level: level.to_string(),
            message: message.into(),
            created_at: now(),
        });
    }

    /// Marks it ended after `seconds`.
    pub fn finish(&mut self, seconds: f64) {
        self.end = Some(now());
        self.duration = (seconds * 1000.0).round() / 1000.0;
        self.human_duration = if seconds < 60.0 {
            format!("{seconds:.1}s")
        } else {
            format!(
                "{}m{:02}s",
                (seconds / 60.0) as u64,
                (seconds % 60.0) as u64
            )
        };
    }
}

/// The reports and the loaded collections in sled.
#[derive(Clone)]
pub struct Reports {
    syncs: sled::Tree,
    collections: sled::Tree,
}

impl Reports {
    /// Opens the trees.
    ///
    /// # Errors
    /// sled cannot open a tree.
    pub fn open(db: &sled::Db) -> Result<Reports, sled::Error> {
        Ok(Reports {
            syncs: db.open_tree("wh.syncs")?,
            collections: db.open_tree("wh.collections")?,
        })
    }

    /// Stores `report` and forgets the warehouse's oldest past [`KEEP`]. Cost: one insert,
    /// and a key scan of the warehouse's reports.
    ///
    /// # Errors
    /// sled failed.
    pub fn record(&self, report: &SyncReport) -> Result<(), sled::Error> {
        let prefix = format!("{}/", report.warehouse_id);
        let key = format!("{prefix}{}", report.id);
        let value = serde_json::to_vec(report).unwrap_or_default();
        self.syncs.insert(key.as_bytes(), value)?;
        let keys: Vec<sled::IVec> = self
            .syncs
            .scan_prefix(prefix.as_bytes())
            .keys()
            .collect::<Result<_, _>>()?;
        for old in keys.iter().take(keys.len().saturating_sub(KEEP)) {
            self.syncs.remove(old)?;
        }
        Ok(())
    }

    /// A warehouse's reports, newest first, of one source when `source_id` is given.
    ///
    /// # Errors
    /// sled failed.
    pub fn list(
        &self,
        warehouse_id: &str,
        source_id: Option<&str>,
    ) -> Result<Vec<SyncReport>, sled::Error> {
        let mut out = Vec::new();
        for item in self
            .syncs
            .scan_prefix(format!("{warehouse_id}/").as_bytes())
            .rev()
        {
            let (_, value) = item?;
            let Ok(report) = serde_json::from_slice::<SyncReport>(&value) else {
                continue;
            };
            if source_id.is_none_or(|s| s == report.source_id) {
                out.push(report);
            }
        }
        Ok(out)
    }

    /// Adds what a load wrote to the tables and columns `source_id` has loaded.
    ///
    /// # Errors
    /// sled failed.
    pub fn add_collections(
        &self,
        warehouse_id: &str,
        source_id: &str,
        loaded: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), sled::Error> {
        let key = format!("{warehouse_id}/{source_id}");
        let mut known = self.collections(warehouse_id, source_id)?;
        for (table, columns) in loaded {
            let entry = known.entry(table.clone()).or_default();
            for c in columns {
                if !entry.contains(c) {
                    entry.push(c.clone());
                }
            }
        }
        self.collections.insert(
            key.as_bytes(),
            serde_json::to_vec(&known).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// The tables (and their columns) `source_id` has loaded into the warehouse.
    ///
    /// # Errors
    /// sled failed.
    pub fn collections(
        &self,
        warehouse_id: &str,
        source_id: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, sled::Error> {
        let key = format!("{warehouse_id}/{source_id}");
        Ok(self
            .collections
            .get(key.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }
}
