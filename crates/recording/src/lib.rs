//! Recording: the single path by which an event enters the store, shared by `gryning import`
//! and the agencies' gRPC services. For each event, in order:
//!
//! 1. field rules that need no history (`validate::check_fields`: dates, catalogue codes,
//!    personal identity numbers, subject/body pairing);
//! 2. the stream's lifecycle state, loaded from the store (and cached per stream with its
//!    version), checked with `StreamState::check`;
//! 3. an append with the expected version the state was loaded at, so a concurrent writer makes
//!    the append fail with a conflict instead of slipping past the rules; the recorder then
//!    reloads the stream and decides again, a bounded number of times.
//!
//! Idempotency: every event id of a batch is looked up before anything is decided. An id stored
//! before with identical content is a duplicate (whatever the stream's state now says: a resent
//! `CaseOpened` breaks case-opened-once, yet reads as the duplicate it is); with other content
//! it is a reused id. Only new events are checked and appended.
//!
//! Order: the accepted events of a batch are appended in submission order, so their positions
//! increase in submission order. With a single writer one round decides the whole batch. When
//! another writer appends to one of the batch's streams between the reading of its state and the
//! append, the store refuses that stream's events from there on; they are decided again in a
//! later round and so stored after the rest of the batch.

mod clock;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use gryning_domain::{validate, Catalogue, Date, Event, StreamState, Uuid};
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, Position, Version};

pub use clock::Clock;

/// How many times one event is re-decided after concurrent-writer conflicts before giving up.
pub const MAX_CONFLICT_RETRIES: usize = 12;

/// Streams whose state is cached; past this the cache is emptied and refilled on demand.
const CACHE_LIMIT: usize = 1 << 20;

/// What happened to an accepted event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now, at this position, as this version of its stream.
    Stored {
        position: Position,
        version: Version,
    },
    /// Stored before with identical content; nothing written.
    Duplicate { position: Position },
}

/// Why an event was not stored.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// A field or lifecycle rule is broken.
    #[error(transparent)]
    Invalid(#[from] gryning_domain::Error),
    /// The event id names another event already stored.
    #[error("field event_id: already stored with other content; an event id names one event only (value \"{event_id}\")")]
    EventIdReused { event_id: Uuid },
    /// Retention erased this event or its stream: the resend is refused, not stored again.
    #[error("{what} was erased by retention on {erased_on}; an erased event or stream is not recorded again")]
    Erased { what: String, erased_on: String },
    /// Other writers kept changing the stream; nothing was stored.
    #[error("stream {stream}: still conflicting with concurrent writers after {MAX_CONFLICT_RETRIES} retries; try again")]
    Conflict { stream: String },
    /// The store could not be used.
    #[error(transparent)]
    Store(gryning_store::Error),
}

impl Rejection {
    /// A short, stable reason for counting rejections.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Invalid(e) => e.reason(),
            Rejection::EventIdReused { .. } => "event-id-reused",
            Rejection::Erased { .. } => "erased",
            Rejection::Conflict { .. } => "conflict",
            Rejection::Store(_) => "store-unavailable",
        }
    }
}

/// An event to record, with the metadata stored beside it (who recorded it, through what).
#[derive(Clone, Debug)]
pub struct Submission {
    pub event: Event,
    pub metadata: Vec<u8>,
}

impl From<Event> for Submission {
    fn from(event: Event) -> Submission {
        Submission {
            event,
            metadata: Vec::new(),
        }
    }
}

pub struct Recorder {
    store: Arc<dyn EventStore>,
    catalogue: Arc<Catalogue>,
    /// Lifecycle state per stream as of the version it was loaded or last appended at.
    cache: Mutex<HashMap<String, (Version, StreamState)>>,
    clock: Clock,
}

/// One event of a round to be appended, in submission order.
struct Pending {
    index: usize,
    stream: String,
}

/// A stream's working state during a round: as loaded, then advanced by the round's accepted
/// events, with the place in `pending` of the last of them.
struct Working {
    version: Version,
    state: StreamState,
    last_pending: Option<usize>,
}

impl Recorder {
    pub fn new(store: Arc<dyn EventStore>, catalogue: Arc<Catalogue>) -> Recorder {
        Recorder {
            store,
            catalogue,
            cache: Mutex::new(HashMap::new()),
            clock: Clock::System,
        }
    }

    /// Reads "now" from `clock` (tests fix it); by default the system clock. "Today" for the
    /// future-date rule is the date in Europe/Stockholm at that instant.
    pub fn with_clock(mut self, clock: Clock) -> Recorder {
        self.clock = clock;
        self
    }

    /// Fixes "today" for the future-date rule (tests): the clock stands at noon in Stockholm
    /// on `today`.
    pub fn with_today(self, today: Date) -> Recorder {
        self.with_clock(Clock::noon_on(today))
    }

    /// The clock that decides "today"; the services stamp `recorded_at` from it too.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Records one event.
    pub async fn record(&self, submission: Submission) -> Result<Outcome, Rejection> {
        self.record_batch(vec![submission])
            .await
            .pop()
            .expect("one result per submission")
    }

    /// Records events in order, as if one by one, sharing appends: one result per submission.
    /// Valid events are stored even when others in the batch are rejected.
    pub async fn record_batch(
        &self,
        submissions: Vec<Submission>,
    ) -> Vec<Result<Outcome, Rejection>> {
        let today = self.clock.today();
        let mut results: Vec<Option<Result<Outcome, Rejection>>> =
            (0..submissions.len()).map(|_| None).collect();
        let mut todo: Vec<usize> = Vec::with_capacity(submissions.len());
        for (index, submission) in submissions.iter().enumerate() {
            match validate::check_fields(&submission.event, &self.catalogue, today) {
                Ok(()) => todo.push(index),
                Err(e) => results[index] = Some(Err(e.into())),
            }
        }
        let mut attempt = 0;
        while !todo.is_empty() {
            let retry = self
                .decide_and_append(&submissions, &todo, &mut results)
                .await;
            attempt += 1;
            if attempt > MAX_CONFLICT_RETRIES {
                for index in retry {
                    results[index] = Some(Err(Rejection::Conflict {
                        stream: submissions[index].event.subject.stream_name(),
                    }));
                }
                break;
            }
            todo = retry;
            if !todo.is_empty() {
                backoff(attempt).await;
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every submission decided"))
            .collect()
    }

    /// One round: looks up every event id of the round at once, then decides each event in
    /// submission order (a stored id is a duplicate or a reused id; otherwise the lifecycle
    /// rule against its stream's state, as advanced by the round's earlier events), appends the
    /// accepted ones together in submission order, fills in `results`, and returns the indexes
    /// that met a concurrent writer and must be decided again.
    ///
    /// Looking the ids up before deciding is what keeps file order: a resend is known to be one
    /// before it could reach the store, so with a single writer the store accepts every request
    /// of the round and no event is left for a later round.
    async fn decide_and_append(
        &self,
        submissions: &[Submission],
        todo: &[usize],
        results: &mut [Option<Result<Outcome, Rejection>>],
    ) -> Vec<usize> {
        let ids: Vec<Uuid> = todo
            .iter()
            .map(|&index| submissions[index].event.event_id)
            .collect();
        let found = match self.store.find_events(&ids).await {
            Ok(found) => found,
            Err(e) => {
                let message = match e {
                    gryning_store::Error::Unavailable(message) => message,
                    other => other.to_string(),
                };
                for &index in todo {
                    results[index] = Some(Err(Rejection::Store(
                        gryning_store::Error::Unavailable(message.clone()),
                    )));
                }
                return Vec::new();
            }
        };
        let mut states: HashMap<String, Working> = HashMap::new();
        let mut pending: Vec<Pending> = Vec::with_capacity(todo.len());
        let mut requests: Vec<AppendRequest> = Vec::with_capacity(todo.len());
        // Event ids of this round's appends (their place in `pending`, their content), to
        // recognise a resend within the same batch.
        let mut in_round: HashMap<Uuid, (usize, Vec<u8>)> = HashMap::new();
        // Events whose id an earlier append of this round carries: (index, that append's place
        // in `pending`, whether the content is the same). If that append is stored, these are
        // duplicates (same content) or reuse its id (other content); if not, they are decided
        // again.
        let mut resends: Vec<(usize, usize, bool)> = Vec::new();
        // Rule breaks judged against a state that this round's own appends advanced: they stand
        // only if those appends are stored; otherwise the event is decided again.
        let mut provisional: Vec<(usize, usize, Rejection)> = Vec::new();
        for (&index, stored) in todo.iter().zip(found) {
            let event = &submissions[index].event;
            let stream = event.subject.stream_name();
            let payload = gryning_proto::encode_event(event);
            if let Some(stored) = stored {
                results[index] = Some(if stored.stream == stream && stored.payload == payload {
                    Ok(Outcome::Duplicate {
                        position: stored.position,
                    })
                } else {
                    Err(Rejection::EventIdReused {
                        event_id: event.event_id,
                    })
                });
                continue;
            }
            if let Some(erased_on) = self.store.erased_on(event.event_id, &stream) {
                // Checked before the lifecycle: the stream is empty now, so its rules would
                // say the case was never opened, which is not what happened.
                let what = if self.store.erased_on(event.event_id, "").is_some() {
                    format!("event_id {}", event.event_id)
                } else {
                    format!("stream {stream}")
                };
                results[index] = Some(Err(Rejection::Erased { what, erased_on }));
                continue;
            }
            if let Some((earlier, earlier_payload)) = in_round.get(&event.event_id) {
                resends.push((index, *earlier, *earlier_payload == payload));
                continue;
            }
            if !states.contains_key(&stream) {
                match self.load_state(&stream).await {
                    Ok((version, state)) => {
                        states.insert(
                            stream.clone(),
                            Working {
                                version,
                                state,
                                last_pending: None,
                            },
                        );
                    }
                    Err(e) => {
                        results[index] = Some(Err(Rejection::Store(e)));
                        continue;
                    }
                }
            }
            let working = states.get_mut(&stream).expect("loaded above");
            if let Err(rule) = working.state.check(event) {
                // The id is not stored (looked up above), so the rule stands, unless it was
                // judged against this round's own appends.
                match working.last_pending {
                    Some(earlier) => provisional.push((index, earlier, rule.into())),
                    None => results[index] = Some(Err(rule.into())),
                }
                continue;
            }
            working.state.apply(event);
            working.version += 1;
            working.last_pending = Some(pending.len());
            in_round.insert(event.event_id, (pending.len(), payload.clone()));
            requests.push(AppendRequest {
                stream: stream.clone(),
                expected_version: ExpectedVersion::Exact(working.version - 1),
                events: vec![NewEvent {
                    event_id: event.event_id,
                    payload,
                    metadata: submissions[index].metadata.clone(),
                }],
            });
            pending.push(Pending { index, stream });
        }
        // With a single writer every request below is stored. Only another writer appending to
        // one of these streams since its state was read (or storing one of these ids since the
        // lookup) makes the store answer otherwise; such a stream's working state is then void.
        let appended = if requests.is_empty() {
            Vec::new()
        } else {
            self.store.append_batch(requests).await
        };
        let mut retry = Vec::new();
        let mut stale: HashSet<&str> = HashSet::new();
        for (item, result) in pending.iter().zip(appended) {
            results[item.index] = match result {
                Ok(a) if a.duplicate => {
                    stale.insert(&item.stream);
                    Some(Ok(Outcome::Duplicate {
                        position: a.positions[0],
                    }))
                }
                Ok(a) => Some(Ok(Outcome::Stored {
                    position: a.positions[0],
                    version: a.version,
                })),
                Err(gryning_store::Error::Conflict { .. }) => {
                    stale.insert(&item.stream);
                    retry.push(item.index);
                    None
                }
                Err(gryning_store::Error::EventIdReused { event_id, .. }) => {
                    stale.insert(&item.stream);
                    Some(Err(Rejection::EventIdReused { event_id }))
                }
                Err(e) => {
                    stale.insert(&item.stream);
                    Some(Err(Rejection::Store(e)))
                }
            };
        }
        for (index, earlier, same) in resends {
            let event_id = submissions[index].event.event_id;
            results[index] = match results[pending[earlier].index] {
                Some(Ok(Outcome::Stored { position, .. } | Outcome::Duplicate { position })) => {
                    Some(if same {
                        Ok(Outcome::Duplicate { position })
                    } else {
                        Err(Rejection::EventIdReused { event_id })
                    })
                }
                _ => {
                    retry.push(index);
                    None
                }
            };
        }
        for (index, earlier, verdict) in provisional {
            if stale.contains(pending[earlier].stream.as_str()) {
                retry.push(index);
            } else {
                results[index] = Some(Err(verdict));
            }
        }
        retry.sort_unstable();
        let mut cache = self.cache.lock().expect("state cache poisoned");
        if cache.len() + states.len() > CACHE_LIMIT {
            cache.clear();
        }
        for stream in &stale {
            states.remove(*stream);
            cache.remove(*stream);
        }
        cache.extend(states.into_iter().map(|(s, w)| (s, (w.version, w.state))));
        retry
    }

    /// The stream's lifecycle state and version, from the cache or else from the store.
    async fn load_state(
        &self,
        stream: &str,
    ) -> Result<(Version, StreamState), gryning_store::Error> {
        if let Some(hit) = self.cache.lock().expect("state cache poisoned").get(stream) {
            return Ok(hit.clone());
        }
        let recorded = self.store.read_stream(stream).await?;
        let mut state = StreamState::New;
        for r in &recorded {
            let event = gryning_proto::decode_event(&r.payload).map_err(|e| {
                gryning_store::Error::Unavailable(format!(
                    "stored event at position {} (stream {stream} version {}) cannot be read: {e}",
                    r.position, r.version
                ))
            })?;
            state.apply(&event);
        }
        Ok((recorded.len() as Version, state))
    }
}

/// Waits before re-deciding after a conflict: random, growing with the attempt, so that a writer
/// whose cache is warm does not win every race against one that must reload.
async fn backoff(attempt: usize) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ceiling_us = 100u64 << attempt.min(8);
    let jitter = u64::from(nanos.wrapping_mul(2_654_435_761)) % ceiling_us;
    tokio::time::sleep(std::time::Duration::from_micros(jitter + 1)).await;
}
