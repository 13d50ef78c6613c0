//! How far the pipeline is behind ingestion, counted in records of the ingest log (requests):
//! what ingestion's pacing ([`super::DataPlaneConfig::pipeline_lead`]) compares with the lead.
//!
//! Why not subtract the pipeline's committed position from the log's end: positions are
//! opaque (byte offsets in a [`crate::log::SegmentLog`], so a difference is bytes, not
//! requests; a lead of 48 then meant "any record not yet through the pipeline", and every
//! acknowledgement waited for the pipeline to finish the records before it). Here each record
//! appended by this process is remembered by position until the pipeline commits past it.
//! Like [`super::backlog::Backlog`], records in the log from before a restart are not counted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, PoisonError};

/// The positions of ingest log records not yet committed by the pipeline. One mutex, taken
/// once per request and once per pacing check; holds at most the records the pipeline is
/// behind by.
pub struct Lead {
    /// Off (a cluster, or `pipeline_lead` 0): nothing is remembered.
    enabled: bool,
    /// Smallest position first.
    pending: Mutex<BinaryHeap<Reverse<u64>>>,
}

impl Lead {
    /// Counting when `enabled`; otherwise every call is free and [`Lead::behind`] is 0.
    pub fn new(enabled: bool) -> Lead {
        Lead {
            enabled,
            pending: Mutex::new(BinaryHeap::new()),
        }
    }

    /// Records appended to the ingest log at `positions`. Cost: a heap push each.
    pub fn appended(&self, positions: &[u64]) {
        if !self.enabled {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend(positions.iter().map(|p| Reverse(*p)));
    }

    /// How many remembered records start at or after `committed`, the pipeline's committed
    /// position (the ones before it are forgotten). Cost: a heap pop per forgotten record.
    pub fn behind(&self, committed: u64) -> u64 {
        if !self.enabled {
            return 0;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        while pending.peek().is_some_and(|Reverse(p)| *p < committed) {
            pending.pop();
        }
        pending.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_records_not_bytes_and_forgets_what_was_committed() {
        let lead = Lead::new(true);
        // Three records of ~100 KB each: three behind, whatever their size.
        lead.appended(&[200_000, 0]);
        lead.appended(&[100_000]);
        assert_eq!(lead.behind(0), 3);
        assert_eq!(lead.behind(100_000), 2);
        assert_eq!(lead.behind(300_000), 0);
        let off = Lead::new(false);
        off.appended(&[0, 1]);
        assert_eq!(off.behind(0), 0);
    }
}
