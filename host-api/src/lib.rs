//! The host side of the `sluice:function` WIT contract: bindings generated once, here.
//!
//! The WIT files in `wit/` are the only copy of the contract; the guest SDK generates its own
//! bindings from the same directory.

wasmtime::component::bindgen!({
    path: "wit",
    world: "insert-function",
});

/// The WIT package this host implements, as it appears in a component's import names.
pub const PACKAGE: &str = "sluice:function@0.1.0";

/// The host interface's full name, as a component imports it.
pub const HOST_INTERFACE: &str = "sluice:function/host@0.1.0";
