//! [`JetStreamLog`]: the log on a NATS JetStream stream, shared by every node of a cluster
//! (`docs/cluster.md`).
//!
//! - **Append**: one message per record, published with a `Nats-Msg-Id` unique to this node
//!   and record, so that a publish retried after a lost acknowledgement is stored once (the
//!   stream's duplicate window); [`EventLog::append`] resolves after JetStream acknowledged
//!   every message (stored, and replicated as the stream is configured).
//! - **Read**: every node pulls from one durable consumer per stage, so each record goes to one
//!   node; JetStream hands a record that a node did not acknowledge within
//!   [`crate::cluster::ClusterConfig::ack_wait`] to another (a node that died).
//! - **Positions are this node's**: a record fetched by this node gets the next local position
//!   (from 0 at each start), so the stages' read, commit and replay work unchanged: a commit of
//!   position `P` acknowledges every record this node fetched before `P`, and a read from a
//!   position before what was fetched serves the held records again. Nothing about positions
//!   survives a restart: what a node had not acknowledged is redelivered by JetStream.
//! - **Order**: records come out of the stream in the order they were stored, spread over the
//!   nodes; each node processes what it fetched in that order, but two nodes work at once, so
//!   across nodes only the order within one record (one tracking request) is kept.
//!
//! Costs: an append is one publish per record and a wait for their acknowledgements (one
//! round trip to NATS, shared by the records of the append); a read is one pull request; a
//! commit one acknowledgement message per record (not waited for).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::pull::{Batch, Config as PullConfig};
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use futures_util::StreamExt;

use super::{Appended, Bytes, EventLog, LogError, LogFuture, Record};
use crate::cluster::{Cluster, ClusterError};

/// The largest record published as is: NATS's default `max_payload` is 1 MiB, and headers
/// take a little of it.
pub const MAX_RECORD: usize = (1 << 20) - 4096;

/// How long one pull waits on the server for a record before it asks again.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// Publishes of one record tried before the append fails: a lost acknowledgement is retried
/// with the same message id, which JetStream deduplicates.
const PUBLISH_ATTEMPTS: usize = 2;

/// A durable log on one JetStream stream with one durable pull consumer shared by the nodes.
/// One per stream and process; share it as `Arc<dyn EventLog>`.
pub struct JetStreamLog {
    cluster: Cluster,
    subject: String,
    consumer_name: String,
    consumer: PullConsumer,
    state: Mutex<Held>,
    /// `<node>-<start time>-`: with a counter, a message id no other publish uses.
    id_prefix: String,
    published: AtomicU64,
}

/// What this node fetched and has not acknowledged, by local position.
struct Held {
    records: VecDeque<(u64, Message)>,
    /// The local position of the next record fetched.
    next: u64,
    /// Everything before this is acknowledged.
    committed: u64,
}

impl JetStreamLog {
    /// Opens (creating if missing) the stream `<prefix>_<name>` on subject `<prefix>.<name>`
    /// (file storage, kept until consumed: work-queue retention) and its durable consumer
    /// `consumer` (explicit acks, [`crate::cluster::ClusterConfig::ack_wait`]).
    ///
    /// # Errors
    /// [`ClusterError::Setup`] when JetStream refuses or cannot be reached.
    pub async fn open(
        cluster: &Cluster,
        name: &str,
        consumer: &str,
    ) -> Result<JetStreamLog, ClusterError> {
        let logical = consumer.to_string();
        let setup = |what: &str| {
            let what = what.to_string();
            move |e: &dyn std::fmt::Display| ClusterError::Setup {
                what,
                reason: e.to_string(),
            }
        };
        let stream_name = cluster.name(&name.to_ascii_uppercase());
        let subject = cluster.subject(name);
        let stream = cluster
            .js
            .get_or_create_stream(StreamConfig {
                name: stream_name.clone(),
                subjects: vec![subject.clone()],
                storage: StorageType::File,
                retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| setup(&format!("stream {stream_name}"))(&e))?;
        let durable = cluster.name(consumer);
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                PullConfig {
                    durable_name: Some(durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: cluster.config.ack_wait,
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| setup(&format!("consumer {durable}"))(&e))?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(JetStreamLog {
            cluster: cluster.clone(),
            subject,
            consumer_name: logical,
            consumer,
            state: Mutex::new(Held {
                records: VecDeque::new(),
                next: 0,
                committed: 0,
            }),
            id_prefix: format!("{}-{started:x}-", cluster.config.node),
            published: AtomicU64::new(0),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Every change to `Held` is complete before the lock is released.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps fetched `messages` as the next local positions; their records.
    fn hold(&self, messages: Vec<Message>) -> Vec<Record> {
        let mut held = self.held();
        messages
            .into_iter()
            .map(|m| {
                let position = held.next;
                held.next += 1;
                let record = Record {
                    position,
                    next: position + 1,
                    payload: m.payload.clone(),
                };
                held.records.push_back((position, m));
                record
            })
            .collect()
    }

    /// Up to `max` messages already waiting for this consumer (no wait on the server).
    async fn fetch(&self, max: usize) -> Result<Vec<Message>, LogError> {
        bounded(async {
            let batch = self
                .consumer
                .fetch()
                .max_messages(max)
                .messages()
                .await
                .map_err(unavailable)?;
            collect(batch).await
        })
        .await
    }

    /// One message, waiting up to [`PULL_WAIT`] for it.
    async fn pull_one(&self) -> Result<Vec<Message>, LogError> {
        bounded(async {
            let batch = self
                .consumer
                .batch()
                .max_messages(1)
                .expires(PULL_WAIT)
                .messages()
                .await
                .map_err(unavailable)?;
            collect(batch).await
        })
        .await
    }

    /// Publishes one record and waits for its acknowledgement; a lost acknowledgement is
    /// retried with the same message id. Its stream sequence.
    async fn publish(&self, record: Bytes) -> Result<u64, LogError> {
        let n = self.published.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", self.id_prefix);
        let mut last = LogError::Closed;
        for _ in 0..PUBLISH_ATTEMPTS {
            if !self.cluster.connected() {
                return Err(LogError::Unavailable(
                    "not connected to the cluster's NATS server".into(),
                ));
            }
            let message = PublishMessage::build()
                .payload(record.clone())
                .message_id(&id);
            let sent = self
                .cluster
                .js
                .send_publish(self.subject.clone(), message)
                .await;
            match sent {
                Ok(ack) => match ack.await {
                    Ok(ack) => return Ok(ack.sequence),
                    Err(e) => last = unavailable(e),
                },
                Err(e) => last = unavailable(e),
            }
        }
        Err(last)
    }
}

/// Every message of a pull's answer (ending with the answer; an error after some messages
/// keeps those).
/// `pull` within [`PULL_WAIT`] and a second: a pull request ends with the server's answer,
/// and a server that restarted meanwhile never answers it (the request died with it), so
/// without this bound a stage would wait forever for a batch that cannot come.
async fn bounded(
    pull: impl std::future::Future<Output = Result<Vec<Message>, LogError>>,
) -> Result<Vec<Message>, LogError> {
    tokio::time::timeout(PULL_WAIT + Duration::from_secs(1), pull)
        .await
        .unwrap_or_else(|_| Err(unavailable("no answer to a pull request")))
}

async fn collect(mut batch: Batch) -> Result<Vec<Message>, LogError> {
    let mut out = Vec::new();
    while let Some(message) = batch.next().await {
        match message {
            Ok(m) => out.push(m),
            Err(e) if out.is_empty() => return Err(unavailable(e)),
            Err(_) => break,
        }
    }
    Ok(out)
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

impl EventLog for JetStreamLog {
    fn append(&self, records: Vec<Bytes>) -> LogFuture<'_, Appended> {
        Box::pin(async move {
            if let Some(big) = records.iter().find(|r| r.len() > MAX_RECORD) {
                return Err(LogError::TooLarge {
                    len: big.len(),
                    max: MAX_RECORD,
                });
            }
            // Published one after the other but acknowledged together: every publish of
            // the append is in flight before the first acknowledgement is awaited.
            let acks = records.into_iter().map(|r| self.publish(r));
            let positions = futures_util::future::try_join_all(acks).await?;
            let next = positions.last().map_or(0, |p| p + 1);
            Ok(Appended { positions, next })
        })
    }

    fn read(&self, from: u64, max_records: usize, _max_bytes: usize) -> LogFuture<'_, Vec<Record>> {
        Box::pin(async move {
            {
                let held = self.held();
                if from < held.committed || from > held.next {
                    return Err(LogError::OutOfRange {
                        position: from,
                        first: held.committed,
                        end: held.next,
                    });
                }
                if from < held.next {
                    // A replay of what this node holds (after a stage's error).
                    return Ok(held
                        .records
                        .iter()
                        .filter(|(p, _)| *p >= from)
                        .take(max_records.max(1))
                        .map(|(p, m)| Record {
                            position: *p,
                            next: p + 1,
                            payload: m.payload.clone(),
                        })
                        .collect());
                }
            }
            match self.fetch(max_records.max(1)).await {
                Ok(messages) => Ok(self.hold(messages)),
                Err(e) => {
                    // Not an error for the stage: it waits with `wait_beyond`, which retries.
                    tracing::debug!(error = %e, "cluster log: fetch failed");
                    Ok(Vec::new())
                }
            }
        })
    }

    fn first(&self) -> u64 {
        self.held().committed
    }

    fn end(&self) -> u64 {
        self.held().next
    }

    fn wait_beyond(&self, position: u64) -> LogFuture<'_, u64> {
        Box::pin(async move {
            loop {
                {
                    let held = self.held();
                    if held.next > position {
                        return Ok(held.next);
                    }
                }
                match self.pull_one().await {
                    Ok(messages) => {
                        self.hold(messages);
                    }
                    Err(e) => {
                        // NATS away: ask again shortly (the client reconnects by itself).
                        tracing::debug!(error = %e, "cluster log: pull failed");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        })
    }

    fn commit<'a>(&'a self, consumer: &'a str, position: u64) -> LogFuture<'a, ()> {
        Box::pin(async move {
            if consumer != self.consumer_name {
                return Err(LogError::UnknownConsumer(consumer.to_string()));
            }
            let done: Vec<Message> = {
                let mut held = self.held();
                if position < held.committed || position > held.next {
                    return Err(LogError::OutOfRange {
                        position,
                        first: held.committed,
                        end: held.next,
                    });
                }
                held.committed = position;
                let mut done = Vec::new();
                while held.records.front().is_some_and(|(p, _)| *p < position) {
                    if let Some((_, m)) = held.records.pop_front() {
                        done.push(m);
                    }
                }
                done
            };
            // The last acknowledgement waits for the server's confirmation: the server takes
            // one connection's messages in order, so once it confirms, every earlier one is
            // applied too, and a node that stops right after a commit (or is dropped) does not
            // get its committed records redelivered elsewhere. One round trip per commit. A
            // lost acknowledgement only means JetStream redelivers the record (at least once).
            let last = done.len().saturating_sub(1);
            for (i, message) in done.into_iter().enumerate() {
                let sent = if i == last {
                    message.double_ack().await
                } else {
                    message.ack().await
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "cluster log: acknowledgement not confirmed");
                }
            }
            Ok(())
        })
    }

    fn position(&self, consumer: &str) -> Result<u64, LogError> {
        if consumer != self.consumer_name {
            return Err(LogError::UnknownConsumer(consumer.to_string()));
        }
        Ok(self.held().committed)
    }

    fn max_record(&self) -> usize {
        MAX_RECORD
    }
}
