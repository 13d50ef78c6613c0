//! Reading durable records: one `pread` per segment touched, frames cut out of the buffer read
//! (payloads share it), each checked against its CRC.

use super::segment::{HEADER, Segment, checksum, decode_header};
use super::segment_log::Shared;
use super::{Bytes, LogError, Record};

/// Up to `max_records` records from `from`, reading at most about `max_bytes` (the first
/// record whole regardless); see [`super::EventLog::read`].
pub(super) fn read(
    shared: &Shared,
    from: u64,
    max_records: usize,
    max_bytes: usize,
) -> Result<Vec<Record>, LogError> {
    let end = shared.end();
    let (mut segment, mut limit) = shared.locate(from, end)?;
    let mut records = Vec::new();
    let (mut position, mut budget) = (from, max_bytes as u64);
    while position < end && records.len() < max_records {
        let want = max_records - records.len();
        let next = read_segment(&segment, position, limit, want, budget, &mut records)?;
        budget = budget.saturating_sub(next - position);
        position = next;
        // Short of the segment's end, a limit was reached; at it, go on in the next segment.
        if position < limit || budget == 0 {
            break;
        }
        if position < end {
            (segment, limit) = shared.locate(position, end)?;
        }
    }
    Ok(records)
}

/// Reads records of `segment` from `from`, up to `limit` (where its durable or sealed bytes
/// end), into `out`; returns the position after the last one taken.
fn read_segment(
    segment: &Segment,
    from: u64,
    limit: u64,
    max_records: usize,
    budget: u64,
    out: &mut Vec<Record>,
) -> Result<u64, LogError> {
    let corrupt = |position| LogError::Corrupt {
        path: segment.path.clone(),
        position,
    };
    let span = (limit - from).min(budget.max(HEADER));
    if span < HEADER {
        // Durable bytes too short for a frame: `from` is not where a record starts.
        return Err(corrupt(from));
    }
    let mut chunk = vec![0u8; span as usize];
    segment.read_at(&mut chunk, from)?;
    let chunk = Bytes::from(chunk);
    let mut at = 0u64;
    let mut taken = 0;
    while taken < max_records && at + HEADER <= span {
        let position = from + at;
        let mut header = [0u8; HEADER as usize];
        header.copy_from_slice(&chunk[at as usize..(at + HEADER) as usize]);
        let (len, crc) = decode_header(header);
        let next = position + HEADER + len;
        if next > limit {
            return Err(corrupt(position));
        }
        let payload = if at + HEADER + len <= span {
            chunk.slice((at + HEADER) as usize..(at + HEADER + len) as usize)
        } else if out.is_empty() {
            // A first record larger than the budget is read whole, so a reader always moves on.
            let mut whole = vec![0u8; len as usize];
            segment.read_at(&mut whole, position + HEADER)?;
            Bytes::from(whole)
        } else {
            break;
        };
        if checksum(&payload) != crc {
            return Err(corrupt(position));
        }
        out.push(Record {
            position,
            next,
            payload,
        });
        at = next - from;
        taken += 1;
    }
    Ok(from + at)
}
