//! The control plane's configuration in sled: one tree per resource kind (`api.<kind>`), JSON
//! values keyed by id, plus `api.index` for uniqueness and lookups (slugs, write keys, token
//! hashes, plan per source) and `api.audit` for the audit trail. Every change and its audit
//! event commit in one sled transaction over all these trees, so the trail cannot miss a change.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::audit::AuditEvent;
use super::error::ApiError;

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

/// The result type inside a transaction: `?` on an [`ApiError`] aborts it.
pub type TxResult<T> = Result<T, ConflictableTransactionError<ApiError>>;

/// Handle on the control plane's trees. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Vec<Tree>,
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
        })
    }

    fn tree(&self, kind: Kind) -> &Tree {
        &self.trees[slot(kind)]
    }

    /// One record.
    ///
    /// # Errors
    /// A database failure or a record that no longer parses.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> Result<Option<T>, ApiError> {
        match self.tree(kind).get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// One record that must exist: a 404 naming the kind and id when it does not.
    ///
    /// # Errors
    /// [`ApiError::NotFound`], a database failure, or a record that no longer parses.
    pub fn find<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> Result<T, ApiError> {
        self.get(kind, id)?
            .ok_or_else(|| ApiError::not_found(kind.noun(), id))
    }

    /// Every record of a kind whose key starts with `prefix`, in key (creation) order.
    ///
    /// # Errors
    /// A database failure or a record that no longer parses.
    pub fn list<T: DeserializeOwned>(&self, kind: Kind, prefix: &str) -> Result<Vec<T>, ApiError> {
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
    pub fn index(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .tree(Kind::Index)
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Whether any record of this kind exists.
    ///
    /// # Errors
    /// A database failure.
    pub fn is_empty(&self, kind: Kind) -> Result<bool, ApiError> {
        Ok(self.tree(kind).is_empty())
    }

    /// Runs `f` as one serializable transaction over all the trees (sled retries it on conflict,
    /// so `f` must have no side effects outside `tx`).
    ///
    /// # Errors
    /// Whatever `f` aborted with, or a database failure.
    pub fn transact<R>(
        &self,
        actor: &str,
        f: impl Fn(&mut Tx<'_>) -> TxResult<R>,
    ) -> Result<R, ApiError> {
        let result = self.trees.as_slice().transaction(|trees| {
            let mut tx = Tx { trees, actor };
            f(&mut tx)
        })?;
        Ok(result)
    }

    /// Writes everything to disk (on shutdown).
    ///
    /// # Errors
    /// A database failure.
    pub fn flush(&self) -> Result<(), ApiError> {
        self.db.flush()?;
        Ok(())
    }
}

/// The view of the trees inside a transaction.
pub struct Tx<'a> {
    trees: &'a [TransactionalTree],
    actor: &'a str,
}

impl Tx<'_> {
    fn tree(&self, kind: Kind) -> &TransactionalTree {
        &self.trees[slot(kind)]
    }

    /// One record.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> TxResult<Option<T>> {
        match self.tree(kind).get(id.as_bytes())? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(ApiError::from)?,
            )),
            None => Ok(None),
        }
    }

    /// One record that must exist: a 404 naming the kind and id when it does not.
    pub fn find<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> TxResult<T> {
        Ok(self
            .get(kind, id)?
            .ok_or_else(|| ApiError::not_found(kind.noun(), id))?)
    }

    /// Writes a record.
    pub fn put<T: Serialize>(&self, kind: Kind, id: &str, value: &T) -> TxResult<()> {
        let bytes = serde_json::to_vec(value).map_err(ApiError::from)?;
        self.tree(kind).insert(id.as_bytes(), bytes)?;
        Ok(())
    }

    /// Removes a record; whether it existed.
    pub fn remove(&self, kind: Kind, id: &str) -> TxResult<bool> {
        Ok(self.tree(kind).remove(id.as_bytes())?.is_some())
    }

    /// An index entry's value.
    pub fn index(&self, key: &str) -> TxResult<Option<String>> {
        Ok(self
            .tree(Kind::Index)
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets an index entry.
    pub fn set_index(&self, key: &str, value: &str) -> TxResult<()> {
        self.tree(Kind::Index)
            .insert(key.as_bytes(), value.as_bytes())?;
        Ok(())
    }

    /// Removes an index entry.
    pub fn unset_index(&self, key: &str) -> TxResult<()> {
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
    ) -> TxResult<()> {
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
