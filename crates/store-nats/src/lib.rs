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
//! **One winner per version.** nats-server#4320 reported two writers with the same expected
//! subject sequence both being accepted by a clustered stream. This backend does not rely on the
//! server alone: (1) inside one process all appends are serialized by one lock and decided
//! against the synced index, so two racing tasks never both reach the server with the same
//! expectation — the loser is refused locally with `Conflict`; (2) across processes the server's
//! per-subject check decides (on current servers the clustered leader refuses a second
//! conditional write to a subject while one is in flight, error 10164, which the store treats
//! as "not stored, try again", never as an answer); (3) every read that rebuilds or uses a
//! stream's versions checks that they run 1, 2, 3… in position order, and fails loudly naming
//! the stream and both positions if two messages claim one version, so a double winner can never
//! be served silently. The store refuses servers older than 2.11.
//!
//! **Pipelining.** `append_batch` decides every request of the batch against the index, predicts
//! the sequence each message will get (the stream's last sequence + 1, + 2, …, exact while this
//! process is the only writer), and publishes all messages with up to
//! [`Options::max_in_flight`] acks outstanding. If any publish is refused or times out, the
//! rest of the round is drained, the index is synced, and the requests not yet stored are
//! decided again (a multi-event request of which a prefix was stored is completed, since the
//! prefix is ours). With other writers active, requests on different streams of one batch may
//! therefore get positions out of request order, and a multi-event request that another
//! process's append to the same stream interrupted after a stored prefix is reported as
//! `Unavailable` naming how many of its events were stored (JetStream's atomic batches, limited
//! to 1000 messages, would close that gap; not used yet).
//!
//! **Durability.** "Acknowledged means durable" holds only if the server fsyncs before it acks.
//! JetStream's default (`sync_interval` 2 minutes) acknowledges at once and flushes later, so a
//! power loss can drop acknowledged writes (Jepsen's NATS 2.12.1 analysis, 2025-12-08, lost
//! acknowledged writes this way, even with three replicas when the nodes lose power together).
//! The configurations shipped in `deploy/nats/` and used by the tests set
//! `jetstream { sync_interval: always }`: every write is fsynced before its ack, at a throughput
//! cost that pipelining largely hides (see `examples/nats_bench.rs`). The store cannot see the
//! server's setting; deploying with the default is a conscious trade of durability for speed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, stream::Stream};
use async_nats::{HeaderMap, Message, StatusCode};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use gryning_store::verdict::Verdict;
use gryning_store::{
    AppendRequest, Appended, Error, EventStore, NewEvent, Position, RecordedEvent, StoreIdentity,
    Version,
};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

pub mod subject;
pub mod testkit;

/// The header holding the version an event got in its stream.
pub const VERSION_HEADER: &str = "Gryning-Version";
/// The header holding an event's metadata, base64 (standard alphabet, padded).
pub const METADATA_HEADER: &str = "Gryning-Metadata";

/// The [`StoreIdentity::backend`] of this store.
pub const BACKEND: &str = "nats";

/// Messages asked for per direct-get batch request.
const READ_CHUNK: usize = 4096;

/// Whether a store location names this backend.
pub fn is_nats_url(location: &str) -> bool {
    location.starts_with("nats://")
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
    /// Publish acks outstanding at once in `append_batch`.
    pub max_in_flight: usize,
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
        }
    }
}

/// Why the store could not do something; turned into [`Error::Unavailable`] at the trait.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("nats-server {version} at {url} is too old: the store needs 2.11 or later")]
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
    /// Serializes appends in this process: the first of the single-winner guarantees.
    append_lock: tokio::sync::Mutex<()>,
    head: watch::Sender<Position>,
    tailer: tokio::task::JoinHandle<()>,
    identity: StoreIdentity,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tailer.abort();
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct StreamPos {
    version: Version,
    last: Position,
}

/// The in-memory lookups: every event at or below `applied`, plus this process's own acked
/// appends (which may be above it).
#[derive(Default)]
struct Index {
    ids: HashMap<Uuid, Position>,
    streams: HashMap<String, StreamPos>,
    /// The log is indexed without a gap up to here.
    applied: Position,
}

impl Index {
    /// Records one stored event. Events arrive in position order per stream, except that an own
    /// ack may have been recorded before the scan reaches it, which the `last` check skips.
    fn record(
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
    /// Connects to `url` (`nats://host:port`, several comma-separated), checks the server,
    /// creates the JetStream stream if it does not exist, and builds the index from the log.
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
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(options.request_timeout)
            .request_timeout(Some(options.request_timeout))
            .connect(addrs)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let version = client.server_info().version;
        if !at_least_2_11(&version) {
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
        let info = stream.cached_info();
        if !info.config.allow_direct {
            return Err(stream_error(
                "exists without allow_direct, which the store reads with".into(),
            ));
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
        let (head, _) = watch::channel(0);
        let tailer = tokio::spawn(tail(stream.clone(), head.clone()));
        let store = NatsStore {
            inner: Arc::new(Inner {
                client,
                js,
                options,
                index: Mutex::new(Index::default()),
                append_lock: tokio::sync::Mutex::new(()),
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

    /// Brings the index up to the stream's last sequence as the leader reports it now.
    async fn sync(&self) -> Result<Position, NatsError> {
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

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `count` events from position `from` on (only those of `subject` if given), by
    /// batched direct get; fewer if the answering replica has fewer.
    async fn read_range(
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
    async fn read_one(&self, position: Position) -> Result<RecordedEvent, NatsError> {
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

    fn message(
        &self,
        stream: &str,
        event: &NewEvent,
        version: Version,
        expected_last: Position,
    ) -> (String, jetstream::message::PublishMessage) {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected_last.to_string().as_str(),
        );
        headers.insert(VERSION_HEADER, version.to_string().as_str());
        if !event.metadata.is_empty() {
            headers.insert(
                METADATA_HEADER,
                base64::engine::general_purpose::STANDARD
                    .encode(&event.metadata)
                    .as_str(),
            );
        }
        (
            self.subject(stream),
            jetstream::message::PublishMessage::build()
                .payload(Bytes::from(event.payload.clone()))
                .headers(headers),
        )
    }

    async fn append_locked(&self, requests: Vec<AppendRequest>) -> Vec<Result<Appended, Error>> {
        let mut work: Vec<Work> = requests
            .into_iter()
            .map(|request| Work {
                state: State::Undecided,
                request,
            })
            .collect();
        let mut deadline = Instant::now() + self.inner.options.retry_for;
        let mut last_problem = String::new();
        loop {
            if work.iter().all(|w| matches!(w.state, State::Done(_))) {
                break;
            }
            if Instant::now() >= deadline {
                for w in &mut work {
                    if !matches!(w.state, State::Done(_)) {
                        w.state = State::Done(Err(Error::Unavailable(format!(
                            "stream {}: no progress within {:?}: {last_problem}",
                            w.request.stream, self.inner.options.retry_for
                        ))));
                    }
                }
                break;
            }
            let synced = match self.sync().await {
                Ok(last) => last,
                Err(e) => {
                    last_problem = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let plan = match self.plan(&mut work, synced).await {
                Ok(plan) => plan,
                Err(e) => {
                    last_problem = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (progress, problem) = self.publish(&mut work, plan, synced).await;
            if progress {
                deadline = Instant::now() + self.inner.options.retry_for;
            }
            if let Some(p) = problem {
                last_problem = p;
            }
        }
        work.into_iter()
            .map(|w| match w.state {
                State::Done(result) => result,
                _ => unreachable!("every request is decided before the loop ends"),
            })
            .collect()
    }

    /// Decides every request not yet done against the synced index, and lays out the messages
    /// of this round with predicted sequences from `synced + 1` on.
    async fn plan(&self, work: &mut [Work], synced: Position) -> Result<Vec<Planned>, NatsError> {
        let mut round = Round {
            planned: Vec::new(),
            next: synced + 1,
            ids: HashSet::new(),
        };
        // Streams as this round leaves them, over the index.
        let mut overlay: HashMap<String, StreamPos> = HashMap::new();
        for (w_index, w) in work.iter_mut().enumerate() {
            let stream = w.request.stream.clone();
            let current = match overlay.get(&stream) {
                Some(p) => *p,
                None => self
                    .index()
                    .streams
                    .get(&stream)
                    .copied()
                    .unwrap_or_default(),
            };
            // A request published in an earlier round: find what of it is stored.
            if let State::Publishing { base, stored } = &mut w.state {
                {
                    let index = self.index();
                    for (k, e) in w.request.events.iter().enumerate() {
                        if stored[k].is_none() {
                            stored[k] = index.ids.get(&e.event_id).copied();
                        }
                    }
                }
                let done = stored.iter().take_while(|s| s.is_some()).count();
                if done == stored.len() {
                    w.state = State::Done(Ok(Appended {
                        positions: stored.iter().map(|s| s.unwrap_or(0)).collect(),
                        version: *base + stored.len() as Version,
                        duplicate: false,
                    }));
                    continue;
                }
                if done == 0 && stored.iter().all(Option::is_none) {
                    w.state = State::Undecided;
                } else if stored[done..].iter().any(Option::is_some)
                    || current.last != stored[done - 1].unwrap_or(0)
                {
                    w.state = State::Done(Err(Error::Unavailable(format!(
                        "stream {stream}: a concurrent writer interrupted an append of {} events after {done} were stored at positions {:?}; the rest were not stored",
                        stored.len(),
                        &stored[..done]
                    ))));
                    continue;
                } else {
                    let left = round.lay_out(self, w_index, &w.request, done, *base, current.last);
                    overlay.insert(stream, left);
                    continue;
                }
            }
            if !matches!(w.state, State::Undecided) {
                continue;
            }
            let request = &w.request;
            if request
                .events
                .iter()
                .any(|e| round.ids.contains(&e.event_id))
            {
                // Decided next round, once the earlier copy is stored; it writes nothing
                // whatever it turns out to be, so later requests are not affected.
                continue;
            }
            match self.decide(request, current).await? {
                Some(result) => w.state = State::Done(result),
                None => {
                    let left =
                        round.lay_out(self, w_index, request, 0, current.version, current.last);
                    w.state = State::Publishing {
                        base: current.version,
                        stored: vec![None; request.events.len()],
                    };
                    overlay.insert(stream, left);
                }
            }
        }
        Ok(round.planned)
    }

    /// The refusal or duplicate answer for a request, or `None` if it is to be written.
    async fn decide(
        &self,
        request: &AppendRequest,
        current: StreamPos,
    ) -> Result<Option<Result<Appended, Error>>, NatsError> {
        let stream = request.stream.as_str();
        let mut verdict = match Verdict::new(request) {
            Ok(verdict) => verdict,
            Err(refused) => return Ok(Some(Err(refused))),
        };
        for event in &request.events {
            let found = self.index().ids.get(&event.event_id).copied();
            let stored = match found {
                Some(position) => {
                    let original = self.read_one(position).await?;
                    Some((
                        position,
                        original.stream == stream && original.payload == event.payload,
                    ))
                }
                None => None,
            };
            if let Err(refused) = verdict.see(event.event_id, stored) {
                return Ok(Some(Err(refused)));
            }
        }
        Ok(verdict.finish(current.version))
    }

    /// Publishes a round with many acks in flight. Returns whether anything was stored and,
    /// if the round stopped early, why. After the first refusal nothing more is sent (the
    /// predictions after it are void), but every ack already in flight is collected.
    async fn publish(
        &self,
        work: &mut [Work],
        plan: Vec<Planned>,
        synced: Position,
    ) -> (bool, Option<String>) {
        let max = self.inner.options.max_in_flight.max(1);
        let mut in_flight: VecDeque<(usize, usize, Position, PublishAckFuture)> = VecDeque::new();
        let mut problem: Option<String> = None;
        let mut progress = false;
        let mut contiguous = true;
        let mut plan = plan.into_iter();
        loop {
            while problem.is_none() && in_flight.len() < max {
                let Some(p) = plan.next() else { break };
                match self.inner.js.send_publish(p.subject, p.message).await {
                    Ok(ack) => in_flight.push_back((p.work, p.event, p.predicted, ack)),
                    Err(e) => problem = Some(format!("publish failed: {e}")),
                }
            }
            let Some((w_index, k, predicted, ack)) = in_flight.pop_front() else {
                break;
            };
            match ack.await {
                Ok(ack) if !ack.duplicate => {
                    progress = true;
                    contiguous &= ack.sequence == predicted;
                    let w = &mut work[w_index];
                    if let State::Publishing { base, stored } = &mut w.state {
                        stored[k] = Some(ack.sequence);
                        let version = *base + k as Version + 1;
                        let recorded = self.index().record(
                            &w.request.stream,
                            version,
                            w.request.events[k].event_id,
                            ack.sequence,
                        );
                        if let Err(e) = recorded {
                            problem.get_or_insert(e.to_string());
                        }
                    }
                    self.inner.head.send_if_modified(|h| raise(h, ack.sequence));
                }
                Ok(ack) => {
                    contiguous = false;
                    problem.get_or_insert(format!(
                        "event id {} already stored at position {} by another writer",
                        work[w_index].request.events[k].event_id, ack.sequence
                    ));
                }
                Err(e) => {
                    contiguous = false;
                    problem.get_or_insert(format!(
                        "stream {}: publish refused: {e}",
                        work[w_index].request.stream
                    ));
                }
            }
        }
        // When every ack came back at its predicted sequence and nothing failed, positions
        // synced+1..=last are exactly this round's messages: the index covers them already.
        if contiguous && problem.is_none() {
            let mut index = self.index();
            if index.applied == synced {
                let last = work
                    .iter()
                    .filter_map(|w| match &w.state {
                        State::Publishing { stored, .. } => stored.iter().flatten().max().copied(),
                        _ => None,
                    })
                    .max();
                if let Some(last) = last {
                    index.applied = last.max(index.applied);
                }
            }
        }
        // Requests fully stored become done at the next plan; finish them here so that a round
        // without refusals ends the loop without another sync.
        for w in work.iter_mut() {
            if let State::Publishing { base, stored } = &w.state {
                if stored.iter().all(Option::is_some) {
                    let positions = stored.iter().map(|s| s.unwrap_or(0)).collect::<Vec<_>>();
                    w.state = State::Done(Ok(Appended {
                        version: *base + positions.len() as Version,
                        positions,
                        duplicate: false,
                    }));
                }
            }
        }
        (progress, problem)
    }
}

/// One request of an `append_batch` call and how far it got.
struct Work {
    request: AppendRequest,
    state: State,
}

enum State {
    Undecided,
    /// Decided to be written on top of version `base`; `stored[k]` is event k's position once
    /// known to be stored.
    Publishing {
        base: Version,
        stored: Vec<Option<Position>>,
    },
    Done(Result<Appended, Error>),
}

/// The messages one round of `plan` lays out, and what it has used so far.
struct Round {
    planned: Vec<Planned>,
    /// The sequence the next message is predicted to get.
    next: Position,
    /// Ids published in this round: a request naming one waits for the next round.
    ids: HashSet<Uuid>,
}

impl Round {
    /// Lays out events `from..` of `request` (work item `work`), the event at index `k` as
    /// version `base + k + 1` following the stream's message at `last`; returns the stream as
    /// they leave it.
    fn lay_out(
        &mut self,
        store: &NatsStore,
        work: usize,
        request: &AppendRequest,
        from: usize,
        base: Version,
        mut last: Position,
    ) -> StreamPos {
        for (k, event) in request.events.iter().enumerate().skip(from) {
            let (subject, message) =
                store.message(&request.stream, event, base + k as Version + 1, last);
            self.ids.insert(event.event_id);
            self.planned.push(Planned {
                work,
                event: k,
                subject,
                message,
                predicted: self.next,
            });
            last = self.next;
            self.next += 1;
        }
        StreamPos {
            version: base + request.events.len() as Version,
            last,
        }
    }
}

struct Planned {
    work: usize,
    event: usize,
    subject: String,
    message: jetstream::message::PublishMessage,
    predicted: Position,
}

fn raise(head: &mut Position, to: Position) -> bool {
    if to > *head {
        *head = to;
        true
    } else {
        false
    }
}

fn at_least_2_11(version: &str) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 11)
}

/// Feeds the head watch from an ordered consumer over the whole stream (headers only), so that
/// subscribers in this process see other processes' appends without polling. Own appends raise
/// the watch directly on their acks. The ordered consumer recreates itself after a gap or a
/// leader change; if it cannot be created at all, the task tries again.
async fn tail(stream: Stream, head: watch::Sender<Position>) {
    loop {
        let start = *head.borrow() + 1;
        let config = jetstream::consumer::push::OrderedConfig {
            deliver_subject: format!("_GRYNING_TAIL.{}", Uuid::new_v4().simple()),
            filter_subject: String::new(),
            headers_only: true,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await,
            Err(e) => Err(async_nats::error::Error::with_source(
                jetstream::consumer::StreamErrorKind::Other,
                e,
            )),
        };
        if let Ok(mut messages) = messages {
            while let Some(Ok(message)) = messages.next().await {
                if let Ok(info) = message.info() {
                    let seq = info.stream_sequence;
                    head.send_if_modified(|h| raise(h, seq));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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

    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
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
