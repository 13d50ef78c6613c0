//! The workspace's records in sled: one tree per resource kind (`api.<kind>`), JSON values
//! keyed by id, plus `api.index` for uniqueness and lookups (slugs, write keys, token hashes,
//! plan per source) and `api.audit` for the audit trail. Every change and its audit event
//! commit in one sled transaction over all these trees, so the trail cannot miss a change, and
//! every change bumps the configuration version the data plane rebuilds its wiring on. In a
//! cluster the trees are the node's replica of the shared workspace ([`super::replica`]).

use std::cell::RefCell;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::audit::AuditEvent;
use super::replica::{Journal, Replica, Write};
use crate::cluster::{Cluster, ClusterError};

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
    /// In a cluster: another node changed a record this change read or wrote, after this
    /// node read it. Nothing was written.
    #[error(
        "the {kind} `{id}` was changed on another node while this change was being made; \
         nothing was written: read it again and retry"
    )]
    Conflict {
        /// What kind of record ([`Kind::noun`]).
        kind: &'static str,
        /// Its id (or index key).
        id: String,
    },
    /// In a cluster: the shared workspace (NATS JetStream) cannot be reached.
    #[error("the cluster's workspace is unavailable: {0}")]
    Unavailable(String),
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

pub(super) const KINDS: [(Kind, &str); 14] = [
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

pub(super) fn slot(kind: Kind) -> usize {
    KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0)
}

/// The result type inside a transaction that aborts with `E`: `?` on an `E` aborts it.
pub type TxResult<T, E> = Result<T, ConflictableTransactionError<E>>;

/// Handle on the workspace's trees. Cheap to clone.
///
/// In a cluster ([`Store::join`]) the trees are this node's replica of the shared workspace:
/// reads are local and unchanged; a change is recorded, published to the cluster with a
/// compare-and-set, and applied here (as on every node) from the cluster's stream
/// ([`super::replica`]).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Vec<Tree>,
    /// Bumped by every committed transaction: the data plane's wiring is rebuilt when it moves.
    version: Arc<AtomicU64>,
    /// The cluster's workspace, when this node is part of one.
    replica: Option<Arc<Replica>>,
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
            replica: None,
        })
    }

    /// This store as a node's replica of the cluster's workspace: its local records are
    /// replaced by the cluster's (replayed from the shared stream; this returns once they are
    /// all applied), and from then on every change goes through the cluster.
    ///
    /// # Errors
    /// The cluster's stream cannot be reached or replayed.
    pub async fn join(self, cluster: &Cluster) -> Result<Store, ClusterError> {
        let replica = Replica::start(cluster, &self).await?;
        Ok(Store {
            replica: Some(replica),
            ..self
        })
    }

    /// Which node of the cluster this is, if any.
    pub fn node(&self) -> Option<&str> {
        self.replica.as_ref().map(|r| r.node())
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
        if let Some(replica) = &self.replica {
            return replica.transact(self, actor, &f);
        }
        let result = self.trees.as_slice().transaction(|trees| {
            let mut tx = Tx {
                trees,
                actor,
                aborts: PhantomData,
                journal: None,
            };
            f(&mut tx)
        });
        match result {
            Ok(r) => {
                // Durable before the change is acknowledged: sled only writes its buffers to
                // disk in the background (every 500 ms), so a crash right after a 201 lost the
                // change, and the events routed by it (a destination created just before a
                // SIGKILL disappeared, and the events sent to it were committed with no route).
                self.db
                    .flush()
                    .map_err(|e| E::from(StoreError::Database(e)))?;
                self.version.fetch_add(1, Ordering::AcqRel);
                Ok(r)
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(E::from(StoreError::Database(e))),
        }
    }

    /// Runs `f` in a transaction that records what it reads and writes in `journal`, then
    /// rolls back: what a change would do, to be published to the cluster.
    pub(super) fn dry_run<R, E: From<StoreError>>(
        &self,
        actor: &str,
        journal: &RefCell<Journal>,
        f: &impl Fn(&mut Tx<'_, E>) -> TxResult<R, E>,
    ) -> Result<R, E> {
        /// How the rolled-back transaction ended: the rollback carries the result out.
        enum Outcome<R, E> {
            Done(R),
            Failed(E),
        }
        let result = self.trees.as_slice().transaction(|trees| {
            *journal.borrow_mut() = Journal::default();
            let mut tx = Tx {
                trees,
                actor,
                aborts: PhantomData,
                journal: Some(journal),
            };
            let outcome = match f(&mut tx) {
                Ok(r) => Outcome::Done(r),
                Err(ConflictableTransactionError::Abort(e)) => Outcome::Failed(e),
                Err(ConflictableTransactionError::Conflict) => {
                    return Err(ConflictableTransactionError::Conflict);
                }
                Err(ConflictableTransactionError::Storage(e)) => {
                    return Err(ConflictableTransactionError::Storage(e));
                }
            };
            Err::<Infallible, _>(ConflictableTransactionError::Abort(outcome))
        });
        match result {
            Ok(never) => match never {},
            Err(TransactionError::Abort(Outcome::Done(r))) => Ok(r),
            Err(TransactionError::Abort(Outcome::Failed(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(E::from(StoreError::Database(e))),
        }
    }

    /// Applies a change published by a node (this one included) in one transaction, and
    /// bumps the configuration version.
    pub(super) fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let result = self.trees.as_slice().transaction(|trees| {
            for w in writes {
                let Some(tree) = trees.get(usize::from(w.slot)) else {
                    continue;
                };
                match &w.value {
                    Some(value) => tree.insert(w.key.as_slice(), value.as_slice())?,
                    None => tree.remove(w.key.as_slice())?,
                };
            }
            Ok::<(), ConflictableTransactionError<StoreError>>(())
        });
        match result {
            Ok(()) => {
                self.version.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Database(e)),
        }
    }

    /// Empties every tree (a node's replica before it replays the cluster's workspace).
    pub(super) fn clear(&self) -> Result<(), StoreError> {
        for tree in &self.trees {
            tree.clear()?;
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
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
    /// In a cluster: what the change reads and writes (a branch per call otherwise).
    journal: Option<&'a RefCell<Journal>>,
}

fn abort<E: From<StoreError>>(e: impl Into<StoreError>) -> ConflictableTransactionError<E> {
    ConflictableTransactionError::Abort(E::from(e.into()))
}

impl<E: From<StoreError>> Tx<'_, E> {
    fn tree(&self, kind: Kind) -> &TransactionalTree {
        &self.trees[slot(kind)]
    }

    fn read(&self, kind: Kind, key: &str) {
        if let Some(journal) = self.journal {
            journal.borrow_mut().read(kind, key);
        }
    }

    fn wrote(&self, kind: Kind, key: &str, value: Option<Vec<u8>>) {
        if let Some(journal) = self.journal {
            journal.borrow_mut().write(kind, key, value);
        }
    }

    /// One record.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> TxResult<Option<T>, E> {
        self.read(kind, id);
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
        if self.journal.is_some() {
            self.wrote(kind, id, Some(bytes.clone()));
        }
        self.tree(kind).insert(id.as_bytes(), bytes)?;
        Ok(())
    }

    /// Removes a record; whether it existed.
    pub fn remove(&self, kind: Kind, id: &str) -> TxResult<bool, E> {
        self.wrote(kind, id, None);
        Ok(self.tree(kind).remove(id.as_bytes())?.is_some())
    }

    /// An index entry's value.
    pub fn index(&self, key: &str) -> TxResult<Option<String>, E> {
        self.read(Kind::Index, key);
        Ok(self
            .tree(Kind::Index)
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets an index entry.
    pub fn set_index(&self, key: &str, value: &str) -> TxResult<(), E> {
        self.wrote(Kind::Index, key, Some(value.as_bytes().to_vec()));
        self.tree(Kind::Index)
            .insert(key.as_bytes(), value.as_bytes())?;
        Ok(())
    }

    /// Removes an index entry.
    pub fn unset_index(&self, key: &str) -> TxResult<(), E> {
        self.wrote(Kind::Index, key, None);
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
