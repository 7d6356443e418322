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
    /// A table asked for a region that is neither a police region nor one of the stored cases'.
    #[error(transparent)]
    UnknownRegion(#[from] gryning_domain::UnknownRegion),
    /// A table asked for a classification the catalogue does not hold (the message lists them).
    #[error("field classification: {0}")]
    UnknownClassification(#[from] gryning_domain::catalogue::UnknownClassification),
    /// A field whose value is right alone but not together with another field's.
    #[error("field {field}: {problem} (value {shown:?})", shown = gryning_domain::echo(.value))]
    Combination {
        field: &'static str,
        value: String,
        problem: String,
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
    /// An `Explain` request that names no cell (the error names the field).
    #[error(transparent)]
    Explain(#[from] gryning_projections::explain::Error),
    /// A request message larger than its limit (`what`: "the request message", "event #3").
    #[error(
        "{rpc}: {what} is {}, more than {setting} ({limit} bytes){}",
        size(.found),
        before_text(.before)
    )]
    MessageTooLarge {
        rpc: String,
        what: String,
        found: Option<u64>,
        limit: u64,
        setting: &'static str,
        /// In a bulk `Append`: what became of the events before it.
        before: Option<Box<AppendedBefore>>,
    },
    /// A repeated request field with more items than its limit.
    #[error("field {field}: names {found} items, more than {setting} ({limit}); send the rest in another event")]
    TooManyItems {
        field: &'static str,
        found: u64,
        limit: u64,
        setting: &'static str,
    },
    #[error(
        "EventLog.Append: a call may send at most max_append_events ({limit}) events; {before}"
    )]
    TooManyEvents { limit: u64, before: AppendedBefore },
    #[error(
        "{rpc}: the server is serving max_concurrent_calls ({limit}) calls already; retry shortly"
    )]
    TooManyCalls { rpc: String, limit: u64 },
    #[error(
        "{rpc}: principal {principal} (role {role}) is over its rate limit \
         (rate_limit_per_second {per_second}, rate_limit_burst {burst}); retry after {} ms \
         (metadata retry-after-ms)",
        retry_after_ms(.retry_after)
    )]
    RateLimited {
        rpc: String,
        principal: String,
        role: &'static str,
        per_second: u64,
        burst: u64,
        retry_after: std::time::Duration,
    },
    #[error(
        "{rpc}: the call's deadline of {} ms ({}) passed before its reply; {}",
        .deadline.as_millis(),
        deadline_source(.from_client),
        if *.records {
            "what it was recording may or may not be stored: retry with the same event ids \
             (events already stored then answer as duplicates)"
        } else {
            "it records nothing, so it may be sent again as it is, or with a longer deadline"
        }
    )]
    DeadlineExceeded {
        rpc: String,
        deadline: std::time::Duration,
        from_client: bool,
        /// Whether the RPC records events (see [`crate::Rpc::records`]).
        records: bool,
    },
}

/// What a bulk `Append` stopped at a limit did with the events before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedBefore {
    /// Events read before the one at the limit (they are its index).
    pub events: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl std::fmt::Display for AppendedBefore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} events before it were recorded as in a call that ended there ({} stored, \
             {} duplicates, {} rejected) and no later event was read; send the rest in a new \
             call (events already stored count as duplicates)",
            self.events, self.accepted, self.duplicates, self.rejected
        )
    }
}

fn size(found: &Option<u64>) -> String {
    match found {
        Some(n) => format!("{n} bytes"),
        None => "larger".to_string(),
    }
}

fn before_text(before: &Option<Box<AppendedBefore>>) -> String {
    match before {
        Some(b) => format!("; {b}"),
        None => String::new(),
    }
}

fn deadline_source(from_client: &bool) -> &'static str {
    if *from_client {
        "the client's grpc-timeout"
    } else {
        "request_deadline_ms"
    }
}

/// A retry hint in whole milliseconds, rounded up (never 0: waiting it is always enough).
pub fn retry_after_ms(wait: &std::time::Duration) -> u128 {
    wait.as_nanos().div_ceil(1_000_000).max(1)
}

/// Whether a refusal names a bad request field (INVALID_ARGUMENT).
pub fn is_invalid_argument(status: &Status) -> bool {
    status.code() == Code::InvalidArgument
}

/// Whether a refusal says there is no such thing (NOT_FOUND: a quarter with no publication).
pub fn is_not_found(status: &Status) -> bool {
    status.code() == Code::NotFound
}

/// Whether `status`, met while reading a request stream, is tonic's refusal of a message over
/// the decoding limit: its codec answers OUT_OF_RANGE, which nothing in gryning does.
pub fn is_too_large(status: &Status) -> bool {
    status.code() == Code::OutOfRange
}

/// The size tonic's refusal names ("… found 70012 bytes, the limit is …").
pub fn found_bytes(message: &str) -> Option<u64> {
    let rest = &message[message.find("found ")? + "found ".len()..];
    rest.split(' ').next()?.parse().ok()
}

/// When a response head is tonic's refusal of an over-large request message (a trailers-only
/// OUT_OF_RANGE), the size it names, if it names one.
pub fn refused_as_too_large(headers: &tonic::codegen::http::HeaderMap) -> Option<Option<u64>> {
    let status = Status::from_header_map(headers)?;
    is_too_large(&status).then(|| found_bytes(status.message()))
}

/// The `google.rpc.RetryInfo` detail of a rate-limit refusal, as `google.rpc.Status` bytes for
/// the `grpc-status-details-bin` trailer (clients with the well-known error types read it).
fn retry_info(code: Code, message: &str, wait: std::time::Duration) -> Vec<u8> {
    use prost::Message as _;
    #[derive(Clone, PartialEq, prost::Message)]
    struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        retry_delay: Option<prost_types::Duration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_types::Any>,
    }
    let delay = prost_types::Duration {
        seconds: wait.as_secs() as i64,
        nanos: wait.subsec_nanos() as i32,
    };
    RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_string(),
            value: RetryInfo {
                retry_delay: Some(delay),
            }
            .encode_to_vec(),
        }],
    }
    .encode_to_vec()
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
                // A scoped principal recording outside its police region or municipality.
                auth::Error::OutOfScope { .. } => (Code::PermissionDenied, "out-of-scope"),
            },
            ServiceError::InvalidArgument { .. }
            | ServiceError::UnknownRegion(_)
            | ServiceError::UnknownClassification(_)
            | ServiceError::Combination { .. }
            | ServiceError::Explain(_) => (Code::InvalidArgument, "invalid-field"),
            ServiceError::Store(gryning_store::Error::Conflict { .. }) => {
                (Code::Aborted, "conflict")
            }
            ServiceError::Store(gryning_store::Error::Erased { .. }) => {
                (Code::FailedPrecondition, "erased")
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
                    P::Quarter { .. } => (Code::InvalidArgument, "invalid-field"),
                    P::NotEnded { .. } => (Code::FailedPrecondition, "quarter-not-ended"),
                    P::Read(R::NoPublication { .. }) => (Code::NotFound, "no-publication"),
                    P::Read(R::NoRevision { .. }) => (Code::NotFound, "no-such-revision"),
                    P::Read(R::NoTable { .. }) => (Code::NotFound, "table-not-published"),
                    P::Read(R::Projections(gryning_projections::Error::Store(_))) => {
                        (Code::Unavailable, "store-unavailable")
                    }
                    P::Read(R::Projections(_)) => (Code::Internal, "projections"),
                    P::Rejected(rejection) => rejection_code(rejection),
                    P::Contended { .. } => (Code::Aborted, "conflict"),
                }
            }
            ServiceError::MessageTooLarge { .. } => (Code::ResourceExhausted, "message-too-large"),
            ServiceError::TooManyItems { .. } => (Code::InvalidArgument, "too-many-items"),
            ServiceError::TooManyEvents { .. } => (Code::ResourceExhausted, "too-many-events"),
            ServiceError::TooManyCalls { .. } => (Code::ResourceExhausted, "too-many-calls"),
            ServiceError::RateLimited { .. } => (Code::ResourceExhausted, "rate-limited"),
            ServiceError::DeadlineExceeded { .. } => (Code::DeadlineExceeded, "deadline-exceeded"),
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
        // The event existed and was erased by retention: it cannot be taken again.
        Rejection::Erased { .. } | Rejection::Store(gryning_store::Error::Erased { .. }) => {
            (Code::FailedPrecondition, "erased")
        }
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
        let message = e.to_string();
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Ok(value) = reason.parse() {
            metadata.insert("gryning-reason", value);
        }
        match e {
            ServiceError::RateLimited { retry_after, .. } => {
                if let Ok(value) = retry_after_ms(&retry_after).to_string().parse() {
                    metadata.insert("retry-after-ms", value);
                }
                let details = retry_info(code, &message, retry_after);
                Status::with_details_and_metadata(code, message, details.into(), metadata)
            }
            _ => Status::with_metadata(code, message, metadata),
        }
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
            gryning_domain::Catalogue::default_catalogue()
                .under("2018.1")
                .unwrap_err()
                .into(),
            Code::InvalidArgument,
            "invalid-field",
        );
        check(
            ServiceError::Combination {
                field: "classification",
                value: "2019.1".into(),
                problem: "not with published".into(),
            },
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
            auth::Error::OutOfScope {
                principal: "p".into(),
                role: "police",
                scope: "police region Polisregion Syd".into(),
                what: "case-x".into(),
                event_id: "e".into(),
            }
            .into(),
            Code::PermissionDenied,
            "out-of-scope",
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

    #[test]
    fn limits_are_resource_exhausted_with_their_reason_and_a_retry_hint() {
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
            status
        };
        let s = check(
            ServiceError::MessageTooLarge {
                rpc: "Police.OpenCase".into(),
                what: "the request message".into(),
                found: Some(70_012),
                limit: 65_536,
                setting: "max_message_bytes",
                before: None,
            },
            Code::ResourceExhausted,
            "message-too-large",
        );
        assert_eq!(
            s.message(),
            "Police.OpenCase: the request message is 70012 bytes, more than max_message_bytes (65536 bytes)"
        );
        check(
            ServiceError::TooManyCalls {
                rpc: "Insight.Status".into(),
                limit: 2,
            },
            Code::ResourceExhausted,
            "too-many-calls",
        );
        let s = check(
            ServiceError::RateLimited {
                rpc: "Police.OpenCase".into(),
                principal: "p".into(),
                role: "police",
                per_second: 1,
                burst: 2,
                retry_after: std::time::Duration::from_micros(733_200),
            },
            Code::ResourceExhausted,
            "rate-limited",
        );
        assert_eq!(
            s.metadata()
                .get("retry-after-ms")
                .unwrap()
                .to_str()
                .unwrap(),
            "734"
        );
        assert!(!s.details().is_empty());
        check(
            ServiceError::DeadlineExceeded {
                rpc: "EventLog.Append".into(),
                deadline: std::time::Duration::from_millis(300),
                from_client: true,
                records: true,
            },
            Code::DeadlineExceeded,
            "deadline-exceeded",
        );
        let read = ServiceError::DeadlineExceeded {
            rpc: "Insight.Explain".into(),
            deadline: std::time::Duration::from_millis(60_000),
            from_client: false,
            records: false,
        }
        .to_string();
        assert!(
            read.contains("records nothing") && !read.contains("event ids"),
            "{read}"
        );
        assert_eq!(retry_after_ms(&std::time::Duration::ZERO), 1);
        assert_eq!(
            found_bytes("Error, decoded message length too large: found 70012 bytes, the limit is: 65536 bytes"),
            Some(70_012)
        );
        assert_eq!(found_bytes("something else"), None);
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
                // The one other place: the request codec answers a body that is not valid
                // protobuf while tonic decodes it, before any service code runs, and
                // gryning-proto sits below this crate (INVALID_ARGUMENT `invalid-field`, in
                // the contract's status table like every other code).
                if path.ends_with("crates/proto/src/codec.rs") {
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
            "only services/common/src/status.rs (and the request codec) may pick a gRPC status \
             code; return a ServiceError instead:\n{}",
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
