//! A node's connection to its cluster: one NATS client with JetStream, the names of the
//! streams and buckets the nodes share (all under one prefix, so that clusters and tests can
//! share a NATS server), and the bridge that lets synchronous code (sled transactions, the
//! component store) wait on it. `docs/cluster.md` describes what is shared and why.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;

/// How long one JetStream request (a publish's ack, a fetch, a stream lookup) may take before
/// it counts as NATS being unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How the node joins its cluster (from `[cluster]` in the configuration).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS server: `nats://HOST:4222`.
    pub url: String,
    /// Prefix of every stream, consumer and bucket name (letters, digits, `_`, `-`).
    pub prefix: String,
    /// This node's name: sent as `X-Sluice-Node`, and in its publishes' message ids.
    pub node: String,
    /// How long a message handed to a node may stay unacknowledged before JetStream hands it
    /// to another (the time after which a dead node's work is redone).
    pub ack_wait: Duration,
}

/// Why the cluster could not be reached or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The prefix cannot be part of a stream name.
    #[error(
        "cluster prefix `{0}` is not usable: use letters, digits, `_` and `-` (it names streams and buckets)"
    )]
    Prefix(String),
    /// The first connection failed.
    #[error("cannot connect to the cluster's NATS server at {url}: {reason}")]
    Connect {
        /// The URL given.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// A stream, consumer or bucket could not be created or opened.
    #[error("cluster setup ({what}): {reason}")]
    Setup {
        /// What was being set up.
        what: String,
        /// What JetStream said.
        reason: String,
    },
}

/// The node's handle on the cluster. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct Cluster {
    /// The NATS connection (reconnects on its own, forever).
    pub client: async_nats::Client,
    /// JetStream over it.
    pub js: jetstream::Context,
    /// Settings.
    pub config: ClusterConfig,
    /// The runtime the client runs on, for [`Cluster::wait`].
    runtime: tokio::runtime::Handle,
}

impl Cluster {
    /// Connects to `config.url` (on the current tokio runtime). The client then reconnects
    /// by itself whenever the connection drops, however long NATS is away.
    ///
    /// # Errors
    /// [`ClusterError::Prefix`], or [`ClusterError::Connect`] when the first connection fails.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if config.prefix.is_empty() || !config.prefix.chars().all(valid) {
            return Err(ClusterError::Prefix(config.prefix.clone()));
        }
        let client = async_nats::ConnectOptions::new()
            .name(format!("sluice {}", config.node))
            .connection_timeout(REQUEST_TIMEOUT)
            .max_reconnects(None::<usize>)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(Cluster {
            client,
            js,
            config,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The name of a stream, consumer or bucket: `<prefix>_<what>`.
    pub fn name(&self, what: &str) -> String {
        format!("{}_{what}", self.config.prefix)
    }

    /// The subject of a stream: `<prefix>.<what>`.
    pub fn subject(&self, what: &str) -> String {
        format!("{}.{what}", self.config.prefix)
    }

    /// Whether the client is connected right now (a read of its state).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Runs `f`, which blocks, from synchronous code: on a runtime worker its other tasks
    /// move to another thread meanwhile (so the NATS client keeps running).
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(f)
            }
            _ => f(),
        }
    }

    /// Runs `future` to completion from synchronous code: from a runtime worker (the
    /// worker's other tasks move to another thread meanwhile, so the NATS client keeps
    /// running) or from a blocking thread. Costs a thread hand-off on a worker.
    pub fn wait<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(future))
            }
            // Not inside a runtime (a blocking thread outside one, or a plain thread).
            Err(_) => self.runtime.block_on(future),
            // A current-thread runtime cannot lend its thread: run on one of our own.
            Ok(_) => std::thread::scope(|s| {
                s.spawn(|| self.runtime.block_on(future))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }),
        }
    }
}
