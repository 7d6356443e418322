//! Every event type survives each path between the domain and the wire: `to_pb`/`from_pb`,
//! the stored encoding read back by the wire reader (`encode_event`/`decode_event`), and an
//! NDJSON line. `sample` matches on `EventType` without a wildcard, so a new event type does
//! not compile here until it has a sample, and then it is checked on every path.

use gryning_domain::{
    AgeGroup, Body, ClosureReason, CrimeCode, Date, Event, EventType, Gender, ProsecutionDecision,
    Publication, PublishedCell, PublishedTable, Quarter, Subject, SupportKind, TreatmentOutcome,
    Uuid,
};
use gryning_proto::{decode_event, encode_event, from_pb, ndjson, to_pb};

fn code(text: &str) -> CrimeCode {
    CrimeCode::parse(text).expect("a four-digit code")
}

fn sample(event_type: EventType) -> Body {
    let crime = Uuid::from_u128(0xC1);
    match event_type {
        EventType::CaseOpened => Body::CaseOpened {
            lead_crime_code: code("9365"),
            police_region: "Stockholm".into(),
            local_police_area: "Södermalm".into(),
        },
        EventType::CrimeReported => Body::CrimeReported {
            crime_id: crime,
            crime_code: code("4024"),
            victim_gender: Gender::Female,
            victim_age_group: AgeGroup::Adult,
        },
        EventType::CrimeReclassified => Body::CrimeReclassified {
            crime_id: crime,
            crime_code: code("9381"),
        },
        EventType::CaseReclassified => Body::CaseReclassified {
            lead_crime_code: code("0418"),
        },
        EventType::CaseReferredToProsecutor => Body::CaseReferredToProsecutor,
        EventType::InvestigationClosed => Body::InvestigationClosed {
            crime_ids: vec![crime, Uuid::from_u128(0xC2)],
            reason: ClosureReason::NoSuspect,
        },
        EventType::ProsecutionDecided => Body::ProsecutionDecided {
            crime_id: crime,
            decision: ProsecutionDecision::SummaryPenaltyOrder,
        },
        EventType::ContractCareProposed => Body::ContractCareProposed,
        EventType::ChildWelfareNotified => Body::ChildWelfareNotified,
        EventType::TreatmentProgrammeStarted => Body::TreatmentProgrammeStarted {
            programme: "IDAP".into(),
        },
        EventType::TreatmentProgrammeEnded => Body::TreatmentProgrammeEnded {
            outcome: TreatmentOutcome::Discontinued,
        },
        EventType::SupportGranted => Body::SupportGranted {
            kind: SupportKind::ProtectedHousing,
            gender: Gender::Unknown,
            age_group: AgeGroup::Child,
        },
        EventType::TablesPublished => Body::TablesPublished(Box::new(Publication {
            quarter: quarter(),
            revision: 2,
            position: 41,
            catalogue_version: "2020.1".into(),
            catalogue_sha256: "ab".repeat(32),
            published_at: "2020-03-02T10:00:00+01:00".into(),
            principal: "admin".into(),
            note: "revised after late closures".into(),
            automatic: false,
            tables: vec![PublishedTable {
                name: "clearance".into(),
                by: "group".into(),
                period: "quarter".into(),
                columns: [
                    "period",
                    "group",
                    "victim_gender",
                    "handled",
                    "cleared",
                    "percent",
                ]
                .map(String::from)
                .to_vec(),
                rows: vec![
                    vec![
                        PublishedCell::Text("2019-Q4".into()),
                        PublishedCell::Text("Brott i nära relation".into()),
                        PublishedCell::Text("ALL".into()),
                        PublishedCell::Int(3),
                        PublishedCell::Int(1),
                        PublishedCell::Float(100.0 / 3.0),
                    ],
                    vec![
                        PublishedCell::Text("2019-Q4".into()),
                        PublishedCell::Text("Brott i nära relation".into()),
                        PublishedCell::Text("MALE".into()),
                        PublishedCell::Int(0),
                        PublishedCell::Int(0),
                        PublishedCell::Null,
                    ],
                ],
            }],
        })),
        EventType::StreamsErased => Body::StreamsErased(Box::new(erasure())),
    }
}

/// A retention aggregate with one entry of every kind, and the optional fields both ways.
fn erasure() -> gryning_domain::Erasure {
    use gryning_domain::*;
    let code = CrimeCode::parse("4024").unwrap();
    Erasure {
        run: 2,
        erased_at: "2026-01-01T10:00:00+01:00".into(),
        principal: "offline".into(),
        older_than: "5y".into(),
        cutoff: Date::parse("2021-01-01"),
        cases: 3,
        clients: 1,
        events: 12,
        span: Some((quarter(), quarter())),
        cases_opened: vec![ErasedCases {
            quarter: quarter(),
            police_region: "Stockholm".into(),
            lead_crime_code: code,
            count: 3,
        }],
        referrals: vec![ErasedReferrals {
            quarter: quarter(),
            police_region: "Stockholm".into(),
            lead_crime_code: code,
            first_in_year: true,
            count: 2,
        }],
        crimes: vec![
            ErasedCrimes {
                reported_quarter: quarter(),
                police_region: "Stockholm".into(),
                crime_code: code,
                victim_gender: Gender::Female,
                outcome: CrimeOutcome::Cleared,
                decided_quarter: Some(quarter()),
                days_to_referral: Some(0),
                days_to_decision: Some(31),
                count: 2,
            },
            ErasedCrimes {
                reported_quarter: quarter(),
                police_region: "Stockholm".into(),
                crime_code: code,
                victim_gender: Gender::Unknown,
                outcome: CrimeOutcome::Closed,
                decided_quarter: Some(quarter()),
                days_to_referral: None,
                days_to_decision: None,
                count: 1,
            },
        ],
        care: vec![ErasedCare {
            quarter: quarter(),
            proposed: 1,
            started: 1,
            completed: 1,
            discontinued: 0,
        }],
        contract_care: vec![ErasedContractCare {
            quarter: quarter(),
            police_region: "Stockholm".into(),
            count: 1,
        }],
        notifications: vec![ErasedNotifications {
            quarter: quarter(),
            local_police_area: "Farsta".into(),
            days_from_opening: 4,
            count: 1,
        }],
        support: vec![ErasedSupport {
            quarter: quarter(),
            kind: SupportKind::Other,
            gender: Gender::Male,
            age_group: AgeGroup::Child,
            count: 1,
        }],
    }
}

fn quarter() -> Quarter {
    Quarter::parse("2019-Q4").expect("a quarter")
}

fn event(event_type: EventType) -> Event {
    let body = sample(event_type);
    assert_eq!(body.event_type(), event_type, "the sample of {event_type}");
    let id = Uuid::from_u128(0xA1);
    Event {
        event_id: Uuid::from_u128(0xE1),
        occurred_on: Date::parse("2020-03-02").expect("a date"),
        subject: if event_type.is_care() {
            Subject::Client(id)
        } else if event_type.is_publication() {
            Subject::Publication(quarter())
        } else if event_type.is_retention() {
            Subject::Retention
        } else {
            Subject::Case(id)
        },
        body,
    }
}

#[test]
fn every_event_type_round_trips_through_protobuf_the_wire_reader_and_ndjson() {
    for event_type in EventType::ALL {
        let event = event(event_type);
        let pb = to_pb(&event);
        assert_eq!(
            from_pb(pb.clone()).as_ref(),
            Ok(&event),
            "{event_type}: from_pb"
        );
        let stored = encode_event(&event);
        let read = decode_event(&stored)
            .unwrap_or_else(|e| panic!("{event_type}: the wire reader refused it: {e}"));
        assert_eq!(read, event, "{event_type}: the wire reader");
        let line = ndjson::to_line(&pb);
        let parsed = ndjson::parse_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("{event_type}: NDJSON line {line}: {e}"));
        assert_eq!(from_pb(parsed).as_ref(), Ok(&event), "{event_type}: NDJSON");
    }
}
