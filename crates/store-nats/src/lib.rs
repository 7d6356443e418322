//! The event store on NATS JetStream: a second backend behind [`gryning_store::EventStore`],
//! selected by a `nats://host:port` URL (several servers: comma-separated).
//!
//! **Layout.** One JetStream stream (`GRYNING_EVENTS`, subjects `gryning.events.>`) holds every
//! event; each store stream is one subject, `gryning.events.<token>`, where the token is the
//! stream name in the reversible escaping of [`subject`]. The global position is the JetStream
//! stream sequence, so positions are gap-free as long as nobody deletes messages. An event is
//! one message: the body is the payload bytes, the headers carry `Nats-Msg-Id` (the event id),
//! `Gryning-Version` (the stream version the event got) and, when not empty, `Gryning-Metadata`
//! (base64). The version is exact because every publish also carries
//! `Nats-Expected-Last-Subject-Sequence`: a message is only stored right after the message the
//! writer took for the subject's last one, so "previous version + 1" cannot be wrong.
//!
//! **Index.** Like the SQLite backend, the store keeps event id → position and stream →
//! (version, last position) in memory, rebuilt at open by reading the log once and brought up
//! to the stream's last sequence before every append and every read that uses it ([`NatsStore`]
//! calls this "sync"). Because the index is derived from the log itself, it survives restarts
//! by construction and cannot disagree with the log (there is no second write to lose); the
//! price is memory (about 60 bytes per event) and a scan at open. This is what makes
//! idempotency hold beyond JetStream's duplicate window: within the window the server also
//! drops a resent `Nats-Msg-Id` and answers with the original sequence, after it the index
//! still knows the id, and a stored id is compared by stream and payload bytes, as the trait
//! demands (same content → duplicate at the original positions, other content →
//! `EventIdReused`).
//!
//! **Atomic batches.** Every append is published as JetStream atomic batches (ADR-50,
//! nats-server 2.12+, with message ids in batches 2.14+; the stream has `allow_atomic`): a
//! batch is stored whole or not at all when its commit arrives, and the
//! `Nats-Expected-Last-Subject-Sequence` of each stream's first message in it is checked at
//! that commit. `append_batch` puts as many whole requests into one batch as the batch limit
//! allows (the server's `jetstream.limits.batch.max_msgs`, 1000 unless configured, which the
//! store asks the server for at connect; [`Options::max_batch`] can lower it), so a request of
//! up to that many events is never partly stored: not when another writer interrupts it, not
//! when the process dies mid-publish. A request of more events than the limit is stored in
//! several consecutive batches of the limit, each conditional on the previous one's last
//! message; it can be cut only between two of its batches (by a crash, or by another writer
//! appending to its stream in between, which then makes the rest refuse), and is then
//! answered `Unavailable` naming the events stored — resending it gives `PartialDuplicate`.
//! A batch that the server refuses (a stale expectation, an event id another writer stored
//! meanwhile, a leader change) stored nothing; its requests are decided again after a sync,
//! so a request that shared a batch with a refused one is still stored, a little later.
//! An existing stream without `allow_atomic` (made by an older gryning) is updated to allow it
//! at connect; if the server refuses the update, connecting fails saying so.
//!
//! **One winner per version.** nats-server#4320 reported two writers with the same expected
//! subject sequence both being accepted by a clustered stream. This backend does not rely on
//! one mechanism alone: (1) across processes — and across two stores in one process, which do
//! not share a lock — the server's per-subject check at the batch commit decides, and the
//! loser's whole batch is refused (on current servers a clustered leader also refuses a
//! second conditional write to a subject while one is in flight, error 10164, which the store
//! treats as "not stored, try again", never as an answer); the test
//! `two_stores_racing_have_one_winner_and_store_no_part_of_a_request` in `tests/atomic.rs`
//! races two stores with separate locks and shows exactly one winner per round and no part of
//! a loser's request stored (run against the one-publish-per-event appends this replaced, it
//! fails within a few rounds: a ten-event request interleaved with the other writer's
//! events); (2) inside one process all appends are serialized by one lock and
//! decided against the synced index, so two racing tasks of one store never both reach the
//! server with the same expectation. With atomic batches the lock is no longer needed for the
//! single-winner guarantee (the test above is the evidence); it stays because it keeps a
//! round's predicted sequences exact (two unserialized rounds of one process would void each
//! other's predictions, turning every overlap into a refused batch and a retry) and keeps the
//! index's bookkeeping of its own acks simple. (3) Every read that rebuilds or uses a stream's
//! versions checks that they run 1, 2, 3… in position order, and fails loudly naming the
//! stream and both positions if two messages claim one version, so a double winner can never
//! be served silently. The store refuses servers older than 2.14.
//!
//! **Pipelining.** `append_batch` decides every request of the call against the index, predicts
//! the sequence each message will get (the stream's last sequence + 1, + 2, …, exact while this
//! process is the only writer), cuts the messages into atomic batches and keeps several
//! batches in flight (up to [`Options::max_in_flight`] messages, at least two batches, at most
//! eight). If a batch is refused or its commit times out, the batches already in flight are
//! collected, nothing more is sent, the index is synced, and the requests not yet stored are
//! decided again. With other writers active, requests on different streams of one call may
//! therefore get positions out of request order.
//!
//! **Connections.** [`Connection`] carries TLS (a CA file, optionally a client certificate and
//! key; TLS is then required) and one way of authenticating (user and password, token, NKey
//! seed, `.creds` file); `connection` turns the client library's connect errors into messages
//! that name the setting to change, and never shows a secret.
//!
//! **Modules.** `connection` the TLS and credentials of a connection, `index` holds the id index and its sync, `read` the direct-get reads and the
//! decoding of stored messages, `layout` the decisions and the messages a round lays out,
//! `publish` the append loop and the atomic batches of a round, `tail` the ordered
//! consumer that follows the tail; this file keeps the public type, connecting and the
//! `EventStore` glue.
//!
//! **Durability.** "Acknowledged means durable" holds only if the server fsyncs before it acks.
//! JetStream's default (`sync_interval` 2 minutes) acknowledges at once and flushes later, so a
//! power loss can drop acknowledged writes (Jepsen's NATS 2.12.1 analysis, 2025-12-08, lost
//! acknowledged writes this way, even with three replicas when the nodes lose power together).
//! The configurations shipped in `deploy/nats/` and used by the tests set
//! `jetstream { sync_interval: always }`: every write is fsynced before its ack, at a throughput
//! cost that atomic batches largely hide: the server writes a batch at its commit, and the
//! cost of a commit grows far slower than its size (see `examples/nats_bench.rs`). The store cannot see the
//! server's setting; deploying with the default is a conscious trade of durability for speed.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use async_trait::async_trait;
use gryning_store::{
    AppendRequest, Appended, Error, EventStore, Position, RecordedEvent, StoreIdentity, Version,
};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

mod connection;
mod index;
mod layout;
mod publish;
mod read;
pub mod subject;
mod tail;
pub mod testkit;

pub use connection::{Auth, Connection, Secret, Tls};
use index::Index;

/// The header holding the version an event got in its stream.
pub const VERSION_HEADER: &str = "Gryning-Version";
/// The header holding an event's metadata, base64 (standard alphabet, padded).
pub const METADATA_HEADER: &str = "Gryning-Metadata";

/// The [`StoreIdentity::backend`] of this store.
pub const BACKEND: &str = "nats";

/// The server's default limit on the messages of one atomic batch, used when the server does
/// not say its own.
const DEFAULT_BATCH_LIMIT: usize = 1000;

/// Messages asked for per direct-get batch request.
const READ_CHUNK: usize = 4096;

/// Whether a store location names this backend: `nats://HOST:PORT`, or `tls://HOST:PORT` for a
/// server that must be spoken to over TLS.
pub fn is_nats_url(location: &str) -> bool {
    location.starts_with("nats://") || location.starts_with("tls://")
}

/// Where and how the store keeps its events.
#[derive(Clone, Debug)]
pub struct Options {
    /// The JetStream stream holding every event.
    pub stream: String,
    /// The subject prefix; a store stream is `<prefix>.<token>`.
    pub subject_prefix: String,
    /// Replicas of the JetStream stream when the store creates it (1, or 3 in a cluster).
    pub replicas: usize,
    /// Bound on one JetStream API request or publish ack.
    pub request_timeout: Duration,
    /// How long an append keeps retrying without progress (leader elections, lagging
    /// replicas) before it reports `Unavailable`.
    pub retry_for: Duration,
    /// Messages in uncommitted atomic batches at once in `append_batch` (at least two batches
    /// are kept in flight whatever their size).
    pub max_in_flight: usize,
    /// The most messages one atomic batch holds. `None` (the default): the server's limit
    /// (`jetstream { limits { batch { max_msgs } } }`, 1000 unless configured), asked at
    /// connect; a larger value is lowered to the server's.
    pub max_batch: Option<usize>,
    /// TLS and authentication of the connection (none by default).
    pub connection: Connection,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            stream: "GRYNING_EVENTS".into(),
            subject_prefix: "gryning.events".into(),
            replicas: 1,
            request_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(60),
            max_in_flight: 4096,
            max_batch: None,
            connection: Connection::default(),
        }
    }
}

/// Why the store could not do something; turned into [`Error::Unavailable`] at the trait.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("nats-server {version} at {url} is too old: the store needs 2.14 or later (atomic batches with message ids)")]
    ServerTooOld { url: String, version: String },
    #[error("JetStream stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("message at position {position}: {reason}")]
    BadMessage { position: Position, reason: String },
    #[error("stream {stream}: the event at position {position} has version {found}, expected {expected} (two appends won one version, or a message was removed)")]
    VersionClash {
        stream: String,
        position: Position,
        found: Version,
        expected: Version,
    },
    #[error("position {position} is not readable within {waited:?} (replicas lagging?)")]
    NotReadable {
        position: Position,
        waited: Duration,
    },
}

impl From<NatsError> for Error {
    fn from(e: NatsError) -> Error {
        Error::Unavailable(e.to_string())
    }
}

/// The event store on JetStream. Cheap to clone: clones share the connection and the index.
#[derive(Clone)]
pub struct NatsStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    options: Options,
    index: Mutex<Index>,
    /// Serializes appends in this process, which keeps the sequence predictions of a round
    /// exact (see "One winner per version").
    append_lock: tokio::sync::Mutex<()>,
    /// The most messages an atomic batch holds: the server's limit, lowered further if a
    /// commit is refused as too large.
    batch_limit: AtomicUsize,
    head: watch::Sender<Position>,
    tailer: tokio::task::JoinHandle<()>,
    identity: StoreIdentity,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tailer.abort();
    }
}

impl NatsStore {
    /// Connects to `url` (`nats://host:port`, several comma-separated) with the TLS and
    /// credentials of [`Options::connection`], checks the server, creates the JetStream stream
    /// if it does not exist, and builds the index from the log. A refused connection (wrong
    /// credentials, a client certificate missing or refused, an untrusted server certificate,
    /// TLS on one side only) is a [`NatsError::Connect`] saying what was wrong and which
    /// setting to change.
    pub async fn connect(url: &str, options: Options) -> Result<NatsStore, NatsError> {
        let connect_error = |reason: String| NatsError::Connect {
            url: url.to_owned(),
            reason,
        };
        let addrs = url
            .split(',')
            .map(|a| a.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| connect_error(e.to_string()))?;
        let client = options
            .connection
            .options()
            .map_err(&connect_error)?
            .connection_timeout(options.request_timeout)
            .request_timeout(Some(options.request_timeout))
            .connect(addrs)
            .await
            .map_err(|e| connect_error(options.connection.explain(&e)))?;
        let version = client.server_info().version;
        if !at_least(&version, (2, 14)) {
            return Err(NatsError::ServerTooOld {
                url: url.to_owned(),
                version,
            });
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(options.request_timeout)
            .max_ack_inflight(options.max_in_flight.max(1) * 2)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let stream_error = |reason: String| NatsError::Stream {
            stream: options.stream.clone(),
            reason,
        };
        let config = jetstream::stream::Config {
            name: options.stream.clone(),
            subjects: vec![format!("{}.>", options.subject_prefix)],
            num_replicas: options.replicas,
            storage: jetstream::stream::StorageType::File,
            allow_direct: true,
            allow_atomic_publish: true,
            ..Default::default()
        };
        // Creation races with other processes and, in a cluster, with the meta leader's
        // election right after start; retry within the retry budget.
        let deadline = Instant::now() + options.retry_for;
        let stream = loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(stream_error(format!("cannot create or open: {e}"))),
            }
        };
        let mut info = stream.cached_info().clone();
        if !info.config.allow_direct {
            return Err(stream_error(
                "exists without allow_direct, which the store reads with".into(),
            ));
        }
        if !info.config.allow_atomic_publish {
            // A stream made by an older gryning: atomic batches only add to what it accepts,
            // so the store turns them on rather than refusing the stream.
            let mut config = info.config.clone();
            config.allow_atomic_publish = true;
            info = js.update_stream(&config).await.map_err(|e| {
                stream_error(format!(
                    "exists without allow_atomic, which the store appends with, and cannot be updated ({e}); set allow_atomic: true on the stream"
                ))
            })?;
            if !info.config.allow_atomic_publish {
                return Err(stream_error(
                    "exists without allow_atomic, which the store appends with, and the server did not turn it on; set allow_atomic: true on the stream".into(),
                ));
            }
        }
        let wanted = format!("{}.>", options.subject_prefix);
        if !info.config.subjects.contains(&wanted) {
            return Err(stream_error(format!(
                "exists with subjects {:?}, not {wanted}",
                info.config.subjects
            )));
        }
        // The server stamps a stream with its creation time, once: with the stream's name it
        // tells this stream from any other, including one deleted and created again.
        let identity = StoreIdentity {
            backend: BACKEND.into(),
            id: format!(
                "{}@{}",
                info.config.name,
                info.created.unix_timestamp_nanos()
            ),
        };
        let probe = format!("{}.~~batch-limit", options.subject_prefix);
        let server_limit = NatsStore::probe_batch_limit(&client, probe).await;
        let batch_limit = match (options.max_batch, server_limit) {
            (Some(wanted), Some(server)) => wanted.min(server),
            (Some(wanted), None) => wanted,
            (None, Some(server)) => server,
            (None, None) => DEFAULT_BATCH_LIMIT,
        }
        .max(1);
        let (head, _) = watch::channel(0);
        let tailer = tokio::spawn(tail::tail(stream.clone(), head.clone()));
        let store = NatsStore {
            inner: Arc::new(Inner {
                client,
                js,
                options,
                index: Mutex::new(Index::default()),
                append_lock: tokio::sync::Mutex::new(()),
                batch_limit: AtomicUsize::new(batch_limit),
                head,
                tailer,
                identity,
            }),
        };
        store.sync().await?;
        Ok(store)
    }

    /// The options the store runs with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The most messages one atomic batch holds (the server's limit, or
    /// [`Options::max_batch`] if lower): a request of more events is stored in several.
    pub fn max_batch(&self) -> usize {
        self.batch_limit()
    }

    /// The JetStream stream's current info (leader, replicas, last sequence).
    pub async fn stream_info(&self) -> Result<jetstream::stream::Info, NatsError> {
        self.stream()
            .await?
            .get_info()
            .await
            .map_err(|e| self.stream_error(e))
    }

    fn stream_error(&self, e: impl std::fmt::Display) -> NatsError {
        NatsError::Stream {
            stream: self.inner.options.stream.clone(),
            reason: e.to_string(),
        }
    }

    async fn stream(&self) -> Result<Stream<()>, NatsError> {
        self.inner
            .js
            .get_stream_no_info(&self.inner.options.stream)
            .await
            .map_err(|e| self.stream_error(e))
    }

    async fn last_sequence(&self) -> Result<Position, NatsError> {
        let last = self.stream_info().await?.state.last_sequence;
        self.inner.head.send_if_modified(|h| raise(h, last));
        Ok(last)
    }

    fn subject(&self, stream: &str) -> String {
        subject::subject_for(&self.inner.options.subject_prefix, stream)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn raise(head: &mut Position, to: Position) -> bool {
    if to > *head {
        *head = to;
        true
    } else {
        false
    }
}

fn at_least(version: &str, wanted: (u64, u64)) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= wanted
}

#[async_trait]
impl EventStore for NatsStore {
    async fn append_batch(&self, requests: Vec<AppendRequest>) -> Vec<Result<Appended, Error>> {
        if requests.is_empty() {
            return Vec::new();
        }
        let _serial = self.inner.append_lock.lock().await;
        self.append_locked(requests).await
    }

    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, Error> {
        self.read_stream_events(stream).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Version, Error> {
        self.sync().await?;
        Ok(self.index().streams.get(stream).map_or(0, |p| p.version))
    }

    async fn find_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, Error> {
        self.sync().await?;
        let found = self.index().ids.get(&event_id).copied();
        match found {
            Some(position) => Ok(Some(self.read_one(position).await?)),
            None => Ok(None),
        }
    }

    /// One sync for the lot (the recorder looks up every id of a batch): the ids not stored
    /// cost an index lookup each, the stored ones a read.
    async fn find_events(&self, event_ids: &[Uuid]) -> Result<Vec<Option<RecordedEvent>>, Error> {
        self.sync().await?;
        let positions: Vec<Option<Position>> = {
            let index = self.index();
            event_ids
                .iter()
                .map(|id| index.ids.get(id).copied())
                .collect()
        };
        let mut found = Vec::with_capacity(positions.len());
        for position in positions {
            found.push(match position {
                Some(position) => Some(self.read_one(position).await?),
                None => None,
            });
        }
        Ok(found)
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.read_after(after, limit).await
    }

    async fn head(&self) -> Result<Position, Error> {
        Ok(self.last_sequence().await?)
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.head.subscribe()
    }

    fn identity(&self) -> StoreIdentity {
        self.inner.identity.clone()
    }
}
