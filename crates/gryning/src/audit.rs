//! `gryning audit`: who recorded what and when, offline from the data directory (and the
//! credentials file's change journal) or through `Insight.Audit` with `--server`; the same
//! listing either way (`gryning_service_common::audit`), as text, JSON or CSV.

use clap::Args;
use gryning_projections::{Cell, Table};
use gryning_proto::pb;

use crate::Format;

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// Only what this principal recorded, and the changes of its credentials.
    #[arg(long)]
    principal: Option<String>,
    /// Only entries recorded at or after this: an RFC 3339 instant, or a date (from the start
    /// of that day in Stockholm).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only entries recorded at or before this: an RFC 3339 instant, or a date (to the end of
    /// that day in Stockholm).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only events of this type (CaseOpened, TablesPublished, …), or CredentialsChanged.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_type: Option<String>,
    /// Only the events of this stream (case-UUID, client-UUID, publication-YYYY-QN).
    #[arg(long, value_name = "ID")]
    stream: Option<String>,
    /// At most this many entries, the earliest (default 1000, at most 100000).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    limit: u32,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

impl AuditArgs {
    pub(crate) fn to_pb(&self) -> pb::AuditRequest {
        pb::AuditRequest {
            principal: self.principal.clone().unwrap_or_default(),
            since: self.since.clone().unwrap_or_default(),
            until: self.until.clone().unwrap_or_default(),
            event_type: self.event_type.clone().unwrap_or_default(),
            stream: self.stream.clone().unwrap_or_default(),
            limit: self.limit,
        }
    }
}

fn table(reply: &pb::AuditResponse) -> Table {
    let text = |s: &str| {
        if s.is_empty() {
            Cell::Null
        } else {
            Cell::Text(s.to_string())
        }
    };
    Table {
        name: "audit".to_string(),
        columns: vec![
            "at",
            "principal",
            "agency",
            "scope",
            "event_type",
            "stream",
            "event_id",
            "position",
            "occurred_on",
            "detail",
        ],
        rows: reply
            .entries
            .iter()
            .map(|e| {
                vec![
                    text(&e.at),
                    text(&e.principal),
                    text(&e.agency),
                    text(&e.scope),
                    text(&e.event_type),
                    text(&e.stream),
                    text(&e.event_id),
                    if e.position == 0 {
                        Cell::Null
                    } else {
                        Cell::Int(e.position as i64)
                    },
                    text(&e.occurred_on),
                    text(&e.detail),
                ]
            })
            .collect(),
    }
}

/// The listing as text (a table and a summary line), JSON (an array of entries) or CSV.
pub(crate) fn render(reply: &pb::AuditResponse, format: Format) -> String {
    let t = table(reply);
    match format {
        Format::Csv => t.to_csv(),
        Format::Json => t.to_json(),
        Format::Text => {
            let mut out = t.to_text();
            out.push_str(&format!(
                "{} entries up to position {}{}\n",
                reply.entries.len(),
                reply.position,
                if reply.omitted > 0 {
                    format!("; {} more left out by --limit", reply.omitted)
                } else {
                    String::new()
                }
            ));
            out
        }
    }
}

/// Warns on standard error when entries were left out (JSON and CSV carry the entries only).
pub(crate) fn warn_omitted(reply: &pb::AuditResponse, format: Format) {
    if reply.omitted > 0 && format != Format::Text {
        eprintln!(
            "note: {} more entries matched; raise --limit or narrow the listing",
            reply.omitted
        );
    }
}
