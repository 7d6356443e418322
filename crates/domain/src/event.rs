//! The domain's view of a recorded fact. These types mirror `proto/gryning/v1/events.proto`
//! but hold parsed values (UUIDs, dates, codes, enums without their UNSPECIFIED value), so
//! everything past the edge works with values that are already known to be well-formed.

use std::fmt;

use uuid::Uuid;

use crate::{Date, Quarter};

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

/// Which stream an event belongs to: a case, a client, or a quarter's publications. The stream
/// is named by the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Case(Uuid),
    Client(Uuid),
    /// The publications of one quarter (`TablesPublished`), revision 1, 2, … in stream order.
    Publication(Quarter),
    /// The runs of `gryning retain` (`StreamsErased`), in stream `retention`.
    Retention,
}

/// The stream that holds the runs of `gryning retain`.
pub const RETENTION_STREAM: &str = "retention";

impl Subject {
    /// The case's or the client's UUID; the nil UUID for a publication, which has none.
    pub fn id(self) -> Uuid {
        match self {
            Subject::Case(id) | Subject::Client(id) => id,
            Subject::Publication(_) | Subject::Retention => Uuid::nil(),
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
        if name == RETENTION_STREAM {
            return Some(Subject::Retention);
        }
        if let Some(quarter) = name.strip_prefix("publication-") {
            return Quarter::parse(quarter).ok().map(Subject::Publication);
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
            Subject::Publication(quarter) => write!(f, "publication-{quarter}"),
            Subject::Retention => f.write_str(RETENTION_STREAM),
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
    /// A quarter's tables as computed and recorded once, never changed (boxed: it is large and
    /// rare).
    TablesPublished(Box<Publication>),
    /// A run of `gryning retain`: what the erased streams had added to the tables, as counts
    /// (boxed: large and rare).
    StreamsErased(Box<Erasure>),
}

/// A run of `gryning retain` (`StreamsErased` in the proto): who erased how many streams, and
/// their contribution to every table, as counts only: no stream or event id, no date finer than
/// a quarter (lead times as day counts, as the tables keep them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    /// 1, 2, …: the event's version in stream `retention`.
    pub run: u32,
    /// RFC 3339 with the Europe/Stockholm offset.
    pub erased_at: String,
    pub principal: String,
    /// The limit as given (`5y`, `18m`, `400d`).
    pub older_than: String,
    /// Streams whose last event is dated (and recorded) before this date were erased.
    pub cutoff: Option<Date>,
    pub cases: u64,
    pub clients: u64,
    pub events: u64,
    /// The erased events' first and last quarter.
    pub span: Option<(Quarter, Quarter)>,
    pub cases_opened: Vec<ErasedCases>,
    pub referrals: Vec<ErasedReferrals>,
    pub crimes: Vec<ErasedCrimes>,
    pub care: Vec<ErasedCare>,
    pub contract_care: Vec<ErasedContractCare>,
    pub notifications: Vec<ErasedNotifications>,
    pub support: Vec<ErasedSupport>,
}

impl Erasure {
    /// Crimes of every shape together.
    pub fn crime_count(&self) -> u64 {
        self.crimes.iter().map(|c| c.count).sum()
    }
}

/// Cases opened in a quarter, by region and final lead code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedCases {
    pub quarter: Quarter,
    pub police_region: String,
    pub lead_crime_code: CrimeCode,
    pub count: u64,
}

/// Distinct cases referred in a quarter; `first_in_year`: their first referral of that year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedReferrals {
    pub quarter: Quarter,
    pub police_region: String,
    pub lead_crime_code: CrimeCode,
    pub first_in_year: bool,
    pub count: u64,
}

/// A crime's final outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrimeOutcome {
    Undecided,
    Closed,
    NotCleared,
    Cleared,
}

/// Crimes of one shape (see the proto's `ErasedCrimes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedCrimes {
    pub reported_quarter: Quarter,
    pub police_region: String,
    pub crime_code: CrimeCode,
    pub victim_gender: Gender,
    pub outcome: CrimeOutcome,
    /// `None` when undecided.
    pub decided_quarter: Option<Quarter>,
    pub days_to_referral: Option<i32>,
    pub days_to_decision: Option<i32>,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedCare {
    pub quarter: Quarter,
    pub proposed: u64,
    pub started: u64,
    pub completed: u64,
    pub discontinued: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedContractCare {
    pub quarter: Quarter,
    pub police_region: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedNotifications {
    pub quarter: Quarter,
    pub local_police_area: String,
    pub days_from_opening: i32,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedSupport {
    pub quarter: Quarter,
    pub kind: SupportKind,
    pub gender: Gender,
    pub age_group: AgeGroup,
    pub count: u64,
}

/// A publication: every table of the contract for one quarter, as computed at `position`.
/// Counts only, never event-level data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub quarter: Quarter,
    /// 1 for the quarter's first publication, then 2, 3, …: its version in the quarter's stream.
    pub revision: u32,
    /// The store's global position the tables were computed at (every event up to it).
    pub position: u64,
    pub catalogue_version: String,
    /// SHA-256 of the catalogue file's text, lowercase hex.
    pub catalogue_sha256: String,
    /// When the tables were computed: RFC 3339 with the Europe/Stockholm offset.
    pub published_at: String,
    /// Who published: the caller's principal, `gryning up`'s automatic publisher, or
    /// `offline` for `gryning publish` on a data directory.
    pub principal: String,
    pub note: String,
    /// Recorded by `gryning up`'s automatic publisher.
    pub automatic: bool,
    pub tables: Vec<PublishedTable>,
}

/// One published table: which one (name, `code`/`group` or empty for `care`, `quarter` or
/// `year-to-date`), its columns and its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedTable {
    pub name: String,
    pub by: String,
    pub period: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<PublishedCell>>,
}

/// One value of a published table.
#[derive(Clone, Debug)]
pub enum PublishedCell {
    Text(String),
    Int(i64),
    Float(f64),
    Null,
}

impl PartialEq for PublishedCell {
    /// Floats compare by their bits, so a cell equals exactly what was stored.
    fn eq(&self, other: &PublishedCell) -> bool {
        match (self, other) {
            (PublishedCell::Text(a), PublishedCell::Text(b)) => a == b,
            (PublishedCell::Int(a), PublishedCell::Int(b)) => a == b,
            (PublishedCell::Float(a), PublishedCell::Float(b)) => a.to_bits() == b.to_bits(),
            (PublishedCell::Null, PublishedCell::Null) => true,
            _ => false,
        }
    }
}

impl Eq for PublishedCell {}

/// Declares [`EventType`] from one list: each type's name (its proto message, as
/// `stringify!` writes it), its place in [`EventType::ALL`] and whether its subject is a client.
macro_rules! event_types {
    (@client case) => { false };
    (@client client) => { true };
    (@client publication) => { false };
    (@client retention) => { false };
    (@publication publication) => { true };
    (@retention retention) => { true };
    (@retention $other:ident) => { false };
    (@publication $other:ident) => { false };
    ($($variant:ident: $subject:ident),* $(,)?) => {
        /// The type of an event: which [`Body`] it has, without its fields.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType {
            $($variant),*
        }

        impl EventType {
            /// Every event type, in the order of the proto's `Event.body` oneof.
            pub const ALL: [EventType; [$(stringify!($variant)),*].len()] =
                [$(EventType::$variant),*];

            /// The message name in the proto, e.g. `CrimeReported`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(EventType::$variant => stringify!($variant)),*
                }
            }

            /// True for the types whose subject is a client (Kriminalvården and social
            /// services); the others name a case.
            pub const fn is_care(self) -> bool {
                match self {
                    $(EventType::$variant => event_types!(@client $subject)),*
                }
            }

            /// True for the types whose subject is a quarter's publications.
            pub const fn is_publication(self) -> bool {
                match self {
                    $(EventType::$variant => event_types!(@publication $subject)),*
                }
            }

            /// True for the types whose subject is stream `retention`.
            pub const fn is_retention(self) -> bool {
                match self {
                    $(EventType::$variant => event_types!(@retention $subject)),*
                }
            }

            pub fn parse(name: &str) -> Option<EventType> {
                EventType::ALL.into_iter().find(|t| t.name() == name)
            }
        }
    };
}

// The one list of event types. A new type is added here, as a `Body` variant, and in the proto
// (see ARCHITECTURE.md, "Adding an event type").
event_types! {
    CaseOpened: case,
    CrimeReported: case,
    CrimeReclassified: case,
    CaseReclassified: case,
    CaseReferredToProsecutor: case,
    InvestigationClosed: case,
    ProsecutionDecided: case,
    ContractCareProposed: case,
    ChildWelfareNotified: case,
    TreatmentProgrammeStarted: client,
    TreatmentProgrammeEnded: client,
    SupportGranted: client,
    TablesPublished: publication,
    StreamsErased: retention,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Body {
    pub fn event_type(&self) -> EventType {
        match self {
            Body::CaseOpened { .. } => EventType::CaseOpened,
            Body::CrimeReported { .. } => EventType::CrimeReported,
            Body::CrimeReclassified { .. } => EventType::CrimeReclassified,
            Body::CaseReclassified { .. } => EventType::CaseReclassified,
            Body::CaseReferredToProsecutor => EventType::CaseReferredToProsecutor,
            Body::InvestigationClosed { .. } => EventType::InvestigationClosed,
            Body::ProsecutionDecided { .. } => EventType::ProsecutionDecided,
            Body::ContractCareProposed => EventType::ContractCareProposed,
            Body::ChildWelfareNotified => EventType::ChildWelfareNotified,
            Body::TreatmentProgrammeStarted { .. } => EventType::TreatmentProgrammeStarted,
            Body::TreatmentProgrammeEnded { .. } => EventType::TreatmentProgrammeEnded,
            Body::SupportGranted { .. } => EventType::SupportGranted,
            Body::TablesPublished(_) => EventType::TablesPublished,
            Body::StreamsErased(_) => EventType::StreamsErased,
        }
    }

    /// The message name in the proto, e.g. `CrimeReported`; used in errors, logs and metrics.
    pub fn type_name(&self) -> &'static str {
        self.event_type().name()
    }

    /// True for the events whose subject is a client (Kriminalvården and social services).
    pub fn is_care(&self) -> bool {
        self.event_type().is_care()
    }

    /// True for a publication (`TablesPublished`): not case data.
    pub fn is_publication(&self) -> bool {
        self.event_type().is_publication()
    }

    /// True for a run of `gryning retain` (`StreamsErased`): counts, not case data.
    pub fn is_retention(&self) -> bool {
        self.event_type().is_retention()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_are_distinct_and_parse_back() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert_eq!(
            EventType::parse("CrimeReported"),
            Some(EventType::CrimeReported)
        );
        assert_eq!(EventType::parse("crime_reported"), None);
        let care: Vec<EventType> = EventType::ALL.into_iter().filter(|t| t.is_care()).collect();
        assert_eq!(
            care,
            [
                EventType::TreatmentProgrammeStarted,
                EventType::TreatmentProgrammeEnded,
                EventType::SupportGranted
            ]
        );
    }
}
