//! The domain's view of a recorded fact. These types mirror `proto/gryning/v1/events.proto`
//! but hold parsed values (UUIDs, dates, codes, enums without their UNSPECIFIED value), so
//! everything past the edge works with values that are already known to be well-formed.

use std::fmt;

use uuid::Uuid;

use crate::Date;

/// A 4-digit Swedish crime code (brottskod), kept as its number: "0418" is 418.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrimeCode(u16);

impl CrimeCode {
    /// Exactly four ASCII digits.
    pub fn parse(text: &str) -> Option<CrimeCode> {
        let b = text.as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(CrimeCode(
            b.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0')),
        ))
    }

    pub const fn from_number(n: u16) -> Option<CrimeCode> {
        if n < 10_000 {
            Some(CrimeCode(n))
        } else {
            None
        }
    }

    pub const fn number(self) -> u16 {
        self.0
    }
}

impl fmt::Display for CrimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

/// Which stream an event belongs to: a case or a client. The stream is named by the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Case(Uuid),
    Client(Uuid),
}

impl Subject {
    pub fn id(self) -> Uuid {
        match self {
            Subject::Case(id) | Subject::Client(id) => id,
        }
    }

    /// The stream's name in the store: `case-<uuid>` or `client-<uuid>`.
    pub fn stream_name(self) -> String {
        self.to_string()
    }

    /// Parses a stream name as written by [`Subject::stream_name`].
    pub fn parse_stream_name(name: &str) -> Option<Subject> {
        if let Some(id) = name.strip_prefix("case-") {
            return Uuid::try_parse(id).ok().map(Subject::Case);
        }
        name.strip_prefix("client-")
            .and_then(|id| Uuid::try_parse(id).ok())
            .map(Subject::Client)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Case(id) => write!(f, "case-{id}"),
            Subject::Client(id) => write!(f, "client-{id}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gender {
    Female,
    Male,
    Unknown,
}

impl Gender {
    pub const ALL: [Gender; 3] = [Gender::Female, Gender::Male, Gender::Unknown];

    /// The name used in tables: `FEMALE`, `MALE`, `UNKNOWN`.
    pub fn table_name(self) -> &'static str {
        match self {
            Gender::Female => "FEMALE",
            Gender::Male => "MALE",
            Gender::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgeGroup {
    Child,
    Adult,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClosureReason {
    NotACrime,
    InsufficientEvidence,
    NoSuspect,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProsecutionDecision {
    Indictment,
    SummaryPenaltyOrder,
    WaiverOfProsecution,
    NoProsecution,
}

impl ProsecutionDecision {
    /// Indictment, summary penalty order and waiver make a crime person-cleared.
    pub fn clears(self) -> bool {
        !matches!(self, ProsecutionDecision::NoProsecution)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TreatmentOutcome {
    Completed,
    Discontinued,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupportKind {
    ProtectedHousing,
    SupportTalks,
    Other,
}

/// What happened. Case bodies go with [`Subject::Case`], care bodies with [`Subject::Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    CaseOpened {
        lead_crime_code: CrimeCode,
        police_region: String,
        local_police_area: String,
    },
    CrimeReported {
        crime_id: Uuid,
        crime_code: CrimeCode,
        victim_gender: Gender,
        victim_age_group: AgeGroup,
    },
    CrimeReclassified {
        crime_id: Uuid,
        crime_code: CrimeCode,
    },
    CaseReclassified {
        lead_crime_code: CrimeCode,
    },
    CaseReferredToProsecutor,
    InvestigationClosed {
        crime_ids: Vec<Uuid>,
        reason: ClosureReason,
    },
    ProsecutionDecided {
        crime_id: Uuid,
        decision: ProsecutionDecision,
    },
    ContractCareProposed,
    ChildWelfareNotified,
    TreatmentProgrammeStarted {
        programme: String,
    },
    TreatmentProgrammeEnded {
        outcome: TreatmentOutcome,
    },
    SupportGranted {
        kind: SupportKind,
        gender: Gender,
        age_group: AgeGroup,
    },
}

impl Body {
    /// The message name in the proto, e.g. `CrimeReported`; used in errors, logs and metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::CaseOpened { .. } => "CaseOpened",
            Body::CrimeReported { .. } => "CrimeReported",
            Body::CrimeReclassified { .. } => "CrimeReclassified",
            Body::CaseReclassified { .. } => "CaseReclassified",
            Body::CaseReferredToProsecutor => "CaseReferredToProsecutor",
            Body::InvestigationClosed { .. } => "InvestigationClosed",
            Body::ProsecutionDecided { .. } => "ProsecutionDecided",
            Body::ContractCareProposed => "ContractCareProposed",
            Body::ChildWelfareNotified => "ChildWelfareNotified",
            Body::TreatmentProgrammeStarted { .. } => "TreatmentProgrammeStarted",
            Body::TreatmentProgrammeEnded { .. } => "TreatmentProgrammeEnded",
            Body::SupportGranted { .. } => "SupportGranted",
        }
    }

    /// True for the events whose subject is a client (Kriminalvården and social services).
    pub fn is_care(&self) -> bool {
        matches!(
            self,
            Body::TreatmentProgrammeStarted { .. }
                | Body::TreatmentProgrammeEnded { .. }
                | Body::SupportGranted { .. }
        )
    }
}

/// One recorded fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_id: Uuid,
    pub occurred_on: Date,
    pub subject: Subject,
    pub body: Body,
}
