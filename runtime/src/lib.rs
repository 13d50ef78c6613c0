//! sluice's runtime: the engine that runs functions, the storage it keeps them in, the two
//! planes and the `sluice` binary's commands.
//!
//! Module map, each layer importing only those below it:
//! - [`cli`]: the `sluice` command line (a client of a server, plus `run`, `new`, `serve`);
//! - [`server`]: wires the control plane and the data plane to one listener (or two);
//! - [`api`]: the control plane, Segment's Public API over HTTP (HTTP only);
//! - [`dataplane`]: events in, through each source's pipeline, out to destinations
//!   (`ingest` -> `pipeline` -> `deliver` -> `destinations`, with `observe`);
//! - [`log`]: the durable log the data plane's stages share (segment files, or a JetStream
//!   stream in a cluster);
//! - [`workspace`]: the domain records (sources, destinations, plans, functions...) and
//!   their store;
//! - [`engine`]: the wasmtime sandbox; compiles, checks and invokes function components;
//! - [`storage`]: content-addressed components, scripts and compiled artifacts;
//! - [`cluster`]: a node's NATS JetStream connection (below `log`, `workspace`, `storage`);
//! - [`config`]: `sluice serve`'s settings from `sluice.toml`, the environment and flags.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dataplane;
pub mod engine;
pub mod log;
pub mod server;
pub mod storage;
pub mod workspace;

/// The allocator the `sluice` binary installs (mimalloc), for benches that should measure the
/// same.
pub use mimalloc::MiMalloc as Allocator;
