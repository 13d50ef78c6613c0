//! A Server-Sent Events reader: bytes in, whole events out (`event:` and `data:` fields;
//! comments, such as keep-alives, skipped), whatever the chunking of the stream.

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `event:` name (`message` when absent, as the standard says).
    pub name: String,
    /// Its `data:` lines, joined with `\n`.
    pub data: String,
}

/// Accumulates a stream's bytes; [`SseReader::push`] returns the events they complete.
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    name: Option<String>,
    data: Vec<String>,
}

impl SseReader {
    /// Feeds `bytes`; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(SseEvent {
                        name: self.name.take().unwrap_or_else(|| "message".into()),
                        data: self.data.join("\n"),
                    });
                }
                self.name = None;
                self.data.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.name = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_chunking() {
        let stream = b": keep-alive\n\nevent: stage\ndata: {\"a\":1}\n\nevent: lagged\r\ndata: 3\r\n\r\ndata: x\ndata: y\n\n";
        for size in [1, 2, 5, stream.len()] {
            let mut reader = SseReader::default();
            let events: Vec<SseEvent> = stream.chunks(size).flat_map(|c| reader.push(c)).collect();
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        name: "stage".into(),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        name: "lagged".into(),
                        data: "3".into()
                    },
                    SseEvent {
                        name: "message".into(),
                        data: "x\ny".into()
                    },
                ],
                "chunks of {size}"
            );
        }
    }
}
