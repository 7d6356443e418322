//! The audit trail: who recorded what and when. Events come from the log with the metadata
//! every stored event carries (principal, agency, scope, recorded_at); publications are
//! `TablesPublished` events like any other; the changes of the credentials file come from its
//! change journal ([`crate::credentials::journal_path`]). One function answers
//! `Insight.Audit` and the offline `gryning audit`, so both list the same.

use std::path::Path;

use gryning_domain::{Body, EventType, Subject};
use gryning_proto::pb;
use gryning_store::EventStore;
use jiff::Timestamp;
use prost::Message as _;

use crate::ServiceError;

/// The event type name of credential changes in the listing.
pub const CREDENTIALS_CHANGED: &str = "CredentialsChanged";

/// Entries listed when a request gives no limit, and the most it may ask for.
pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 100_000;

/// Events read from the store per page.
const PAGE: usize = 4_096;

/// What to list, checked.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub principal: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Strictly before.
    pub before: Option<Timestamp>,
    /// An event type name, or [`CREDENTIALS_CHANGED`].
    pub event_type: Option<&'static str>,
    pub stream: Option<String>,
    pub limit: usize,
}

const TIME_RULE: &str = "must be an RFC 3339 instant or a date (2021-01-20T12:00:00+01:00, or 2021-01-20: that whole day in Stockholm)";

/// `text` as an instant; a date is the start of that day in Stockholm, or with `end` the start
/// of the next day.
fn instant(field: &'static str, text: &str, end: bool) -> Result<Timestamp, ServiceError> {
    let bad = || ServiceError::InvalidArgument {
        field,
        value: text.to_string(),
        problem: TIME_RULE,
    };
    if text.len() == 10 {
        let date: jiff::civil::Date = text.parse().map_err(|_| bad())?;
        let day = if end {
            date.tomorrow().map_err(|_| bad())?
        } else {
            date
        };
        let zoned = day
            .to_zoned(gryning_domain::date::stockholm().clone())
            .map_err(|_| bad())?;
        return Ok(zoned.timestamp());
    }
    let at: Timestamp = text.parse().map_err(|_| bad())?;
    if end {
        // Recording times are whole seconds: "at or before" is before the next nanosecond.
        at.checked_add(jiff::SignedDuration::from_nanos(1))
            .map_err(|_| bad())
    } else {
        Ok(at)
    }
}

impl Filter {
    /// The filter of a request, each field checked (INVALID_ARGUMENT naming it).
    pub fn from_request(r: &pb::AuditRequest) -> Result<Filter, ServiceError> {
        let principal = match r.principal.trim() {
            "" => None,
            name => {
                let ok = gryning_domain::personnummer::find(name).is_none()
                    && name.len() <= 64
                    && name.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-' | ':')
                    });
                if !ok {
                    return Err(ServiceError::InvalidArgument {
                        field: "principal",
                        value: name.to_string(),
                        problem: "must be a principal's name: at most 64 letters, digits, '.', '_', '@', '-' or ':', and no personal identity or coordination number",
                    });
                }
                Some(name.to_string())
            }
        };
        let since = match r.since.trim() {
            "" => None,
            text => Some(instant("since", text, false)?),
        };
        let before = match r.until.trim() {
            "" => None,
            text => Some(instant("until", text, true)?),
        };
        let event_type = match r.event_type.trim() {
            "" => None,
            CREDENTIALS_CHANGED => Some(CREDENTIALS_CHANGED),
            text => Some(
                EventType::ALL
                    .into_iter()
                    .find(|t| t.name() == text)
                    .map(|t| t.name())
                    .ok_or_else(|| ServiceError::InvalidArgument {
                        field: "event_type",
                        value: text.to_string(),
                        problem: "must be an event type (CaseOpened, CrimeReported, …, TablesPublished, as the proto's Event.body names them) or CredentialsChanged",
                    })?,
            ),
        };
        let stream = match r.stream.trim() {
            "" => None,
            text => {
                Subject::parse_stream_name(text).ok_or_else(|| ServiceError::InvalidArgument {
                    field: "stream",
                    value: text.to_string(),
                    problem: "must be a stream name: case-UUID, client-UUID or publication-YYYY-QN",
                })?;
                Some(text.to_string())
            }
        };
        let limit = match r.limit as usize {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(ServiceError::InvalidArgument {
                    field: "limit",
                    value: n.to_string(),
                    problem: "must be at most 100000 (0: 1000)",
                })
            }
            n => n,
        };
        Ok(Filter {
            principal,
            since,
            before,
            event_type,
            stream,
            limit,
        })
    }

    fn admits(&self, at: Option<Timestamp>, principal: &str, event_type: &str) -> bool {
        if self.principal.as_deref().is_some_and(|p| p != principal) {
            return false;
        }
        if self.event_type.is_some_and(|t| t != event_type) {
            return false;
        }
        if self.since.is_some() || self.before.is_some() {
            let Some(at) = at else { return false };
            if self.since.is_some_and(|s| at < s) || self.before.is_some_and(|b| at >= b) {
                return false;
            }
        }
        true
    }
}

fn entry_of(event: &gryning_store::RecordedEvent) -> Result<pb::AuditEntry, ServiceError> {
    let decoded = gryning_proto::decode_event(&event.payload).map_err(|e| {
        ServiceError::StoredEventUnreadable {
            position: event.position,
            message: e.to_string(),
        }
    })?;
    let metadata = pb::EventMetadata::decode(event.metadata.as_slice()).unwrap_or_default();
    let detail = match &decoded.body {
        Body::TablesPublished(p) => format!(
            "quarter {} revision {}{}",
            p.quarter,
            p.revision,
            if p.automatic { " (automatic)" } else { "" }
        ),
        Body::StreamsErased(e) => gryning_proto::erasure_summary(e),
        _ => String::new(),
    };
    Ok(pb::AuditEntry {
        at: metadata.recorded_at,
        principal: metadata.principal,
        agency: metadata.agency,
        scope: metadata.scope,
        event_type: decoded.body.type_name().to_string(),
        stream: event.stream.clone(),
        event_id: event.event_id.to_string(),
        position: event.position,
        occurred_on: decoded.occurred_on.to_string(),
        detail,
    })
}

/// The audit listing of `store` (up to its head now) and of the credentials change journal of
/// `credentials` (when there is a file), narrowed by `filter`.
pub async fn audit(
    store: &dyn EventStore,
    credentials: Option<&Path>,
    filter: &Filter,
) -> Result<pb::AuditResponse, ServiceError> {
    let head = store.head().await?;
    // (time, position, entry): sorted by time, untimed first, then by log order.
    let mut found: Vec<(Option<Timestamp>, u64, pb::AuditEntry)> = Vec::new();
    let mut keep = |entry: pb::AuditEntry| {
        let at: Option<Timestamp> = entry.at.parse().ok();
        if filter.admits(at, &entry.principal, &entry.event_type) {
            found.push((at, entry.position, entry));
        }
    };
    if filter.event_type != Some(CREDENTIALS_CHANGED) {
        match &filter.stream {
            Some(stream) => {
                for event in store.read_stream(stream).await? {
                    if event.position <= head {
                        keep(entry_of(&event)?);
                    }
                }
            }
            None => {
                let mut after = 0;
                while after < head {
                    let page = store.read_all(after, PAGE).await?;
                    let Some(last) = page.last() else { break };
                    after = last.position;
                    for event in page.iter().filter(|e| e.position <= head) {
                        keep(entry_of(event)?);
                    }
                }
            }
        }
    }
    if filter.stream.is_none() {
        if let Some(path) = credentials {
            let changes = crate::credentials::read_journal(path).map_err(|e| {
                ServiceError::Store(gryning_store::Error::Unavailable(e.to_string()))
            })?;
            for c in changes {
                keep(pb::AuditEntry {
                    at: c.at,
                    principal: c.principal,
                    agency: c.role,
                    scope: c.scope,
                    event_type: CREDENTIALS_CHANGED.to_string(),
                    detail: format!(
                        "{}; tokens removed {}{}",
                        c.change,
                        c.tokens_removed,
                        if c.by.is_empty() {
                            String::new()
                        } else {
                            format!("; by {}", c.by)
                        }
                    ),
                    ..Default::default()
                });
            }
        }
    }
    found.sort_by_key(|(at, position, _)| (*at, *position));
    let omitted = found.len().saturating_sub(filter.limit) as u64;
    found.truncate(filter.limit);
    Ok(pb::AuditResponse {
        entries: found.into_iter().map(|(_, _, e)| e).collect(),
        omitted,
        position: head,
    })
}
