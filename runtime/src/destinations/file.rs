//! The `file` destination: appends each event as one JSON line to `path` under the data
//! directory (absolute paths and `..` are refused), renaming the file to `<path>.<ms>` once it
//! exceeds the configured size so that a fresh one starts.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::deliver::retry::Verdict;
use crate::topology::DataPlane;

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
        rotated.push(format!(".{}", crate::queue::now_ms()));
        std::fs::rename(file, rotated)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(lines)?;
    f.sync_data()
}

/// Appends `events`, a line each, to the file named by `settings.path`, with one `fsync`.
pub async fn send(
    plane: &DataPlane,
    settings: &Map<String, Value>,
    events: &[&Value],
) -> (Verdict, Option<String>) {
    let path = settings.get("path").and_then(Value::as_str).unwrap_or("");
    let Some(file) = resolve(&plane.data_dir, path) else {
        return (
            Verdict::GiveUp,
            Some(format!(
                "`path` {path:?} must be relative, inside the data directory"
            )),
        );
    };
    let mut lines = Vec::new();
    for event in events {
        if let Err(e) = serde_json::to_writer(&mut lines, event) {
            return (Verdict::GiveUp, Some(e.to_string()));
        }
        lines.push(b'\n');
    }
    let rotate_at = plane.config.file_rotate_bytes;
    match tokio::task::spawn_blocking(move || append(&file, &lines, rotate_at)).await {
        Ok(Ok(())) => (Verdict::Success, None),
        Ok(Err(e)) => (
            Verdict::Retry { after: None },
            Some(format!("cannot write: {e}")),
        ),
        Err(e) => (Verdict::Retry { after: None }, Some(e.to_string())),
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
