//! Helpers shared by the integration tests: a small event-log builder with readable dates.
#![allow(dead_code)]

use gryning_domain::{
    AgeGroup, Body, Catalogue, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision,
    Subject, SupportKind, TreatmentOutcome, Uuid,
};
use gryning_projections::{naive, By, Cell, PeriodKind, Projections, Table, TableName};

pub fn code(text: &str) -> CrimeCode {
    CrimeCode::parse(text).unwrap()
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// An event log in stream (position) order.
#[derive(Default)]
pub struct Log {
    pub events: Vec<Event>,
}

impl Log {
    pub fn push(&mut self, date: &str, subject: Subject, body: Body) -> &mut Log {
        let n = self.events.len() as u128 + 1;
        self.events.push(Event {
            event_id: Uuid::from_u128(0xE000_0000 + n),
            occurred_on: Date::parse(date).unwrap(),
            subject,
            body,
        });
        self
    }
    pub fn open(&mut self, date: &str, case: u128, lead: &str) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::CaseOpened {
                lead_crime_code: code(lead),
                police_region: "Stockholm".into(),
                local_police_area: "City".into(),
            },
        )
    }
    pub fn report(
        &mut self,
        date: &str,
        case: u128,
        crime: u128,
        crime_code: &str,
        gender: Gender,
    ) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::CrimeReported {
                crime_id: id(crime),
                crime_code: code(crime_code),
                victim_gender: gender,
                victim_age_group: AgeGroup::Adult,
            },
        )
    }
    pub fn reclassify(
        &mut self,
        date: &str,
        case: u128,
        crime: u128,
        crime_code: &str,
    ) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::CrimeReclassified {
                crime_id: id(crime),
                crime_code: code(crime_code),
            },
        )
    }
    pub fn reclassify_case(&mut self, date: &str, case: u128, lead: &str) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::CaseReclassified {
                lead_crime_code: code(lead),
            },
        )
    }
    pub fn refer(&mut self, date: &str, case: u128) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::CaseReferredToProsecutor,
        )
    }
    pub fn close(&mut self, date: &str, case: u128, crimes: &[u128]) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::InvestigationClosed {
                crime_ids: crimes.iter().map(|&c| id(c)).collect(),
                reason: ClosureReason::NoSuspect,
            },
        )
    }
    pub fn decide(
        &mut self,
        date: &str,
        case: u128,
        crime: u128,
        decision: ProsecutionDecision,
    ) -> &mut Log {
        self.push(
            date,
            Subject::Case(id(case)),
            Body::ProsecutionDecided {
                crime_id: id(crime),
                decision,
            },
        )
    }
    pub fn contract_care(&mut self, date: &str, case: u128) -> &mut Log {
        self.push(date, Subject::Case(id(case)), Body::ContractCareProposed)
    }
    pub fn start(&mut self, date: &str, client: u128) -> &mut Log {
        self.push(
            date,
            Subject::Client(id(client)),
            Body::TreatmentProgrammeStarted {
                programme: "IDAP".into(),
            },
        )
    }
    pub fn end(&mut self, date: &str, client: u128, outcome: TreatmentOutcome) -> &mut Log {
        self.push(
            date,
            Subject::Client(id(client)),
            Body::TreatmentProgrammeEnded { outcome },
        )
    }
    pub fn support(&mut self, date: &str, client: u128) -> &mut Log {
        self.push(
            date,
            Subject::Client(id(client)),
            Body::SupportGranted {
                kind: SupportKind::SupportTalks,
                gender: Gender::Female,
                age_group: AgeGroup::Adult,
            },
        )
    }

    pub fn projections(&self) -> Projections {
        let mut p = Projections::new();
        for (i, event) in self.events.iter().enumerate() {
            p.apply(i as u64 + 1, event);
        }
        p
    }

    /// The table from the incremental state, checked against the naive recomputation.
    pub fn table(&self, name: TableName, by: By, period: PeriodKind) -> Table {
        let catalogue = Catalogue::default_catalogue();
        let table = self.projections().table(name, by, period, &catalogue);
        assert_eq!(
            table,
            naive::table(&self.events, name, by, period, &catalogue),
            "{name:?} {by:?} {period:?}"
        );
        table
    }
}

pub fn t(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

pub fn i(n: i64) -> Cell {
    Cell::Int(n)
}

pub fn f(x: f64) -> Cell {
    Cell::Float(x)
}
