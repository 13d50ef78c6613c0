//! What both loaders share: one source's batch (its schema, each table's rows), its plans
//! with their rows encoded for the database's bulk path ([`SourceLoad`]: made on the
//! flattening thread, see [`super::catalog`]), what a load reports, and why one fails
//! (naming the table).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use duckdb::arrow::record_batch::RecordBatch;

use super::catalog::Assumed;
use super::flatten::Row;
use super::plan::{Columns, TableLoad};
use super::types::ColumnType;
use super::{columnar, copy};

/// One source's share of a sync, flattened.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// The source's schema in the warehouse.
    pub schema: String,
    /// Table -> rows, in ingestion order.
    pub tables: BTreeMap<String, Vec<Row>>,
}

/// One source's share of a chunk, planned and encoded: what a load writes, and all it
/// writes, in one transaction.
#[derive(Debug)]
pub struct SourceLoad {
    /// The source's schema in the warehouse.
    pub schema: String,
    /// What the plans assumed of the tables (checked inside the load's transaction).
    pub assumed: Assumed,
    /// The tables, in plan order (`discards` last).
    pub tables: Vec<TableBatch>,
}

/// One table's rows, encoded for the database's bulk path.
#[derive(Debug)]
pub struct TableBatch {
    /// The plan, without its rows (they are in `bulk`).
    pub plan: TableLoad,
    /// How many rows `bulk` holds.
    pub rows: u64,
    /// The rows' ids when the load may have to ask which are stored (PostgreSQL, a table
    /// that exists and is not upserted); empty otherwise.
    pub ids: Vec<String>,
    /// The rows.
    pub bulk: Bulk,
}

/// The bulk format a warehouse's loads take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Arrow record batches for DuckDB's appender.
    Arrow,
    /// `COPY` text (PostgreSQL).
    Copy,
}

/// A table's rows in a database's bulk format.
#[derive(Debug)]
pub enum Bulk {
    /// An Arrow record batch for DuckDB's appender ([`columnar`]).
    Arrow(RecordBatch),
    /// `COPY` text for PostgreSQL ([`copy`]), in pieces of about 1 MiB.
    Copy(Vec<Bytes>),
}

impl TableBatch {
    /// `plan`'s rows encoded as `encoding` says: an Arrow record batch or `COPY` text, in
    /// memory. Cost: one pass over the cells (`COPY` text formats each).
    ///
    /// # Errors
    /// A cell does not fit its column (a planning fault), named with its table.
    pub fn encode(mut plan: TableLoad, encoding: Encoding) -> Result<TableBatch, LoadError> {
        let rows = std::mem::take(&mut plan.rows);
        let bulk = match encoding {
            Encoding::Arrow => Bulk::Arrow(
                columnar::batch(&plan, &rows).map_err(|e| LoadError::table(&plan.table, e))?,
            ),
            Encoding::Copy => Bulk::Copy(copy::encode(&rows)),
        };
        let ids = match encoding {
            Encoding::Copy if !plan.create && !plan.upsert => TableLoad::ids_of(&rows),
            _ => Vec::new(),
        };
        Ok(TableBatch {
            rows: rows.len() as u64,
            plan,
            ids,
            bulk,
        })
    }
}

/// What a load did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Table -> rows written (inserted, or updated in `users`).
    pub tables: BTreeMap<String, u64>,
    /// Table -> the columns its rows filled (what selective sync lists).
    pub columns: BTreeMap<String, Vec<String>>,
}

/// Why a load failed; nothing of it was committed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The warehouse could not be reached (or opened).
    #[error("cannot connect to the warehouse: {0}")]
    Connect(String),
    /// A statement on one table failed.
    #[error("loading table `{table}` failed: {message}")]
    Table {
        /// The table.
        table: String,
        /// The database's error.
        message: String,
    },
    /// A table's columns are not those its plan assumed: it changed while the sync ran.
    #[error(
        "table `{0}` changed while the sync ran (its columns are not those this load was planned for): the load is retried with the columns read again"
    )]
    Changed(String),
    /// A statement outside any one table failed (the schema, the commit).
    #[error("the warehouse refused the load: {0}")]
    Database(String),
    /// The TLS settings cannot describe a connection.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// The blocking task that runs an embedded load failed.
    #[error("the load task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The sync thread that ran the load (or its plan) lost it (a panic).
    #[error(transparent)]
    Worker(#[from] crate::dataplane::pipeline::workers::WorkerLost),
}

impl LoadError {
    /// A failure of a statement on `table`.
    pub fn table(table: &str, error: impl std::fmt::Display) -> LoadError {
        LoadError::Table {
            table: table.to_string(),
            message: error.to_string(),
        }
    }
}

/// The tables' columns from `information_schema` rows (table, column, data type).
pub fn existing(
    rows: impl IntoIterator<Item = (String, String, String)>,
) -> HashMap<String, Columns> {
    let mut out: HashMap<String, Columns> = HashMap::new();
    for (table, column, data_type) in rows {
        out.entry(table)
            .or_default()
            .insert(column, ColumnType::from_sql(&data_type));
    }
    out
}

/// Now, in microseconds since the epoch (the rows' `uuid_ts`).
pub fn now_micros() -> i64 {
    i64::try_from(crate::dataplane::now_ms()).unwrap_or(0) * 1000
}
