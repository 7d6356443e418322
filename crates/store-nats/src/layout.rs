//! Laying out appends: each request of a batch is decided against what the server holds now
//! (its streams' last messages and its event ids' claims, looked up together for the round;
//! see `ids`): refused, a duplicate, or to be written on top of the stream's version. The
//! messages to write are laid out with their versions and the sequence of the stream's message
//! each follows (the sequence a message is predicted to get: the head + 1, + 2, …, exact while
//! this process is the only writer). `publish` cuts them into atomic batches.

use std::collections::{HashMap, HashSet};

use async_nats::HeaderMap;
use base64::Engine as _;
use bytes::Bytes;
use gryning_store::verdict::{Chain, Verdict};
use gryning_store::{AppendRequest, Appended, Error, NewEvent, Position, RecordedEvent, Version};
use uuid::Uuid;

use crate::ids::StreamPos;
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

    /// Decides every request not yet done against the streams and ids as the server has them
    /// now, and lays out the messages of this round with predicted sequences from `synced + 1`
    /// on (`synced`: the stream's last sequence, asked just before).
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
        // Everything the round's decisions need, looked up at once: the streams' versions and
        // last positions, and the stored events among the ids.
        let pending = || work.iter().filter(|w| !matches!(w.state, State::Done(_)));
        let ids: Vec<Uuid> = pending()
            .flat_map(|w| w.request.events.iter().map(|e| e.event_id))
            .collect();
        let (positions, found) = tokio::join!(
            self.stream_positions(pending().map(|w| w.request.stream.clone())),
            self.find_ids(&ids)
        );
        let (positions, found) = (positions?, found?);
        // Streams as this round leaves them, over what the server has.
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
                None => positions.get(&stream).copied().unwrap_or_default(),
            };
            // A request published in an earlier round: find what of it is stored.
            if let State::Publishing { base, stored } = &mut w.state {
                for (k, e) in w.request.events.iter().enumerate() {
                    if stored[k].is_none() {
                        stored[k] = found
                            .get(&e.event_id)
                            .filter(|f| f.stream == stream)
                            .map(|f| f.position);
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
            match decide(request, current, &found) {
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
}

/// The refusal or duplicate answer for a request, or `None` if it is to be written; `found`
/// holds the stored events among the request's ids.
fn decide(
    request: &AppendRequest,
    current: StreamPos,
    found: &HashMap<Uuid, RecordedEvent>,
) -> Option<Result<Appended, Error>> {
    let mut verdict = match Verdict::new(request) {
        Ok(verdict) => verdict,
        Err(refused) => return Some(Err(refused)),
    };
    for event in &request.events {
        let stored = found.get(&event.event_id).map(|original| {
            (
                original.position,
                original.stream == request.stream && original.payload == event.payload,
            )
        });
        if let Err(refused) = verdict.see(event.event_id, stored) {
            return Some(Err(refused));
        }
    }
    verdict.finish(current.version)
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
                event_id: event.event_id,
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
    pub(crate) event_id: Uuid,
}
