//! One chunk of a warehouse's staging log made ready to load, on the sync threads: read,
//! flattened in parts at once (flattening an event needs nothing of the warehouse), then
//! planned against the catalog and encoded ([`super::planner`]), in chunk order (each
//! chunk's plans assume the tables the chunks before it leave).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::flatten::{Json, Names, Row, rows, wanted_by};
use super::planner::{Flat, Planner, Share};
use super::{SyncError, stage};
use crate::dataplane::DataPlane;
use crate::dataplane::pipeline::workers::Workers;
use crate::log::SegmentLog;
use crate::workspace::Warehouse;

/// Staging records per chunk (each holds up to 1,000 events); [`CHUNK_BYTES`] is usually
/// reached first.
pub const CHUNK_RECORDS: usize = 200;
/// The most staged bytes per chunk (two chunks are in memory at once: one loading, one read
/// ahead). Small enough that the chunks pipeline (the first chunk's preparation and the last
/// one's load overlap nothing): 100,000 sample events loaded into PostgreSQL in 2.9 s in
/// 16 MiB chunks against 3.8 s in 64 MiB ones (BENCHMARKS.md, issue 15).
pub const CHUNK_BYTES: usize = 16 << 20;
/// The most parts a chunk is flattened in at once.
pub const MAX_PARTS: usize = 4;

/// How many parts a chunk flattens in (and a source's tables plan in): one per core, up to
/// [`MAX_PARTS`].
pub fn parts() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_PARTS))
}

/// A chunk of the staging log, read, flattened, planned and encoded.
pub struct Chunk {
    /// Source -> its share.
    pub batches: BTreeMap<String, Share>,
    /// The staging position after it (committed once it is loaded).
    pub next: u64,
    /// What plans the next chunk.
    pub planner: Planner,
}

/// Some of one source's staged events.
struct Staged {
    source_id: String,
    events: Vec<Bytes>,
}

/// Reads the chunk at `from`, flattens it in parts on as many sync threads, then plans and
/// encodes it, each source's tables in as many jobs; `None` when nothing is staged there.
/// Each step runs on the sync threads (low priority): seconds of CPU per chunk that on a
/// runtime worker would hold up the requests and deliveries queued behind it.
///
/// # Errors
/// The staging log, a record, the store or a sync thread failed.
pub async fn prepare(
    plane: Arc<DataPlane>,
    warehouse: Arc<Warehouse>,
    staging: Arc<SegmentLog>,
    from: u64,
    planner: Planner,
) -> Result<Option<Chunk>, SyncError> {
    let workers = plane.warehouses.workers.clone();
    let Some((staged, next)) = workers.run(move || read(&staging, from)).await?? else {
        return Ok(None);
    };
    let (flat, planner) = flatten_parts(&workers, &warehouse, staged, planner).await?;
    let (batches, planner) = planner.chunk(&workers, plane, warehouse, flat).await?;
    Ok(Some(Chunk {
        batches,
        next,
        planner,
    }))
}

/// `staged` flattened in as many parts as `planner` has name caches, each on a sync thread,
/// merged in order.
async fn flatten_parts(
    workers: &Workers,
    warehouse: &Arc<Warehouse>,
    staged: Vec<Staged>,
    mut planner: Planner,
) -> Result<(Flat, Planner), SyncError> {
    let names = std::mem::take(&mut planner.names);
    let parts = split(staged, names.len()).into_iter().zip(names);
    let flattened = parts.map(|(part, names)| {
        let warehouse = warehouse.clone();
        workers.run(move || flatten(&warehouse, part, names))
    });
    let mut flat = Flat::new();
    for part in futures_util::future::join_all(flattened).await {
        let (part, names) = part?;
        planner.names.push(names);
        merge(&mut flat, part);
    }
    Ok((flat, planner))
}

/// The chunk's records at `from`, decoded, with the position after them.
fn read(staging: &SegmentLog, from: u64) -> Result<Option<(Vec<Staged>, u64)>, SyncError> {
    let records = staging.read_blocking(from, CHUNK_RECORDS, CHUNK_BYTES)?;
    let Some(next) = records.last().map(|r| r.next) else {
        return Ok(None);
    };
    let staged = records
        .into_iter()
        .map(|record| {
            let (source_id, events) = stage::decode(record.payload)?;
            Ok(Staged { source_id, events })
        })
        .collect::<Result<Vec<_>, SyncError>>()?;
    Ok(Some((staged, next)))
}

/// `staged` in `parts` runs of about as many events each, in order (a record may be cut).
fn split(staged: Vec<Staged>, parts: usize) -> Vec<Vec<Staged>> {
    let parts = parts.max(1);
    let total: usize = staged.iter().map(|s| s.events.len()).sum();
    let per = total.div_ceil(parts).max(1);
    let mut out = Vec::with_capacity(parts);
    let (mut part, mut room) = (Vec::new(), per);
    for mut s in staged {
        while s.events.len() > room {
            let rest = s.events.split_off(room);
            let head = std::mem::replace(&mut s.events, rest);
            if !head.is_empty() {
                let source_id = s.source_id.clone();
                part.push(Staged {
                    source_id,
                    events: head,
                });
            }
            out.push(std::mem::take(&mut part));
            room = per;
        }
        room -= s.events.len();
        part.push(s);
    }
    out.push(part);
    out.resize_with(parts, Vec::new);
    out
}

/// One part's events flattened, with selective sync and the per-event `Warehouses` switch
/// applied; `names` comes back for the next chunk's part.
fn flatten(warehouse: &Warehouse, part: Vec<Staged>, mut names: Names) -> (Flat, Names) {
    let mut out = Flat::new();
    for Staged { source_id, events } in part {
        let syncs = warehouse.syncs(&source_id, None, None);
        let entry = out.entry(source_id.clone()).or_default();
        entry.0 += events.len() as u64;
        if !syncs {
            continue;
        }
        let selective = warehouse
            .sync_overrides
            .iter()
            .any(|o| o.source_id == source_id);
        for json in events {
            let Some(event) = Json::event(&json) else {
                continue;
            };
            if !wanted_by(&event, &warehouse.id) {
                continue;
            }
            for (table, row) in rows(&event, &mut names) {
                let row = if selective {
                    selected(warehouse, &source_id, &table, row)
                } else {
                    Some(row)
                };
                if let Some(row) = row {
                    entry.1.entry(table).or_default().push(row);
                }
            }
        }
    }
    (out, names)
}

/// `row` of `table` as selective sync leaves it (its columns turned off removed); `None`
/// when the table is turned off.
fn selected(warehouse: &Warehouse, source_id: &str, table: &str, mut row: Row) -> Option<Row> {
    let syncs = |column: Option<&str>| warehouse.syncs(source_id, Some(table), column);
    if !syncs(None) {
        return None;
    }
    row.cells.retain(|c| c == "id" || syncs(Some(c)));
    Some(row)
}

/// `part` after what `into` holds (rows keep their order: the first of an id is kept, later
/// traits win).
fn merge(into: &mut Flat, part: Flat) {
    for (source_id, (count, tables)) in part {
        let entry = into.entry(source_id).or_default();
        entry.0 += count;
        for (table, rows) in tables {
            entry.1.entry(table).or_default().extend(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(source_id: &str, n: usize) -> Staged {
        Staged {
            source_id: source_id.into(),
            events: (0..n)
                .map(|i| Bytes::from(format!("{source_id}{i}")))
                .collect(),
        }
    }

    fn shape(parts: &[Vec<Staged>]) -> Vec<Vec<(String, usize)>> {
        parts
            .iter()
            .map(|p| {
                p.iter()
                    .map(|s| (s.source_id.clone(), s.events.len()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_chunk_splits_into_even_runs_in_order() {
        let parts = split(vec![staged("a", 3), staged("b", 5), staged("c", 2)], 2);
        let shape = shape(&parts);
        assert_eq!(
            shape,
            [
                vec![("a".into(), 3), ("b".into(), 2)],
                vec![("b".into(), 3), ("c".into(), 2)]
            ]
        );
        let events: Vec<Bytes> = parts.into_iter().flatten().flat_map(|s| s.events).collect();
        let expected: Vec<Bytes> = ["a0", "a1", "a2", "b0", "b1", "b2", "b3", "b4", "c0", "c1"]
            .into_iter()
            .map(Bytes::from)
            .collect();
        assert_eq!(events, expected);
    }

    #[test]
    fn few_events_leave_parts_empty_and_one_record_can_fill_several() {
        assert_eq!(
            shape(&split(vec![staged("a", 1)], 3)),
            [vec![("a".into(), 1)], vec![], vec![]]
        );
        assert_eq!(
            shape(&split(vec![staged("a", 7)], 3)),
            [
                vec![("a".into(), 3)],
                vec![("a".into(), 3)],
                vec![("a".into(), 1)]
            ]
        );
        assert_eq!(shape(&split(Vec::new(), 2)), [vec![], vec![]]);
    }
}
