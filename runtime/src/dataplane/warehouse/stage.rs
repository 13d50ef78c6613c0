//! Staging: a warehouse's [`Sink`]. Delivery hands it a source's batch like any destination;
//! it appends the batch to the warehouse's staging log (one record: the source id and the
//! events' JSON) and succeeds once that is durable, so retries and dead letters stay
//! delivery's job and the sync loop loads from the staging log on its own schedule.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::dataplane::deliver::retry::Verdict;
use crate::dataplane::destinations::{Attempt, Sending, Sink};
use crate::dataplane::event::Event;
use crate::log::{EventLog, SegmentLog};

/// Events per staging record (and so per delivery attempt).
const BATCH: usize = 1000;

/// Appends one source's events to one warehouse's staging log.
pub struct Stager {
    /// The source whose events these are (the record says so: a warehouse stages many).
    pub source_id: String,
    /// The warehouse's staging log.
    pub log: Arc<SegmentLog>,
}

impl Sink for Stager {
    fn batch_size(&self) -> usize {
        BATCH
    }

    /// One append with its `fdatasync` (shared with concurrent appends).
    fn send<'a>(&'a self, events: &'a [Event]) -> Sending<'a> {
        Box::pin(async move {
            let record = encode(&self.source_id, events.iter().map(|e| &e.json[..]));
            match self.log.append(vec![record]).await {
                Ok(_) => Attempt::success(),
                Err(e) => Attempt::failed(Verdict::Retry { after: None }, format!("staging: {e}")),
            }
        })
    }
}

/// A staging record: the source id (u16 length, bytes), the event count (u32), then each
/// event's JSON (u32 length, bytes); little-endian.
pub fn encode<'a>(source_id: &str, events: impl Iterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u16_le(source_id.len() as u16);
    out.put_slice(source_id.as_bytes());
    let count_at = out.len();
    out.put_u32_le(0);
    let mut count = 0u32;
    for json in events {
        out.put_u32_le(json.len() as u32);
        out.put_slice(json);
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    out.freeze()
}

/// A staging record that does not decode (a file changed by hand, a bug).
#[derive(Debug, thiserror::Error)]
#[error("a staging record is malformed (it ends early)")]
pub struct Malformed;

/// The source id and the events' JSON of a record.
///
/// # Errors
/// [`Malformed`] when it ends early.
pub fn decode(mut record: Bytes) -> Result<(String, Vec<Bytes>), Malformed> {
    let take = |record: &mut Bytes, n: usize| {
        if record.remaining() < n {
            return Err(Malformed);
        }
        Ok(record.split_to(n))
    };
    let len = take(&mut record, 2)?.get_u16_le() as usize;
    let source = String::from_utf8_lossy(&take(&mut record, len)?).into_owned();
    let count = take(&mut record, 4)?.get_u32_le() as usize;
    let mut events = Vec::with_capacity(count.min(BATCH * 4));
    for _ in 0..count {
        let len = take(&mut record, 4)?.get_u32_le() as usize;
        events.push(take(&mut record, len)?);
    }
    Ok((source, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_is_caught() {
        let events: [&[u8]; 2] = [b"{\"a\":1}", b"{}"];
        let record = encode("src", events.into_iter());
        let (source, back) = decode(record.clone()).unwrap();
        assert_eq!(source, "src");
        assert_eq!(
            back,
            [Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{}")]
        );
        assert!(decode(record.slice(..record.len() - 1)).is_err());
    }
}
