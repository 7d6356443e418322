//! Why an event is rejected. Every rejection names the field and a short prefix of the offending
//! value, and a lifecycle rejection also names the rule, so an integrator can tell what to change.
//!
//! Messages end up in logs and in gRPC status messages, so the value is never echoed whole: at
//! most [`ECHO_CHARS`] characters of it, with every digit masked when a personal identity
//! number is anywhere near (see [`echo`]). A 1 MB value therefore costs a short message, and an
//! identity number sent by mistake is not written to a log.

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
    /// `TablesPublished.revision` is one more than the quarter's last revision.
    RevisionMustBeNext,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::CaseOpenedOnce,
        Rule::CaseMustBeOpened,
        Rule::CrimeIdNewInCase,
        Rule::CrimeMustBeReportedInCase,
        Rule::CaseMustBeReferred,
        Rule::NoProgrammeRunning,
        Rule::ProgrammeMustBeRunning,
        Rule::ProgrammeEndNotBeforeStart,
        Rule::RevisionMustBeNext,
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
            Rule::RevisionMustBeNext => "revision-must-be-next",
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

/// Characters of an offending value that an error message echoes.
/// Enough for a UUID (36), short enough that no value fills a log line or a status message.
pub const ECHO_CHARS: usize = 40;

/// What an error message may show of a value from a request: its first [`ECHO_CHARS`]
/// characters (then `…` when it was longer), with every digit written `#` if a personal
/// identity or coordination number is found in the first 64 characters (so that one cut by
/// the prefix is masked too). Control characters are shown escaped by the messages' `{:?}`.
pub fn echo(value: &str) -> String {
    let window: String = value.chars().take(64).collect();
    let prefix: String = value.chars().take(ECHO_CHARS).collect();
    // The prefix is checked too: cutting a longer digit run can leave a number standing at
    // its end (`…20470988 4904` of `…20470988 490483`).
    let mask = crate::personnummer::find(&window).is_some()
        || crate::personnummer::find(&prefix).is_some();
    let mut shown: String = if mask {
        prefix
            .chars()
            .map(|c| if c.is_numeric() { '#' } else { c })
            .collect()
    } else {
        prefix
    };
    if value.chars().nth(ECHO_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

impl Error {
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Error {
        Error::InvalidField {
            field: field.into(),
            value: echo(&value.into()),
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
            value: echo(&value.into()),
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

#[cfg(test)]
mod tests {
    use super::{echo, Error, ECHO_CHARS};

    #[test]
    fn echoes_a_short_prefix_of_a_long_value() {
        let huge = "x".repeat(1 << 20);
        let e = Error::invalid("event_id", huge, "must be a UUID");
        assert_eq!(
            e.to_string().len(),
            "field event_id: must be a UUID (value \"\")".len() + ECHO_CHARS + '…'.len_utf8()
        );
        assert_eq!(echo("0418"), "0418");
        assert_eq!(echo(&"ab".repeat(30)), format!("{}…", "ab".repeat(20)));
        let uuid = "6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d";
        assert_eq!(echo(uuid), uuid, "a UUID is echoed whole");
    }

    #[test]
    fn masks_identity_numbers_even_when_cut_by_the_prefix() {
        // Test numbers with a correct Luhn digit, made up for the tests.
        assert_eq!(echo("811218-9876"), "######-####");
        assert_eq!(echo("811218\u{2013}9876"), "######\u{2013}####");
        let cut = format!("{}811218-9876", "a".repeat(ECHO_CHARS - 4));
        assert!(!echo(&cut).contains("8112"), "{}", echo(&cut));
        let e = Error::invalid("case_id", "19811218-9876", "must be a UUID");
        assert!(!e.to_string().contains("9876"), "{e}");
        // Found by the fuzz target: the prefix of a longer digit run that is a number itself.
        let value = "cgb u  h jl x  g  mo  x mcu20470988 490483jn  md";
        assert_eq!(echo(value), "cgb u  h jl x  g  mo  x mcu######## ####…");
        // A value without an identity number keeps its digits.
        assert_eq!(echo("2020-13-01"), "2020-13-01");
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let e = Error::invalid("case_opened.police_region", "a\u{0}b\u{1b}[31m\r\n", "x");
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
}
