//! The workspace's records in sled: one tree per resource kind (`api.<kind>`), JSON values
//! keyed by id, plus `api.index` for uniqueness and lookups (slugs, write keys, token hashes,
//! plan per source) and `api.audit` for the audit trail. Every change and its audit event
//! commit in one sled transaction over all these trees, so the trail cannot miss a change, and
//! every change bumps the configuration version the data plane rebuilds its wiring on.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::audit::AuditEvent;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("database: {0}")]
    Database(#[from] sled::Error),
    /// A stored record no longer parses (or a value does not serialize).
    #[error("stored JSON: {0}")]
    Record(#[from] serde_json::Error),
    /// A record that must exist does not.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// What kind of record ([`Kind::noun`]).
        kind: &'static str,
        /// Its id.
        id: String,
    },
}

/// The kinds of stored records; each has its own tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sources.
    Source,
    /// Destinations.
    Destination,
    /// Tracking plans.
    TrackingPlan,
    /// Each tracking plan's rules, keyed by plan id.
    Rules,
    /// Warehouses.
    Warehouse,
    /// Functions.
    Function,
    /// Function versions, keyed `<function id>/<version id>`.
    FunctionVersion,
    /// Insert function instances.
    InsertFunction,
    /// Spaces.
    Space,
    /// Users.
    User,
    /// Pending invitations, keyed by e-mail.
    Invite,
    /// Tokens (hashes only).
    Token,
    /// Secondary keys: `slug:source:<slug>`, `writekey:<key>`, `token:<hash>`, `plan:<source>`.
    Index,
    /// Audit events, keyed by a time-ordered id.
    Audit,
}

impl Kind {
    /// What one record is called in messages: "source `x` not found".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Destination => "destination",
            Kind::TrackingPlan => "tracking plan",
            Kind::Rules => "rules",
            Kind::Warehouse => "warehouse",
            Kind::Function => "function",
            Kind::FunctionVersion => "version",
            Kind::InsertFunction => "insert function instance",
            Kind::Space => "space",
            Kind::User => "user",
            Kind::Invite => "invite",
            Kind::Token => "token",
            Kind::Index => "index entry",
            Kind::Audit => "audit event",
        }
    }
}

const KINDS: [(Kind, &str); 14] = [
    (Kind::Source, "api.sources"),
    (Kind::Destination, "api.destinations"),
    (Kind::TrackingPlan, "api.tracking_plans"),
    (Kind::Rules, "api.tracking_plan_rules"),
    (Kind::Warehouse, "api.warehouses"),
    (Kind::Function, "api.functions"),
    (Kind::FunctionVersion, "api.function_versions"),
    (Kind::InsertFunction, "api.insert_functions"),
    (Kind::Space, "api.spaces"),
    (Kind::User, "api.users"),
    (Kind::Invite, "api.invites"),
    (Kind::Token, "api.tokens"),
    (Kind::Index, "api.index"),
    (Kind::Audit, "api.audit"),
];

fn slot(kind: Kind) -> usize {
    KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0)
}

/// The result type inside a transaction that aborts with `E`: `?` on an `E` aborts it.
pub type TxResult<T, E> = Result<T, ConflictableTransactionError<E>>;

/// Handle on the workspace's trees. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Vec<Tree>,
    /// Bumped by every committed transaction: the data plane's wiring is rebuilt when it moves.
    version: Arc<AtomicU64>,
}

impl Store {
    /// Opens (creating) the trees in `db`.
    ///
    /// # Errors
    /// sled cannot open a tree.
    pub fn open(db: &sled::Db) -> Result<Store, sled::Error> {
        let trees = KINDS
            .iter()
            .map(|(_, name)| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store {
            db: db.clone(),
            trees,
            version: Arc::new(AtomicU64::new(1)),
        })
    }

    /// The configuration version: it changes after every committed change (one atomic load).
    /// It starts afresh at each start, so it only compares within one process.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn tree(&self, kind: Kind) -> &Tree {
        &self.trees[slot(kind)]
    }

    /// One record.
    ///
    /// # Errors
    /// A database failure or a record that no longer parses.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> Result<Option<T>, StoreError> {
        match self.tree(kind).get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// One record that must exist: a 404 naming the kind and id when it does not.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], a database failure, or a record that no longer parses.
    pub fn find<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> Result<T, StoreError> {
        self.get(kind, id)?.ok_or_else(|| StoreError::NotFound {
            kind: kind.noun(),
            id: id.to_string(),
        })
    }

    /// Every record of a kind whose key starts with `prefix`, in key (creation) order.
    ///
    /// # Errors
    /// A database failure or a record that no longer parses.
    pub fn list<T: DeserializeOwned>(
        &self,
        kind: Kind,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.tree(kind)
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (_, bytes) = item?;
                Ok(serde_json::from_slice(&bytes)?)
            })
            .collect()
    }

    /// An index entry's value.
    ///
    /// # Errors
    /// A database failure.
    pub fn index(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree(Kind::Index)
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Whether any record of this kind exists.
    ///
    /// # Errors
    /// A database failure.
    pub fn is_empty(&self, kind: Kind) -> Result<bool, StoreError> {
        Ok(self.tree(kind).is_empty())
    }

    /// Runs `f` as one serializable transaction over all the trees (sled retries it on conflict,
    /// so `f` must have no side effects outside `tx`).
    ///
    /// # Errors
    /// Whatever `f` aborted with, or a database failure.
    pub fn transact<R, E: From<StoreError>>(
        &self,
        actor: &str,
        f: impl Fn(&mut Tx<'_, E>) -> TxResult<R, E>,
    ) -> Result<R, E> {
        let result = self.trees.as_slice().transaction(|trees| {
            let mut tx = Tx {
                trees,
                actor,
                aborts: PhantomData,
            };
            f(&mut tx)
        });
        match result {
            Ok(r) => {
                self.version.fetch_add(1, Ordering::AcqRel);
                Ok(r)
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(E::from(StoreError::Database(e))),
        }
    }

    /// Writes everything to disk (on shutdown).
    ///
    /// # Errors
    /// A database failure.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// The view of the trees inside a transaction that aborts with `E`.
pub struct Tx<'a, E> {
    trees: &'a [TransactionalTree],
    actor: &'a str,
    aborts: PhantomData<fn() -> E>,
}

fn abort<E: From<StoreError>>(e: impl Into<StoreError>) -> ConflictableTransactionError<E> {
    ConflictableTransactionError::Abort(E::from(e.into()))
}

impl<E: From<StoreError>> Tx<'_, E> {
    fn tree(&self, kind: Kind) -> &TransactionalTree {
        &self.trees[slot(kind)]
    }

    /// One record.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> TxResult<Option<T>, E> {
        match self.tree(kind).get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(abort)?)),
            None => Ok(None),
        }
    }

    /// One record that must exist: a 404 naming the kind and id when it does not.
    pub fn find<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> TxResult<T, E> {
        self.get(kind, id)?.ok_or_else(|| {
            abort(StoreError::NotFound {
                kind: kind.noun(),
                id: id.to_string(),
            })
        })
    }

    /// Writes a record.
    pub fn put<T: Serialize>(&self, kind: Kind, id: &str, value: &T) -> TxResult<(), E> {
        let bytes = serde_json::to_vec(value).map_err(abort)?;
        self.tree(kind).insert(id.as_bytes(), bytes)?;
        Ok(())
    }

    /// Removes a record; whether it existed.
    pub fn remove(&self, kind: Kind, id: &str) -> TxResult<bool, E> {
        Ok(self.tree(kind).remove(id.as_bytes())?.is_some())
    }

    /// An index entry's value.
    pub fn index(&self, key: &str) -> TxResult<Option<String>, E> {
        Ok(self
            .tree(Kind::Index)
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets an index entry.
    pub fn set_index(&self, key: &str, value: &str) -> TxResult<(), E> {
        self.tree(Kind::Index)
            .insert(key.as_bytes(), value.as_bytes())?;
        Ok(())
    }

    /// Removes an index entry.
    pub fn unset_index(&self, key: &str) -> TxResult<(), E> {
        self.tree(Kind::Index).remove(key.as_bytes())?;
        Ok(())
    }

    /// Records an audit event for this change, in this transaction.
    pub fn audit(
        &self,
        kind: &str,
        resource_type: &str,
        resource_id: &str,
        resource_name: &str,
    ) -> TxResult<(), E> {
        let event = AuditEvent {
            id: super::new_id(),
            timestamp: super::now(),
            kind: kind.to_string(),
            actor: self.actor.to_string(),
            resource_id: resource_id.to_string(),
            resource_type: resource_type.to_string(),
            resource_name: resource_name.to_string(),
        };
        self.put(Kind::Audit, &event.id.clone(), &event)
    }
}
