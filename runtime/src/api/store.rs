//! The workspace store as the control plane uses it: transactions that abort with an
//! [`ApiError`], so a handler's `?` inside a transaction answers with that error. Everything
//! else is the workspace store's own (through `Deref`).

use std::ops::Deref;

use super::error::ApiError;

pub use crate::workspace::store::Kind;

/// A transaction over the workspace's trees, aborting with an [`ApiError`].
pub type Tx<'a> = crate::workspace::store::Tx<'a, ApiError>;

/// The result type inside such a transaction.
pub type TxResult<T> = crate::workspace::store::TxResult<T, ApiError>;

/// The workspace store, its transactions typed for handlers. Cheap to clone.
#[derive(Clone)]
pub struct Store(crate::workspace::Store);

impl Store {
    /// Opens (creating) the workspace's trees in `db`.
    ///
    /// # Errors
    /// sled cannot open a tree.
    pub fn open(db: &sled::Db) -> Result<Store, sled::Error> {
        Ok(Store(crate::workspace::Store::open(db)?))
    }

    /// The control plane's view of `store` (a cluster node's replica, say).
    pub fn from_workspace(store: crate::workspace::Store) -> Store {
        Store(store)
    }

    /// The workspace store itself (what the data plane is given).
    pub fn workspace(&self) -> &crate::workspace::Store {
        &self.0
    }

    /// Runs `f` as one transaction (see [`crate::workspace::Store::transact`]), aborting with
    /// the handler's error.
    ///
    /// # Errors
    /// Whatever `f` aborted with, or a database failure.
    pub fn transact<R>(
        &self,
        actor: &str,
        f: impl Fn(&mut Tx<'_>) -> TxResult<R>,
    ) -> Result<R, ApiError> {
        self.0.transact(actor, f)
    }
}

impl Deref for Store {
    type Target = crate::workspace::Store;

    fn deref(&self) -> &crate::workspace::Store {
        &self.0
    }
}
