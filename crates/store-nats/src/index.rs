//! The in-memory id index: event id → position and stream → (version, last position) for
//! every event at or below `applied`, plus this process's own acknowledged appends, and the
//! sync that brings it up to the stream's last sequence by reading the log.

use std::collections::HashMap;
use std::time::Duration;

use gryning_store::{Position, Version};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{NatsError, NatsStore, READ_CHUNK};

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StreamPos {
    pub(crate) version: Version,
    pub(crate) last: Position,
}

/// The in-memory lookups: every event at or below `applied`, plus this process's own acked
/// appends (which may be above it).
#[derive(Default)]
pub(crate) struct Index {
    pub(crate) ids: HashMap<Uuid, Position>,
    pub(crate) streams: HashMap<String, StreamPos>,
    /// The log is indexed without a gap up to here.
    pub(crate) applied: Position,
}

impl Index {
    /// Records one stored event. Events arrive in position order per stream, except that an own
    /// ack may have been recorded before the scan reaches it, which the `last` check skips.
    pub(crate) fn record(
        &mut self,
        stream: &str,
        version: Version,
        id: Uuid,
        position: Position,
    ) -> Result<(), NatsError> {
        self.ids.insert(id, position);
        let entry = self.streams.entry(stream.to_owned()).or_default();
        if position > entry.last {
            if version != entry.version + 1 {
                return Err(NatsError::VersionClash {
                    stream: stream.to_owned(),
                    position,
                    found: version,
                    expected: entry.version + 1,
                });
            }
            *entry = StreamPos {
                version,
                last: position,
            };
        }
        Ok(())
    }
}

impl NatsStore {
    /// Brings the index up to the stream's last sequence as the leader reports it now.
    pub(crate) async fn sync(&self) -> Result<Position, NatsError> {
        let last = self.last_sequence().await?;
        let mut from = self.index().applied + 1;
        let deadline = Instant::now() + self.inner.options.retry_for;
        while from <= last {
            let want = ((last - from + 1) as usize).min(READ_CHUNK);
            let events = self.read_range(from, want, None).await?;
            if events.is_empty() {
                // A replica answering direct gets may not have applied `from` yet.
                if Instant::now() >= deadline {
                    return Err(NatsError::NotReadable {
                        position: from,
                        waited: self.inner.options.retry_for,
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let mut index = self.index();
            for e in &events {
                if e.position != from {
                    return Err(NatsError::BadMessage {
                        position: from,
                        reason: format!("missing (the next stored is {})", e.position),
                    });
                }
                index.record(&e.stream, e.version, e.event_id, e.position)?;
                index.applied = e.position;
                from += 1;
            }
        }
        Ok(last)
    }
}
