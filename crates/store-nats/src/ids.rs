//! What the store knows without an index of the whole log: a stream's version and last
//! position from the stream's last message, and what became of an event id from the id
//! stream.
//!
//! **Versions.** The last message of a stream's subject carries the stream's version
//! (`Gryning-Version`) and its sequence is what the next append expects; one batched direct get
//! (`multi_last`, up to 1024 subjects) answers for every stream of a round.
//!
//! **Event ids.** Beside the events, a second JetStream stream (the events stream's name with
//! `_IDS`, subjects `<prefix>-ids.<event id>`) holds a *claim* per event: a message on the
//! event id's subject whose body is the subject token of the stream the event is written to.
//! A round writes the claims of all its events (atomic batches, fsynced like the events) and
//! only after they are acknowledged publishes the events, so every stored event has a claim
//! (a claim without an event — the process died in between, or the event's batch was refused —
//! is harmless). To look an id up, the store gets the id's last claim (again one `multi_last`
//! for up to 1024 ids) and reads the claimed stream's messages (streams are small) for the
//! event with that `Nats-Msg-Id`; if it is not there, every claim of the id is read and each
//! claimed stream searched. Nothing is kept in the process between calls: memory does not grow
//! with the log, and connecting reads nothing of it.
//!
//! Two writers that both find an id unclaimed and both publish it are kept apart by the
//! events stream's duplicate window (`Nats-Msg-Id`, two minutes by default): the second
//! batch is refused whole and decided again, finding the first one's event. So "the same id
//! with other content is refused" holds beyond the window, and for a race within it.
//!
//! A stream made by a gryning without claims is completed at connect: if the id stream has no
//! *complete* marker (`<prefix>-ids.~complete`, whose body is the position the claims were
//! completed up to), the log up to the current head is read once and a claim written for each
//! event. That is a one-time migration; every later connect reads the marker only.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use gryning_store::{Position, RecordedEvent, Version};
use tokio::time::Instant;
use uuid::Uuid;

use crate::publish::InFlightAck;
use crate::{subject, NatsError, NatsStore, READ_CHUNK};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamPos {
    pub(crate) version: Version,
    pub(crate) last: Position,
}

/// The most subjects one `multi_last` direct get may match (the server's limit).
const MULTI_LAST: usize = 1024;

/// Streams read at once when looking ids up.
const PARALLEL_READS: usize = 16;

/// The marker's token under the id prefix (`~` is not a UUID character).
const COMPLETE: &str = "~complete";

/// The id stream's name for an events stream.
pub(crate) fn ids_stream_name(stream: &str) -> String {
    format!("{stream}_IDS")
}

/// The id stream's subject prefix for an events subject prefix.
pub(crate) fn ids_prefix(subject_prefix: &str) -> String {
    format!("{subject_prefix}-ids")
}

impl NatsStore {
    fn claim_subject(&self, id: Uuid) -> String {
        format!("{}.{id}", ids_prefix(&self.inner.options.subject_prefix))
    }

    fn complete_subject(&self) -> String {
        format!(
            "{}.{COMPLETE}",
            ids_prefix(&self.inner.options.subject_prefix)
        )
    }

    fn ids_stream(&self) -> String {
        ids_stream_name(&self.inner.options.stream)
    }

    /// One stream's version and last position (both 0 if it does not exist).
    pub(crate) async fn stream_position(&self, stream: &str) -> Result<StreamPos, NatsError> {
        Ok(self
            .stream_positions([stream.to_owned()])
            .await?
            .remove(stream)
            .unwrap_or_default())
    }

    /// The version and last position of each stream that exists among `streams`.
    pub(crate) async fn stream_positions(
        &self,
        streams: impl IntoIterator<Item = String>,
    ) -> Result<HashMap<String, StreamPos>, NatsError> {
        let unique: Vec<String> = streams
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut positions = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(MULTI_LAST) {
            let subjects: Vec<String> = chunk.iter().map(|s| self.subject(s)).collect();
            let request = serde_json::json!({ "multi_last": subjects });
            let stream = self.inner.options.stream.clone();
            for message in self.direct_get(&stream, request, None).await? {
                let e = self.decode(&message)?;
                positions.insert(
                    e.stream,
                    StreamPos {
                        version: e.version,
                        last: e.position,
                    },
                );
            }
        }
        Ok(positions)
    }

    /// The stored events among `ids`, by id.
    pub(crate) async fn find_ids(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, RecordedEvent>, NatsError> {
        let unique: Vec<Uuid> = ids
            .iter()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // The last claim of each id.
        let mut claimed: HashMap<Uuid, String> = HashMap::new();
        for chunk in unique.chunks(MULTI_LAST) {
            let subjects: Vec<String> = chunk.iter().map(|&id| self.claim_subject(id)).collect();
            let request = serde_json::json!({ "multi_last": subjects });
            for message in self.direct_get(&self.ids_stream(), request, None).await? {
                let (id, stream) = self.decode_claim(&message)?;
                claimed.insert(id, stream);
            }
        }
        if claimed.is_empty() {
            return Ok(HashMap::new());
        }
        let mut found = self
            .search_streams(claimed.values().cloned().collect(), &claimed)
            .await?;
        // Claimed but not where the last claim says: look at every claim of those ids.
        let missing: Vec<Uuid> = claimed
            .keys()
            .filter(|id| !found.contains_key(id))
            .copied()
            .collect();
        for id in missing {
            let subject = self.claim_subject(id);
            let mut streams: HashSet<String> = HashSet::new();
            let mut from = 1;
            loop {
                let request = serde_json::json!({ "seq": from, "batch": READ_CHUNK, "next_by_subj": subject });
                let page = self.direct_get(&self.ids_stream(), request, None).await?;
                let Some(last) = page.last() else { break };
                from = sequence_of(last).unwrap_or(Position::MAX - 1) + 1;
                for message in &page {
                    streams.insert(self.decode_claim(message)?.1);
                }
                if page.len() < READ_CHUNK {
                    break;
                }
            }
            streams.remove(&claimed[&id]);
            let only: HashMap<Uuid, String> = HashMap::from([(id, String::new())]);
            found.extend(self.search_streams(streams, &only).await?);
        }
        Ok(found)
    }

    /// Reads each of `streams` and returns the events among them whose id is a key of
    /// `wanted`.
    async fn search_streams(
        &self,
        streams: HashSet<String>,
        wanted: &HashMap<Uuid, String>,
    ) -> Result<HashMap<Uuid, RecordedEvent>, NatsError> {
        let positions = self.stream_positions(streams.iter().cloned()).await?;
        let mut reads = futures_util::stream::iter(positions)
            .map(|(stream, pos)| async move { self.stream_events(&stream, pos).await })
            .buffer_unordered(PARALLEL_READS);
        let mut found = HashMap::new();
        while let Some(events) = reads.next().await {
            for e in events? {
                if wanted.contains_key(&e.event_id) {
                    found.insert(e.event_id, e);
                }
            }
        }
        Ok(found)
    }

    /// A claim's event id and stream.
    fn decode_claim(&self, message: &async_nats::Message) -> Result<(Uuid, String), NatsError> {
        let position = sequence_of(message).unwrap_or(0);
        let bad = |reason: String| NatsError::BadMessage { position, reason };
        let subject = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Subject"))
            .map(|v| v.as_str().to_owned())
            .ok_or_else(|| bad("claim without Nats-Subject".into()))?;
        let prefix = ids_prefix(&self.inner.options.subject_prefix);
        let id = subject
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|token| Uuid::parse_str(token).ok())
            .ok_or_else(|| bad(format!("claim subject {subject:?} names no event id")))?;
        let token = std::str::from_utf8(&message.payload)
            .map_err(|_| bad("claim body is not UTF-8".into()))?;
        let stream = subject::decode_token(token).map_err(|e| bad(format!("claim body: {e}")))?;
        Ok((id, stream))
    }

    /// Writes a claim for each (event id, stream subject) as atomic batches, several in
    /// flight, and waits for every acknowledgement.
    pub(crate) async fn claim(&self, claims: Vec<(Uuid, String)>) -> Result<(), String> {
        let prefix = format!("{}.", self.inner.options.subject_prefix);
        let messages: Vec<(String, HeaderMap, Bytes)> = claims
            .into_iter()
            .map(|(id, subject)| {
                let token = subject.strip_prefix(&prefix).unwrap_or(&subject).to_owned();
                (self.claim_subject(id), HeaderMap::new(), Bytes::from(token))
            })
            .collect();
        self.publish_batches(messages).await
    }

    /// Publishes `messages` (subject, headers, body) as atomic batches of the batch limit, a
    /// few in flight, and waits for every commit.
    async fn publish_batches(
        &self,
        messages: Vec<(String, HeaderMap, Bytes)>,
    ) -> Result<(), String> {
        let limit = self.batch_limit();
        let mut in_flight: std::collections::VecDeque<InFlightAck> = Default::default();
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            let batch: Vec<_> = messages.by_ref().take(limit).collect();
            in_flight.push_back(self.send_raw_batch(batch).await?);
            if in_flight.len() >= crate::publish::BATCHES_IN_FLIGHT {
                check_ack(in_flight.pop_front()).await?;
            }
        }
        while let Some(ack) = in_flight.pop_front() {
            check_ack(Some(ack)).await?;
        }
        Ok(())
    }

    /// Makes sure every stored event has a claim: reads the *complete* marker and, if there is
    /// none, claims every event of the log up to now and writes the marker (see the module
    /// documentation). Returns how many events it claimed.
    pub(crate) async fn complete_claims(&self, head: Position) -> Result<u64, NatsError> {
        let error = |reason: String| NatsError::Stream {
            stream: self.ids_stream(),
            reason,
        };
        let request = serde_json::json!({ "last_by_subj": self.complete_subject() });
        if !self
            .direct_get(&self.ids_stream(), request, Some(1))
            .await?
            .is_empty()
        {
            return Ok(0);
        }
        let mut from = 1;
        let deadline = Instant::now() + self.inner.options.retry_for;
        while from <= head {
            let want = ((head - from + 1) as usize).min(READ_CHUNK);
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
            from = events.last().map_or(from, |e| e.position + 1);
            let claims = events
                .into_iter()
                .map(|e| (e.event_id, self.subject(&e.stream)))
                .collect();
            self.claim(claims).await.map_err(|e| {
                error(format!(
                    "cannot write claims for the events already stored: {e}"
                ))
            })?;
        }
        let marker = vec![(
            self.complete_subject(),
            HeaderMap::new(),
            Bytes::from(head.to_string()),
        )];
        self.publish_batches(marker)
            .await
            .map_err(|e| error(format!("cannot write the complete marker: {e}")))?;
        Ok(head)
    }
}

async fn check_ack(ack: Option<InFlightAck>) -> Result<(), String> {
    match ack {
        Some(ack) => ack
            .await
            .map(|_| ())
            .map_err(|e| format!("a batch of claims was refused: {e}")),
        None => Ok(()),
    }
}

fn sequence_of(message: &async_nats::Message) -> Option<Position> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Sequence"))
        .and_then(|v| v.as_str().parse().ok())
}
