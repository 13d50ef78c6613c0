//! The window's ids on disk, so that a restart still drops a client's retry: one append-only
//! file per generation (`<start ms>.ids`, 16 bytes per id), written once the request's record
//! is in the ingest log, not synced on its own (the kernel writes it out; a kill -9 loses
//! nothing, a power cut may lose the last seconds' ids, so a retry across one may be delivered
//! twice: at least once, never lost). A torn tail (a partial id) is ignored on reading.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::Id;

const EXTENSION: &str = "ids";

/// The journal's directory and its open file.
pub(super) struct Journal {
    dir: PathBuf,
    /// The generation being written (its start) and its file.
    open: Option<(u64, File)>,
}

impl Journal {
    /// The journal in `dir` (created if missing).
    pub fn open(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            open: None,
        })
    }

    /// Appends `ids` to the file of the generation starting at `start`: one `write`.
    pub fn append(&mut self, start: u64, ids: &[Id]) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(ids.len() * 16);
        for id in ids {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        match &mut self.open {
            Some((open, file)) if *open == start => file.write_all(&bytes),
            _ => {
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path(start))?;
                file.write_all(&bytes)?;
                // A late request of an older generation does not take the newer one's place.
                if self.open.as_ref().is_none_or(|(open, _)| *open < start) {
                    self.open = Some((start, file));
                }
                Ok(())
            }
        }
    }

    /// The generations on disk, oldest first: (start, file).
    pub fn generations(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            if let Some(start) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            {
                found.push((start, path));
            }
        }
        found.sort_unstable_by_key(|(start, _)| *start);
        Ok(found)
    }

    /// Deletes the file of the generation starting at `start`.
    pub fn delete(&mut self, start: u64) -> io::Result<()> {
        if self.open.as_ref().is_some_and(|(open, _)| *open == start) {
            self.open = None;
        }
        match fs::remove_file(self.path(start)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn path(&self, start: u64) -> PathBuf {
        self.dir.join(format!("{start}.{EXTENSION}"))
    }
}

/// The ids in the file at `path`, a torn tail left out.
pub(super) fn read(path: &Path) -> io::Result<Vec<Id>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes
        .chunks_exact(16)
        .map(|c| {
            let mut id = [0u8; 16];
            id.copy_from_slice(c);
            Id::from_le_bytes(id)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_ids_read_back_and_a_torn_tail_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(100, &[1, 2]).unwrap();
        j.append(200, &[3]).unwrap();
        j.append(100, &[4]).unwrap();
        // A crash in the middle of a write.
        let path = dir.path().join("200.ids");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[9; 7]).unwrap();
        let found = j.generations().unwrap();
        assert_eq!(
            found.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![100, 200]
        );
        assert_eq!(read(&found[0].1).unwrap(), vec![1, 2, 4]);
        assert_eq!(read(&found[1].1).unwrap(), vec![3]);
        j.delete(100).unwrap();
        j.delete(100).unwrap();
        assert_eq!(j.generations().unwrap().len(), 1);
    }
}
