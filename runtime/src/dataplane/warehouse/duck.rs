//! The embedded warehouse: a DuckDB file under the data directory, opened for each load and
//! closed after it (so that the `duckdb` CLI can query it between syncs). A load is one
//! transaction: schema changes, each table's rows through DuckDB's appender into a staging
//! table, then the merge; blocking, so it runs on a blocking thread.

use std::path::Path;

use duckdb::ToSql;
use duckdb::types::{TimeUnit, ToSqlOutput, ValueRef};
use duckdb::{Connection, appender_params_from_iter};

use super::load::{LoadError, Loaded, SourceBatch, existing, now_micros, plans};
use super::plan::TableLoad;
use super::sql;
use super::types::{Cell, Dialect};

const D: Dialect = Dialect::DuckDb;

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
    load_one(&conn, batch)
}

fn load_one(conn: &Connection, mut batch: SourceBatch) -> Result<Loaded, LoadError> {
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
            let rows =
                table(conn, &schema, n, plan).map_err(|e| LoadError::table(&plan.table, e))?;
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

/// One table: its schema changes, then its rows: straight into a table created by this load
/// (it holds none of their ids), else through the appender into a staging table and the
/// merge. Returns the rows written.
fn table(conn: &Connection, schema: &str, n: usize, plan: &TableLoad) -> duckdb::Result<u64> {
    for statement in sql::schema_changes(D, schema, plan) {
        conn.execute_batch(&statement)?;
    }
    if plan.direct() {
        append(conn, schema, &plan.table, plan)?;
        return Ok(plan.rows.len() as u64);
    }
    let stage = sql::stage_name(n);
    conn.execute_batch(&sql::drop_stage(schema, &stage))?;
    conn.execute_batch(&sql::create_stage(D, schema, &stage, plan))?;
    append(conn, schema, &stage, plan)?;
    let mut written = 0u64;
    for statement in sql::merge(D, schema, &stage, plan) {
        written += conn.execute(&statement, [])? as u64;
    }
    conn.execute_batch(&sql::drop_stage(schema, &stage))?;
    Ok(written)
}

/// The plan's rows through DuckDB's appender into `schema.table`, whose columns are the
/// plan's, in its order.
fn append(conn: &Connection, schema: &str, table: &str, plan: &TableLoad) -> duckdb::Result<()> {
    let mut appender = conn.appender_to_db(table, schema)?;
    for row in &plan.rows {
        appender.append_row(appender_params_from_iter(row))?;
    }
    appender.flush()
}

/// A cell as DuckDB's appender takes it: text borrowed, not copied.
impl ToSql for Cell {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Cell::Null => ValueRef::Null,
            Cell::Int(i) => ValueRef::BigInt(*i),
            Cell::Float(f) => ValueRef::Double(*f),
            Cell::Bool(b) => ValueRef::Boolean(*b),
            Cell::Text(t) => ValueRef::Text(t.as_bytes()),
            Cell::Timestamp(us) => ValueRef::Timestamp(TimeUnit::Microsecond, *us),
        }))
    }
}
