//! `sluice serve`'s configuration: every setting with its default, read from a TOML file
//! (`sluice.toml`), the environment (`SLUICE_*`) and flags, each overriding the one before:
//! flags > environment > file > defaults.
//!
//! [`KEYS`] is the one list of settings. It gives each its file key, environment variable and
//! flag; the `serve` command builds its flags from it, `--print-config` prints from it, and a
//! test checks that `docs/configuration.md` names every entry. Defaults are not repeated here:
//! they come from the `Default`s of the structures they configure ([`DataPlaneConfig`],
//! [`crate::api::Config`], [`EngineConfig`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dataplane::DataPlaneConfig;
use crate::engine::EngineConfig;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "sluice.toml";

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// Every setting of `sluice serve`, with its default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listeners, storage, logs, API tokens.
    pub server: ServerSettings,
    /// The tracking API.
    pub ingest: IngestSettings,
    /// Deliveries to destinations.
    pub delivery: DeliverySettings,
    /// Insert functions in the pipeline.
    pub functions: FunctionSettings,
    /// The WebAssembly engine.
    pub engine: EngineSettings,
    /// The event debugger and function logs.
    pub debugger: DebuggerSettings,
    /// Running as a node of a cluster on NATS JetStream.
    pub cluster: ClusterSettings,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address of the control plane (and of the tracking API unless `ingest_listen` is set).
    #[serde(deserialize_with = "address::one")]
    pub listen: SocketAddr,
    /// Address of the tracking API alone (`/v1/*`, `/healthz`, `/readyz`).
    #[serde(deserialize_with = "address::maybe")]
    pub ingest_listen: Option<SocketAddr>,
    /// Where all state lives.
    pub data_dir: PathBuf,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// The workspace's name, shown by `GET /`.
    pub workspace_name: String,
    /// Requests per minute per API token.
    pub rate_limit: u32,
    /// A Workspace Owner token of the operator's choosing.
    pub bootstrap_token: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> ServerSettings {
        let api = crate::api::Config::default();
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ingest_listen: None,
            data_dir: PathBuf::from("./sluice-data"),
            log_format: LogFormat::Text,
            workspace_name: api.workspace_name,
            rate_limit: api.rate_limit_per_minute,
            bootstrap_token: None,
        }
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Events pending per source past which ingestion answers 429.
    pub queue_bound: usize,
    /// The `Retry-After` of that 429, seconds.
    pub retry_after_secs: u64,
    /// Window in which a repeated `messageId` is dropped, seconds.
    pub dedup_window_secs: u64,
    /// `messageId`s held for deduplication, past which the oldest are forgotten early.
    pub dedup_capacity: usize,
    /// Requests the pipeline may be behind ingestion before a new request waits for it.
    pub pipeline_lead: u64,
}

impl Default for IngestSettings {
    fn default() -> IngestSettings {
        let d = DataPlaneConfig::default();
        IngestSettings {
            queue_bound: d.queue_bound,
            retry_after_secs: d.retry_after_secs,
            dedup_window_secs: d.dedup_window.as_secs(),
            dedup_capacity: d.dedup_capacity,
            pipeline_lead: d.pipeline_lead,
        }
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// First retry delay, milliseconds (doubles per attempt, with jitter).
    pub retry_backoff_ms: u64,
    /// Longest delay between two attempts, milliseconds.
    pub retry_backoff_max_ms: u64,
    /// How long a failing delivery is retried before it becomes a dead letter, seconds.
    pub retry_max_age_secs: u64,
    /// Timeout of one webhook request, milliseconds.
    pub webhook_timeout_ms: u64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Size past which a `file` destination's file is rotated, bytes.
    pub file_rotate_bytes: u64,
}

impl Default for DeliverySettings {
    fn default() -> DeliverySettings {
        let d = DataPlaneConfig::default();
        DeliverySettings {
            retry_backoff_ms: millis(d.backoff_base),
            retry_backoff_max_ms: millis(d.backoff_max),
            retry_max_age_secs: d.max_age.as_secs(),
            webhook_timeout_ms: millis(d.webhook_timeout),
            concurrency: d.delivery_concurrency,
            file_rotate_bytes: d.file_rotate_bytes,
        }
    }
}

/// `[functions]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionSettings {
    /// Attempts of an invocation that failed with `retry-error` or a retryable engine error.
    pub attempts: u32,
    /// The nice value (0-19) of the threads the pipeline runs functions on.
    pub nice: i32,
}

impl Default for FunctionSettings {
    fn default() -> FunctionSettings {
        FunctionSettings {
            attempts: DataPlaneConfig::default().function_attempts,
            nice: DataPlaneConfig::default().pipeline_nice,
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Use the pooling allocator (falls back to on-demand where it cannot be reserved).
    pub pooling: bool,
    /// Instances the pool holds at once, all functions together.
    pub pool_instances: u32,
    /// The largest memory a function may have, MiB.
    pub max_memory_mib: usize,
}

impl Default for EngineSettings {
    fn default() -> EngineSettings {
        let e = EngineConfig::default();
        EngineSettings {
            pooling: e.pooling,
            pool_instances: e.pool_instances,
            max_memory_mib: e.max_memory_bytes >> 20,
        }
    }
}

/// `[debugger]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebuggerSettings {
    /// Recent events kept per source.
    pub events_per_source: usize,
    /// Log lines kept per function.
    pub function_log_lines: usize,
}

impl Default for DebuggerSettings {
    fn default() -> DebuggerSettings {
        let d = DataPlaneConfig::default();
        DebuggerSettings {
            events_per_source: d.debugger_events,
            function_log_lines: d.function_log_lines,
        }
    }
}

/// `[cluster]`: without `url`, sluice runs alone on its data directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// The NATS server (with JetStream) the nodes share: `nats://HOST:4222`.
    pub url: Option<String>,
    /// Prefix of the cluster's streams and buckets.
    pub prefix: String,
    /// This node's name (default: the host name and the listening port).
    pub node: Option<String>,
    /// Seconds a node may hold an event unacknowledged before another node takes it.
    pub ack_wait_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> ClusterSettings {
        ClusterSettings {
            url: None,
            prefix: "sluice".into(),
            node: None,
            ack_wait_secs: 30,
        }
    }
}

impl Settings {
    /// How to join the cluster, when `cluster.url` is set; `listening` is the control
    /// plane's bound address (it names the node by default).
    pub fn cluster_config(&self, listening: SocketAddr) -> Option<crate::cluster::ClusterConfig> {
        let c = &self.cluster;
        let url = c.url.clone()?;
        let node = c.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "node".into());
            format!("{host}-{}", listening.port())
        });
        Some(crate::cluster::ClusterConfig {
            url,
            prefix: c.prefix.clone(),
            node,
            ack_wait: Duration::from_secs(c.ack_wait_secs.max(1)),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Settings {
    /// The server's settings as the API and the data plane take them.
    pub fn api_config(&self) -> crate::api::Config {
        let (d, i) = (&self.delivery, &self.ingest);
        crate::api::Config {
            rate_limit_per_minute: self.server.rate_limit,
            workspace_name: self.server.workspace_name.clone(),
            data_plane: DataPlaneConfig {
                dedup_window: Duration::from_secs(i.dedup_window_secs),
                dedup_capacity: i.dedup_capacity,
                queue_bound: i.queue_bound,
                pipeline_lead: i.pipeline_lead,
                pipeline_nice: self.functions.nice,
                retry_after_secs: i.retry_after_secs,
                backoff_base: Duration::from_millis(d.retry_backoff_ms),
                backoff_max: Duration::from_millis(d.retry_backoff_max_ms),
                max_age: Duration::from_secs(d.retry_max_age_secs),
                webhook_timeout: Duration::from_millis(d.webhook_timeout_ms),
                delivery_concurrency: d.concurrency,
                function_attempts: self.functions.attempts,
                file_rotate_bytes: d.file_rotate_bytes,
                debugger_events: self.debugger.events_per_source,
                function_log_lines: self.debugger.function_log_lines,
            },
            engine: EngineConfig {
                pooling: self.engine.pooling,
                pool_instances: self.engine.pool_instances,
                max_memory_bytes: self.engine.max_memory_mib << 20,
                ..EngineConfig::default()
            },
        }
    }
}

/// Listening addresses: an IP address and a port, or `localhost:<port>` (read as
/// `127.0.0.1:<port>`); anything else is refused with an example.
mod address {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer};

    /// `text` as an address to listen on.
    pub fn parse(text: &str) -> Result<SocketAddr, String> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(address);
        }
        if let Some(port) = text.strip_prefix("localhost:")
            && let Ok(port) = port.parse::<u16>()
        {
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
        Err(format!(
            "`{text}` is not an address to listen on: give an IP address and a port, such as \
             127.0.0.1:8080 (this machine only), 0.0.0.0:8080 (every interface) or \
             localhost:8080"
        ))
    }

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn maybe<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// What a setting's text from the environment or a flag is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Taken as is (addresses, paths and names are checked by the setting's type).
    Text,
    /// A whole number; `_` separators allowed (`100_000`).
    Integer,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Boolean,
}

/// One setting: where it lives in the file, its environment variable and its flag.
#[derive(Debug)]
pub struct Key {
    /// `section.name` in the file.
    pub path: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The flag, without its `--`.
    pub flag: &'static str,
    /// How its text is read.
    pub kind: ValueKind,
    /// What it does (the flag's help).
    pub help: &'static str,
}

impl Key {
    /// The section and the name within it.
    pub fn parts(&self) -> (&'static str, &'static str) {
        self.path.split_once('.').unwrap_or(("", self.path))
    }
}

const fn key(
    path: &'static str,
    env: &'static str,
    flag: &'static str,
    kind: ValueKind,
    help: &'static str,
) -> Key {
    Key {
        path,
        env,
        flag,
        kind,
        help,
    }
}

use ValueKind::{Boolean, Integer, Text};

/// Every setting, in the order `--print-config` and the documentation list them.
pub const KEYS: &[Key] = &[
    key(
        "server.listen",
        "SLUICE_LISTEN",
        "listen",
        Text,
        "Address to listen on (`127.0.0.1:0` picks a free port)",
    ),
    key(
        "server.ingest_listen",
        "SLUICE_INGEST_LISTEN",
        "ingest-listen",
        Text,
        "Serve the tracking API (`/v1/*`) on this address instead; `listen` then serves the control plane only",
    ),
    key(
        "server.data_dir",
        "SLUICE_DATA_DIR",
        "data-dir",
        Text,
        "Where all state lives (created if missing)",
    ),
    key(
        "server.log_format",
        "SLUICE_LOG_FORMAT",
        "log-format",
        Text,
        "Log format: `text` or `json`",
    ),
    key(
        "server.workspace_name",
        "SLUICE_WORKSPACE_NAME",
        "workspace-name",
        Text,
        "The workspace's name, shown by `GET /`",
    ),
    key(
        "server.rate_limit",
        "SLUICE_RATE_LIMIT",
        "rate-limit",
        Integer,
        "Requests per minute allowed to each API token",
    ),
    key(
        "server.bootstrap_token",
        "SLUICE_BOOTSTRAP_TOKEN",
        "bootstrap-token",
        Text,
        "Use this secret as a Workspace Owner token instead of generating one",
    ),
    key(
        "ingest.queue_bound",
        "SLUICE_QUEUE_BOUND",
        "queue-bound",
        Integer,
        "Events pending per source past which ingestion answers 429 with `Retry-After`",
    ),
    key(
        "ingest.pipeline_lead",
        "SLUICE_PIPELINE_LEAD",
        "pipeline-lead",
        Integer,
        "Requests the pipeline may be behind before a new request waits (up to 1 s) for it",
    ),
    key(
        "ingest.retry_after_secs",
        "SLUICE_RETRY_AFTER_SECS",
        "retry-after-secs",
        Integer,
        "The `Retry-After` of that 429, in seconds",
    ),
    key(
        "ingest.dedup_window_secs",
        "SLUICE_DEDUP_WINDOW_SECS",
        "dedup-window-secs",
        Integer,
        "Seconds in which a repeated `messageId` from the same source is dropped",
    ),
    key(
        "ingest.dedup_capacity",
        "SLUICE_DEDUP_CAPACITY",
        "dedup-capacity",
        Integer,
        "`messageId`s kept for deduplication; past it the oldest are forgotten early",
    ),
    key(
        "delivery.retry_backoff_ms",
        "SLUICE_RETRY_BACKOFF_MS",
        "retry-backoff-ms",
        Integer,
        "First delay before retrying a failed delivery, in milliseconds (doubles per attempt, with jitter)",
    ),
    key(
        "delivery.retry_backoff_max_ms",
        "SLUICE_RETRY_BACKOFF_MAX_MS",
        "retry-backoff-max-ms",
        Integer,
        "Longest delay between two delivery attempts, in milliseconds",
    ),
    key(
        "delivery.retry_max_age_secs",
        "SLUICE_RETRY_MAX_AGE_SECS",
        "retry-max-age-secs",
        Integer,
        "Seconds a failing delivery is retried before it becomes a dead letter",
    ),
    key(
        "delivery.webhook_timeout_ms",
        "SLUICE_WEBHOOK_TIMEOUT_MS",
        "webhook-timeout-ms",
        Integer,
        "Timeout of one webhook request, in milliseconds",
    ),
    key(
        "delivery.concurrency",
        "SLUICE_DELIVERY_CONCURRENCY",
        "delivery-concurrency",
        Integer,
        "Deliveries in flight at once, all destinations together",
    ),
    key(
        "delivery.file_rotate_bytes",
        "SLUICE_FILE_ROTATE_BYTES",
        "file-rotate-bytes",
        Integer,
        "Size past which a `file` destination's file is rotated, in bytes",
    ),
    key(
        "functions.attempts",
        "SLUICE_FUNCTION_ATTEMPTS",
        "function-attempts",
        Integer,
        "Attempts of an insert function that failed with `retry-error` or a retryable engine error",
    ),
    key(
        "functions.nice",
        "SLUICE_FUNCTION_NICE",
        "function-nice",
        Integer,
        "Nice value (0-19) of the pipeline's threads, so acknowledging requests comes first",
    ),
    key(
        "engine.pooling",
        "SLUICE_ENGINE_POOLING",
        "engine-pooling",
        Boolean,
        "Use the pooling allocator (falls back to on-demand where it cannot be reserved)",
    ),
    key(
        "engine.pool_instances",
        "SLUICE_ENGINE_POOL_INSTANCES",
        "engine-pool-instances",
        Integer,
        "Function instances the pool holds at once, all functions together",
    ),
    key(
        "engine.max_memory_mib",
        "SLUICE_ENGINE_MAX_MEMORY_MIB",
        "engine-max-memory-mib",
        Integer,
        "The largest memory any function may have, in MiB",
    ),
    key(
        "debugger.events_per_source",
        "SLUICE_DEBUGGER_EVENTS",
        "debugger-events",
        Integer,
        "Recent events the debugger keeps per source",
    ),
    key(
        "debugger.function_log_lines",
        "SLUICE_FUNCTION_LOG_LINES",
        "function-log-lines",
        Integer,
        "Log lines kept per function",
    ),
    key(
        "cluster.url",
        "SLUICE_CLUSTER",
        "cluster",
        Text,
        "Run as a node of a cluster on this NATS JetStream server (`nats://HOST:4222`); unset, sluice runs alone",
    ),
    key(
        "cluster.prefix",
        "SLUICE_CLUSTER_PREFIX",
        "cluster-prefix",
        Text,
        "Prefix of the cluster's streams and buckets: nodes on one NATS server with one prefix form one cluster",
    ),
    key(
        "cluster.node",
        "SLUICE_NODE",
        "node",
        Text,
        "This node's name, sent as `X-Sluice-Node` (default: the host name and the listening port)",
    ),
    key(
        "cluster.ack_wait_secs",
        "SLUICE_CLUSTER_ACK_WAIT_SECS",
        "cluster-ack-wait-secs",
        Integer,
        "Seconds a node may hold an event unacknowledged before another node takes it over",
    ),
];

/// Keys whose values are secrets: `--print-config` says whether they are set, not what.
const SECRET_KEYS: &[&str] = &["server.bootstrap_token"];

/// Which file to read.
#[derive(Debug, Clone)]
pub enum ConfigFile {
    /// `--config`: it must exist.
    Given(PathBuf),
    /// No `--config`: this one is read if it exists.
    IfPresent(PathBuf),
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File,
    /// An environment variable.
    Env(&'static str),
    /// A flag.
    Flag(&'static str),
}

/// Why the configuration cannot be used. Each names where the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read. (The cause is in the message, not a `source`, so that a
    /// report of the error with its causes says it once.)
    #[error("cannot read the configuration file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not valid TOML, or a key in it is unknown or has a wrong value.
    #[error("invalid configuration file {}{}: {}{message}", path.display(),
        line.map(|l| format!(", line {l}")).unwrap_or_default(),
        key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    File {
        /// The file.
        path: PathBuf,
        /// The line, when known.
        line: Option<usize>,
        /// The key (`section.name`), when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value from the environment or a flag (or a combination) is wrong.
    #[error("invalid setting `{key}` (from {origin}): {message}")]
    Value {
        /// The key (`section.name`).
        key: String,
        /// `SLUICE_...`, `--...`, the file, or the defaults.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The effective configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    origins: BTreeMap<&'static str, Origin>,
}

impl Loaded {
    /// Where `path`'s value came from (`None`: its default).
    pub fn origin(&self, path: &str) -> Option<&Origin> {
        self.origins.get(path)
    }

    fn origin_text(&self, path: &str) -> String {
        match self.origins.get(path) {
            None => "the defaults".into(),
            Some(Origin::File) => self
                .file
                .as_ref()
                .map_or_else(|| "the file".into(), |f| f.display().to_string()),
            Some(Origin::Env(var)) => var.to_string(),
            Some(Origin::Flag(flag)) => format!("--{flag}"),
        }
    }

    /// The effective configuration as a TOML file, each value commented with where it came
    /// from; secrets are not shown.
    pub fn to_toml(&self) -> String {
        let table = toml::Table::try_from(&self.settings).unwrap_or_default();
        let mut out = String::from(
            "# sluice serve's effective configuration.\n\
             # Precedence: flags > environment (SLUICE_*) > configuration file > defaults.\n",
        );
        out.push_str(&match &self.file {
            Some(f) => format!("# Configuration file: {}\n", f.display()),
            None => "# Configuration file: none\n".to_string(),
        });
        let mut section = "";
        for key in KEYS {
            let (s, name) = key.parts();
            if s != section {
                section = s;
                out.push_str(&format!("\n[{s}]\n"));
            }
            let origin = match self.origins.get(key.path) {
                None => "default".to_string(),
                Some(_) => format!("from {}", self.origin_text(key.path)),
            };
            let value = table.get(s).and_then(|t| t.get(name));
            let line = match value {
                Some(_) if SECRET_KEYS.contains(&key.path) => {
                    format!("# {name} is set, not shown ({origin})")
                }
                Some(v) => format!("{name} = {v}  # {origin}"),
                None => format!("# {name} is not set"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// Reads the configuration: `file` (if any), then `env` (looks a variable up; an empty value
/// counts as unset), then `flags` (`(key path, text)` pairs), each overriding the one before.
///
/// # Errors
/// The file cannot be read, is not TOML, names an unknown key or has a wrong value; a value
/// from the environment or a flag does not parse; a setting is out of its range.
pub fn load(
    file: &ConfigFile,
    env: impl Fn(&str) -> Option<String>,
    flags: &[(&'static str, String)],
) -> Result<Loaded, ConfigError> {
    let mut origins = BTreeMap::new();
    let (settings, file) = match file {
        ConfigFile::Given(path) => (read_file(path, &mut origins)?, Some(path.clone())),
        ConfigFile::IfPresent(path) if path.is_file() => {
            (read_file(path, &mut origins)?, Some(path.clone()))
        }
        ConfigFile::IfPresent(_) => (Settings::default(), None),
    };
    let mut loaded = Loaded {
        settings,
        file,
        origins,
    };
    let mut overrides = Vec::new();
    for key in KEYS {
        if let Some(text) = env(key.env).filter(|v| !v.is_empty()) {
            overrides.push((key, text, Origin::Env(key.env)));
        }
    }
    for (path, text) in flags {
        if let Some(key) = KEYS.iter().find(|k| k.path == *path) {
            overrides.push((key, text.clone(), Origin::Flag(key.flag)));
        }
    }
    if !overrides.is_empty() {
        let mut table =
            toml::Table::try_from(&loaded.settings).map_err(|e| ConfigError::Value {
                key: "-".into(),
                origin: "the defaults".into(),
                message: e.to_string(),
            })?;
        for (key, text, origin) in overrides {
            let value = parse(key.kind, &text).map_err(|message| ConfigError::Value {
                key: key.path.into(),
                origin: describe(&origin),
                message,
            })?;
            let (section, name) = key.parts();
            if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                t.insert(name.to_string(), value);
            } else {
                let mut t = toml::Table::new();
                t.insert(name.to_string(), value);
                table.insert(section.to_string(), toml::Value::Table(t));
            }
            loaded.origins.insert(key.path, origin);
        }
        loaded.settings = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let key = e.path().to_string();
                ConfigError::Value {
                    origin: loaded.origin_text(&key),
                    message: e.into_inner().message().to_string(),
                    key,
                }
            },
        )?;
    }
    validate(&loaded)?;
    Ok(loaded)
}

fn describe(origin: &Origin) -> String {
    match origin {
        Origin::File => "the file".into(),
        Origin::Env(var) => var.to_string(),
        Origin::Flag(flag) => format!("--{flag}"),
    }
}

/// Reads and checks the file; records the keys it sets.
fn read_file(
    path: &Path,
    origins: &mut BTreeMap<&'static str, Origin>,
) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    let error = |key: Option<String>, e: toml::de::Error| ConfigError::File {
        path: path.to_path_buf(),
        line: e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
        key: key.filter(|k| !k.is_empty() && k != "."),
        message: e.message().trim().to_string(),
    };
    let document = toml::de::Deserializer::parse(&text).map_err(|e| error(None, e))?;
    let settings: Settings = serde_path_to_error::deserialize(document).map_err(
        |e: serde_path_to_error::Error<toml::de::Error>| {
            let key = e.path().to_string();
            error(Some(key), e.into_inner())
        },
    )?;
    // The keys the file sets, for `--print-config` and for naming the culprit of a later error.
    if let Ok(table) = text.parse::<toml::Table>() {
        for key in KEYS {
            let (section, name) = key.parts();
            if table.get(section).and_then(|s| s.get(name)).is_some() {
                origins.insert(key.path, Origin::File);
            }
        }
    }
    Ok(settings)
}

/// A value from the environment or a flag, as its key's kind reads it.
fn parse(kind: ValueKind, text: &str) -> Result<toml::Value, String> {
    let trimmed = text.trim();
    match kind {
        ValueKind::Text => Ok(toml::Value::String(text.to_string())),
        ValueKind::Integer => trimmed
            .replace('_', "")
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("`{text}` is not a whole number")),
        ValueKind::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("`{text}` is not true or false")),
        },
    }
}

/// Ranges that the types alone do not express.
fn validate(loaded: &Loaded) -> Result<(), ConfigError> {
    let s = &loaded.settings;
    let at_least_one = [
        ("server.rate_limit", u64::from(s.server.rate_limit)),
        ("delivery.concurrency", s.delivery.concurrency as u64),
        ("functions.attempts", u64::from(s.functions.attempts)),
        ("engine.pool_instances", u64::from(s.engine.pool_instances)),
        ("engine.max_memory_mib", s.engine.max_memory_mib as u64),
        ("delivery.webhook_timeout_ms", s.delivery.webhook_timeout_ms),
    ];
    for (key, value) in at_least_one {
        if value == 0 {
            return Err(ConfigError::Value {
                key: key.into(),
                origin: loaded.origin_text(key),
                message: "must be at least 1".into(),
            });
        }
    }
    if !(0..=19).contains(&s.functions.nice) {
        let key = "functions.nice";
        return Err(ConfigError::Value {
            key: key.into(),
            origin: loaded.origin_text(key),
            message: "must be a nice value from 0 (normal priority) to 19 (lowest)".into(),
        });
    }
    if s.delivery.retry_backoff_max_ms < s.delivery.retry_backoff_ms {
        let key = "delivery.retry_backoff_max_ms";
        return Err(ConfigError::Value {
            key: key.into(),
            origin: loaded.origin_text(key),
            message: format!(
                "must be at least delivery.retry_backoff_ms ({})",
                s.delivery.retry_backoff_ms
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn file(text: &str) -> (tempfile::TempDir, ConfigFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).unwrap();
        (dir, ConfigFile::Given(path))
    }

    #[test]
    fn defaults_are_those_of_the_structures_they_configure() {
        let loaded = load(
            &ConfigFile::IfPresent("/nonexistent/sluice.toml".into()),
            env(&[]),
            &[],
        )
        .unwrap();
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.file.is_none());
        let config = loaded.settings.api_config();
        let defaults = crate::api::Config::default();
        assert_eq!(config.rate_limit_per_minute, defaults.rate_limit_per_minute);
        let (a, b) = (config.data_plane, DataPlaneConfig::default());
        assert_eq!(
            (
                a.queue_bound,
                a.dedup_window,
                a.backoff_base,
                a.backoff_max,
                a.max_age,
                a.webhook_timeout
            ),
            (
                b.queue_bound,
                b.dedup_window,
                b.backoff_base,
                b.backoff_max,
                b.max_age,
                b.webhook_timeout
            )
        );
        assert_eq!(
            (
                a.delivery_concurrency,
                a.function_attempts,
                a.file_rotate_bytes,
                a.debugger_events,
                a.function_log_lines,
                a.retry_after_secs
            ),
            (
                b.delivery_concurrency,
                b.function_attempts,
                b.file_rotate_bytes,
                b.debugger_events,
                b.function_log_lines,
                b.retry_after_secs
            )
        );
        assert_eq!(
            config.engine.max_memory_bytes,
            EngineConfig::default().max_memory_bytes
        );
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let (_dir, path) = file(
            "[ingest]\nqueue_bound = 10\n[delivery]\nwebhook_timeout_ms = 1000\nretry_backoff_ms = 5\n[server]\nrate_limit = 7\n",
        );
        let loaded = load(
            &path,
            env(&[
                ("SLUICE_WEBHOOK_TIMEOUT_MS", "2000"),
                ("SLUICE_RATE_LIMIT", "8"),
                ("SLUICE_INGEST_LISTEN", ""),
            ]),
            &[("server.rate_limit", "9".into())],
        )
        .unwrap();
        let s = &loaded.settings;
        assert_eq!(s.ingest.queue_bound, 10, "file over default");
        assert_eq!(s.delivery.webhook_timeout_ms, 2000, "environment over file");
        assert_eq!(s.server.rate_limit, 9, "flag over environment");
        assert_eq!(s.server.ingest_listen, None, "an empty variable is unset");
        assert_eq!(loaded.origin("ingest.queue_bound"), Some(&Origin::File));
        assert_eq!(
            loaded.origin("delivery.webhook_timeout_ms"),
            Some(&Origin::Env("SLUICE_WEBHOOK_TIMEOUT_MS"))
        );
        assert_eq!(
            loaded.origin("server.rate_limit"),
            Some(&Origin::Flag("rate-limit"))
        );
        assert_eq!(loaded.origin("server.listen"), None);
        let printed = loaded.to_toml();
        let reparsed: Settings = toml::from_str(&printed).unwrap();
        assert_eq!(
            &reparsed, s,
            "the printed configuration reads back the same:\n{printed}"
        );
        assert!(
            printed.contains("rate_limit = 9  # from --rate-limit"),
            "{printed}"
        );
        assert!(printed.contains("# ingest_listen is not set"), "{printed}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let loaded = load(
            &ConfigFile::IfPresent("/nonexistent".into()),
            env(&[("SLUICE_BOOTSTRAP_TOKEN", "s3cret-token")]),
            &[],
        )
        .unwrap();
        assert_eq!(
            loaded.settings.server.bootstrap_token.as_deref(),
            Some("s3cret-token")
        );
        let printed = loaded.to_toml();
        assert!(!printed.contains("s3cret-token"), "{printed}");
        assert!(
            printed.contains("# bootstrap_token is set, not shown (from SLUICE_BOOTSTRAP_TOKEN)"),
            "{printed}"
        );
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_problem() {
        let (_dir, path) =
            file("[server]\nlisten = \"127.0.0.1:8080\"\n\n[ingest]\nqueue_bound = \"lots\"\n");
        let err = load(&path, env(&[]), &[]).unwrap_err().to_string();
        assert!(
            err.contains(
                "sluice.toml, line 5: key `ingest.queue_bound`: invalid type: string \"lots\""
            ),
            "{err}"
        );

        let (_dir, path) = file("[ingest]\nqueue_bond = 3\n");
        let err = load(&path, env(&[]), &[]).unwrap_err().to_string();
        assert!(
            err.contains("sluice.toml, line 2") && err.contains("unknown field `queue_bond`"),
            "{err}"
        );

        let (_dir, path) = file("[server\n");
        let err = load(&path, env(&[]), &[]).unwrap_err().to_string();
        assert!(
            err.contains("invalid configuration file") && err.contains("line 1"),
            "{err}"
        );

        let err = load(
            &ConfigFile::Given("/nonexistent/sluice.toml".into()),
            env(&[]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot read the configuration file /nonexistent/sluice.toml"),
            "{err}"
        );

        let err = load(
            &ConfigFile::IfPresent("/nonexistent".into()),
            env(&[("SLUICE_QUEUE_BOUND", "many")]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid setting `ingest.queue_bound` (from SLUICE_QUEUE_BOUND): `many` is not a whole number"
        );

        let err = load(
            &ConfigFile::IfPresent("/nonexistent".into()),
            env(&[]),
            &[("server.listen", "localhost".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "invalid setting `server.listen` (from --listen): `localhost` is not an address \
                 to listen on: give an IP address and a port, such as 127.0.0.1:8080"
            ),
            "{err}"
        );
        let loaded = load(
            &ConfigFile::IfPresent("/nonexistent".into()),
            env(&[]),
            &[("server.listen", "localhost:18312".into())],
        )
        .unwrap();
        assert_eq!(loaded.settings.server.listen.to_string(), "127.0.0.1:18312");

        let err = load(
            &ConfigFile::IfPresent("/nonexistent".into()),
            env(&[("SLUICE_RATE_LIMIT", "0")]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid setting `server.rate_limit` (from SLUICE_RATE_LIMIT): must be at least 1"
        );
    }

    #[test]
    fn every_key_is_documented_in_one_place() {
        let doc = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/configuration.md"
        ));
        for key in KEYS {
            let (_, name) = key.parts();
            for needle in [
                format!("`{name}`"),
                format!("`{}`", key.env),
                format!("`--{}`", key.flag),
            ] {
                assert!(
                    doc.contains(&needle),
                    "docs/configuration.md names {needle} ({})",
                    key.path
                );
            }
        }
        let defaults = toml::Table::try_from(Settings::default()).unwrap();
        for (section, _) in defaults {
            assert!(
                doc.contains(&format!("[{section}]")),
                "docs/configuration.md has [{section}]"
            );
        }
    }
}
