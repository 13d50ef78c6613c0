//! A sync's way into its warehouse: PostgreSQL (a connection per load) or the DuckDB file
//! (one [`duck::Session`] for the whole sync, so that DuckDB checkpoints when the sync ends
//! rather than after every load). The sync loop sees one interface: check the connection,
//! read the catalog, load a source's share of a chunk, close.

use serde_json::{Map, Value};

use super::catalog::Catalog;
use super::load::{Encoding, LoadError, Loaded, SourceLoad};
use super::{duck, postgres};
use crate::dataplane::DataPlane;
use crate::dataplane::pipeline::workers::Workers;
use crate::workspace::Warehouse;

/// A sync's connection to one warehouse.
pub enum Link {
    /// PostgreSQL, by the warehouse's settings.
    Postgres(Map<String, Value>),
    /// The embedded DuckDB file.
    DuckDb(duck::Session),
}

impl Link {
    /// The link for `warehouse` (nothing is opened yet).
    pub fn of(plane: &DataPlane, warehouse: &Warehouse) -> Link {
        if is_postgres(warehouse) {
            Link::Postgres(warehouse.settings.clone())
        } else {
            Link::DuckDb(duck::Session::new(plane.warehouses.file(&warehouse.id)))
        }
    }

    /// How this warehouse's loads take their rows.
    pub fn encoding(&self) -> Encoding {
        match self {
            Link::Postgres(_) => Encoding::Copy,
            Link::DuckDb(_) => Encoding::Arrow,
        }
    }

    /// Connects as a load would (what `connection-state` reports), and lets go.
    ///
    /// # Errors
    /// [`LoadError::Connect`] with the database's reason.
    pub async fn check(&self) -> Result<(), LoadError> {
        match self {
            Link::Postgres(settings) => postgres::connect(settings).await.map(drop),
            Link::DuckDb(session) => {
                let path = session.path().to_path_buf();
                tokio::task::spawn_blocking(move || duck::connect(&path).map(drop)).await?
            }
        }
    }

    /// The warehouse's tables as they are now.
    ///
    /// # Errors
    /// The warehouse cannot be reached or read.
    pub async fn catalog(&self, workers: &Workers) -> Result<Catalog, LoadError> {
        match self {
            Link::Postgres(settings) => postgres::catalog(settings).await,
            Link::DuckDb(session) => {
                let session = session.clone();
                workers.run(move || session.catalog()).await?
            }
        }
    }

    /// Loads one source's share of a chunk, in one transaction.
    ///
    /// # Errors
    /// [`LoadError`] naming the table whose statement failed; nothing of it is committed.
    pub async fn load(&self, workers: &Workers, batch: SourceLoad) -> Result<Loaded, LoadError> {
        match self {
            Link::Postgres(settings) => postgres::load(settings, batch).await,
            Link::DuckDb(session) => {
                let session = session.clone();
                workers.run(move || session.load(batch)).await?
            }
        }
    }

    /// Ends the sync's use of the warehouse (DuckDB: one checkpoint, and the file closed).
    pub async fn close(&self, workers: &Workers) {
        if let Link::DuckDb(session) = self {
            let session = session.clone();
            let closed = workers.run(move || session.close()).await;
            if let Err(e) = closed.map_err(LoadError::from).and_then(|r| r) {
                tracing::warn!(error = %e, "closing the warehouse file failed");
            }
        }
    }
}

/// Whether `warehouse` is a PostgreSQL one (else it is the embedded DuckDB).
fn is_postgres(warehouse: &Warehouse) -> bool {
    warehouse.metadata.id == "postgres"
}
