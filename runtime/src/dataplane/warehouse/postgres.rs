//! The PostgreSQL warehouse, through tokio-postgres: one connection and one transaction per
//! source's share of a chunk: schema changes, each table's rows by `COPY ... FROM STDIN` (the
//! text the flattening thread encoded, [`super::copy`]),
//! straight into the table when it holds none of their ids, else into a temporary staging
//! table, then the merge. TLS by `sslmode` ([`super::tls`]).

use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::{Map, Value};
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::catalog::{Catalog, unchanged};
use super::load::{Bulk, LoadError, Loaded, SourceLoad, TableBatch, existing};
use super::plan::TableLoad;
use super::sql;
use super::tls::{self, Mode};
use super::types::Dialect;

const D: Dialect = Dialect::Postgres;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection the settings describe (`hostname`, `port`, `database`, `username`,
/// `password`, `sslmode`, `sslrootcert`), and its TLS.
///
/// # Errors
/// [`LoadError::Tls`] for an `sslmode` or `sslrootcert` sluice cannot honour.
pub fn config(settings: &Map<String, Value>) -> Result<(Config, MakeRustlsConnect), LoadError> {
    let text = |key: &str| settings.get(key).and_then(Value::as_str).unwrap_or("");
    let mut config = Config::new();
    config
        .host(text("hostname"))
        .port(
            settings
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(5432),
        )
        .dbname(text("database"))
        .user(text("username"))
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("sluice");
    if let Some(password) = settings.get("password").and_then(Value::as_str) {
        config.password(password);
    }
    let mode = Mode::parse(text("sslmode"))?;
    config.ssl_mode(mode.ssl_mode());
    let tls = tls::client_config(mode, text("sslrootcert"))?;
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// Connects and checks the server answers (what `connection-state` reports).
///
/// # Errors
/// [`LoadError::Connect`] with the server's (or the network's) reason.
pub async fn connect(settings: &Map<String, Value>) -> Result<Client, LoadError> {
    let (config, tls) = config(settings)?;
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| LoadError::Connect(reason(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "warehouse connection closed");
        }
    });
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| LoadError::Connect(reason(&e)))?;
    Ok(client)
}

/// The database's own message when there is one (tokio-postgres's `Display` says only "db
/// error").
fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// Every table's columns in the database, for a sync's [`Catalog`].
///
/// # Errors
/// [`LoadError`] when the server cannot be reached or refuses the query.
pub async fn catalog(settings: &Map<String, Value>) -> Result<Catalog, LoadError> {
    let client = connect(settings).await?;
    let rows = client
        .query(sql::catalog_query(D), &[])
        .await
        .map_err(|e| LoadError::Database(reason(&e)))?;
    Ok(Catalog::from_rows(
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
    ))
}

/// Loads one source's share of a chunk in one transaction, on a new connection.
///
/// # Errors
/// [`LoadError`] naming the table whose statement failed; nothing of the batch is committed.
pub async fn load(settings: &Map<String, Value>, batch: SourceLoad) -> Result<Loaded, LoadError> {
    let mut client = connect(settings).await?;
    load_one(&mut client, batch).await
}

async fn load_one(client: &mut Client, batch: SourceLoad) -> Result<Loaded, LoadError> {
    let db = |e: tokio_postgres::Error| LoadError::Database(reason(&e));
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(&sql::create_schema(&batch.schema))
        .await
        .map_err(db)?;
    let rows = tx
        .query(sql::columns_query(D), &[&batch.schema])
        .await
        .map_err(db)?;
    let stored = existing(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
    unchanged(&stored, &batch.assumed)?;
    let mut loaded = Loaded::default();
    for (n, table) in batch.tables.iter().enumerate() {
        let plan = &table.plan;
        let written = write(&tx, &batch.schema, n, table)
            .await
            .map_err(|e| LoadError::table(&plan.table, reason(&e)))?;
        loaded.tables.insert(plan.table.clone(), written);
        loaded
            .columns
            .insert(plan.table.clone(), plan.column_names());
    }
    tx.commit().await.map_err(db)?;
    Ok(loaded)
}

/// One table: its schema changes, then its rows. A batch none of whose ids are stored goes
/// straight into the table by `COPY`, written once; one that meets stored rows (a replay, or
/// `users`' upsert) goes through a staging table and the merge. Returns the rows written.
async fn write(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    n: usize,
    table: &TableBatch,
) -> Result<u64, tokio_postgres::Error> {
    let plan = &table.plan;
    for statement in sql::schema_changes(D, schema, plan) {
        tx.batch_execute(&statement).await?;
    }
    // The sync encodes every table for its warehouse's database: a PostgreSQL load has text.
    let Bulk::Copy(text) = &table.bulk else {
        return Ok(0);
    };
    if plan.direct() || (!plan.upsert && !stored_any(tx, schema, table).await?) {
        copy(tx, &sql::qualified(schema, &plan.table), plan, text).await?;
        return Ok(table.rows);
    }
    let stage = sql::stage_name(n);
    tx.batch_execute(&sql::create_stage(D, &stage, plan))
        .await?;
    let staged = super::naming::quote(&stage);
    copy(tx, &staged, plan, text).await?;
    let mut written = 0;
    for statement in sql::merge(schema, &staged, plan) {
        written += tx.execute(statement.as_str(), &[]).await?;
    }
    Ok(written)
}

/// Whether the table holds a row with any of the batch's ids (one index probe per id).
async fn stored_any(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    table: &TableBatch,
) -> Result<bool, tokio_postgres::Error> {
    let query = sql::stored_any(schema, &table.plan.table);
    tx.query_one(query.as_str(), &[&table.ids])
        .await
        .map(|row| row.get(0))
}

/// The encoded rows into `target` (quoted) by `COPY ... FROM STDIN`, a piece at a time.
async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
    plan: &TableLoad,
    text: &[Bytes],
) -> Result<(), tokio_postgres::Error> {
    let names: Vec<String> = plan
        .columns
        .iter()
        .map(|(c, _)| super::naming::quote(c))
        .collect();
    let copy = format!("COPY {target} ({}) FROM STDIN", names.join(", "));
    let sink = tx.copy_in::<_, Bytes>(copy.as_str()).await?;
    let mut sink = std::pin::pin!(sink);
    for piece in text {
        sink.send(piece.clone()).await?;
    }
    sink.as_mut().finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tls_modes_are_refused_by_name() {
        let mut settings = Map::new();
        settings.insert("sslmode".into(), Value::String("allow".into()));
        let e = config(&settings)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("sslmode `allow`"), "{e}");
    }
}
