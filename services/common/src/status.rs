//! The one place where an error becomes a gRPC status. Handlers return [`ServiceError`]; the
//! code follows from what went wrong, the message names the field, value or rule, and the
//! short reason (`invalid-field`, a rule name, `permission-denied`, …) travels in the
//! `gryning-reason` metadata entry so clients can branch on it without parsing text.

use gryning_domain::Rule;
use gryning_recording::Rejection;
use tonic::{Code, Status};

use crate::auth;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Access(#[from] auth::Error),
    /// A request field outside the event (a table name, a read limit). The message shows a
    /// short, masked prefix of the value, as for event fields (`gryning_domain::echo`).
    #[error("field {field}: {problem} (value {shown:?})", shown = gryning_domain::echo(.value))]
    InvalidArgument {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error(transparent)]
    Store(#[from] gryning_store::Error),
    #[error(transparent)]
    Projections(#[from] gryning_projections::Error),
    #[error("the server is shutting down; retry against another instance or after restart")]
    ShuttingDown,
    /// A `Watch` or `Subscribe` client left its stream's buffer full for the stall timeout.
    #[error(
        "the client accepted no message of this stream for {timeout:?} (setting stalled_stream_timeout) while {buffered} messages waited: the stream ends after the messages before this status; read faster, or open it again from the last position received"
    )]
    StreamStalled {
        timeout: std::time::Duration,
        buffered: usize,
    },
    /// A stored event that cannot be read back. Events are validated on the way in, so this is
    /// corruption of the store, reported rather than skipped.
    #[error("stored event at position {position} cannot be decoded: {message}")]
    StoredEventUnreadable { position: u64, message: String },
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

impl From<gryning_domain::Error> for ServiceError {
    fn from(e: gryning_domain::Error) -> ServiceError {
        ServiceError::Rejected(Rejection::Invalid(e))
    }
}

impl ServiceError {
    /// The gRPC code and the short reason.
    pub fn classify(&self) -> (Code, &'static str) {
        match self {
            ServiceError::Rejected(rejection) => rejection_code(rejection),
            ServiceError::Access(e) => match e {
                auth::Error::MissingToken
                | auth::Error::MalformedHeader(_)
                | auth::Error::UnknownToken => (Code::Unauthenticated, "unauthenticated"),
                auth::Error::RpcDenied { .. } | auth::Error::EventDenied { .. } => {
                    (Code::PermissionDenied, "permission-denied")
                }
            },
            ServiceError::InvalidArgument { .. } => (Code::InvalidArgument, "invalid-field"),
            ServiceError::Store(gryning_store::Error::Conflict { .. }) => {
                (Code::Aborted, "conflict")
            }
            ServiceError::Store(_)
            | ServiceError::Projections(gryning_projections::Error::Store(_)) => {
                (Code::Unavailable, "store-unavailable")
            }
            ServiceError::Projections(_) => (Code::Internal, "projections"),
            ServiceError::ShuttingDown => (Code::Unavailable, "shutting-down"),
            // The server's resource for this stream, its bounded buffer, is used up.
            ServiceError::StreamStalled { .. } => (Code::ResourceExhausted, "stream-stalled"),
            ServiceError::StoredEventUnreadable { .. } => {
                (Code::DataLoss, "stored-event-unreadable")
            }
            ServiceError::Publish(e) => {
                use crate::publish::PublishError as P;
                use gryning_projections::publication::ReadError as R;
                match e {
                    P::Quarter(_) => (Code::InvalidArgument, "invalid-field"),
                    P::NotEnded { .. } => (Code::FailedPrecondition, "quarter-not-ended"),
                    P::Read(R::NoPublication { .. }) => (Code::NotFound, "no-publication"),
                    P::Read(R::NoRevision { .. }) => (Code::NotFound, "no-such-revision"),
                    P::Read(R::Projections(gryning_projections::Error::Store(_))) => {
                        (Code::Unavailable, "store-unavailable")
                    }
                    P::Read(R::Projections(_)) => (Code::Internal, "projections"),
                    P::Rejected(rejection) => rejection_code(rejection),
                    P::Contended { .. } => (Code::Aborted, "conflict"),
                }
            }
        }
    }

    /// The short reason alone (for per-event rejections inside a bulk append).
    pub fn reason(&self) -> &'static str {
        self.classify().1
    }
}

/// The gRPC code and short reason of a rejected event.
fn rejection_code(rejection: &Rejection) -> (Code, &'static str) {
    match rejection {
        Rejection::Invalid(gryning_domain::Error::InvalidField { .. }) => {
            (Code::InvalidArgument, rejection.reason())
        }
        // The case's stream has no CaseOpened: the case does not exist.
        Rejection::Invalid(gryning_domain::Error::Lifecycle {
            rule: Rule::CaseMustBeOpened,
            ..
        }) => (Code::NotFound, rejection.reason()),
        Rejection::Invalid(gryning_domain::Error::Lifecycle { .. }) => {
            (Code::FailedPrecondition, rejection.reason())
        }
        Rejection::EventIdReused { .. } => (Code::AlreadyExists, rejection.reason()),
        Rejection::Conflict { .. } => (Code::Aborted, rejection.reason()),
        Rejection::Store(_) => (Code::Unavailable, rejection.reason()),
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let (code, reason) = e.classify();
        crate::metrics::global().rejected(reason);
        if matches!(code, Code::Internal | Code::Unavailable | Code::DataLoss) {
            tracing::warn!(error = %e, reason, "request failed");
        }
        let mut status = Status::new(code, e.to_string());
        if let Ok(value) = reason.parse() {
            status.metadata_mut().insert("gryning-reason", value);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gryning_domain::Error as DomainError;

    #[test]
    fn codes_follow_what_went_wrong() {
        let check = |e: ServiceError, code: Code, reason: &str| {
            let status = Status::from(e);
            assert_eq!(status.code(), code, "{}", status.message());
            assert_eq!(
                status
                    .metadata()
                    .get("gryning-reason")
                    .unwrap()
                    .to_str()
                    .unwrap(),
                reason
            );
        };
        check(
            DomainError::invalid("crime_reported.crime_code", "12", "must be four digits").into(),
            Code::InvalidArgument,
            "invalid-field",
        );
        check(
            DomainError::lifecycle(Rule::CaseMustBeOpened, "case_id", "x", "no such case").into(),
            Code::NotFound,
            "case-must-be-opened",
        );
        check(
            DomainError::lifecycle(Rule::CaseMustBeReferred, "case_id", "x", "not referred").into(),
            Code::FailedPrecondition,
            "case-must-be-referred",
        );
        check(
            Rejection::Conflict {
                stream: "case-x".into(),
            }
            .into(),
            Code::Aborted,
            "conflict",
        );
        check(
            Rejection::Store(gryning_store::Error::Unavailable("disk".into())).into(),
            Code::Unavailable,
            "store-unavailable",
        );
        check(
            auth::Error::UnknownToken.into(),
            Code::Unauthenticated,
            "unauthenticated",
        );
        check(
            auth::Error::RpcDenied {
                principal: "p".into(),
                role: "analyst",
                rpc: auth::Rpc::Read,
            }
            .into(),
            Code::PermissionDenied,
            "permission-denied",
        );
        check(
            ServiceError::StreamStalled {
                timeout: std::time::Duration::from_secs(30),
                buffered: 256,
            },
            Code::ResourceExhausted,
            "stream-stalled",
        );
        check(
            ServiceError::StoredEventUnreadable {
                position: 7,
                message: "invalid wire type".into(),
            },
            Code::DataLoss,
            "stored-event-unreadable",
        );
    }

    /// Whether `line` builds a status or picks a code: `Status::new`, `Status::with_…`,
    /// `Status::internal(…)` and the like, or a `Code::…` value. Reading a received status's
    /// code (`status.code()`, a `match` on `tonic::Code` in a client) is allowed.
    fn picks_a_code(line: &str) -> bool {
        let code = line.trim_start();
        if code.starts_with("//") {
            return false;
        }
        let builds_status = line.match_indices("Status::").any(|(i, _)| {
            let rest = &line[i + "Status::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let preceded_by_ident = line[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            !preceded_by_ident
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name != "from"
        });
        let names_code = line.match_indices("Code::").any(|(i, _)| {
            let preceded_by_ident = line[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            // `tonic::Code::X` or a bare `Code::X`, not `ExitCode::X` or `StatusCode::X`, and
            // not a `match` arm's pattern (a client branching on a received code).
            !preceded_by_ident && !line[i..].contains("=>")
        });
        builds_status || names_code
    }

    #[test]
    fn only_this_file_picks_status_codes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let this = root.join("services/common/src/status.rs");
        let mut offenders = Vec::new();
        let mut scanned = 0;
        let mut stack = vec![root.join("services"), root.join("crates")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    // Production code only: a test's fake server may answer any status.
                    if !matches!(
                        path.file_name().and_then(|n| n.to_str()),
                        Some("tests" | "target")
                    ) {
                        stack.push(path);
                    }
                    continue;
                }
                let is_src = path.components().any(|c| c.as_os_str() == "src");
                if !is_src || path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                if path == this {
                    continue;
                }
                scanned += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                // A module's unit tests may assert on codes.
                let production = text.split("#[cfg(test)]").next().unwrap_or_default();
                for (n, line) in production.lines().enumerate() {
                    if picks_a_code(line) {
                        offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            scanned > 20,
            "scanned only {scanned} files under {}",
            root.display()
        );
        assert!(
            offenders.is_empty(),
            "only services/common/src/status.rs may pick a gRPC status code; return a \
             ServiceError instead:\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn the_scan_sees_status_constructors() {
        assert!(picks_a_code(r#"Status::data_loss(format!("x"))"#));
        assert!(picks_a_code("tonic::Status::new(tonic::Code::Internal, m)"));
        assert!(picks_a_code("let c = Code::Unavailable;"));
        assert!(!picks_a_code("Status::from(e)"));
        assert!(!picks_a_code("std::process::ExitCode::SUCCESS"));
        assert!(!picks_a_code("ServingStatus::Serving"));
        assert!(!picks_a_code("// Status::internal is built in status.rs"));
        assert!(!picks_a_code(
            "tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => refused(s),"
        ));
    }
}
