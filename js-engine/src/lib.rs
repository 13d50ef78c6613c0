//! sluice's JavaScript engine component: runs Segment-style insert functions (`onTrack`, ...,
//! `onBatch`) on QuickJS, as the WIT world `sluice:function/js-engine` (built as
//! `js-engine-build`, whose `wizer-initialize` the build's snapshot calls and then removes).
//! This file is the export glue; see README.md for the programming model and the build.
//!
//! Everything but the pure helpers is compiled for `wasm32` only: on the host (the workspace's
//! tests and lints) the crate is a near-empty library and QuickJS is never built.

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod codec;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod position;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod regexp;

#[cfg(target_arch = "wasm32")]
mod alloc;
#[cfg(target_arch = "wasm32")]
mod bytecode;
#[cfg(target_arch = "wasm32")]
mod destination;
#[cfg(target_arch = "wasm32")]
mod dispatch;
#[cfg(target_arch = "wasm32")]
mod engine;
#[cfg(target_arch = "wasm32")]
mod eval;
#[cfg(target_arch = "wasm32")]
mod globals;
#[cfg(target_arch = "wasm32")]
mod json_in;
#[cfg(target_arch = "wasm32")]
mod json_out;
#[cfg(target_arch = "wasm32")]
mod libraries;
#[cfg(target_arch = "wasm32")]
mod outcome;
#[cfg(target_arch = "wasm32")]
mod source;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        path: "../host-api/wit",
        world: "js-engine-build",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
mod exports {
    use std::sync::Once;

    use crate::bindings::sluice::function::host::{self, Level};
    use crate::bindings::sluice::function::script::SyntaxError;
    use crate::bindings::{Guest, Outcome, export};
    use crate::engine::{initialize, with_engine, with_engine_as};
    use crate::{alloc, dispatch};

    // Allocation failure aborts to the host as `out-of-memory` (see `alloc`).
    #[global_allocator]
    static ALLOCATOR: alloc::AbortingSystem = alloc::AbortingSystem;

    /// Sends a panic's message to the function's log before the trap, so the host can show
    /// more than a bare `unreachable`. (Panics are engine bugs: user code cannot cause one.)
    fn install_panic_hook() {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                host::log(Level::Error, &format!("JavaScript engine panic: {info}"));
            }));
        });
    }

    struct JsEngine;

    impl Guest for JsEngine {
        fn check() -> Result<(), SyntaxError> {
            install_panic_hook();
            with_engine(|engine| match &engine.loaded {
                Ok(_) => Ok(()),
                Err(err) => Err(err.clone()),
            })
        }

        fn compile() -> Result<Vec<u8>, SyntaxError> {
            install_panic_hook();
            with_engine_as(true, |engine| match &engine.loaded {
                // An engine started before this call compiled nothing: an empty list, which
                // the host takes as "no bytecode".
                Ok(_) => Ok(engine.bytecode.take().unwrap_or_default()),
                Err(err) => Err(err.clone()),
            })
        }

        fn wizer_initialize() {
            initialize();
        }

        fn handle(event: String) -> Outcome {
            install_panic_hook();
            with_engine(|engine| dispatch::handle(engine, event))
        }

        fn handle_batch(events: Vec<String>) -> Vec<Outcome> {
            install_panic_hook();
            with_engine(|engine| dispatch::handle_batch(engine, events))
        }
    }

    export!(JsEngine with_types_in crate::bindings);
}
