//! Segment files: their names, the record frame, positional I/O and the scan that finds where
//! the last whole record of a segment ends (see the format in the module's header).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::{LogError, io_error};

/// Bytes before each payload: length, then CRC.
pub(super) const HEADER: u64 = 8;

/// The largest payload a frame can describe.
pub(super) const MAX_PAYLOAD: usize = u32::MAX as usize;

/// One segment file, shared by the writer (appends at the end) and readers (positional reads
/// of what is durable): positional I/O needs no cursor, so one handle serves both.
#[derive(Debug)]
pub(super) struct Segment {
    /// The position of its first byte.
    pub start: u64,
    /// Its file.
    pub path: PathBuf,
    /// Open for reading and writing.
    pub file: File,
}

impl Segment {
    /// Opens the segment starting at `start` in `dir`, creating it if `create`.
    pub fn open(dir: &Path, start: u64, create: bool) -> Result<Segment, LogError> {
        let path = dir.join(file_name(start));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(Segment { start, path, file })
    }

    /// Its length in bytes (one `fstat`).
    pub fn len(&self) -> Result<u64, LogError> {
        Ok(self.file.metadata().map_err(io_error(&self.path))?.len())
    }

    /// Reads exactly `buf.len()` bytes at log position `position` (one `pread`, more only if
    /// the kernel returns less).
    pub fn read_at(&self, buf: &mut [u8], position: u64) -> Result<(), LogError> {
        read_exact_at(&self.file, buf, position - self.start).map_err(io_error(&self.path))
    }
}

/// `<start>.log`, 20 digits so that names sort as positions do.
pub(super) fn file_name(start: u64) -> String {
    format!("{start:020}.log")
}

/// The start position a segment's file name gives, if it is a segment's name.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The start positions of the segments in `dir`, in order.
pub(super) fn list(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut starts = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if let Some(start) = entry.file_name().to_str().and_then(parse_name) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// Makes the directory's entries (files created, renamed, deleted) durable: one `fsync`.
pub(super) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(())
}

/// The CRC of a frame: over the length's 4 bytes, then the payload.
pub(super) fn checksum(payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(payload.len() as u32).to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends `payload`'s frame to `buf` (its length was checked against [`MAX_PAYLOAD`]).
pub(super) fn encode(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&checksum(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// A frame's header: payload length and CRC.
pub(super) fn decode_header(bytes: [u8; HEADER as usize]) -> (u64, u32) {
    let [a, b, c, d, e, f, g, h] = bytes;
    (
        u64::from(u32::from_le_bytes([a, b, c, d])),
        u32::from_le_bytes([e, f, g, h]),
    )
}

/// The bytes `payload` takes in a segment.
pub(super) fn frame_len(payload: &[u8]) -> u64 {
    HEADER + payload.len() as u64
}

/// Where the last whole, CRC-valid record of `segment` ends (a file offset): everything after
/// it is a torn or corrupt tail. Reads the file once, sequentially, in 1 MiB reads.
pub(super) fn scan(segment: &Segment) -> Result<u64, LogError> {
    let len = segment.len()?;
    let mut reader = BufReader::with_capacity(1 << 20, &segment.file);
    let mut chunk = vec![0u8; 64 << 10];
    let mut valid = 0u64;
    while len - valid >= HEADER {
        let mut header = [0u8; HEADER as usize];
        reader
            .read_exact(&mut header)
            .map_err(io_error(&segment.path))?;
        let (n, crc) = decode_header(header);
        if n > len - valid - HEADER {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header[..4]);
        let mut left = n;
        while left > 0 {
            let take = left.min(chunk.len() as u64) as usize;
            reader
                .read_exact(&mut chunk[..take])
                .map_err(io_error(&segment.path))?;
            hasher.update(&chunk[..take]);
            left -= take as u64;
        }
        if hasher.finalize() != crc {
            break;
        }
        valid += HEADER + n;
    }
    Ok(valid)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
pub(super) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
