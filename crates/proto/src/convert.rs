//! Protobuf ↔ domain conversion, done once at the edge. `from_pb` is the first half of
//! validation: it checks every field's form (UUIDs, dates, codes, enum values, required
//! oneofs) and names the offending field in proto (snake_case) terms.

use std::borrow::Cow;

use gryning_domain::{
    AgeGroup, Body, ClosureReason, CrimeCode, Date, Error, Event, Gender, ProsecutionDecision,
    Publication, PublishedCell, PublishedTable, Quarter, Subject, SupportKind, TreatmentOutcome,
    Uuid,
};
use prost::Message;

use crate::pb;

pub(crate) fn uuid(field: &str, text: &str) -> Result<Uuid, Error> {
    if text.is_empty() {
        return Err(Error::invalid(
            field,
            text,
            "is required: a UUID such as 6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d",
        ));
    }
    Uuid::try_parse(text).map_err(|_| {
        Error::invalid(
            field,
            text,
            "must be a UUID such as 6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d",
        )
    })
}

pub(crate) fn code(field: &str, text: &str) -> Result<CrimeCode, Error> {
    CrimeCode::parse(text)
        .ok_or_else(|| Error::invalid(field, text, "must be a crime code of exactly four digits"))
}

/// Reads a required enum field: 0 (UNSPECIFIED) and numbers the proto does not define are errors.
pub(crate) fn required_enum<P, D>(
    field: &str,
    raw: i32,
    map: impl Fn(P) -> Option<D>,
) -> Result<D, Error>
where
    P: TryFrom<i32> + std::fmt::Debug,
{
    match P::try_from(raw) {
        Ok(value) => map(value).ok_or_else(|| {
            Error::invalid(
                field,
                format!("{raw}"),
                "is required: the UNSPECIFIED value is not allowed",
            )
        }),
        Err(_) => Err(Error::invalid(
            field,
            format!("{raw}"),
            "is not a value of this enum",
        )),
    }
}

pub(crate) fn gender(field: &str, raw: i32) -> Result<Gender, Error> {
    required_enum(field, raw, |g: pb::Gender| match g {
        pb::Gender::Unspecified => None,
        pb::Gender::Female => Some(Gender::Female),
        pb::Gender::Male => Some(Gender::Male),
        pb::Gender::Unknown => Some(Gender::Unknown),
    })
}

pub(crate) fn age_group(field: &str, raw: i32) -> Result<AgeGroup, Error> {
    required_enum(field, raw, |a: pb::AgeGroup| match a {
        pb::AgeGroup::Unspecified => None,
        pb::AgeGroup::Child => Some(AgeGroup::Child),
        pb::AgeGroup::Adult => Some(AgeGroup::Adult),
        pb::AgeGroup::Unknown => Some(AgeGroup::Unknown),
    })
}

/// A borrowed view of an encoded or decoded `gryning.v1.Event`: what `from_view` checks and
/// converts. Both the prost-decoded message (`from_pb`) and the direct wire reader used for
/// stored events (`decode_event`) produce it, so field rules exist once.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct View<'a> {
    pub event_id: &'a str,
    pub occurred_on: &'a str,
    pub subject: Option<SubjectView<'a>>,
    pub body: Option<BodyView<'a>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SubjectView<'a> {
    Case(&'a str),
    Client(&'a str),
    Publication(&'a str),
    Retention(&'a str),
}

/// One event body; strings borrowed, enums as their wire numbers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BodyView<'a> {
    /// Rare and nested: the wire reader decodes it with prost, so it is borrowed or owned.
    TablesPublished(Cow<'a, pb::TablesPublished>),
    /// As rare and nested as a publication.
    StreamsErased(Cow<'a, pb::StreamsErased>),
    CaseOpened {
        lead_crime_code: &'a str,
        police_region: &'a str,
        local_police_area: &'a str,
    },
    CrimeReported {
        crime_id: &'a str,
        crime_code: &'a str,
        victim_gender: i32,
        victim_age_group: i32,
    },
    CrimeReclassified {
        crime_id: &'a str,
        crime_code: &'a str,
    },
    CaseReclassified {
        lead_crime_code: &'a str,
    },
    CaseReferredToProsecutor,
    InvestigationClosed {
        crime_ids: Vec<&'a str>,
        reason: i32,
    },
    ProsecutionDecided {
        crime_id: &'a str,
        decision: i32,
    },
    ContractCareProposed,
    ChildWelfareNotified,
    TreatmentProgrammeStarted {
        programme: &'a str,
    },
    TreatmentProgrammeEnded {
        outcome: i32,
    },
    SupportGranted {
        kind: i32,
        gender: i32,
        age_group: i32,
    },
}

fn view(event: &pb::Event) -> View<'_> {
    use pb::event::Body as B;
    View {
        event_id: &event.event_id,
        occurred_on: &event.occurred_on,
        subject: event.subject.as_ref().map(|s| match s {
            pb::event::Subject::CaseId(id) => SubjectView::Case(id),
            pb::event::Subject::ClientId(id) => SubjectView::Client(id),
            pb::event::Subject::PublicationQuarter(q) => SubjectView::Publication(q),
            pb::event::Subject::RetentionStream(r) => SubjectView::Retention(r),
        }),
        body: event.body.as_ref().map(|b| match b {
            B::CaseOpened(b) => BodyView::CaseOpened {
                lead_crime_code: &b.lead_crime_code,
                police_region: &b.police_region,
                local_police_area: &b.local_police_area,
            },
            B::CrimeReported(b) => BodyView::CrimeReported {
                crime_id: &b.crime_id,
                crime_code: &b.crime_code,
                victim_gender: b.victim_gender,
                victim_age_group: b.victim_age_group,
            },
            B::CrimeReclassified(b) => BodyView::CrimeReclassified {
                crime_id: &b.crime_id,
                crime_code: &b.crime_code,
            },
            B::CaseReclassified(b) => BodyView::CaseReclassified {
                lead_crime_code: &b.lead_crime_code,
            },
            B::CaseReferredToProsecutor(_) => BodyView::CaseReferredToProsecutor,
            B::InvestigationClosed(b) => BodyView::InvestigationClosed {
                crime_ids: b.crime_ids.iter().map(String::as_str).collect(),
                reason: b.reason,
            },
            B::ProsecutionDecided(b) => BodyView::ProsecutionDecided {
                crime_id: &b.crime_id,
                decision: b.decision,
            },
            B::ContractCareProposed(_) => BodyView::ContractCareProposed,
            B::ChildWelfareNotified(_) => BodyView::ChildWelfareNotified,
            B::TreatmentProgrammeStarted(b) => BodyView::TreatmentProgrammeStarted {
                programme: &b.programme,
            },
            B::TreatmentProgrammeEnded(b) => {
                BodyView::TreatmentProgrammeEnded { outcome: b.outcome }
            }
            B::SupportGranted(b) => BodyView::SupportGranted {
                kind: b.kind,
                gender: b.gender,
                age_group: b.age_group,
            },
            B::TablesPublished(b) => BodyView::TablesPublished(Cow::Borrowed(b)),
            B::StreamsErased(b) => BodyView::StreamsErased(Cow::Borrowed(b)),
        }),
    }
}

/// Converts a decoded protobuf event into a domain event, checking every field's form.
pub fn from_pb(event: pb::Event) -> Result<Event, Error> {
    from_view(view(&event))
}

pub(crate) fn from_view(event: View<'_>) -> Result<Event, Error> {
    let event_id = uuid("event_id", event.event_id)?;
    let occurred_on = Date::parse(event.occurred_on).ok_or_else(|| {
        Error::invalid(
            "occurred_on",
            event.occurred_on,
            "must be a calendar date written YYYY-MM-DD",
        )
    })?;
    let subject = match event.subject {
        Some(SubjectView::Case(id)) => Subject::Case(uuid("case_id", id)?),
        Some(SubjectView::Client(id)) => Subject::Client(uuid("client_id", id)?),
        Some(SubjectView::Publication(q)) => {
            Subject::Publication(quarter("publication_quarter", q)?)
        }
        Some(SubjectView::Retention(r)) => {
            if r != gryning_domain::RETENTION_STREAM {
                return Err(Error::invalid(
                    "retention_stream",
                    r,
                    "must be \"retention\", the stream of the runs of gryning retain",
                ));
            }
            Subject::Retention
        }
        None => {
            return Err(Error::invalid(
                "subject",
                "",
                "is required: set case_id for case events or client_id for care events",
            ))
        }
    };
    let body = match event.body {
        None => {
            return Err(Error::invalid(
                "body",
                "",
                "is required: exactly one event message such as crimeReported",
            ))
        }
        Some(BodyView::CaseOpened {
            lead_crime_code,
            police_region,
            local_police_area,
        }) => Body::CaseOpened {
            lead_crime_code: code("case_opened.lead_crime_code", lead_crime_code)?,
            police_region: police_region.to_owned(),
            local_police_area: local_police_area.to_owned(),
        },
        Some(BodyView::CrimeReported {
            crime_id,
            crime_code,
            victim_gender,
            victim_age_group,
        }) => Body::CrimeReported {
            crime_id: uuid("crime_reported.crime_id", crime_id)?,
            crime_code: code("crime_reported.crime_code", crime_code)?,
            victim_gender: gender("crime_reported.victim_gender", victim_gender)?,
            victim_age_group: age_group("crime_reported.victim_age_group", victim_age_group)?,
        },
        Some(BodyView::CrimeReclassified {
            crime_id,
            crime_code,
        }) => Body::CrimeReclassified {
            crime_id: uuid("crime_reclassified.crime_id", crime_id)?,
            crime_code: code("crime_reclassified.crime_code", crime_code)?,
        },
        Some(BodyView::CaseReclassified { lead_crime_code }) => Body::CaseReclassified {
            lead_crime_code: code("case_reclassified.lead_crime_code", lead_crime_code)?,
        },
        Some(BodyView::CaseReferredToProsecutor) => Body::CaseReferredToProsecutor,
        Some(BodyView::InvestigationClosed { crime_ids, reason }) => Body::InvestigationClosed {
            crime_ids: crime_ids
                .iter()
                .map(|id| uuid("investigation_closed.crime_ids", id))
                .collect::<Result<_, _>>()?,
            reason: required_enum(
                "investigation_closed.reason",
                reason,
                |r: pb::ClosureReason| match r {
                    pb::ClosureReason::Unspecified => None,
                    pb::ClosureReason::NotACrime => Some(ClosureReason::NotACrime),
                    pb::ClosureReason::InsufficientEvidence => {
                        Some(ClosureReason::InsufficientEvidence)
                    }
                    pb::ClosureReason::NoSuspect => Some(ClosureReason::NoSuspect),
                    pb::ClosureReason::Other => Some(ClosureReason::Other),
                },
            )?,
        },
        Some(BodyView::ProsecutionDecided { crime_id, decision }) => Body::ProsecutionDecided {
            crime_id: uuid("prosecution_decided.crime_id", crime_id)?,
            decision: required_enum(
                "prosecution_decided.decision",
                decision,
                |d: pb::ProsecutionDecision| match d {
                    pb::ProsecutionDecision::Unspecified => None,
                    pb::ProsecutionDecision::Indictment => Some(ProsecutionDecision::Indictment),
                    pb::ProsecutionDecision::SummaryPenaltyOrder => {
                        Some(ProsecutionDecision::SummaryPenaltyOrder)
                    }
                    pb::ProsecutionDecision::WaiverOfProsecution => {
                        Some(ProsecutionDecision::WaiverOfProsecution)
                    }
                    pb::ProsecutionDecision::NoProsecution => {
                        Some(ProsecutionDecision::NoProsecution)
                    }
                },
            )?,
        },
        Some(BodyView::ContractCareProposed) => Body::ContractCareProposed,
        Some(BodyView::ChildWelfareNotified) => Body::ChildWelfareNotified,
        Some(BodyView::TreatmentProgrammeStarted { programme }) => {
            Body::TreatmentProgrammeStarted {
                programme: programme.to_owned(),
            }
        }
        Some(BodyView::TreatmentProgrammeEnded { outcome }) => Body::TreatmentProgrammeEnded {
            outcome: required_enum(
                "treatment_programme_ended.outcome",
                outcome,
                |o: pb::TreatmentOutcome| match o {
                    pb::TreatmentOutcome::Unspecified => None,
                    pb::TreatmentOutcome::Completed => Some(TreatmentOutcome::Completed),
                    pb::TreatmentOutcome::Discontinued => Some(TreatmentOutcome::Discontinued),
                },
            )?,
        },
        Some(BodyView::SupportGranted {
            kind,
            gender: g,
            age_group: a,
        }) => Body::SupportGranted {
            kind: required_enum("support_granted.kind", kind, |k: pb::SupportKind| match k {
                pb::SupportKind::Unspecified => None,
                pb::SupportKind::ProtectedHousing => Some(SupportKind::ProtectedHousing),
                pb::SupportKind::SupportTalks => Some(SupportKind::SupportTalks),
                pb::SupportKind::Other => Some(SupportKind::Other),
            })?,
            gender: gender("support_granted.gender", g)?,
            age_group: age_group("support_granted.age_group", a)?,
        },
        Some(BodyView::TablesPublished(p)) => Body::TablesPublished(Box::new(publication(&p)?)),
        Some(BodyView::StreamsErased(e)) => {
            Body::StreamsErased(Box::new(crate::erasure::from_pb(&e)?))
        }
    };
    Ok(Event {
        event_id,
        occurred_on,
        subject,
        body,
    })
}

pub(crate) fn quarter(field: &str, text: &str) -> Result<Quarter, Error> {
    Quarter::parse(text).map_err(|e| Error::invalid(field, text, e.to_string()))
}

fn publication(p: &pb::TablesPublished) -> Result<Publication, Error> {
    let mut tables = Vec::with_capacity(p.tables.len());
    for (i, t) in p.tables.iter().enumerate() {
        let mut rows = Vec::with_capacity(t.rows.len());
        for (r, row) in t.rows.iter().enumerate() {
            let cells: Vec<PublishedCell> = row
                .cells
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    use pb::published_cell::Value;
                    Ok(match &cell.value {
                        Some(Value::Text(t)) => PublishedCell::Text(t.clone()),
                        Some(Value::Int(n)) => PublishedCell::Int(*n),
                        Some(Value::Float(x)) => PublishedCell::Float(*x),
                        Some(Value::Null(_)) => PublishedCell::Null,
                        None => {
                            return Err(Error::invalid(
                                format!("tables_published.tables[{i}].rows[{r}].cells[{c}]"),
                                "",
                                "is required: text, int, float or null",
                            ))
                        }
                    })
                })
                .collect::<Result<_, Error>>()?;
            rows.push(cells);
        }
        tables.push(PublishedTable {
            name: t.name.clone(),
            by: t.by.clone(),
            period: t.period.clone(),
            columns: t.columns.clone(),
            rows,
        });
    }
    Ok(Publication {
        quarter: quarter("tables_published.quarter", &p.quarter)?,
        revision: p.revision,
        position: p.position,
        catalogue_version: p.catalogue_version.clone(),
        catalogue_sha256: p.catalogue_sha256.clone(),
        published_at: p.published_at.clone(),
        principal: p.principal.clone(),
        note: p.note.clone(),
        automatic: p.automatic,
        tables,
    })
}

/// The protobuf form of a publication body.
pub fn publication_to_pb(p: &Publication) -> pb::TablesPublished {
    use pb::published_cell::Value;
    pb::TablesPublished {
        quarter: p.quarter.to_string(),
        revision: p.revision,
        position: p.position,
        catalogue_version: p.catalogue_version.clone(),
        catalogue_sha256: p.catalogue_sha256.clone(),
        published_at: p.published_at.clone(),
        principal: p.principal.clone(),
        note: p.note.clone(),
        automatic: p.automatic,
        tables: p
            .tables
            .iter()
            .map(|t| pb::PublishedTable {
                name: t.name.clone(),
                by: t.by.clone(),
                period: t.period.clone(),
                columns: t.columns.clone(),
                rows: t
                    .rows
                    .iter()
                    .map(|row| pb::PublishedRow {
                        cells: row
                            .iter()
                            .map(|cell| pb::PublishedCell {
                                value: Some(match cell {
                                    PublishedCell::Text(t) => Value::Text(t.clone()),
                                    PublishedCell::Int(n) => Value::Int(*n),
                                    PublishedCell::Float(x) => Value::Float(*x),
                                    PublishedCell::Null => Value::Null(true),
                                }),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn pb_gender(g: Gender) -> i32 {
    (match g {
        Gender::Female => pb::Gender::Female,
        Gender::Male => pb::Gender::Male,
        Gender::Unknown => pb::Gender::Unknown,
    }) as i32
}

pub(crate) fn pb_age_group(a: AgeGroup) -> i32 {
    (match a {
        AgeGroup::Child => pb::AgeGroup::Child,
        AgeGroup::Adult => pb::AgeGroup::Adult,
        AgeGroup::Unknown => pb::AgeGroup::Unknown,
    }) as i32
}

/// The protobuf form of a domain event.
pub fn to_pb(event: &Event) -> pb::Event {
    use pb::event::Body as B;
    let body = match &event.body {
        Body::CaseOpened {
            lead_crime_code,
            police_region,
            local_police_area,
        } => B::CaseOpened(pb::CaseOpened {
            lead_crime_code: lead_crime_code.to_string(),
            police_region: police_region.clone(),
            local_police_area: local_police_area.clone(),
        }),
        Body::CrimeReported {
            crime_id,
            crime_code,
            victim_gender,
            victim_age_group,
        } => B::CrimeReported(pb::CrimeReported {
            crime_id: crime_id.to_string(),
            crime_code: crime_code.to_string(),
            victim_gender: pb_gender(*victim_gender),
            victim_age_group: pb_age_group(*victim_age_group),
        }),
        Body::CrimeReclassified {
            crime_id,
            crime_code,
        } => B::CrimeReclassified(pb::CrimeReclassified {
            crime_id: crime_id.to_string(),
            crime_code: crime_code.to_string(),
        }),
        Body::CaseReclassified { lead_crime_code } => B::CaseReclassified(pb::CaseReclassified {
            lead_crime_code: lead_crime_code.to_string(),
        }),
        Body::CaseReferredToProsecutor => {
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {})
        }
        Body::InvestigationClosed { crime_ids, reason } => {
            B::InvestigationClosed(pb::InvestigationClosed {
                crime_ids: crime_ids.iter().map(Uuid::to_string).collect(),
                reason: (match reason {
                    ClosureReason::NotACrime => pb::ClosureReason::NotACrime,
                    ClosureReason::InsufficientEvidence => pb::ClosureReason::InsufficientEvidence,
                    ClosureReason::NoSuspect => pb::ClosureReason::NoSuspect,
                    ClosureReason::Other => pb::ClosureReason::Other,
                }) as i32,
            })
        }
        Body::ProsecutionDecided { crime_id, decision } => {
            B::ProsecutionDecided(pb::ProsecutionDecided {
                crime_id: crime_id.to_string(),
                decision: (match decision {
                    ProsecutionDecision::Indictment => pb::ProsecutionDecision::Indictment,
                    ProsecutionDecision::SummaryPenaltyOrder => {
                        pb::ProsecutionDecision::SummaryPenaltyOrder
                    }
                    ProsecutionDecision::WaiverOfProsecution => {
                        pb::ProsecutionDecision::WaiverOfProsecution
                    }
                    ProsecutionDecision::NoProsecution => pb::ProsecutionDecision::NoProsecution,
                }) as i32,
            })
        }
        Body::ContractCareProposed => B::ContractCareProposed(pb::ContractCareProposed {}),
        Body::ChildWelfareNotified => B::ChildWelfareNotified(pb::ChildWelfareNotified {}),
        Body::TreatmentProgrammeStarted { programme } => {
            B::TreatmentProgrammeStarted(pb::TreatmentProgrammeStarted {
                programme: programme.clone(),
            })
        }
        Body::TreatmentProgrammeEnded { outcome } => {
            B::TreatmentProgrammeEnded(pb::TreatmentProgrammeEnded {
                outcome: (match outcome {
                    TreatmentOutcome::Completed => pb::TreatmentOutcome::Completed,
                    TreatmentOutcome::Discontinued => pb::TreatmentOutcome::Discontinued,
                }) as i32,
            })
        }
        Body::SupportGranted {
            kind,
            gender,
            age_group,
        } => B::SupportGranted(pb::SupportGranted {
            kind: (match kind {
                SupportKind::ProtectedHousing => pb::SupportKind::ProtectedHousing,
                SupportKind::SupportTalks => pb::SupportKind::SupportTalks,
                SupportKind::Other => pb::SupportKind::Other,
            }) as i32,
            gender: pb_gender(*gender),
            age_group: pb_age_group(*age_group),
        }),
        Body::TablesPublished(p) => B::TablesPublished(publication_to_pb(p)),
        Body::StreamsErased(e) => B::StreamsErased(crate::erasure::to_pb(e)),
    };
    pb::Event {
        event_id: event.event_id.to_string(),
        occurred_on: event.occurred_on.to_string(),
        subject: Some(match event.subject {
            Subject::Case(id) => pb::event::Subject::CaseId(id.to_string()),
            Subject::Client(id) => pb::event::Subject::ClientId(id.to_string()),
            Subject::Publication(q) => pb::event::Subject::PublicationQuarter(q.to_string()),
            Subject::Retention => {
                pb::event::Subject::RetentionStream(gryning_domain::RETENTION_STREAM.to_string())
            }
        }),
        body: Some(body),
    }
}

/// The stored form of an event: its protobuf encoding. Deterministic, so equal events encode to
/// equal bytes and idempotency can compare bytes.
pub fn encode_event(event: &Event) -> Vec<u8> {
    to_pb(event).encode_to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stored event is not a valid gryning.v1.Event: {0}")]
    Protobuf(#[from] crate::wire::WireError),
    #[error("stored event breaks the contract: {0}")]
    Invalid(#[from] Error),
}

/// Decodes a stored event: reads the protobuf wire format directly into a borrowed view (no
/// intermediate message with owned strings), then applies the same field rules as `from_pb`.
/// Replays decode every stored event, so this is on the hot path of every rebuild.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    Ok(from_view(crate::wire::read_event(bytes)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_and_unknown_enum_values_name_the_field() {
        let mut event = to_pb(&Event {
            event_id: Uuid::from_u128(1),
            occurred_on: Date::parse("2020-03-02").unwrap(),
            subject: Subject::Case(Uuid::from_u128(2)),
            body: Body::CrimeReported {
                crime_id: Uuid::from_u128(3),
                crime_code: CrimeCode::parse("4024").unwrap(),
                victim_gender: Gender::Female,
                victim_age_group: AgeGroup::Adult,
            },
        });
        let Some(pb::event::Body::CrimeReported(body)) = event.body.as_mut() else {
            unreachable!()
        };
        body.victim_gender = 0;
        let err = from_pb(event.clone()).unwrap_err();
        assert_eq!(err.field(), "crime_reported.victim_gender");
        assert!(err.to_string().contains("UNSPECIFIED"), "{err}");
        let Some(pb::event::Body::CrimeReported(body)) = event.body.as_mut() else {
            unreachable!()
        };
        body.victim_gender = 17;
        assert!(from_pb(event)
            .unwrap_err()
            .to_string()
            .contains("not a value of this enum"));
    }

    #[test]
    fn errors_about_ids_and_codes_echo_a_short_masked_prefix() {
        let sample = || {
            to_pb(&Event {
                event_id: Uuid::from_u128(1),
                occurred_on: Date::parse("2020-03-02").unwrap(),
                subject: Subject::Case(Uuid::from_u128(2)),
                body: Body::CrimeReclassified {
                    crime_id: Uuid::from_u128(3),
                    crime_code: CrimeCode::parse("4024").unwrap(),
                },
            })
        };
        // A made-up test number with a correct Luhn digit.
        let number = "19811218-9876";
        let mut huge = sample();
        huge.event_id = "e".repeat(1 << 20);
        let mut in_case = sample();
        in_case.subject = Some(pb::event::Subject::CaseId(number.into()));
        let mut in_crime = sample();
        let mut in_code = sample();
        if let Some(pb::event::Body::CrimeReclassified(body)) = in_crime.body.as_mut() {
            body.crime_id = format!("crime {number}");
        }
        if let Some(pb::event::Body::CrimeReclassified(body)) = in_code.body.as_mut() {
            body.crime_code = number.into();
        }
        for (event, field) in [
            (huge, "event_id"),
            (in_case, "case_id"),
            (in_crime, "crime_reclassified.crime_id"),
            (in_code, "crime_reclassified.crime_code"),
        ] {
            let err = from_pb(event).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.field(), field, "{text}");
            assert!(text.len() < 200, "{} bytes: {}", text.len(), &text[..200]);
            assert!(!text.contains("9876"), "{text}");
        }
    }
}
