//! The WASI a function gets: what the Rust standard library for `wasm32-wasip2` imports,
//! linked so that it grants nothing and can never block the host thread.
//!
//! Blocking is the one thing fuel and epochs cannot stop: a guest that sleeps
//! (`std::thread::sleep` is `subscribe-duration` then `pollable.block`) waits inside a host
//! call, where neither is checked. So `wasi:io/poll`'s waiting functions are replaced by ones
//! that fail the invocation with [`InvokeError::Blocked`](super::InvokeError::Blocked).
//! `wasi:http` is linked for the JavaScript engine component only, every request refused.

use std::future::Future;

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::HostState;

/// The `wasi:io` version wasmtime-wasi 48 defines; components built against any 0.2.x match it.
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

/// Raised (as a trap) when a function tries to wait.
#[derive(Debug, thiserror::Error)]
#[error("the function tried to wait in `{0}`; functions may not block (no sleeping, no polling)")]
pub struct BlockingForbidden(pub &'static str);

/// Adds WASI (granting nothing, see [`HostState::new`]) with non-blocking `wasi:io/poll`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    poll.func_wrap(
        "[method]pollable.block",
        |_, (_pollable,): (Resource<DynPollable>,)| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(BlockingForbidden(
                "wasi:io/poll.pollable.block",
            )))
        },
    )?;
    poll.func_wrap(
        "poll",
        |_, (_pollables,): (Vec<Resource<DynPollable>>,)| -> wasmtime::Result<(Vec<u32>,)> {
            Err(wasmtime::Error::new(BlockingForbidden("wasi:io/poll.poll")))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The `wasi:http` hooks of insert functions: every request refused. Only the JavaScript
/// engine component may import `wasi:http` here (uploads that do are refused), and its
/// `fetch` refuses in an insert function before asking; this is the backstop.
pub(crate) struct NoNetwork;

impl WasiHttpHooks for NoNetwork {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Refused> + Send> {
        Box::new(async {
            Err(HttpError::InternalError(Some(
                "http-not-allowed: insert functions cannot use the network".to_string(),
            )))
        })
    }
}

/// What [`NoNetwork::send_request`] resolves to (always the error).
type Refused = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

/// Adds `wasi:http` with every request refused (see [`NoNetwork`]).
pub(super) fn add_refused_http_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)
}
