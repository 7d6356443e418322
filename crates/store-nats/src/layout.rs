//! Laying out appends: each request of a batch is decided against the synced index (refused,
//! a duplicate, or to be written on top of the stream's version), and the messages to write are
//! laid out with their versions, the sequence of the stream's message each follows and the
//! sequence each is predicted to get. `publish` cuts them into atomic batches.

use std::collections::{HashMap, HashSet};

use async_nats::HeaderMap;
use base64::Engine as _;
use bytes::Bytes;
use gryning_store::verdict::{Chain, Verdict};
use gryning_store::{AppendRequest, Appended, Error, NewEvent, Position, Version};
use uuid::Uuid;

use crate::index::StreamPos;
use crate::{NatsError, NatsStore, METADATA_HEADER, VERSION_HEADER};

impl NatsStore {
    /// The headers of an event's message, without the batch headers (added when the message
    /// is put into an atomic batch).
    fn headers(event: &NewEvent, version: Version) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
        headers.insert(VERSION_HEADER, version.to_string().as_str());
        if !event.metadata.is_empty() {
            headers.insert(
                METADATA_HEADER,
                base64::engine::general_purpose::STANDARD
                    .encode(&event.metadata)
                    .as_str(),
            );
        }
        headers
    }

    /// Decides every request not yet done against the synced index, and lays out the messages
    /// of this round with predicted sequences from `synced + 1` on.
    pub(crate) async fn plan(
        &self,
        work: &mut [Work],
        synced: Position,
    ) -> Result<Vec<Planned>, NatsError> {
        let mut round = Round {
            planned: Vec::new(),
            next: synced + 1,
            ids: HashSet::new(),
        };
        // Streams as this round leaves them, over the index.
        let mut overlay: HashMap<String, StreamPos> = HashMap::new();
        // Streams with a refused request earlier in the call (`verdict::Chain`).
        let mut chain = Chain::default();
        for w_index in 0..work.len() {
            if let Some(State::Done(answer)) = w_index.checked_sub(1).map(|i| &work[i].state) {
                chain.record(&work[w_index - 1].request, answer);
            }
            let w = &mut work[w_index];
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
            if let Some(refused) = chain.refusal(request, current.version) {
                w.state = State::Done(Err(refused));
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
}

/// One request of an `append_batch` call and how far it got.
pub(crate) struct Work {
    pub(crate) request: AppendRequest,
    pub(crate) state: State,
}

pub(crate) enum State {
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
        let subject = store.subject(&request.stream);
        for (k, event) in request.events.iter().enumerate().skip(from) {
            self.ids.insert(event.event_id);
            self.planned.push(Planned {
                work,
                event: k,
                subject: subject.clone(),
                headers: NatsStore::headers(event, base + k as Version + 1),
                payload: Bytes::from(event.payload.clone()),
                follows: last,
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

/// One message of a round: event `event` of work item `work`.
pub(crate) struct Planned {
    pub(crate) work: usize,
    pub(crate) event: usize,
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
    /// The sequence of the subject's message this one follows (0: the subject's first); the
    /// first message of a subject in an atomic batch carries it as
    /// `Nats-Expected-Last-Subject-Sequence`.
    pub(crate) follows: Position,
    pub(crate) predicted: Position,
}
