//! The event store: an append-only log of opaque event payloads, split into streams (one per
//! case or client) and totally ordered by a global position.
//!
//! Architecture invariant: the store knows nothing of the domain or of protobuf. It stores bytes
//! under an event id and a stream name, enforces optimistic concurrency per stream and
//! idempotency per event id, and hands events back in order. Validation happens before it.

use async_trait::async_trait;
use uuid::Uuid;

pub mod baseline;
mod compact;
pub mod conformance;
pub mod sqlite;
mod subscription;
pub mod verdict;

pub use subscription::Subscription;

/// A global position: 1 for the first event ever stored; 0 means "before the first event".
/// Positions only grow; a reader that has seen position `p` has seen every event at or below it.
pub type Position = u64;

/// The number of events in a stream; the first event of a stream has version 1.
pub type Version = u64;

/// An event to append. `payload` is the event's content (the encoded `gryning.v1.Event`) and is
/// what idempotency compares; `metadata` (who recorded it, when) is stored beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub payload: Vec<u8>,
    pub metadata: Vec<u8>,
}

/// What the writer believes the stream's version to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream holds exactly this many events (0: the stream does not exist yet).
    Exact(Version),
}

/// Events to append to one stream, all or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    pub stream: String,
    pub expected_version: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// The outcome of an accepted append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// One position per event of the request, in request order.
    pub positions: Vec<Position>,
    /// The stream's version after the append.
    pub version: Version,
    /// Every event of the request was already stored with identical content: nothing was
    /// written, and `positions` are where the earlier copies are.
    pub duplicate: bool,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream: String,
    pub version: Version,
    pub event_id: Uuid,
    pub payload: Vec<u8>,
    pub metadata: Vec<u8>,
}

/// Which store positions belong to: the backend and the id the store was given when it was
/// created. Two stores never share an id and a store keeps its id for life — so does a copy of
/// its files, which is why a projection checkpoint also records the event at its position.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreIdentity {
    /// The backend: `sqlite` (embedded) or `nats` (JetStream).
    pub backend: String,
    /// Created with the store (empty: a read-only open of a store never given one; such a
    /// store matches no checkpoint).
    pub id: String,
}

impl std::fmt::Display for StoreIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} store {:?}", self.backend, self.id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another writer got there first: reload the stream and decide again.
    #[error("stream {stream}: expected version {expected}, but the stream is at version {actual}")]
    Conflict {
        stream: String,
        expected: Version,
        actual: Version,
    },
    /// The event id is already stored with other content (or in another stream).
    #[error("event_id {event_id} is already stored with other content (stream {stream}); an event id names one event only")]
    EventIdReused { event_id: Uuid, stream: String },
    /// Some events of a request are stored already and some are not: a request is all or none.
    #[error("stream {stream}: event_id {event_id} is already stored but other events of the same request are not; resend only the new events")]
    PartialDuplicate { event_id: Uuid, stream: String },
    /// Retention erased this event or its stream: a resend is not recorded again as new.
    #[error(
        "{what} was erased by retention on {erased_on}; an erased stream takes no events again"
    )]
    Erased { what: String, erased_on: String },
    /// An append request with no events.
    #[error("stream {stream}: an append request needs at least one event")]
    EmptyAppend { stream: String },
    /// The store cannot be used: disk, database or connection trouble.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// Another process (or another open store in this one) owns the data directory.
    #[error("data directory {} is in use by {}: one process owns an embedded store (lock file {}); stop that process first, or go through the server it runs with --server URL", dir.display(), holder(*pid), dir.join(sqlite::LOCK_FILE).display())]
    Locked {
        dir: std::path::PathBuf,
        /// The owner's process id as its lock file records it (`None`: not written yet).
        pid: Option<u32>,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process (its id is not recorded yet)".to_string(),
    }
}

/// An append-only, durable event log. "Acknowledged" means durable: when `append` or
/// `append_batch` returns an accepted result, the events survive a killed process.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends one request; see [`EventStore::append_batch`] for the rules.
    async fn append(&self, request: AppendRequest) -> Result<Appended, Error> {
        self.append_batch(vec![request])
            .await
            .pop()
            .expect("one result per request")
    }

    /// Appends several requests, each on its own terms, in order; returns one result per request.
    /// For each request: if every event id is already stored in this stream with identical
    /// payload, it is a duplicate (accepted, nothing written, whatever the expected version);
    /// an id stored with other content is [`Error::EventIdReused`]; otherwise the expected
    /// version is checked ([`Error::Conflict`]) and the events are appended. Requests later in
    /// the batch see the effects of earlier ones.
    async fn append_batch(&self, requests: Vec<AppendRequest>) -> Vec<Result<Appended, Error>>;

    /// Every event of a stream, in version order; empty if the stream does not exist.
    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, Error>;

    /// The stream's version (0 if it does not exist).
    async fn stream_version(&self, stream: &str) -> Result<Version, Error>;

    /// The stored event with this id, if any.
    async fn find_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, Error>;

    /// [`EventStore::find_event`] for several ids at once: one answer per id, in order. A
    /// backend may answer them together (the embedded store reads them in one blocking task).
    async fn find_events(&self, event_ids: &[Uuid]) -> Result<Vec<Option<RecordedEvent>>, Error> {
        let mut found = Vec::with_capacity(event_ids.len());
        for &id in event_ids {
            found.push(self.find_event(id).await?);
        }
        Ok(found)
    }

    /// Up to `limit` events with positions above `after`, in position order.
    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error>;

    /// Positions and payloads only of up to `limit` events after `after`, in position order:
    /// what a replay needs, without the stream names, ids and metadata `read_all` carries.
    async fn read_payloads(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, Vec<u8>)>, Error> {
        Ok(self
            .read_all(after, limit)
            .await?
            .into_iter()
            .map(|r| (r.position, r.payload))
            .collect())
    }

    /// The position of the last stored event (0 when empty).
    async fn head(&self) -> Result<Position, Error>;

    /// A receiver that sees the head position change as appends are acknowledged.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Position>;

    /// The date (YYYY-MM-DD) retention erased this event, or else this stream, if it did.
    /// Answered from a keyed hash of the id and the stream name (see `sqlite.rs`, "Retention"),
    /// never from the erased data; a backend without retention answers `None`.
    fn erased_on(&self, _event_id: Uuid, _stream: &str) -> Option<String> {
        None
    }

    /// The store's identity: the same at every open of the same storage, different for any
    /// other store (of either backend).
    fn identity(&self) -> StoreIdentity;
}

/// Every event after `after`: first those already stored, then each new one as it is
/// acknowledged, in position order, with no gap and no duplicate at the hand-over.
pub fn subscribe(store: std::sync::Arc<dyn EventStore>, after: Position) -> Subscription {
    Subscription::new(store, after)
}
