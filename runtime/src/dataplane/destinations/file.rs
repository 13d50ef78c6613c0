//! The `file` destination: appends each event as one JSON line to `path` under the data
//! directory (absolute paths and `..` are refused), renaming the file to `<path>.<ms>` once it
//! exceeds the configured size so that a fresh one starts.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::{Attempt, Sending, Sink};
use crate::dataplane::deliver::retry::Verdict;
use crate::dataplane::event::Event;

/// Serialises appends so lines never interleave.
static WRITING: Mutex<()> = Mutex::new(());

fn resolve(data_dir: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    if path.is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(data_dir.join(relative))
}

fn append(file: &Path, lines: &[u8], rotate_at: u64) -> std::io::Result<()> {
    let _guard = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
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

/// A `file` destination: where its lines go, resolved once.
pub struct File {
    /// The file, or the setting that could not be resolved.
    file: Result<PathBuf, String>,
    rotate_at: u64,
}

impl File {
    /// From `settings.path`, relative to `data_dir`.
    pub fn new(data_dir: &Path, settings: &Map<String, Value>, rotate_at: u64) -> File {
        let path = settings.get("path").and_then(Value::as_str).unwrap_or("");
        File {
            file: resolve(data_dir, path).ok_or_else(|| {
                format!("`path` {path:?} must be relative, inside the data directory")
            }),
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
            let file = match &self.file {
                Ok(f) => f.clone(),
                Err(e) => return Attempt::failed(Verdict::GiveUp, e.clone()),
            };
            let mut lines = Vec::with_capacity(events.iter().map(|e| e.json.len() + 1).sum());
            for event in events {
                lines.extend_from_slice(&event.json);
                lines.push(b'\n');
            }
            let rotate_at = self.rotate_at;
            match tokio::task::spawn_blocking(move || append(&file, &lines, rotate_at)).await {
                Ok(Ok(())) => Attempt::success(),
                Ok(Err(e)) => {
                    Attempt::failed(Verdict::Retry { after: None }, format!("cannot write: {e}"))
                }
                Err(e) => Attempt::failed(Verdict::Retry { after: None }, e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_and_files_rotate() {
        let dir = tempfile::tempdir().unwrap();
        assert!(resolve(dir.path(), "../x").is_none());
        assert!(resolve(dir.path(), "/etc/passwd").is_none());
        let file = resolve(dir.path(), "out/events.jsonl").unwrap();
        append(&file, b"{\"a\":1}\n", 10).unwrap();
        append(&file, b"{\"a\":2}\n", 10).unwrap();
        append(&file, b"{\"a\":3}\n", 10).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"a\":3}\n");
        let files = std::fs::read_dir(dir.path().join("out")).unwrap().count();
        assert!(files >= 2);
    }
}
