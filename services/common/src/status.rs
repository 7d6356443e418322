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
    /// A request field outside the event (a table name, a read limit).
    #[error("field {field}: {problem} (value {value:?})")]
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
            ServiceError::Rejected(rejection) => match rejection {
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
            },
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
        }
    }

    /// The short reason alone (for per-event rejections inside a bulk append).
    pub fn reason(&self) -> &'static str {
        self.classify().1
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let (code, reason) = e.classify();
        crate::metrics::global().rejected(reason);
        if matches!(code, Code::Internal | Code::Unavailable) {
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
    }
}
