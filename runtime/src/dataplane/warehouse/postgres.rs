//! The PostgreSQL warehouse, through tokio-postgres: one connection per sync, one transaction
//! per source: schema changes, each table's rows by `COPY ... FROM STDIN` (text format),
//! straight into the table when it holds none of their ids, else into a temporary staging
//! table, then the merge. TLS by `sslmode` ([`super::tls`]).

use std::fmt::Write;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::{Map, Value};
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::load::{LoadError, Loaded, SourceBatch, existing, now_micros, plans};
use super::plan::TableLoad;
use super::sql;
use super::tls::{self, Mode};
use super::types::{Cell, Dialect, write_timestamp};
use crate::dataplane::pipeline::workers::Workers;

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

/// Loads one source's batch in one transaction, on a new connection.
///
/// # Errors
/// [`LoadError`] naming the table whose statement failed; nothing of the batch is committed.
pub async fn load(
    settings: &Map<String, Value>,
    workers: &Workers,
    batch: SourceBatch,
) -> Result<Loaded, LoadError> {
    let mut client = connect(settings).await?;
    load_one(&mut client, workers, batch).await
}

async fn load_one(
    client: &mut Client,
    workers: &Workers,
    mut batch: SourceBatch,
) -> Result<Loaded, LoadError> {
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
    let schema = batch.schema.clone();
    let now = now_micros();
    // Typing and ordering the cells is CPU work: on a (low-priority) sync thread.
    let plans = workers.run(move || plans(&stored, &mut batch, now)).await?;
    let mut loaded = Loaded::default();
    for (n, plan) in plans.iter().enumerate() {
        let written = table(&tx, &schema, n, plan)
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
async fn table(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    n: usize,
    plan: &TableLoad,
) -> Result<u64, tokio_postgres::Error> {
    for statement in sql::schema_changes(D, schema, plan) {
        tx.batch_execute(&statement).await?;
    }
    if plan.direct() || (!plan.upsert && !stored_any(tx, schema, plan).await?) {
        copy(tx, &sql::qualified(schema, &plan.table), plan).await?;
        return Ok(plan.rows.len() as u64);
    }
    let stage = sql::stage_name(n);
    tx.batch_execute(&sql::create_stage(&stage, plan)).await?;
    let staged = super::naming::quote(&stage);
    copy(tx, &staged, plan).await?;
    let mut written = 0;
    for statement in sql::merge(schema, &staged, plan) {
        written += tx.execute(statement.as_str(), &[]).await?;
    }
    Ok(written)
}

/// Whether the table holds a row with any of the plan's ids (one index probe per id).
async fn stored_any(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    plan: &TableLoad,
) -> Result<bool, tokio_postgres::Error> {
    let query = sql::stored_any(schema, &plan.table);
    tx.query_one(query.as_str(), &[&plan.ids()])
        .await
        .map(|row| row.get(0))
}

/// The plan's rows into `target` (quoted) by `COPY ... FROM STDIN`, in pieces of about 1 MiB
/// so that a large batch is never one buffer.
async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
    plan: &TableLoad,
) -> Result<(), tokio_postgres::Error> {
    let names: Vec<String> = plan
        .columns
        .iter()
        .map(|(c, _)| super::naming::quote(c))
        .collect();
    let copy = format!("COPY {target} ({}) FROM STDIN", names.join(", "));
    let sink = tx.copy_in::<_, Bytes>(copy.as_str()).await?;
    let mut sink = std::pin::pin!(sink);
    let mut buffer = String::with_capacity(1 << 20);
    for row in &plan.rows {
        copy_row(&mut buffer, row);
        if buffer.len() >= 1 << 20 {
            sink.send(Bytes::from(std::mem::take(&mut buffer))).await?;
        }
    }
    if !buffer.is_empty() {
        sink.send(Bytes::from(buffer)).await?;
    }
    sink.as_mut().finish().await?;
    Ok(())
}

/// One row in `COPY`'s text format: tab-separated, `\N` for null, backslash escapes.
pub fn copy_row(out: &mut String, row: &[Cell]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        // Writing to a String cannot fail.
        match cell {
            Cell::Null => out.push_str("\\N"),
            Cell::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Float(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Bool(v) => out.push(if *v { 't' } else { 'f' }),
            Cell::Timestamp(us) => write_timestamp(out, *us),
            Cell::Text(t) => escape(out, t),
        }
    }
    out.push('\n');
}

fn escape(out: &mut String, text: &str) {
    // Most text holds nothing to escape: then it is copied whole.
    if !text
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t' | 0))
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // PostgreSQL text cannot hold NUL.
            '\0' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_format() {
        let mut out = String::new();
        copy_row(
            &mut out,
            &[
                Cell::Text("a\tb\\c\nd".into()),
                Cell::Null,
                Cell::Int(-3),
                Cell::Float(1.5),
                Cell::Bool(true),
                Cell::Timestamp(0),
            ],
        );
        assert_eq!(
            out,
            "a\\tb\\\\c\\nd\t\\N\t-3\t1.5\tt\t1970-01-01T00:00:00Z\n"
        );
    }

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
