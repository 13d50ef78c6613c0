//! Events accepted but not yet settled, per source: what ingestion's back-pressure (429)
//! compares with the bound. In memory: an event counts from its acceptance until its pipeline
//! stage and every delivery it produced are settled (delivered, dropped or dead-lettered).
//! At start it holds what is parked; events in the logs from before a restart are not
//! counted (the logs themselves are bounded by the disk).

use std::collections::HashMap;
use std::sync::Mutex;

/// Pending events per source. One mutex; a few operations per batch.
pub struct Backlog {
    pending: Mutex<HashMap<String, usize>>,
}

impl Backlog {
    /// Starting from `pending`.
    pub fn new(pending: HashMap<String, usize>) -> Backlog {
        Backlog {
            pending: Mutex::new(pending),
        }
    }

    /// Events pending for `source_id`.
    pub fn pending(&self, source_id: &str) -> usize {
        self.pending
            .lock()
            .map(|p| p.get(source_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// `add` more pending for `source_id` and `remove` settled.
    pub fn adjust(&self, source_id: &str, add: usize, remove: usize) {
        if add == remove {
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            let n = p.entry(source_id.to_string()).or_default();
            *n = (*n + add).saturating_sub(remove);
            if *n == 0 {
                p.remove(source_id);
            }
        }
    }
}
