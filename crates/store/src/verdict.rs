//! What every backend decides about an append request before writing it, so the rules exist
//! once: an empty request is refused; an id stored before must be the same event (same stream
//! and payload), or the request reuses it; a request whose events were all stored before is a
//! duplicate, answered with the earlier positions; one mixing stored and new events is refused
//! as a partial duplicate; one new id named twice is reused; finally the expected version must
//! hold. The backend looks the ids up (each its own way) and feeds the answers in.
//!
//! Across the requests of one `append_batch` call, [`Chain`] adds one rule: once a request of a
//! stream is refused, the call's later requests of that stream that expect an exact version are
//! refused as conflicts too. A caller that sends several requests of one stream in one call
//! computed each expected version assuming the earlier ones are stored; if one was not, a later
//! one whose version matches by coincidence (another writer appended in between) must not slip in
//! after a state its caller never saw.

use std::collections::HashSet;

use uuid::Uuid;

use crate::{AppendRequest, Appended, Error, ExpectedVersion, Position, Version};

/// The verdict on one request, built event by event.
pub struct Verdict<'r> {
    request: &'r AppendRequest,
    stored: Vec<Position>,
    first_stored: Option<Uuid>,
    first_new: Option<Uuid>,
    seen: HashSet<Uuid>,
}

impl<'r> Verdict<'r> {
    /// Starts on `request`; an empty request is refused at once.
    pub fn new(request: &'r AppendRequest) -> Result<Verdict<'r>, Error> {
        if request.events.is_empty() {
            return Err(Error::EmptyAppend {
                stream: request.stream.clone(),
            });
        }
        Ok(Verdict {
            request,
            stored: Vec::with_capacity(request.events.len()),
            first_stored: None,
            first_new: None,
            seen: HashSet::new(),
        })
    }

    /// Takes the next event of the request in order, with where its id is stored (if it is)
    /// and whether the stored event is this one (same stream and payload). An error is the
    /// request's final answer.
    pub fn see(&mut self, event_id: Uuid, stored: Option<(Position, bool)>) -> Result<(), Error> {
        let reused = || Error::EventIdReused {
            event_id,
            stream: self.request.stream.clone(),
        };
        match stored {
            Some((_, false)) => return Err(reused()),
            Some((position, true)) => {
                self.stored.push(position);
                self.first_stored.get_or_insert(event_id);
            }
            None => {
                // One new event id named twice in one request would be two events under one id.
                if self.request.events.len() > 1 && !self.seen.insert(event_id) {
                    return Err(reused());
                }
                self.first_new.get_or_insert(event_id);
            }
        }
        Ok(())
    }

    /// After every event was seen, with the stream at version `current`: the answer to give
    /// without writing (a duplicate or a refusal), or `None` when the events are to be written.
    pub fn finish(self, current: Version) -> Option<Result<Appended, Error>> {
        let stream = || self.request.stream.clone();
        if self.first_new.is_none() {
            return Some(Ok(Appended {
                positions: self.stored,
                version: current,
                duplicate: true,
            }));
        }
        if let Some(event_id) = self.first_stored {
            return Some(Err(Error::PartialDuplicate {
                event_id,
                stream: stream(),
            }));
        }
        match self.request.expected_version {
            ExpectedVersion::Exact(expected) if expected != current => Some(Err(Error::Conflict {
                stream: stream(),
                expected,
                actual: current,
            })),
            _ => None,
        }
    }
}

/// The streams refused so far in one `append_batch` call (see the module's documentation).
#[derive(Default)]
pub struct Chain {
    refused: HashSet<String>,
}

impl Chain {
    /// The refusal `request` gets because an earlier request of its stream in the same call was
    /// refused, with the stream at version `current`; `None` when it is to be decided as usual.
    pub fn refusal(&self, request: &AppendRequest, current: Version) -> Option<Error> {
        match request.expected_version {
            ExpectedVersion::Exact(expected) if self.refused.contains(&request.stream) => {
                Some(Error::Conflict {
                    stream: request.stream.clone(),
                    expected,
                    actual: current,
                })
            }
            _ => None,
        }
    }

    /// Notes the answer a request got.
    pub fn record(&mut self, request: &AppendRequest, answer: &Result<Appended, Error>) {
        // An empty request stores nothing whatever its answer: no later request relies on it.
        let relied_on = !matches!(answer, Ok(_) | Err(Error::EmptyAppend { .. }));
        if relied_on && !self.refused.contains(&request.stream) {
            self.refused.insert(request.stream.clone());
        }
    }
}
