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
            Err(e) if held_by_another(&e) => {
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

/// Whether sled refused to open because another holder has the database's lock. sled 0.34
/// reports it as an `ErrorKind::Other` whose message carries the `flock` error (its
/// `config.rs`: "could not acquire lock on ..."), so the message is the only sign; matching
/// on `WouldBlock` alone never matched, and the wait above never happened (seen: a test's
/// restart failed while the stopped server's last sled references were still being dropped).
fn held_by_another(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || (io.kind() == std::io::ErrorKind::Other
                    && io.to_string().starts_with("could not acquire lock"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_waits_for_a_holder_that_is_closing() {
        let dir = tempfile::tempdir().unwrap();
        let first = open_db(dir.path()).unwrap();
        let closing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let started = Instant::now();
        let second = open_db(dir.path());
        closing.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[test]
    fn sleds_lock_error_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let _held = sled::open(dir.path().join("db")).unwrap();
        let refused = sled::open(dir.path().join("db")).err().unwrap();
        assert!(held_by_another(&refused), "{refused:?}");
    }
}
