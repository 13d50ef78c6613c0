//! Everything sluice keeps on disk lives in one sled database under the data directory.
//!
//! Layout (sled trees):
//! - `components`: `<blake3 hex>` -> the component's WebAssembly bytes, stored once however
//!   many functions or versions use them;
//! - `scripts`: `<blake3 hex of the code>` -> a JavaScript function's code (UTF-8); it runs on
//!   the built-in JavaScript engine component, whose artifact is kept in `artifacts` like any;
//! - `artifacts`: `<blake3 hex>:<engine compatibility hex>` -> `<blake3 of artifact (32 bytes)>`
//!   followed by the Cranelift-compiled artifact, verified before it is ever deserialized.

mod components;

use std::path::Path;

pub use components::{ComponentStore, StorageError, Stored};

/// Opens (creating if missing) the sled database in `dir`.
///
/// # Errors
/// The directory cannot be created or sled cannot open it (another process holds it, say).
pub fn open_db(dir: &Path) -> Result<sled::Db, StorageError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StorageError::Io(format!("{}: {e}", dir.display())))?;
    Ok(sled::open(dir.join("db"))?)
}
