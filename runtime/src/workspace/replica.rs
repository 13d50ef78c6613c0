//! The workspace shared by the nodes of a cluster: every change is one message on the
//! JetStream stream `<prefix>_WORKSPACE`, and every node applies the stream, in order, to its
//! local sled trees (its replica), which serve every read.
//!
//! - **A change** runs as on one node, in a sled transaction that records the keys it reads
//!   and the values it writes and then rolls back ([`Store::dry_run`]); the writes (the
//!   records, their index entries and the audit event: one atomic change, as on one node) are
//!   published with `Nats-Expected-Last-Sequence` set to the last change this node applied:
//!   a compare-and-set on the workspace's revision. It returns once this node applied it, so a
//!   client reads its own change on the node it asked.
//! - **A conflict**: when another node published first, this node applies what it missed and
//!   compares: if a change since then wrote a key this change read or wrote (the record's
//!   revision moved), nothing is written and the change fails with
//!   [`StoreError::Conflict`] (409); otherwise it runs again on the fresh state.
//! - **Watching**: an ordered consumer delivers each change to every node as it is stored
//!   (milliseconds); each applied change bumps the configuration version, so pipelines
//!   rebuild their wiring.
//!
//! Why a stream of changes rather than a key-value bucket with a key per record: a change
//! writes several keys (a record, its slug and write-key index entries, its audit event) that
//! must commit together, and JetStream KV compares and sets one key at a time. The stream's
//! sequence is the revision compared; conflicts are still per record.
//!
//! Message format (one change): repeated `slot: u8, op: u8 (1 put, 0 remove), key length:
//! u32 LE, key, [value length: u32 LE, value]`; `slot` is the tree's index in the store.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::store::{KINDS, Kind, Store, StoreError, Tx, TxResult, slot};
use crate::cluster::{Cluster, ClusterError};

/// Times a change runs again after another node's unrelated change got in first.
const ATTEMPTS: usize = 8;

/// How long joining waits for the workspace to be replayed.
const REPLAY_WAIT: Duration = Duration::from_secs(120);

/// One key a change writes: a value, or `None` to remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The tree's index in the store.
    pub slot: u8,
    /// The key.
    pub key: Vec<u8>,
    /// The new value.
    pub value: Option<Vec<u8>>,
}

/// What a change read and wrote, recorded by its dry run.
#[derive(Debug, Default)]
pub struct Journal {
    reads: Vec<(u8, Vec<u8>)>,
    writes: Vec<Write>,
}

impl Journal {
    /// `key` of `kind` was read.
    pub fn read(&mut self, kind: Kind, key: &str) {
        self.reads.push((slot_of(kind), key.as_bytes().to_vec()));
    }

    /// `key` of `kind` was written (`None`: removed).
    pub fn write(&mut self, kind: Kind, key: &str, value: Option<Vec<u8>>) {
        self.writes.push(Write {
            slot: slot_of(kind),
            key: key.as_bytes().to_vec(),
            value,
        });
    }
}

fn slot_of(kind: Kind) -> u8 {
    u8::try_from(slot(kind)).unwrap_or(u8::MAX)
}

/// The node's side of the shared workspace.
pub struct Replica {
    cluster: Cluster,
    subject: String,
    /// The sequence of the last change applied here.
    applied: watch::Sender<u64>,
    /// The sequence of the change that last wrote each key (what conflicts compare).
    revisions: Mutex<HashMap<(u8, Vec<u8>), u64>>,
    /// Held (shared) while a change's dry run reads the trees, (exclusive) while a change is
    /// applied: a dry run sees the state of exactly one applied sequence.
    applying: RwLock<()>,
    /// One change at a time from this node: two of its own never conflict with each other.
    changing: Mutex<()>,
}

impl Replica {
    /// Opens (creating) the stream, empties the local trees, replays every change into them
    /// and keeps applying new ones. Returns once the replay reached the stream's end.
    pub(super) async fn start(
        cluster: &Cluster,
        store: &Store,
    ) -> Result<Arc<Replica>, ClusterError> {
        let setup = |e: &dyn std::fmt::Display| ClusterError::Setup {
            what: "the workspace stream".into(),
            reason: e.to_string(),
        };
        let mut stream = cluster
            .js
            .get_or_create_stream(StreamConfig {
                name: cluster.name("WORKSPACE"),
                subjects: vec![cluster.subject("workspace")],
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(&e))?;
        let end = stream
            .info()
            .await
            .map_err(|e| setup(&e))?
            .state
            .last_sequence;
        store.clear().map_err(|e| setup(&e))?;
        let replica = Arc::new(Replica {
            cluster: cluster.clone(),
            subject: cluster.subject("workspace"),
            applied: watch::Sender::new(0),
            revisions: Mutex::new(HashMap::new()),
            applying: RwLock::new(()),
            changing: Mutex::new(()),
        });
        tokio::spawn(follow(replica.clone(), store.clone(), stream));
        let mut applied = replica.applied.subscribe();
        tokio::time::timeout(REPLAY_WAIT, applied.wait_for(|a| *a >= end))
            .await
            .map_err(|_| setup(&"the workspace was not replayed within two minutes"))?
            .map_err(|e| setup(&e))?;
        tracing::info!(changes = end, "cluster workspace replayed");
        Ok(replica)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.cluster.config.node
    }

    fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// [`Store::transact`] in a cluster (see the module's header). Blocks the calling thread
    /// (handing a runtime worker's other tasks over) for one publish round trip, and the
    /// change's return through the stream.
    pub(super) fn transact<R, E: From<StoreError>>(
        &self,
        store: &Store,
        actor: &str,
        f: &impl Fn(&mut Tx<'_, E>) -> TxResult<R, E>,
    ) -> Result<R, E> {
        self.cluster.blocking(|| {
            let _one = self
                .changing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for _ in 0..ATTEMPTS {
                let journal = RefCell::new(Journal::default());
                let (base, result) = {
                    let _state = self
                        .applying
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    (self.applied(), store.dry_run(actor, &journal, f))
                };
                let result = result?;
                let journal = journal.into_inner();
                if journal.writes.is_empty() {
                    return Ok(result);
                }
                match self.cluster.wait(self.publish(&journal.writes, base)) {
                    Published::At(seq) => {
                        self.cluster.wait(self.applied_through(seq))?;
                        return Ok(result);
                    }
                    Published::Behind => {
                        self.cluster.wait(self.catch_up())?;
                        if let Some(conflict) = self.changed_since(base, &journal) {
                            return Err(E::from(conflict));
                        }
                    }
                    Published::Failed(reason) => {
                        return Err(E::from(StoreError::Unavailable(reason)));
                    }
                }
            }
            Err(E::from(StoreError::Unavailable(
                "the workspace changed too often to apply this change; retry".into(),
            )))
        })
    }

    /// Publishes `writes` as the change after sequence `base`.
    async fn publish(&self, writes: &[Write], base: u64) -> Published {
        let message = PublishMessage::build()
            .payload(encode(writes).into())
            .expected_last_sequence(base);
        let ack = match self
            .cluster
            .js
            .send_publish(self.subject.clone(), message)
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => return Published::Failed(e.to_string()),
        };
        match ack {
            Ok(ack) => Published::At(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Published::Behind,
            Err(e) => Published::Failed(e.to_string()),
        }
    }

    /// Waits until the change at `seq` is applied here.
    async fn applied_through(&self, seq: u64) -> Result<(), StoreError> {
        let mut applied = self.applied.subscribe();
        let waited = tokio::time::timeout(
            crate::cluster::REQUEST_TIMEOUT * 4,
            applied.wait_for(|a| *a >= seq),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreError::Unavailable(format!(
                "change {seq} was stored but has not come back to this node yet; it will apply"
            ))),
        }
    }

    /// Waits until every change stored so far is applied here.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let name = self.cluster.name("WORKSPACE");
        let unavailable = |e: &dyn std::fmt::Display| StoreError::Unavailable(e.to_string());
        let mut stream = self
            .cluster
            .js
            .get_stream(&name)
            .await
            .map_err(|e| unavailable(&e))?;
        let end = stream
            .info()
            .await
            .map_err(|e| unavailable(&e))?
            .state
            .last_sequence;
        self.applied_through(end).await
    }

    /// The first key `journal` read or wrote that a change after `base` wrote, as a conflict.
    fn changed_since(&self, base: u64, journal: &Journal) -> Option<StoreError> {
        let revisions = self
            .revisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let touched = journal
            .reads
            .iter()
            .map(|(s, k)| (*s, k))
            .chain(journal.writes.iter().map(|w| (w.slot, &w.key)));
        for (slot, key) in touched {
            if revisions
                .get(&(slot, key.clone()))
                .is_some_and(|r| *r > base)
            {
                let kind = KINDS
                    .get(usize::from(slot))
                    .map_or("record", |(k, _)| k.noun());
                return Some(StoreError::Conflict {
                    kind,
                    id: String::from_utf8_lossy(key).into_owned(),
                });
            }
        }
        None
    }

    /// Applies the change at `seq` to the local trees.
    fn apply(&self, store: &Store, seq: u64, payload: &[u8]) {
        let _state = self
            .applying
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match decode(payload) {
            Some(writes) => {
                if let Err(e) = store.apply(&writes) {
                    // The replica is now behind the cluster on these keys; a restart replays.
                    tracing::error!(seq, error = %e, "cannot apply a workspace change");
                }
                let mut revisions = self
                    .revisions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for w in writes {
                    revisions.insert((w.slot, w.key), seq);
                }
            }
            None => tracing::error!(seq, "a workspace change is not readable; skipped"),
        }
        self.applied.send_replace(seq);
    }
}

/// How a publish of a change ended.
enum Published {
    /// Stored at this sequence.
    At(u64),
    /// Another change was stored after the one this change was made on.
    Behind,
    /// NATS could not be reached or refused.
    Failed(String),
}

/// Applies every change from the stream as it is stored, for as long as the process runs;
/// resumes after the last applied one whenever the subscription breaks (NATS restarted).
async fn follow(
    replica: Arc<Replica>,
    store: Store,
    stream: async_nats::jetstream::stream::Stream,
) {
    loop {
        let from = replica.applied() + 1;
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_subject: replica.cluster.client.new_inbox(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await;
        let messages = match consumer {
            Ok(c) => c.messages().await,
            Err(e) => {
                tracing::debug!(error = %e, "workspace: cannot follow the stream; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "workspace: cannot follow the stream; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        while let Some(message) = messages.next().await {
            let Ok(message) = message else {
                break;
            };
            let Ok(info) = message.info() else {
                continue;
            };
            let seq = info.stream_sequence;
            if seq <= replica.applied() {
                continue;
            }
            replica.apply(&store, seq, &message.payload);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A change as a message (format in the module's header).
fn encode(writes: &[Write]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in writes {
        out.push(w.slot);
        out.push(u8::from(w.value.is_some()));
        out.extend_from_slice(&(w.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&w.key);
        if let Some(value) = &w.value {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
    out
}

/// A message as a change; `None` if it is not one.
fn decode(mut bytes: &[u8]) -> Option<Vec<Write>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if bytes.len() < n {
            return None;
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Some(head)
    }
    fn length(bytes: &mut &[u8]) -> Option<usize> {
        let raw: [u8; 4] = take(bytes, 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    }
    let mut writes = Vec::new();
    while !bytes.is_empty() {
        let head = take(&mut bytes, 2)?;
        let (slot, put) = (head[0], head[1] == 1);
        let n = length(&mut bytes)?;
        let key = take(&mut bytes, n)?.to_vec();
        let value = if put {
            let n = length(&mut bytes)?;
            Some(take(&mut bytes, n)?.to_vec())
        } else {
            None
        };
        writes.push(Write { slot, key, value });
    }
    Some(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_back_as_written() {
        let writes = vec![
            Write {
                slot: 0,
                key: b"s1".to_vec(),
                value: Some(b"{\"id\":\"s1\"}".to_vec()),
            },
            Write {
                slot: 12,
                key: b"slug:source:a".to_vec(),
                value: None,
            },
        ];
        assert_eq!(decode(&encode(&writes)), Some(writes));
        assert_eq!(decode(&[0, 1, 9, 0, 0, 0, b'x']), None, "a truncated key");
    }
}
