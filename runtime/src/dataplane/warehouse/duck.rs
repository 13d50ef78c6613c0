//! The embedded warehouse: a DuckDB file under the data directory, opened for each load and
//! closed after it (so that the `duckdb` CLI can query it between syncs). A load is one
//! transaction: schema changes, then each table's rows written as a CSV file ([`csv`]) that
//! one statement reads with DuckDB's `read_csv` and inserts (or merges: rows whose id is
//! stored are skipped). Blocking, so it runs on a sync thread (low priority, which DuckDB's
//! own threads inherit).

use std::path::Path;

use duckdb::Connection;

use super::load::{LoadError, Loaded, SourceBatch, existing, now_micros, plans};
use super::plan::TableLoad;
use super::types::Dialect;
use super::{csv, sql};

const D: Dialect = Dialect::DuckDb;

/// DuckDB's threads in a load: one, the thread the load runs on. With its default (a thread
/// per core) DuckDB's idle workers spin on its task queue's mutex and `sched_yield` while the
/// sync's other thread flattens the next chunk: on two cores that was 40% of the sync's CPU,
/// and one thread loaded 100,000 events in 9.2 s against 14-17 s (BENCHMARKS.md, issue 15).
const DUCKDB_THREADS: u32 = 1;

/// Opens (creating) the file: what `connection-state` checks.
///
/// # Errors
/// [`LoadError::Connect`] with DuckDB's reason.
pub fn connect(path: &Path) -> Result<Connection, LoadError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| LoadError::Connect(e.to_string()))?;
    }
    Connection::open(path).map_err(|e| LoadError::Connect(e.to_string()))
}

/// Loads one source's batch in one transaction.
///
/// # Errors
/// [`LoadError`] naming the table whose statement failed; nothing of the batch is committed.
pub fn load(path: &Path, batch: SourceBatch) -> Result<Loaded, LoadError> {
    let conn = connect(path)?;
    conn.execute_batch(&format!("SET threads = {DUCKDB_THREADS}"))
        .map_err(|e| LoadError::Database(e.to_string()))?;
    let files = files(path)?;
    let loaded = load_one(&conn, &files, batch);
    // The files are read by now; a leftover one is replaced by the next load.
    let _ = std::fs::remove_dir_all(&files);
    loaded
}

/// The directory a load writes its CSV files to, beside the database file (the same disk,
/// which the data directory's owner sized; not `/tmp`, often a small memory disk).
fn files(path: &Path) -> Result<std::path::PathBuf, LoadError> {
    let dir = path.with_extension("load");
    std::fs::create_dir_all(&dir)
        .map_err(|e| LoadError::Database(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

fn load_one(conn: &Connection, files: &Path, mut batch: SourceBatch) -> Result<Loaded, LoadError> {
    let db = |e: duckdb::Error| LoadError::Database(e.to_string());
    conn.execute_batch("BEGIN TRANSACTION").map_err(db)?;
    let result = (|| {
        conn.execute_batch(&sql::create_schema(&batch.schema))
            .map_err(db)?;
        let stored = columns(conn, &batch.schema).map_err(db)?;
        let schema = batch.schema.clone();
        let plans = plans(&stored, &mut batch, now_micros());
        let mut loaded = Loaded::default();
        for (n, plan) in plans.iter().enumerate() {
            let rows = table(conn, &schema, n, plan, files)
                .map_err(|e| LoadError::table(&plan.table, e))?;
            loaded.tables.insert(plan.table.clone(), rows);
            loaded
                .columns
                .insert(plan.table.clone(), plan.column_names());
        }
        Ok(loaded)
    })();
    match result {
        Ok(loaded) => {
            conn.execute_batch("COMMIT").map_err(db)?;
            Ok(loaded)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn columns(
    conn: &Connection,
    schema: &str,
) -> duckdb::Result<std::collections::HashMap<String, super::plan::Columns>> {
    let mut statement = conn.prepare(sql::columns_query(D))?;
    let rows = statement
        .query_map([schema], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<duckdb::Result<Vec<(String, String, String)>>>()?;
    Ok(existing(rows))
}

/// Why one table's load failed.
#[derive(Debug, thiserror::Error)]
enum TableFailure {
    #[error(transparent)]
    Database(#[from] duckdb::Error),
    #[error("writing its rows for read_csv: {0}")]
    File(#[from] std::io::Error),
}

/// One table: its schema changes, then its rows, written as CSV to a file in `files` and
/// read by one statement: an insert of them all into a table this load created (it holds none
/// of their ids), else the merge (the insert of the rows whose id is not stored, an anti-join;
/// `users`: the update of stored rows first). Returns the rows written.
fn table(
    conn: &Connection,
    schema: &str,
    n: usize,
    plan: &TableLoad,
    files: &Path,
) -> Result<u64, TableFailure> {
    for statement in sql::schema_changes(D, schema, plan) {
        conn.execute_batch(&statement)?;
    }
    if plan.rows.is_empty() {
        return Ok(0);
    }
    let file = files.join(format!("{n}.csv"));
    csv::write(&file, plan)?;
    let source = csv::source(&file, plan);
    let written = if plan.direct() {
        conn.execute(&sql::insert_all(schema, &source, plan), [])? as u64
    } else {
        let mut written = 0u64;
        for statement in sql::merge(schema, &source, plan) {
            written += conn.execute(&statement, [])? as u64;
        }
        written
    };
    std::fs::remove_file(&file)?;
    Ok(written)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::dataplane::pipeline::workers::Workers;

    /// The nice values of this process's threads named `name` (a thread's name is its
    /// creator's until it renames itself, and DuckDB's threads do not).
    fn nice_of_threads_named(name: &str) -> Vec<i32> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // After the name's closing parenthesis: state is field 3; nice is field 19.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            out.push(fields[16].parse().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn duckdbs_threads_inherit_the_sync_threads_priority() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.duckdb");
        let workers = Workers::named("wh-nice-test", 1, 19).unwrap();
        let seen = workers
            .run(move || {
                let conn = connect(&path).unwrap();
                conn.execute_batch("SET threads = 3").unwrap();
                conn.execute_batch("CREATE TABLE t AS SELECT range AS n FROM range(1000000)")
                    .unwrap();
                let seen = nice_of_threads_named("wh-nice-test-0");
                drop(conn);
                seen
            })
            .await
            .unwrap();
        assert!(seen.len() >= 2, "DuckDB's threads were started: {seen:?}");
        assert!(seen.iter().all(|&n| n == 19), "{seen:?}");
    }
}
