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
//! Idempotency: the store accepts an event id stored before with identical content as a
//! duplicate. An event that breaks a lifecycle rule is first looked up by id, because a resent
//! event usually breaks one (a second `CaseOpened`), and a resend must read as a duplicate.

mod clock;

use std::collections::HashMap;
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

/// One event on its way through a batch.
struct Pending {
    index: usize,
    stream: String,
}

/// An event that broke a lifecycle rule, waiting to learn whether it is a resend (see
/// `Recorder::explain_rejections`).
struct Unexplained {
    index: usize,
    /// The last event of this round in the same stream, if any (its place in `pending`).
    earlier: Option<usize>,
    payload: Vec<u8>,
    rule: gryning_domain::Error,
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

    /// One round: checks each event against its stream's state (as advanced by the events
    /// before it in this round), appends the valid ones together, fills in `results`, and
    /// returns the indexes that met a concurrent writer and must be decided again.
    async fn decide_and_append(
        &self,
        submissions: &[Submission],
        todo: &[usize],
        results: &mut [Option<Result<Outcome, Rejection>>],
    ) -> Vec<usize> {
        // Working copies of the states this round touches, advanced as events are accepted.
        let mut states: HashMap<String, (Version, StreamState)> = HashMap::new();
        let mut pending: Vec<Pending> = Vec::with_capacity(todo.len());
        // Event ids of this round's appends, to recognise a resend within the same batch.
        let mut in_round: HashMap<Uuid, (usize, Vec<u8>)> = HashMap::new();
        // Events whose id an earlier event of this round carries: (index, that event's place in
        // `pending`, whether the content is the same). If that event is stored, these are
        // duplicates (same content) or reuse its id (other content); if not, they are decided
        // again.
        let mut resends: Vec<(usize, usize, bool)> = Vec::new();
        let mut requests: Vec<AppendRequest> = Vec::with_capacity(todo.len());
        // Rule breaks judged against a state that this round's own appends advanced: they stand
        // only if those appends are stored; otherwise the event is decided again.
        let mut provisional: Vec<(usize, usize, Result<Outcome, Rejection>)> = Vec::new();
        let mut unexplained: Vec<Unexplained> = Vec::new();
        for &index in todo {
            let event = &submissions[index].event;
            let stream = event.subject.stream_name();
            if !states.contains_key(&stream) {
                match self.load_state(&stream).await {
                    Ok(state) => {
                        states.insert(stream.clone(), state);
                    }
                    Err(e) => {
                        results[index] = Some(Err(Rejection::Store(e)));
                        continue;
                    }
                }
            }
            let (version, state) = states.get_mut(&stream).expect("loaded above");
            let payload = gryning_proto::encode_event(event);
            if let Err(rule) = state.check(event) {
                match in_round.get(&event.event_id) {
                    // Its verdict follows that of the earlier event with the same id.
                    Some((earlier, stored)) => resends.push((index, *earlier, *stored == payload)),
                    None => unexplained.push(Unexplained {
                        index,
                        earlier: pending.iter().rposition(|p| p.stream == stream),
                        payload,
                        rule,
                    }),
                }
                continue;
            }
            state.apply(event);
            *version += 1;
            in_round
                .entry(event.event_id)
                .or_insert_with(|| (pending.len(), payload.clone()));
            requests.push(AppendRequest {
                stream: stream.clone(),
                expected_version: ExpectedVersion::Exact(*version - 1),
                events: vec![NewEvent {
                    event_id: event.event_id,
                    payload,
                    metadata: submissions[index].metadata.clone(),
                }],
            });
            pending.push(Pending { index, stream });
        }
        let verdicts = self.explain_rejections(submissions, &unexplained).await;
        for (u, verdict) in unexplained.into_iter().zip(verdicts) {
            match u.earlier {
                Some(earlier) if verdict.is_err() => provisional.push((u.index, earlier, verdict)),
                _ => results[u.index] = Some(verdict),
            }
        }
        if requests.is_empty() {
            return Vec::new();
        }

        let appended = self.store.append_batch(requests).await;
        let mut retry = Vec::new();
        // Streams whose working state no longer matches the store: drop them from the cache.
        let mut stale: Vec<&str> = Vec::new();
        for (item, result) in pending.iter().zip(appended) {
            results[item.index] = match result {
                Ok(a) if a.duplicate => {
                    stale.push(&item.stream);
                    Some(Ok(Outcome::Duplicate {
                        position: a.positions[0],
                    }))
                }
                Ok(a) => Some(Ok(Outcome::Stored {
                    position: a.positions[0],
                    version: a.version,
                })),
                Err(gryning_store::Error::Conflict { .. }) => {
                    stale.push(&item.stream);
                    retry.push(item.index);
                    None
                }
                Err(gryning_store::Error::EventIdReused { event_id, .. }) => {
                    stale.push(&item.stream);
                    Some(Err(Rejection::EventIdReused { event_id }))
                }
                Err(e) => {
                    stale.push(&item.stream);
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
            if stale.contains(&pending[earlier].stream.as_str()) {
                retry.push(index);
            } else {
                results[index] = Some(verdict);
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
        cache.extend(states);
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
                    "stream {stream} version {}: {e}",
                    r.version
                ))
            })?;
            state.apply(&event);
        }
        Ok((recorded.len() as Version, state))
    }

    /// Events broke lifecycle rules. Each that was stored before with the same content is a
    /// resend and counts as a duplicate; one whose id names another event says so; for the
    /// others the rule stands. The ids are looked up together: a resent file can hold
    /// thousands of them in one batch.
    async fn explain_rejections(
        &self,
        submissions: &[Submission],
        unexplained: &[Unexplained],
    ) -> Vec<Result<Outcome, Rejection>> {
        if unexplained.is_empty() {
            return Vec::new();
        }
        let ids: Vec<Uuid> = unexplained
            .iter()
            .map(|u| submissions[u.index].event.event_id)
            .collect();
        let found = match self.store.find_events(&ids).await {
            Ok(found) => found,
            Err(e) => {
                let message = match e {
                    gryning_store::Error::Unavailable(message) => message,
                    other => other.to_string(),
                };
                return unexplained
                    .iter()
                    .map(|_| {
                        Err(Rejection::Store(gryning_store::Error::Unavailable(
                            message.clone(),
                        )))
                    })
                    .collect();
            }
        };
        unexplained
            .iter()
            .zip(ids)
            .zip(found)
            .map(|((u, event_id), stored)| match stored {
                Some(stored) if stored.payload == u.payload => Ok(Outcome::Duplicate {
                    position: stored.position,
                }),
                Some(_) => Err(Rejection::EventIdReused { event_id }),
                None => Err(u.rule.clone().into()),
            })
            .collect()
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
