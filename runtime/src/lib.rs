//! sluice's runtime: the engine that runs functions, the storage it keeps them in, and the
//! `sluice` binary's commands.
//!
//! Module map, in the order data flows:
//! - [`engine`]: the wasmtime sandbox; compiles, checks and invokes function components;
//! - [`storage`]: the sled database; content-addressed components and compiled artifacts;
//! - [`api`]: the control plane, Segment's Public API over HTTP (`sluice serve`);
//! - the data plane, stage by stage: [`ingest`] (Segment's HTTP Tracking API) -> [`queue`]
//!   (durable, sled, group commit) -> [`pipeline`] (`enforce`, `functions`, `route`) ->
//!   [`deliver`] (retries, dead letters) to [`destinations`] (`webhook`, `file`), wired by
//!   [`topology`]; [`observe`] keeps what the debugger, metrics and function logs show;
//! - [`config`]: `sluice serve`'s settings from `sluice.toml`, the environment and flags;
//! - [`cli`]: the `sluice` command line (`sluice run` runs a function over a file of events).

pub mod api;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod destinations;
pub mod engine;
pub mod ingest;
pub mod log;
pub mod observe;
pub mod pipeline;
pub mod queue;
pub mod storage;
pub mod topology;
