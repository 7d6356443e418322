//! Per-stream lifecycle state: what a case or a client's history allows next. Pure: the caller
//! loads the stream's events from the store, folds them with [`StreamState::apply`], and asks
//! [`StreamState::check`] about the next event. The state is small (ids of the crimes in the
//! case, a referral flag, a running programme's start) so that it can be cached per stream.

use std::collections::HashSet;

use uuid::Uuid;

use crate::{Body, Date, Error, Event, Rule};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StreamState {
    /// No event recorded yet.
    #[default]
    New,
    Case(CaseState),
    Client(ClientState),
    Publication(PublicationState),
}

/// A quarter's publications: how many revisions are recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicationState {
    pub revisions: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseState {
    pub referred: bool,
    pub crimes: HashSet<Uuid>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    /// Start date of the programme running now, if any.
    pub running_since: Option<Date>,
}

impl StreamState {
    /// The state after every event of a stream, in stream order. The events must already have
    /// passed [`StreamState::check`] one by one, as the store holds only such events.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> StreamState {
        let mut state = StreamState::New;
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Whether `event` may come next in this stream, naming the rule it breaks if not.
    pub fn check(&self, event: &Event) -> Result<(), Error> {
        match (self, &event.body) {
            (StreamState::New, Body::TablesPublished(p)) => {
                PublicationState::default().check(p.revision)
            }
            (StreamState::Publication(state), Body::TablesPublished(p)) => state.check(p.revision),
            // Subject and body pairing is a field rule; a mismatch never reaches a stream.
            (StreamState::Publication(_), body) | (_, body @ Body::TablesPublished(_)) => {
                Err(Error::lifecycle(
                    Rule::CaseMustBeOpened,
                    "subject",
                    event.subject.to_string(),
                    format!(
                        "{} does not belong in stream {}",
                        body.type_name(),
                        event.subject
                    ),
                ))
            }
            (StreamState::Client(_) | StreamState::New, body) if body.is_care() => {
                let client = match self {
                    StreamState::Client(c) => c.clone(),
                    _ => ClientState::default(),
                };
                client.check(event)
            }
            (StreamState::New, Body::CaseOpened { .. }) => Ok(()),
            (StreamState::New, body) => Err(Error::lifecycle(
                Rule::CaseMustBeOpened,
                "case_id",
                event.subject.id().to_string(),
                format!(
                    "{} needs an opened case; record CaseOpened first",
                    body.type_name()
                ),
            )),
            (StreamState::Case(case), _) => case.check(event),
            // Subject and body pairing is a field rule; a mismatch never reaches a stream.
            (StreamState::Client(_), body) => Err(Error::lifecycle(
                Rule::CaseMustBeOpened,
                "client_id",
                event.subject.id().to_string(),
                format!(
                    "{} is a case event but this stream is a client",
                    body.type_name()
                ),
            )),
        }
    }

    /// Moves the state past `event`, which must have passed [`StreamState::check`].
    pub fn apply(&mut self, event: &Event) {
        match self {
            StreamState::New if event.body.is_publication() => {
                *self = StreamState::Publication(PublicationState::default())
            }
            StreamState::New if event.body.is_care() => {
                *self = StreamState::Client(ClientState::default())
            }
            StreamState::New => *self = StreamState::Case(CaseState::default()),
            _ => {}
        }
        match self {
            StreamState::Case(case) => case.apply(event),
            StreamState::Client(client) => client.apply(event),
            StreamState::Publication(state) => state.revisions += 1,
            StreamState::New => unreachable!("set above"),
        }
    }
}

impl CaseState {
    fn check(&self, event: &Event) -> Result<(), Error> {
        let must_know = |field: &str, crime_id: &Uuid| {
            if self.crimes.contains(crime_id) {
                Ok(())
            } else {
                Err(Error::lifecycle(
                    Rule::CrimeMustBeReportedInCase,
                    field,
                    crime_id.to_string(),
                    format!(
                        "no crime with this id is reported in case {}",
                        event.subject.id()
                    ),
                ))
            }
        };
        match &event.body {
            Body::CaseOpened { .. } => Err(Error::lifecycle(
                Rule::CaseOpenedOnce,
                "case_id",
                event.subject.id().to_string(),
                "the case is already opened; CaseOpened is its first event, once",
            )),
            Body::CrimeReported { crime_id, .. } if self.crimes.contains(crime_id) => {
                Err(Error::lifecycle(
                    Rule::CrimeIdNewInCase,
                    "crime_reported.crime_id",
                    crime_id.to_string(),
                    "a crime with this id is already reported in the case",
                ))
            }
            Body::CrimeReclassified { crime_id, .. } => {
                must_know("crime_reclassified.crime_id", crime_id)
            }
            Body::InvestigationClosed { crime_ids, .. } => crime_ids
                .iter()
                .try_for_each(|id| must_know("investigation_closed.crime_ids", id)),
            Body::ProsecutionDecided { crime_id, .. } => {
                if !self.referred {
                    return Err(Error::lifecycle(
                        Rule::CaseMustBeReferred,
                        "case_id",
                        event.subject.id().to_string(),
                        "a prosecution decision needs the case referred to the prosecutor first",
                    ));
                }
                must_know("prosecution_decided.crime_id", crime_id)
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, event: &Event) {
        match &event.body {
            Body::CrimeReported { crime_id, .. } => {
                self.crimes.insert(*crime_id);
            }
            Body::CaseReferredToProsecutor => self.referred = true,
            _ => {}
        }
    }
}

impl ClientState {
    fn check(&self, event: &Event) -> Result<(), Error> {
        let client = || event.subject.id().to_string();
        match (&event.body, self.running_since) {
            (Body::TreatmentProgrammeStarted { .. }, Some(since)) => Err(Error::lifecycle(
                Rule::NoProgrammeRunning,
                "client_id",
                client(),
                format!("the client has a programme running since {since}; end it first"),
            )),
            (Body::TreatmentProgrammeEnded { .. }, None) => Err(Error::lifecycle(
                Rule::ProgrammeMustBeRunning,
                "client_id",
                client(),
                "the client has no programme running",
            )),
            (Body::TreatmentProgrammeEnded { .. }, Some(since)) if event.occurred_on < since => {
                Err(Error::lifecycle(
                    Rule::ProgrammeEndNotBeforeStart,
                    "occurred_on",
                    event.occurred_on.to_string(),
                    format!(
                        "the programme started on {since}; its end cannot be dated before that"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, event: &Event) {
        match &event.body {
            Body::TreatmentProgrammeStarted { .. } => self.running_since = Some(event.occurred_on),
            Body::TreatmentProgrammeEnded { .. } => self.running_since = None,
            _ => {}
        }
    }
}

impl PublicationState {
    fn check(&self, revision: u32) -> Result<(), Error> {
        let next = self.revisions + 1;
        if revision == next {
            return Ok(());
        }
        Err(Error::lifecycle(
            Rule::RevisionMustBeNext,
            "tables_published.revision",
            revision.to_string(),
            format!(
                "the quarter has {} revision(s) recorded, so the next is revision {next}; a publication is never overwritten",
                self.revisions
            ),
        ))
    }
}
