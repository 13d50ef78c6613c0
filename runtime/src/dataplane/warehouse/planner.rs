//! A chunk's flattened rows planned against the catalog and encoded, source by source (each
//! against the tables as the sources and chunks before it leave them), a source's tables in
//! parallel on the sync threads: one table's plan needs nothing of another's, and on two
//! cores planning and encoding (a fifth of a sync's CPU) would otherwise run on one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::join_all;

use super::catalog::Catalog;
use super::flatten::{Names, Row};
use super::load::{Encoding, LoadError, SourceBatch, SourceLoad, TableBatch, now_micros};
use super::plan::{self, Columns, DISCARDS};
use super::{SyncError, naming};
use crate::dataplane::DataPlane;
use crate::dataplane::pipeline::workers::Workers;
use crate::workspace::{Kind, Source, Warehouse};

/// What plans the chunks of one sync, handed from each chunk to the next: the chunks are
/// planned in order, each against the tables as the ones before it leave them.
pub struct Planner {
    /// The warehouse's tables, as the chunks planned so far leave them.
    catalog: Catalog,
    /// How the loads take their rows.
    encoding: Encoding,
    /// Source id -> slug, as known so far in this sync (each source is looked up once).
    slugs: HashMap<String, String>,
    /// Column names worked out so far, one cache per part a chunk flattens in (lent to the
    /// parts while they flatten).
    pub(super) names: Vec<Names>,
}

/// A source's share of a chunk: the events taken, and what loads them (or why nothing can).
pub type Share = (u64, Result<SourceLoad, LoadError>);

/// Source -> (events taken, table -> rows): a chunk, or a part of one, flattened.
pub type Flat = BTreeMap<String, (u64, BTreeMap<String, Vec<Row>>)>;

/// One table's rows to plan, with the columns the catalog has for it (`None`: no table).
struct Job {
    table: String,
    rows: Vec<Row>,
    existing: Option<Columns>,
}

/// A table planned and encoded (or why not), and the values it refused.
type Done = (String, Result<TableBatch, LoadError>, Vec<Row>);

impl Planner {
    /// A sync's planner, from the tables it read when it started; chunks flatten in `parts`
    /// parts, and a source's tables are planned in as many jobs.
    pub fn new(catalog: Catalog, encoding: Encoding, parts: usize) -> Planner {
        Planner {
            catalog,
            encoding,
            slugs: HashMap::new(),
            names: (0..parts.max(1)).map(|_| Names::default()).collect(),
        }
    }

    /// A flattened chunk planned and encoded, source by source, each source's tables on
    /// `workers` at once; the planner comes back for the next chunk.
    ///
    /// # Errors
    /// A source could not be looked up, or a sync thread was lost.
    pub async fn chunk(
        mut self,
        workers: &Workers,
        plane: Arc<DataPlane>,
        warehouse: Arc<Warehouse>,
        flat: Flat,
    ) -> Result<(BTreeMap<String, Share>, Planner), SyncError> {
        let (sources, mut planner) = workers
            .run(move || {
                let sources = self.batches(&plane, &warehouse, flat);
                sources.map(|sources| (sources, self))
            })
            .await??;
        let now = now_micros();
        let mut shares = BTreeMap::new();
        for (source_id, count, batch) in sources {
            let share = planner.plan(workers, batch, now).await?;
            shares.insert(source_id, (count, share));
        }
        Ok((shares, planner))
    }

    /// Each source's batch (its schema named from its slug), by source id. Blocking: a
    /// source met for the first time in this sync is looked up in the store.
    ///
    /// # Errors
    /// A source could not be looked up.
    fn batches(
        &mut self,
        plane: &DataPlane,
        warehouse: &Warehouse,
        flat: Flat,
    ) -> Result<Vec<(String, u64, SourceBatch)>, SyncError> {
        let prefix = warehouse.setting("schemaPrefix").unwrap_or("");
        let mut out = Vec::with_capacity(flat.len());
        for (source_id, (count, tables)) in flat {
            let schema = naming::schema(prefix, self.slug(plane, &source_id)?);
            out.push((source_id, count, SourceBatch { schema, tables }));
        }
        Ok(out)
    }

    /// `source_id`'s slug (looked up once per sync).
    fn slug(&mut self, plane: &DataPlane, source_id: &str) -> Result<&str, SyncError> {
        if !self.slugs.contains_key(source_id) {
            let slug = plane
                .store
                .get::<Source>(Kind::Source, source_id)?
                .map_or_else(|| format!("source_{source_id}"), |s| s.slug);
            self.slugs.insert(source_id.to_string(), slug);
        }
        Ok(self.slugs.get(source_id).map_or("", String::as_str))
    }

    /// `batch` planned and encoded, its tables spread over as many jobs on `workers` as a
    /// chunk has parts, its `discards` last; the catalog takes the plans' changes in. Cost:
    /// one pass over the cells, split about evenly by rows between the jobs.
    ///
    /// # Errors
    /// A sync thread was lost; a table that cannot be encoded is the share's error.
    async fn plan(
        &mut self,
        workers: &Workers,
        batch: SourceBatch,
        now: i64,
    ) -> Result<Result<SourceLoad, LoadError>, SyncError> {
        let SourceBatch { schema, tables } = batch;
        let jobs = tables.into_iter().map(|(table, rows)| Job {
            existing: self.catalog.columns(&schema, &table).cloned(),
            table,
            rows,
        });
        let encoding = self.encoding;
        let bins = bins(jobs.collect(), self.names.len());
        let planned = bins
            .into_iter()
            .map(|bin| workers.run(move || run(bin, now, encoding)));
        let mut done: Vec<Done> = Vec::new();
        for bin in join_all(planned).await {
            done.extend(bin?);
        }
        // In table order, as one job would have made them (discards' rows included).
        done.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tables = Vec::with_capacity(done.len() + 1);
        let mut discards = Vec::new();
        for (_, table, refused) in done {
            tables.push(table);
            discards.extend(refused);
        }
        if !discards.is_empty() {
            let existing = self.catalog.columns(&schema, DISCARDS).cloned();
            let job = Job {
                table: DISCARDS.to_string(),
                rows: discards,
                existing,
            };
            let (_, table, _) = workers.run(move || plan_one(job, now, encoding)).await?;
            tables.push(table);
        }
        let tables = match tables.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(tables) => tables,
            Err(e) => return Ok(Err(e)),
        };
        let assumed = self
            .catalog
            .take_in(&schema, tables.iter().map(|t| &t.plan));
        Ok(Ok(SourceLoad {
            schema,
            assumed,
            tables,
        }))
    }
}

/// `jobs` in `parts` bins of about as many rows each (the largest first, each into the
/// lightest bin); empty bins left out.
fn bins(mut jobs: Vec<Job>, parts: usize) -> Vec<Vec<Job>> {
    jobs.sort_by_key(|job| std::cmp::Reverse(job.rows.len()));
    let mut bins: Vec<(usize, Vec<Job>)> = (0..parts.max(1)).map(|_| (0, Vec::new())).collect();
    for job in jobs {
        if let Some(bin) = bins.iter_mut().min_by_key(|(rows, _)| *rows) {
            bin.0 += job.rows.len();
            bin.1.push(job);
        }
    }
    bins.into_iter()
        .map(|(_, jobs)| jobs)
        .filter(|jobs| !jobs.is_empty())
        .collect()
}

/// A bin's tables planned and encoded, one after another.
fn run(bin: Vec<Job>, now: i64, encoding: Encoding) -> Vec<Done> {
    bin.into_iter()
        .map(|job| plan_one(job, now, encoding))
        .collect()
}

/// One table planned and encoded; the values it refused, for `discards`.
fn plan_one(job: Job, now: i64, encoding: Encoding) -> Done {
    let mut refused = Vec::new();
    let load = plan::table(
        &job.table,
        job.existing.as_ref(),
        job.rows,
        now,
        &mut refused,
    );
    (job.table, TableBatch::encode(load, encoding), refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(table: &str, rows: usize) -> Job {
        Job {
            table: table.into(),
            rows: vec![Row::default(); rows],
            existing: None,
        }
    }

    fn shape(bins: &[Vec<Job>]) -> Vec<Vec<&str>> {
        bins.iter()
            .map(|b| b.iter().map(|j| j.table.as_str()).collect())
            .collect()
    }

    #[test]
    fn tables_spread_by_rows_the_largest_first() {
        let jobs = vec![job("a", 1), job("b", 10), job("c", 6), job("d", 5)];
        assert_eq!(shape(&bins(jobs, 2)), [vec!["b", "a"], vec!["c", "d"]]);
        assert_eq!(shape(&bins(vec![job("a", 3)], 4)), [vec!["a"]]);
        assert!(bins(Vec::new(), 2).is_empty());
    }
}
