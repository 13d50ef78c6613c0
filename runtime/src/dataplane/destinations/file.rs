//! The `file` destination: appends each event as one JSON line to `path` under
//! `<data dir>/files/`, renaming the file to `<path>.<ms>` once it exceeds the configured size
//! so that a fresh one starts.
//!
//! Files go only where files belong. The `path` setting is checked twice: [`normalise`] when a
//! destination is created or updated (relative, no `..`, not absolute, so it names a file
//! inside `files/` and never the database's own files), and [`open_path`] before each write,
//! which resolves symbolic links and refuses any that lead outside `files/`.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::{Attempt, Sending, Sink};
use crate::dataplane::deliver::retry::Verdict;
use crate::dataplane::event::Event;

/// The directory of the data directory every file destination writes under.
pub const FILES_DIR: &str = "files";

/// The longest `path` accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// The rule every refusal names.
const RULE: &str = "a file destination's `path` must be relative, without `..`, not absolute, \
                    and names a file inside `<data dir>/files/`";

/// Why a `path` setting names no file a destination may write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Empty, `.` or only separators.
    #[error("`path` is empty; {RULE}")]
    Empty,
    /// `/var/x` and the like.
    #[error("`path` {0:?} is absolute; {RULE}")]
    Absolute(String),
    /// A `..` component, wherever it is.
    #[error("`path` {0:?} contains `..`; {RULE}")]
    ParentDir(String),
    /// A NUL byte, which no file name can hold.
    #[error("`path` contains a NUL character; {RULE}")]
    Nul,
    /// Over [`MAX_PATH_BYTES`].
    #[error("`path` is {0} bytes; the limit is {MAX_PATH_BYTES}")]
    TooLong(usize),
    /// Ends with `/`: a directory, not a file.
    #[error("`path` {0:?} ends with `/`; {RULE}")]
    Directory(String),
    /// A symbolic link (or the file itself) resolves outside `files/`.
    #[error("`path` {0:?} leads outside `<data dir>/files/` through a symbolic link; {RULE}")]
    Escapes(String),
    /// The files directory or a parent directory cannot be created or resolved.
    #[error("cannot prepare the file's directory: {0}")]
    Io(String),
}

/// The normal form of a `path` setting: relative components joined by `/`, with `.` and empty
/// components dropped. Costs one pass over the text.
///
/// # Errors
/// A [`PathError`] naming the rule: empty, absolute, containing `..` or NUL, too long, or
/// ending in `/`.
pub fn normalise(path: &str) -> Result<String, PathError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(path.len()));
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy()),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathError::ParentDir(path.to_string())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(PathError::Absolute(path.to_string()));
            }
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    if path.ends_with('/') {
        return Err(PathError::Directory(path.to_string()));
    }
    Ok(parts.join("/"))
}

/// The file `path` names under `<data_dir>/files/`, ready to append to: its directories are
/// created, and the deepest existing directory, the new directories and the file (when it
/// exists) are resolved with symbolic links followed and must stay inside `files/`. Blocking:
/// a few `stat`s and `realpath`s.
///
/// # Errors
/// [`normalise`]'s errors, [`PathError::Escapes`], or [`PathError::Io`].
pub fn open_path(data_dir: &Path, path: &str) -> Result<PathBuf, PathError> {
    let relative = normalise(path)?;
    let io = |e: std::io::Error| PathError::Io(e.to_string());
    let root = data_dir.join(FILES_DIR);
    std::fs::create_dir_all(&root).map_err(io)?;
    let root = root.canonicalize().map_err(io)?;
    let file = root.join(&relative);
    let escapes = || PathError::Escapes(path.to_string());
    let parent = file.parent().ok_or_else(escapes)?;
    // The deepest directory that exists must already be inside, before anything is created
    // under it: `create_dir_all` would otherwise follow a link out and create directories there.
    let mut existing = parent;
    while std::fs::symlink_metadata(existing).is_err() {
        existing = existing.parent().ok_or_else(escapes)?;
    }
    let inside = |p: &Path| p.canonicalize().is_ok_and(|real| real.starts_with(&root));
    if !inside(existing) {
        return Err(escapes());
    }
    std::fs::create_dir_all(parent).map_err(io)?;
    if !inside(parent) {
        return Err(escapes());
    }
    // An existing file (or link) must resolve inside too; a dangling link does not resolve.
    if std::fs::symlink_metadata(&file).is_ok() && !inside(&file) {
        return Err(escapes());
    }
    Ok(file)
}

/// Serialises appends so lines never interleave.
static WRITING: Mutex<()> = Mutex::new(());

fn append(file: &Path, lines: &[u8], rotate_at: u64) -> std::io::Result<()> {
    let _guard = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    if std::fs::metadata(file).is_ok_and(|m| m.len() >= rotate_at) {
        let mut rotated = file.as_os_str().to_owned();
        rotated.push(format!(".{}", crate::dataplane::now_ms()));
        std::fs::rename(file, rotated)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(lines)?;
    f.sync_data()
}

/// Checks the path (again: links may have changed since the destination was saved), then
/// appends. Blocking.
fn write(data_dir: &Path, path: &str, lines: &[u8], rotate_at: u64) -> Attempt {
    let file = match open_path(data_dir, path) {
        Ok(file) => file,
        Err(PathError::Io(e)) => return Attempt::failed(Verdict::Retry { after: None }, e),
        Err(refused) => return Attempt::failed(Verdict::GiveUp, refused.to_string()),
    };
    match append(&file, lines, rotate_at) {
        Ok(()) => Attempt::success(),
        Err(e) => Attempt::failed(Verdict::Retry { after: None }, format!("cannot write: {e}")),
    }
}

/// A `file` destination: its settings read once.
pub struct File {
    data_dir: PathBuf,
    path: String,
    rotate_at: u64,
}

impl File {
    /// From `settings.path`, under `<data_dir>/files/`.
    pub fn new(data_dir: &Path, settings: &Map<String, Value>, rotate_at: u64) -> File {
        File {
            data_dir: data_dir.to_path_buf(),
            path: settings
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            rotate_at,
        }
    }
}

impl Sink for File {
    fn batch_size(&self) -> usize {
        1000
    }

    /// Appends `events`, a line each, with one `fsync`.
    fn send<'a>(&'a self, events: &'a [Event]) -> Sending<'a> {
        Box::pin(async move {
            let mut lines = Vec::with_capacity(events.iter().map(|e| e.json.len() + 1).sum());
            for event in events {
                lines.extend_from_slice(&event.json);
                lines.push(b'\n');
            }
            let (data_dir, path, rotate_at) =
                (self.data_dir.clone(), self.path.clone(), self.rotate_at);
            tokio::task::spawn_blocking(move || write(&data_dir, &path, &lines, rotate_at))
                .await
                .unwrap_or_else(|e| Attempt::failed(Verdict::Retry { after: None }, e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_or_refused_naming_the_rule() {
        assert_eq!(normalise("web.jsonl").unwrap(), "web.jsonl");
        assert_eq!(normalise("./a//b/./c.jsonl").unwrap(), "a/b/c.jsonl");
        for (path, refused) in [
            ("", PathError::Empty),
            ("./", PathError::Empty),
            ("/etc/passwd", PathError::Absolute("/etc/passwd".into())),
            ("../x", PathError::ParentDir("../x".into())),
            ("sub/../../x", PathError::ParentDir("sub/../../x".into())),
            ("a/..", PathError::ParentDir("a/..".into())),
            ("dir/", PathError::Directory("dir/".into())),
            ("a\0b", PathError::Nul),
        ] {
            assert_eq!(normalise(path), Err(refused), "{path:?}");
        }
        assert!(normalise(&"a".repeat(MAX_PATH_BYTES + 1)).is_err());
        let message = normalise("../x").unwrap_err().to_string();
        assert!(
            message.contains("relative") && message.contains("files/"),
            "{message}"
        );
    }

    #[test]
    fn files_land_under_files_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let file = open_path(dir.path(), "out/events.jsonl").unwrap();
        assert!(file.starts_with(dir.path().join(FILES_DIR).canonicalize().unwrap()));
        append(&file, b"{\"a\":1}\n", 10).unwrap();
        append(&file, b"{\"a\":2}\n", 10).unwrap();
        append(&file, b"{\"a\":3}\n", 10).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"a\":3}\n");
        let files = std::fs::read_dir(file.parent().unwrap()).unwrap().count();
        assert!(files >= 2);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_out_of_files_are_refused_at_open() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let files = dir.path().join(FILES_DIR);
        std::fs::create_dir_all(&files).unwrap();
        symlink(outside.path(), files.join("out")).unwrap();
        symlink(outside.path().join("f"), files.join("f.jsonl")).unwrap();
        symlink(dir.path().join("db"), files.join("db")).unwrap();
        std::fs::create_dir_all(files.join("ok")).unwrap();
        symlink(files.join("ok"), files.join("alias")).unwrap();
        for path in ["out/x.jsonl", "out/new/dir/x.jsonl", "f.jsonl", "db/conf"] {
            assert_eq!(
                open_path(dir.path(), path),
                Err(PathError::Escapes(path.into())),
                "{path}"
            );
        }
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "nothing was created outside"
        );
        // A link that stays inside is followed.
        assert!(open_path(dir.path(), "alias/x.jsonl").is_ok());
    }
}
