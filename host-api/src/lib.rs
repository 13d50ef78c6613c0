//! The host side of the `sluice:function` WIT contract: bindings generated once, here.
//!
//! The WIT files in `wit/` are the only copy of the contract; the guest SDK and the JavaScript
//! engine generate their own bindings from the same directory.

wasmtime::component::bindgen!({
    path: "wit",
    world: "insert-function",
});

/// The `js-engine` world: an insert function plus the `script` import and the `check` export.
/// The interfaces it shares with `insert-function` are the ones generated above, so one host
/// implementation serves both worlds.
pub mod js {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "js-engine",
        // `abort` ends the invocation: the host answers it with a trap.
        imports: { "sluice:function/script.abort": trappable },
        with: {
            "sluice:function/host": crate::sluice::function::host,
            "sluice:function/types": crate::sluice::function::types,
        },
    });
}

/// The WIT package this host implements, as it appears in a component's import names.
pub const PACKAGE: &str = "sluice:function@0.1.0";

/// The host interface's full name, as a component imports it.
pub const HOST_INTERFACE: &str = "sluice:function/host@0.1.0";

/// The script interface's full name; only the JavaScript engine may import it.
pub const SCRIPT_INTERFACE: &str = "sluice:function/script@0.1.0";
