//! Why an event is rejected. Every rejection names the field and the offending value, and a
//! lifecycle rejection also names the rule, so an integrator can tell what to change.

use std::fmt;

/// A lifecycle rule of docs/contract.md. The names are stable: they appear in error messages,
/// gRPC status details and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `CaseOpened` is the first event of a case, once.
    CaseOpenedOnce,
    /// Every other case event needs an opened case.
    CaseMustBeOpened,
    /// `CrimeReported.crime_id` is new in the case.
    CrimeIdNewInCase,
    /// Reclassification, closure and decision name crimes reported in this case.
    CrimeMustBeReportedInCase,
    /// `ProsecutionDecided` needs the case referred at least once before.
    CaseMustBeReferred,
    /// `TreatmentProgrammeStarted` needs no programme running for the client.
    NoProgrammeRunning,
    /// `TreatmentProgrammeEnded` needs a programme running for the client.
    ProgrammeMustBeRunning,
    /// `TreatmentProgrammeEnded` is not dated before its programme's start.
    ProgrammeEndNotBeforeStart,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::CaseOpenedOnce,
        Rule::CaseMustBeOpened,
        Rule::CrimeIdNewInCase,
        Rule::CrimeMustBeReportedInCase,
        Rule::CaseMustBeReferred,
        Rule::NoProgrammeRunning,
        Rule::ProgrammeMustBeRunning,
        Rule::ProgrammeEndNotBeforeStart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::CaseOpenedOnce => "case-opened-once",
            Rule::CaseMustBeOpened => "case-must-be-opened",
            Rule::CrimeIdNewInCase => "crime-id-new-in-case",
            Rule::CrimeMustBeReportedInCase => "crime-must-be-reported-in-case",
            Rule::CaseMustBeReferred => "case-must-be-referred",
            Rule::NoProgrammeRunning => "no-programme-running",
            Rule::ProgrammeMustBeRunning => "programme-must-be-running",
            Rule::ProgrammeEndNotBeforeStart => "programme-end-not-before-start",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why one event was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A field is missing or malformed, or breaks a rule that needs no stream state.
    #[error("field {field}: {problem} (value {value:?})")]
    InvalidField {
        field: String,
        value: String,
        problem: String,
    },
    /// The event breaks a lifecycle rule given the stream's current state.
    #[error("rule {rule}: {problem} (field {field}, value {value:?})")]
    Lifecycle {
        rule: Rule,
        field: String,
        value: String,
        problem: String,
    },
}

impl Error {
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Error {
        Error::InvalidField {
            field: field.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }

    pub fn lifecycle(
        rule: Rule,
        field: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Error {
        Error::Lifecycle {
            rule,
            field: field.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }

    /// The field the error is about, in proto (snake_case) naming.
    pub fn field(&self) -> &str {
        match self {
            Error::InvalidField { field, .. } | Error::Lifecycle { field, .. } => field,
        }
    }

    /// The short reason used to count rejections: `invalid-field` or the rule's name.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidField { .. } => "invalid-field",
            Error::Lifecycle { rule, .. } => rule.name(),
        }
    }
}
