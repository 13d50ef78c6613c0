//! sluice's runtime: the engine that runs functions, the storage it keeps them in, and the
//! `sluice` binary's commands.
//!
//! Module map, in the order data flows:
//! - [`engine`]: the wasmtime sandbox; compiles, checks and invokes function components;
//! - [`storage`]: the sled database; content-addressed components and compiled artifacts;
//! - [`api`]: the control plane, Segment's Public API over HTTP (`sluice serve`);
//! - [`cli`]: the `sluice` command line (`sluice run` runs a function over a file of events).

pub mod api;
pub mod cli;
pub mod engine;
pub mod storage;
