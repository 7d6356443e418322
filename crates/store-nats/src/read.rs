//! Reading the log: batched direct gets from a position (optionally one subject's messages
//! only), decoding a stored message back into an event, and the bounded waits for a replica
//! that has not applied a position yet.

use std::time::Duration;

use async_nats::{Message, StatusCode};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use gryning_store::{Error, Position, RecordedEvent, Version};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{subject, NatsError, NatsStore, METADATA_HEADER, READ_CHUNK, VERSION_HEADER};

impl NatsStore {
    /// Up to `count` events from position `from` on (only those of `subject` if given), by
    /// batched direct get; fewer if the answering replica has fewer.
    pub(crate) async fn read_range(
        &self,
        from: Position,
        count: usize,
        subject: Option<&str>,
    ) -> Result<Vec<RecordedEvent>, NatsError> {
        let mut request = serde_json::json!({ "seq": from, "batch": count });
        if let Some(subject) = subject {
            request["next_by_subj"] = subject.into();
        }
        let inbox = self.inner.client.new_inbox();
        let client = &self.inner.client;
        let mut sub = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| self.stream_error(e))?;
        client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.{}", self.inner.options.stream),
                inbox,
                Bytes::from(request.to_string()),
            )
            .await
            .map_err(|e| self.stream_error(e))?;
        let timeout = self.inner.options.request_timeout;
        let mut events = Vec::with_capacity(count.min(READ_CHUNK));
        loop {
            let message = match tokio::time::timeout(timeout, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(self.stream_error("direct get subscription closed")),
                Err(_) => {
                    return Err(self.stream_error(format!(
                        "direct get from position {from} unanswered within {timeout:?}"
                    )))
                }
            };
            match message.status {
                None | Some(StatusCode::OK) => {
                    events.push(self.decode(&message)?);
                    if events.len() >= count {
                        return Ok(events);
                    }
                }
                // 204 EOB ends a batch; 404 means nothing at or after `from`.
                Some(s) if s.as_u16() == 204 || s == StatusCode::NOT_FOUND => return Ok(events),
                Some(s) => {
                    return Err(self.stream_error(format!(
                        "direct get from position {from}: status {s} {}",
                        message.description.unwrap_or_default()
                    )))
                }
            }
        }
    }

    /// Reads a stored message back into an event.
    fn decode(&self, message: &Message) -> Result<RecordedEvent, NatsError> {
        let headers = message.headers.as_ref();
        let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
        let position = header("Nats-Sequence")
            .and_then(|s| s.parse::<Position>().ok())
            .ok_or_else(|| NatsError::BadMessage {
                position: 0,
                reason: "direct get answer without Nats-Sequence".into(),
            })?;
        let bad = |reason: String| NatsError::BadMessage { position, reason };
        let subject = header("Nats-Subject").ok_or_else(|| bad("no Nats-Subject".into()))?;
        let stream = subject::stream_of(&self.inner.options.subject_prefix, subject)
            .map_err(|e| bad(e.to_string()))?;
        let event_id = header("Nats-Msg-Id")
            .ok_or_else(|| bad("no Nats-Msg-Id".into()))
            .and_then(|v| Uuid::parse_str(v).map_err(|e| bad(format!("Nats-Msg-Id {v:?}: {e}"))))?;
        let version = header(VERSION_HEADER)
            .ok_or_else(|| bad(format!("no {VERSION_HEADER}")))
            .and_then(|v| {
                v.parse::<Version>()
                    .map_err(|e| bad(format!("{VERSION_HEADER} {v:?}: {e}")))
            })?;
        let metadata = match header(METADATA_HEADER) {
            None => Vec::new(),
            Some(v) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| bad(format!("{METADATA_HEADER}: {e}")))?,
        };
        Ok(RecordedEvent {
            position,
            stream,
            version,
            event_id,
            payload: message.payload.to_vec(),
            metadata,
        })
    }

    /// The event at `position`, waiting (bounded) for a lagging replica to have it.
    pub(crate) async fn read_one(&self, position: Position) -> Result<RecordedEvent, NatsError> {
        let deadline = Instant::now() + self.inner.options.retry_for;
        loop {
            if let Some(e) = self.read_range(position, 1, None).await?.pop() {
                if e.position == position {
                    return Ok(e);
                }
            }
            if Instant::now() >= deadline {
                return Err(NatsError::NotReadable {
                    position,
                    waited: self.inner.options.retry_for,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every event of `stream` in version order, checking that versions run 1, 2, 3….
    pub(crate) async fn read_stream_events(
        &self,
        stream: &str,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.sync().await?;
        let Some(pos) = self.index().streams.get(stream).copied() else {
            return Ok(Vec::new());
        };
        let subject = self.subject(stream);
        let mut events: Vec<RecordedEvent> = Vec::with_capacity(pos.version as usize);
        let deadline = Instant::now() + self.inner.options.retry_for;
        while events.last().map_or(0, |e| e.position) < pos.last {
            let from = events.last().map_or(1, |e| e.position + 1);
            let page = self.read_range(from, READ_CHUNK, Some(&subject)).await?;
            if page.is_empty() {
                if Instant::now() >= deadline {
                    return Err(NatsError::NotReadable {
                        position: pos.last,
                        waited: self.inner.options.retry_for,
                    }
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            for e in page {
                if e.position > pos.last {
                    break;
                }
                let expected = events.len() as Version + 1;
                if e.version != expected {
                    return Err(NatsError::VersionClash {
                        stream: stream.to_owned(),
                        position: e.position,
                        found: e.version,
                        expected,
                    }
                    .into());
                }
                events.push(e);
            }
        }
        Ok(events)
    }

    /// Up to `limit` events after `after`, waiting (bounded) for a lagging replica to have
    /// every event up to the head this process has seen.
    pub(crate) async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Everything up to the head this process has seen acknowledged must be readable; a
        // replica answering the direct get may lag, so wait (bounded) until it has caught up.
        let known = *self.inner.head.borrow();
        let want = known.saturating_sub(after).min(limit as u64) as usize;
        let deadline = Instant::now() + self.inner.options.retry_for;
        let mut events: Vec<RecordedEvent> = Vec::new();
        loop {
            let from = events.last().map_or(after, |e| e.position) + 1;
            let page = self
                .read_range(from, (limit - events.len()).min(READ_CHUNK), None)
                .await?;
            let got = page.len();
            events.extend(page);
            if events.len() >= limit || (got == 0 && events.len() >= want) {
                return Ok(events);
            }
            if got == 0 {
                if Instant::now() >= deadline {
                    return Err(NatsError::NotReadable {
                        position: from,
                        waited: self.inner.options.retry_for,
                    }
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
