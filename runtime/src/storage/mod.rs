//! Everything sluice keeps on disk lives in one sled database under the data directory.
//!
//! Layout (sled trees):
//! - `components`: `<blake3 hex>` -> the component's WebAssembly bytes, stored once however
//!   many functions or versions use them;
//! - `scripts`: `<blake3 hex of the code>` -> a JavaScript function's code (UTF-8); it runs on
//!   the built-in JavaScript engine component, whose artifact is kept in `artifacts` like any;
//! - `artifacts`: `<blake3 hex>:<engine compatibility hex>` -> `<blake3 of artifact (32 bytes)>`
//!   followed by the Cranelift-compiled artifact, verified before it is ever deserialized.
//!
//! In a cluster the same objects are also in the JetStream object store ([`SharedObjects`]),
//! and each node's sled trees are its cache of them.

mod components;
mod shared;

use std::path::Path;
use std::time::{Duration, Instant};

pub use components::{ComponentStore, StorageError, Stored};
pub use shared::SharedObjects;

/// How long opening waits for a database another holder is still closing (a restart right
/// after a stop; a child process forked while it was open, until the child execs).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens (creating if missing) the sled database in `dir`, waiting up to [`LOCK_WAIT`] while
/// its lock is held.
///
/// # Errors
/// The directory cannot be created, another process keeps the database, or sled cannot open
/// it.
pub fn open_db(dir: &Path) -> Result<sled::Db, StorageError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StorageError::Io(format!("{}: {e}", dir.display())))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::open(dir.join("db")) {
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(StorageError::Io(format!(
                        "{}: another process is using this data directory; stop it or choose \
                         another --data-dir",
                        dir.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}
