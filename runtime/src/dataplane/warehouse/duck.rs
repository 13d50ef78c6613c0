//! The embedded warehouse: a DuckDB file under the data directory, opened for a sync and
//! closed after it ([`Session`]; so that the `duckdb` CLI can query it between syncs). A load is one
//! transaction: schema changes, then each table's rows, which the flattening thread made an
//! Arrow record batch ([`columnar`]), handed to DuckDB's appender: straight into a table the
//! load created, else into a temporary table merged from (rows whose id is stored are
//! skipped). Blocking, so it runs on a sync thread (low priority, which DuckDB's own threads
//! inherit).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use duckdb::Connection;
use duckdb::arrow::record_batch::RecordBatch;

use super::catalog::{Catalog, unchanged};
use super::load::{Bulk, LoadError, Loaded, SourceLoad, TableBatch, existing};
use super::naming::quote;
use super::sql;
use super::types::Dialect;

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

/// How much write-ahead log a sync lets grow before DuckDB checkpoints. A checkpoint
/// recompresses every table's last row group (up to 122,880 rows): after each load that was
/// most of a load's time, growing with the tables (a load of 8,000 events took 0.9 s against
/// 0.2 s for the flattening, BENCHMARKS.md, issue 15). With this, a sync checkpoints about
/// once per 256 MiB it writes, and when it ends; what is committed is durable in the log.
const CHECKPOINT_THRESHOLD: &str = "256MB";

/// A sync's connection to the file: opened by its first use, then every load of the sync
/// runs on it, and [`Session::close`] checkpoints once and closes it (so that the `duckdb`
/// CLI can open the file between syncs). Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct Session {
    path: PathBuf,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl Session {
    /// A session on the file at `path` (nothing is opened yet).
    pub fn new(path: PathBuf) -> Session {
        Session {
            path,
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every table's columns in the file, for a sync's [`Catalog`]. Blocking.
    ///
    /// # Errors
    /// [`LoadError`] when the file cannot be opened or read.
    pub fn catalog(&self) -> Result<Catalog, LoadError> {
        self.with(|conn| {
            let db = |e: duckdb::Error| LoadError::Database(e.to_string());
            let mut statement = conn.prepare(sql::catalog_query(D)).map_err(db)?;
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(db)?;
            Ok(Catalog::from_rows(rows))
        })
    }

    /// Loads one source's share of a chunk in one transaction. Blocking.
    ///
    /// # Errors
    /// [`LoadError`] naming the table whose statement failed; nothing of the batch is
    /// committed.
    pub fn load(&self, batch: SourceLoad) -> Result<Loaded, LoadError> {
        self.with(|conn| load_one(conn, &batch))
    }

    /// Checkpoints what the sync wrote and closes the file. Blocking.
    ///
    /// # Errors
    /// The checkpoint failed (what was committed stays in DuckDB's log, replayed when the
    /// file is next opened).
    pub fn close(&self) -> Result<(), LoadError> {
        let conn = self.conn.lock().map_err(|_| lost())?.take();
        match conn {
            Some(conn) => conn
                .execute_batch("CHECKPOINT")
                .map_err(|e| LoadError::Database(e.to_string())),
            None => Ok(()),
        }
    }

    /// Runs `f` on the session's connection, opening it first if need be.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, LoadError>) -> Result<T, LoadError> {
        let mut slot = self.conn.lock().map_err(|_| lost())?;
        let conn = match slot.take() {
            Some(conn) => conn,
            None => open(&self.path)?,
        };
        let out = f(&conn);
        *slot = Some(conn);
        out
    }
}

/// A panic on another sync thread held the session's lock.
fn lost() -> LoadError {
    LoadError::Database("the warehouse's connection was lost to a panic in a load".into())
}

/// The file opened for a sync's loads.
fn open(path: &Path) -> Result<Connection, LoadError> {
    let conn = connect(path)?;
    conn.execute_batch(&format!(
        "SET threads = {DUCKDB_THREADS}; SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'"
    ))
    .map_err(|e| LoadError::Database(e.to_string()))?;
    Ok(conn)
}

fn load_one(conn: &Connection, batch: &SourceLoad) -> Result<Loaded, LoadError> {
    let db = |e: duckdb::Error| LoadError::Database(e.to_string());
    conn.execute_batch("BEGIN TRANSACTION").map_err(db)?;
    let result = (|| {
        conn.execute_batch(&sql::create_schema(&batch.schema))
            .map_err(db)?;
        unchanged(&columns(conn, &batch.schema).map_err(db)?, &batch.assumed)?;
        let mut loaded = Loaded::default();
        for table in &batch.tables {
            let plan = &table.plan;
            let rows =
                write(conn, &batch.schema, table).map_err(|e| LoadError::table(&plan.table, e))?;
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

/// The temporary table a merge's rows are appended to.
const STAGE: &str = "_sluice_stage";
/// The temporary table a batch's ids are appended to, to ask whether any is stored.
const IDS: &str = "_sluice_ids";

/// One table: its schema changes, then its rows through the appender. A batch none of whose
/// ids are stored (always, in a table this load created) goes straight into the table; one
/// that meets stored rows (a replay, or `users`' upsert) goes into [`STAGE`] and is merged
/// from there (the insert of the rows whose id is not stored, an anti-join; `users`: the
/// update of stored rows first). Returns the rows written.
fn write(conn: &Connection, schema: &str, table: &TableBatch) -> Result<u64, duckdb::Error> {
    let plan = &table.plan;
    for statement in sql::schema_changes(D, schema, plan) {
        conn.execute_batch(&statement)?;
    }
    // The sync encodes every table for its warehouse's database: a DuckDB load has batches.
    let Bulk::Arrow(rows) = &table.bulk else {
        return Ok(0);
    };
    if table.rows == 0 {
        return Ok(0);
    }
    let columns: Vec<&str> = plan.columns.iter().map(|(c, _)| c.as_str()).collect();
    if plan.direct() || (!plan.upsert && !stored_any(conn, schema, &plan.table, rows)?) {
        let appender = conn.appender_with_columns_to_db(&plan.table, schema, &columns)?;
        append(appender, rows)?;
        return Ok(table.rows);
    }
    conn.execute_batch(&sql::create_stage(D, STAGE, plan))?;
    append(
        conn.appender_to_catalog_and_db(STAGE, "temp", "main")?,
        rows,
    )?;
    let mut written = 0u64;
    for statement in sql::merge(schema, &temporary(STAGE), plan) {
        written += conn.execute(&statement, [])? as u64;
    }
    Ok(written)
}

/// Whether `schema.table` holds a row with any of the batch's ids (its first column): the
/// ids appended to [`IDS`], then one hash join with the table's `id` column.
fn stored_any(
    conn: &Connection,
    schema: &str,
    table: &str,
    rows: &RecordBatch,
) -> Result<bool, duckdb::Error> {
    let ids = rows
        .project(&[0])
        .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute_batch(&sql::create_ids(IDS))?;
    append(conn.appender_to_catalog_and_db(IDS, "temp", "main")?, &ids)?;
    conn.query_row(
        &sql::stored_any_of(schema, table, &temporary(IDS)),
        [],
        |r| r.get(0),
    )
}

/// `rows` through `appender`, flushed.
fn append(mut appender: duckdb::Appender<'_>, rows: &RecordBatch) -> Result<(), duckdb::Error> {
    // A clone of a batch shares its columns.
    appender.append_record_batch(rows.clone())?;
    appender.flush()
}

/// A temporary table's qualified name.
fn temporary(table: &str) -> String {
    format!("temp.main.{}", quote(table))
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
