//! Explain a figure: the streams and events that make up one cell of a table, under the cell's
//! own definition, so an auditor can check a published or live number event by event.
//!
//! [`Request`] names a cell as the table shows it (table, period label, code or group, victim
//! gender, the social-services key, measure); [`CellRef::parse`] checks it against the tables'
//! layouts and the catalogue in force. [`Log`] folds the event log (every event with its
//! position) into cases, crimes, programmes, notifications and support, keeping for each fact
//! the event that established it; [`Log::explain`] then lists the events of one cell. For a
//! count the list's size is the cell; for a percent there are two lists, the cleared and the
//! handled crimes; for a median, the list of the values it is the median of, each event with
//! its days.
//!
//! This is a second computation of every table, apart from the incremental state and from
//! [`crate::naive`]: the property tests check that every cell of every table equals its
//! explanation. [`replay`] builds a [`Log`] from a store up to a position (a publication's
//! position for a published figure): the whole log is read, once per explanation, which is
//! what an auditor's rare question can afford (BENCHMARKS.md gives the cost).

use std::collections::HashMap;

use gryning_domain::{
    AgeGroup, Body, Catalogue, CrimeCode, Date, Event, EventType, Gender, Subject, SupportKind,
    TreatmentOutcome, Uuid,
};
use gryning_store::EventStore;

use crate::runner::BATCH_SIZE;
use crate::social::{AGE_GROUP_NAMES, ALL, SERVICES};
use crate::table::{Cell, TableName};

/// A cell as asked for: text fields as a user types them (empty: not given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub table: String,
    /// `2020`, `2020-Q3`, or a run of quarters of one year, `2020-Q1..Q3` (a publication's
    /// year to date).
    pub period: String,
    pub code: String,
    pub group: String,
    /// `clearance`: `ALL` (the default), `FEMALE`, `MALE` or `UNKNOWN`; `social-services`: the
    /// row's `gender`.
    pub victim_gender: String,
    /// `social-services`: the row's `service`.
    pub service: String,
    /// `social-services`: the row's `local_police_area`.
    pub local_police_area: String,
    /// `social-services`: the row's `age_group`.
    pub age_group: String,
    pub measure: String,
    /// One police region's cell (the table as `--region` shows it); empty: every region.
    pub region: String,
}

/// Why a request names no cell: the field, the value and what it must be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {problem} (value {shown:?})", shown = gryning_domain::echo(.value))]
pub struct Error {
    pub field: &'static str,
    pub value: String,
    pub problem: String,
}

fn invalid(field: &'static str, value: &str, problem: impl Into<String>) -> Error {
    Error {
        field,
        value: value.to_string(),
        problem: problem.into(),
    }
}

/// A run of quarters, numbered `year * 4 + quarter - 1`, with the label tables give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub first: i32,
    pub last: i32,
    pub label: String,
}

impl Period {
    /// `2020` (the year), `2020-Q3` (a quarter) or `2020-Q1..Q3` (quarters of one year).
    pub fn parse(text: &str) -> Result<Period, Error> {
        let bad = || {
            invalid(
                "period",
                text,
                "must be a year (2020), a quarter (2020-Q3) or quarters of one year as a \
                 publication's year to date labels them (2020-Q1..Q3)",
            )
        };
        let year = |y: &str| {
            (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                .then(|| y.parse::<i32>().ok())
                .flatten()
        };
        let quarter = |q: &str| match q.as_bytes() {
            [b'Q', n @ b'1'..=b'4'] => Some(i32::from(n - b'1')),
            _ => None,
        };
        if let Some(y) = year(text) {
            return Ok(Period {
                first: y * 4,
                last: y * 4 + 3,
                label: text.to_string(),
            });
        }
        let (y, rest) = text.split_once('-').ok_or_else(bad)?;
        let y = year(y).ok_or_else(bad)?;
        let (a, b) = match rest.split_once("..") {
            None => {
                let q = quarter(rest).ok_or_else(bad)?;
                (q, q)
            }
            Some((a, b)) => (quarter(a).ok_or_else(bad)?, quarter(b).ok_or_else(bad)?),
        };
        if a > b {
            return Err(bad());
        }
        Ok(Period {
            first: y * 4 + a,
            last: y * 4 + b,
            label: text.to_string(),
        })
    }

    fn holds(&self, date: Date) -> bool {
        (self.first..=self.last).contains(&quarter_of(date))
    }

    /// The last day of the period's last quarter.
    fn last_day(&self) -> Date {
        let next = self.last + 1;
        Date::from_ymd(next.div_euclid(4), (next.rem_euclid(4) * 3 + 1) as u32, 1)
            .expect("a first day of a quarter")
            .add_days(-1)
    }
}

fn quarter_of(date: Date) -> i32 {
    let (year, month, _) = date.ymd();
    year * 4 + (month as i32 - 1) / 3
}

/// The codes a row counts: one code, or a group of the catalogue in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codes {
    Code(CrimeCode),
    Group { name: String, codes: Vec<CrimeCode> },
}

impl Codes {
    fn holds(&self, code: CrimeCode) -> bool {
        match self {
            Codes::Code(c) => *c == code,
            Codes::Group { codes, .. } => codes.contains(&code),
        }
    }

    fn label(&self) -> String {
        match self {
            Codes::Code(c) => c.to_string(),
            Codes::Group { name, .. } => name.clone(),
        }
    }
}

/// A social-services row: a notification row by area, or a support row by kind, gender, age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocialRow {
    Notifications {
        area: String,
    },
    Support {
        kind: SupportKind,
        gender: Gender,
        age: AgeGroup,
    },
}

/// One cell, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRef {
    pub table: TableName,
    pub period: Period,
    /// The code or group of `case-flow`, `clearance` and `progress`.
    pub codes: Option<Codes>,
    /// `clearance`: one victim gender, or `None` for `ALL`.
    pub gender: Option<Gender>,
    pub social: Option<SocialRow>,
    pub measure: &'static str,
    /// One region's cell: the region as given until [`Log::in_region`] resolves it against the
    /// log; `None`: every region together.
    pub region: Option<String>,
}

/// The measures of each table: its columns that are not part of the row's key.
pub fn measures(table: TableName) -> &'static [&'static str] {
    match table {
        TableName::CaseFlow => &["reported", "cases", "referred"],
        // Not explained: its cells are each region's clearance cells.
        TableName::RegionComparison => &[],
        TableName::Clearance => &["handled", "cleared", "percent"],
        TableName::Care => &[
            "contract_care_proposed",
            "programmes_started",
            "programmes_completed",
            "programmes_discontinued",
            "programmes_continuing",
        ],
        TableName::Progress => &[
            "reported",
            "in_case",
            "referred",
            "decided",
            "cleared",
            "open",
            "median_days_to_referral",
            "median_days_to_decision",
        ],
        TableName::SocialServices => &["count", "median_days_to_notification"],
    }
}

fn gender_named(field: &'static str, text: &str) -> Result<Gender, Error> {
    Gender::ALL
        .into_iter()
        .find(|g| g.table_name() == text)
        .ok_or_else(|| invalid(field, text, "must be FEMALE, MALE or UNKNOWN"))
}

fn not_given(field: &'static str, value: &str, table: TableName) -> Result<(), Error> {
    if value.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            format!("the {} table has no such key; leave it out", table.name()),
        ))
    }
}

impl CellRef {
    /// Checks `r` against the tables' layouts and `catalogue`; the error names the first field
    /// that names no cell.
    pub fn parse(r: &Request, catalogue: &Catalogue) -> Result<CellRef, Error> {
        let table = TableName::parse(&r.table).ok_or_else(|| {
            invalid(
                "table",
                &r.table,
                format!("must be one of {}", TableName::list()),
            )
        })?;
        if table == TableName::RegionComparison {
            return Err(invalid(
                "table",
                &r.table,
                "region-comparison is computed from the clearance cells of each region; explain a clearance cell instead".to_string(),
            ));
        }
        let period = Period::parse(&r.period)?;
        let region = (!r.region.is_empty()).then(|| r.region.clone());
        if region.is_some() && table == TableName::SocialServices {
            return Err(invalid(
                "region",
                &r.region,
                "the social-services table is county-wide (it has no --region); leave region out",
            ));
        }
        let mut cell = CellRef {
            table,
            period,
            codes: None,
            gender: None,
            social: None,
            measure: "",
            region,
        };
        if table.has_codes() {
            cell.codes = Some(match (r.code.as_str(), r.group.as_str()) {
                ("", "") => {
                    return Err(invalid(
                        "code",
                        "",
                        format!(
                            "the {} table has a row per code or group: give a code or a group",
                            table.name()
                        ),
                    ))
                }
                (code, "") => {
                    let c = CrimeCode::parse(code)
                        .ok_or_else(|| invalid("code", code, "must be four digits, as 0412"))?;
                    if !catalogue.contains(c) {
                        return Err(invalid(
                            "code",
                            code,
                            format!(
                                "is not a code of catalogue {} (gryning catalog lists them)",
                                catalogue.version()
                            ),
                        ));
                    }
                    Codes::Code(c)
                }
                ("", group) => {
                    let g = catalogue.group(group).ok_or_else(|| {
                        invalid(
                            "group",
                            group,
                            format!(
                                "is not a group of catalogue {}; the groups are {}",
                                catalogue.version(),
                                catalogue
                                    .groups()
                                    .iter()
                                    .map(|g| format!("{:?}", g.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                    Codes::Group {
                        name: g.name.clone(),
                        codes: g.codes.clone(),
                    }
                }
                (_, group) => {
                    return Err(invalid(
                        "group",
                        group,
                        "a row has a code or a group, not both: give one",
                    ))
                }
            });
        } else {
            not_given("code", &r.code, table)?;
            not_given("group", &r.group, table)?;
        }
        match table {
            TableName::Clearance => {
                cell.gender = match r.victim_gender.as_str() {
                    "" | ALL => None,
                    g => Some(gender_named("victim_gender", g).map_err(|e| Error {
                        problem: "must be ALL, FEMALE, MALE or UNKNOWN".into(),
                        ..e
                    })?),
                };
            }
            TableName::SocialServices => {}
            _ => not_given("victim_gender", &r.victim_gender, table)?,
        }
        if table == TableName::SocialServices {
            let service = SERVICES
                .iter()
                .position(|s| *s == r.service)
                .ok_or_else(|| {
                    invalid(
                        "service",
                        &r.service,
                        format!("must be one of {}", SERVICES.join(", ")),
                    )
                })?;
            cell.social = Some(if service == 0 {
                if gryning_domain::personnummer::find(&r.local_police_area).is_some() {
                    return Err(invalid(
                        "local_police_area",
                        &r.local_police_area,
                        "holds a personal identity or coordination number, which no stored area \
                         does: name the area as the table's rows do",
                    ));
                }
                if r.local_police_area.is_empty() || r.local_police_area == ALL {
                    return Err(invalid(
                        "local_police_area",
                        &r.local_police_area,
                        "notifications are counted per local police area: name one, as the table's rows do",
                    ));
                }
                for (field, value) in [
                    ("victim_gender", &r.victim_gender),
                    ("age_group", &r.age_group),
                ] {
                    if !(value.is_empty() || value == ALL) {
                        return Err(invalid(
                            field,
                            value,
                            "notifications are not broken down by it: leave it out or give ALL",
                        ));
                    }
                }
                SocialRow::Notifications {
                    area: r.local_police_area.clone(),
                }
            } else {
                if !(r.local_police_area.is_empty() || r.local_police_area == ALL) {
                    return Err(invalid(
                        "local_police_area",
                        &r.local_police_area,
                        "support carries no area: leave it out or give ALL",
                    ));
                }
                let gender = gender_named("victim_gender", &r.victim_gender)?;
                let age = AGE_GROUP_NAMES
                    .iter()
                    .position(|a| *a == r.age_group)
                    .ok_or_else(|| {
                        invalid("age_group", &r.age_group, "must be CHILD, ADULT or UNKNOWN")
                    })?;
                SocialRow::Support {
                    kind: crate::state::SUPPORT_KINDS[service - 1],
                    gender,
                    age: crate::state::AGE_GROUPS[age],
                }
            });
        } else {
            not_given("service", &r.service, table)?;
            not_given("local_police_area", &r.local_police_area, table)?;
            not_given("age_group", &r.age_group, table)?;
        }
        let all = measures(table);
        cell.measure = all
            .iter()
            .copied()
            .find(|m| *m == r.measure)
            .ok_or_else(|| {
                invalid(
                    "measure",
                    &r.measure,
                    format!(
                        "the {} table's measures are {}",
                        table.name(),
                        all.join(", ")
                    ),
                )
            })?;
        if cell.region.is_some()
            && table == TableName::Care
            && cell.measure != "contract_care_proposed"
        {
            return Err(invalid(
                "measure",
                &r.measure,
                "treatment programmes are client events, which carry no region: one region's care row has only contract_care_proposed",
            ));
        }
        if matches!(cell.social, Some(SocialRow::Support { .. }))
            && cell.measure == "median_days_to_notification"
        {
            return Err(invalid(
                "measure",
                &r.measure,
                "a support row has no median; its measure is count",
            ));
        }
        Ok(cell)
    }

    /// The row's key cells as the table shows them (period first).
    pub fn row(&self) -> Vec<String> {
        let mut row = vec![self.period.label.clone()];
        if let Some(codes) = &self.codes {
            row.push(codes.label());
        }
        if self.table == TableName::Clearance {
            row.push(self.gender.map_or(ALL, Gender::table_name).to_string());
        }
        match &self.social {
            Some(SocialRow::Notifications { area }) => {
                row.extend([SERVICES[0], area, ALL, ALL].map(str::to_string));
            }
            Some(SocialRow::Support { kind, gender, age }) => {
                let k = crate::state::support_kind_index(*kind);
                let a = crate::state::age_group_index(*age);
                row.extend(
                    [
                        SERVICES[1 + usize::from(k)],
                        ALL,
                        gender.table_name(),
                        AGE_GROUP_NAMES[usize::from(a)],
                    ]
                    .map(str::to_string),
                );
            }
            None => {}
        }
        row
    }
}

/// Where a fact was recorded: the event and its place in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Source {
    position: u64,
    event_id: Uuid,
    subject: Subject,
    date: Date,
    event_type: EventType,
}

/// One event of an explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    pub event_id: Uuid,
    /// The stream: `case-<uuid>` or `client-<uuid>`.
    pub stream: String,
    pub position: u64,
    pub occurred_on: Date,
    pub event_type: &'static str,
    /// The crime the event counts for, when the cell counts crimes (one closure can decide
    /// several crimes, and then appears once per crime).
    pub crime_id: Option<Uuid>,
    /// For a median: the value this event gives (days).
    pub days: Option<i32>,
}

/// A named list of events: the cell's (`reported`, …), or for a percent `cleared` and `handled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainedSet {
    pub name: &'static str,
    pub events: Vec<Explained>,
    /// What streams erased by retention add to the set: known only as a count, from the
    /// `StreamsErased` aggregates (no ids, no dates finer than a quarter).
    pub erased: u64,
    /// For a median: the values (days) the erased streams add, each with how many times.
    pub erased_days: Vec<(i32, u64)>,
}

/// What makes up one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub cell: CellRef,
    /// The value the lists give: their size, the percent of the two, or the median of the days.
    pub value: Cell,
    /// The log position explained: every event up to it.
    pub position: u64,
    pub sets: Vec<ExplainedSet>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Closed,
    Prosecution { clears: bool },
}

struct FoldedCase {
    opened: Source,
    lead: CrimeCode,
    region: String,
    area: String,
    referrals: Vec<Source>,
}

struct FoldedCrime {
    id: Uuid,
    case: Uuid,
    report: Source,
    code: CrimeCode,
    gender: Gender,
    decision: Option<(Source, Decision)>,
}

/// The event log folded into the facts the tables count, each with the event behind it.
#[derive(Default)]
pub struct Log {
    position: u64,
    cases: HashMap<Uuid, FoldedCase>,
    crimes: Vec<FoldedCrime>,
    crime_at: HashMap<(Uuid, Uuid), usize>,
    /// Care events counted by date: proposals, starts, ends.
    care: Vec<(Source, &'static str)>,
    /// The police regions of the cases opened, as stored.
    regions: std::collections::BTreeSet<String>,
    /// Per client, its programmes (start, end date) in stream order.
    programmes: HashMap<Uuid, Vec<(Source, Option<Date>)>>,
    notifications: Vec<(Source, Uuid)>,
    support: Vec<(Source, SupportKind, Gender, AgeGroup)>,
    /// Every retention run applied: what the erased streams had added, as counts.
    erasures: Vec<gryning_domain::Erasure>,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    /// The position of the last event applied.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Folds in the event at `position`; events come in position order.
    pub fn apply(&mut self, position: u64, event: &Event) {
        self.position = position;
        let source = Source {
            position,
            event_id: event.event_id,
            subject: event.subject,
            date: event.occurred_on,
            event_type: event.body.event_type(),
        };
        let id = event.subject.id();
        if let Body::StreamsErased(e) = &event.body {
            self.erasures.push((**e).clone());
            return;
        }
        match event.subject {
            Subject::Publication(_) | Subject::Retention => return,
            Subject::Case(_) | Subject::Client(_) => {}
        }
        let is_case = matches!(event.subject, Subject::Case(_));
        match &event.body {
            Body::CaseOpened {
                lead_crime_code,
                police_region,
                local_police_area,
            } if is_case => {
                if !self.regions.contains(police_region) {
                    self.regions.insert(police_region.clone());
                }
                self.cases.entry(id).or_insert(FoldedCase {
                    opened: source,
                    lead: *lead_crime_code,
                    region: police_region.clone(),
                    area: local_police_area.clone(),
                    referrals: Vec::new(),
                });
            }
            Body::CrimeReported {
                crime_id,
                crime_code,
                victim_gender,
                ..
            } if is_case => {
                if self.cases.contains_key(&id) && !self.crime_at.contains_key(&(id, *crime_id)) {
                    self.crime_at.insert((id, *crime_id), self.crimes.len());
                    self.crimes.push(FoldedCrime {
                        id: *crime_id,
                        case: id,
                        report: source,
                        code: *crime_code,
                        gender: *victim_gender,
                        decision: None,
                    });
                }
            }
            Body::CrimeReclassified {
                crime_id,
                crime_code,
            } => {
                if let Some(&i) = self.crime_at.get(&(id, *crime_id)) {
                    self.crimes[i].code = *crime_code;
                }
            }
            Body::CaseReclassified { lead_crime_code } => {
                if let Some(case) = self.cases.get_mut(&id) {
                    case.lead = *lead_crime_code;
                }
            }
            Body::CaseReferredToProsecutor => {
                if let Some(case) = self.cases.get_mut(&id) {
                    case.referrals.push(source);
                }
            }
            Body::InvestigationClosed { crime_ids, .. } => {
                for crime_id in crime_ids {
                    if let Some(&i) = self.crime_at.get(&(id, *crime_id)) {
                        self.crimes[i].decision = Some((source, Decision::Closed));
                    }
                }
            }
            Body::ProsecutionDecided { crime_id, decision } => {
                if let Some(&i) = self.crime_at.get(&(id, *crime_id)) {
                    self.crimes[i].decision = Some((
                        source,
                        Decision::Prosecution {
                            clears: decision.clears(),
                        },
                    ));
                }
            }
            Body::ContractCareProposed => self.care.push((source, "contract_care_proposed")),
            Body::TreatmentProgrammeStarted { .. } => {
                self.programmes.entry(id).or_default().push((source, None));
                self.care.push((source, "programmes_started"));
            }
            Body::TreatmentProgrammeEnded { outcome } => {
                if let Some(last) = self.programmes.entry(id).or_default().last_mut() {
                    last.1 = Some(source.date);
                }
                self.care.push((
                    source,
                    match outcome {
                        TreatmentOutcome::Completed => "programmes_completed",
                        TreatmentOutcome::Discontinued => "programmes_discontinued",
                    },
                ));
            }
            Body::ChildWelfareNotified => {
                if self.cases.contains_key(&id) {
                    self.notifications.push((source, id));
                }
            }
            Body::SupportGranted {
                kind,
                gender,
                age_group,
            } => self.support.push((source, *kind, *gender, *age_group)),
            // A case event under a client subject cannot be stored; a publication is no case
            // data.
            Body::CaseOpened { .. }
            | Body::CrimeReported { .. }
            | Body::TablesPublished(_)
            | Body::StreamsErased(_) => {}
        }
    }

    /// `cell` with its region resolved as the tables resolve `--region`: a police region, full
    /// or short, in any case, or a region name of the stored cases.
    pub fn in_region(&self, mut cell: CellRef) -> Result<CellRef, Error> {
        if let Some(given) = &cell.region {
            let name =
                gryning_domain::resolve_region(given, self.regions.iter().map(String::as_str))
                    .map_err(|e| invalid("region", given, e.to_string()))?;
            cell.region = Some(name);
        }
        Ok(cell)
    }

    /// The events that make up `cell` in the log folded so far, with the groups of the
    /// catalogue `cell` was parsed with (and its region resolved by [`Log::in_region`]).
    pub fn explain(&self, cell: &CellRef) -> Explanation {
        let p = &cell.period;
        // Whether a case counts in the cell's region.
        let within = |case: &FoldedCase| cell.region.as_ref().is_none_or(|r| case.region == *r);
        let case_within = |id: &Uuid| self.cases.get(id).is_some_and(within);
        let item = |s: &Source, crime: Option<Uuid>, days: Option<i32>| Explained {
            event_id: s.event_id,
            stream: s.subject.stream_name(),
            position: s.position,
            occurred_on: s.date,
            event_type: s.event_type.name(),
            crime_id: crime,
            days,
        };
        let codes = |code: CrimeCode| cell.codes.as_ref().is_some_and(|c| c.holds(code));
        // The first referral of the crime's case stored after its report.
        let referral = |c: &FoldedCrime| {
            self.cases[&c.case]
                .referrals
                .iter()
                .find(|r| r.position > c.report.position)
                .copied()
        };
        let cohort = || {
            self.crimes
                .iter()
                .filter(|c| p.holds(c.report.date) && codes(c.code) && case_within(&c.case))
        };
        let handled = || {
            self.crimes.iter().filter_map(|c| {
                let (s, d) = c.decision?;
                (p.holds(s.date)
                    && codes(c.code)
                    && cell.gender.is_none_or(|g| g == c.gender)
                    && case_within(&c.case))
                .then_some((c, s, d))
            })
        };
        let clears = |d: Decision| matches!(d, Decision::Prosecution { clears: true });
        let mut sets: Vec<ExplainedSet> = Vec::new();
        let mut one = |events: Vec<Explained>| {
            sets.push(ExplainedSet {
                name: cell.measure,
                events,
                erased: 0,
                erased_days: Vec::new(),
            })
        };
        match (cell.table, cell.measure) {
            (TableName::CaseFlow, "reported") | (TableName::Progress, "reported" | "in_case") => {
                one(cohort()
                    .map(|c| item(&c.report, Some(c.id), None))
                    .collect())
            }
            (TableName::CaseFlow, "cases") => {
                let mut cases: Vec<&FoldedCase> = self
                    .cases
                    .values()
                    .filter(|c| p.holds(c.opened.date) && codes(c.lead) && within(c))
                    .collect();
                cases.sort_by_key(|c| c.opened.position);
                one(cases.iter().map(|c| item(&c.opened, None, None)).collect());
            }
            (TableName::CaseFlow, "referred") => {
                // A case counts once: by its first referral dated in the period.
                let mut firsts: Vec<Source> = self
                    .cases
                    .values()
                    .filter(|c| codes(c.lead) && within(c))
                    .filter_map(|c| c.referrals.iter().find(|r| p.holds(r.date)).copied())
                    .collect();
                firsts.sort_by_key(|s| s.position);
                one(firsts.iter().map(|s| item(s, None, None)).collect());
            }
            (TableName::Clearance, measure) => {
                let list = |only_cleared: bool| -> Vec<Explained> {
                    let mut l: Vec<Explained> = handled()
                        .filter(|(_, _, d)| !only_cleared || clears(*d))
                        .map(|(c, s, _)| item(&s, Some(c.id), None))
                        .collect();
                    l.sort_by_key(|e| e.position);
                    l
                };
                match measure {
                    "handled" => one(list(false)),
                    "cleared" => one(list(true)),
                    _ => {
                        sets.push(ExplainedSet {
                            name: "cleared",
                            events: list(true),
                            erased: 0,
                            erased_days: Vec::new(),
                        });
                        sets.push(ExplainedSet {
                            name: "handled",
                            events: list(false),
                            erased: 0,
                            erased_days: Vec::new(),
                        });
                    }
                }
            }
            (TableName::Care, "programmes_continuing") => {
                let end = p.last_day();
                let mut running: Vec<&Source> = self
                    .programmes
                    .values()
                    .flatten()
                    .filter(|(start, stop)| start.date <= end && stop.is_none_or(|s| s > end))
                    .map(|(start, _)| start)
                    .collect();
                running.sort_by_key(|s| s.position);
                one(running.into_iter().map(|s| item(s, None, None)).collect());
            }
            (TableName::Care, measure) => one(self
                .care
                .iter()
                .filter(|(s, kind)| {
                    *kind == measure
                        && p.holds(s.date)
                        && (cell.region.is_none() || case_within(&s.subject.id()))
                })
                .map(|(s, _)| item(s, None, None))
                .collect()),
            (TableName::Progress, measure) => {
                let mut list: Vec<Explained> = match measure {
                    "referred" => cohort()
                        .filter_map(|c| Some(item(&referral(c)?, Some(c.id), None)))
                        .collect(),
                    "decided" | "cleared" => cohort()
                        .filter_map(|c| {
                            let (s, d) = c.decision?;
                            (measure == "decided" || clears(d)).then(|| item(&s, Some(c.id), None))
                        })
                        .collect(),
                    "open" => cohort()
                        .filter(|c| c.decision.is_none())
                        .map(|c| item(&c.report, Some(c.id), None))
                        .collect(),
                    "median_days_to_referral" => cohort()
                        .filter_map(|c| {
                            let r = referral(c)?;
                            Some(item(
                                &r,
                                Some(c.id),
                                Some(r.date.days() - c.report.date.days()),
                            ))
                        })
                        .collect(),
                    _ => cohort()
                        .filter_map(|c| {
                            let r = referral(c)?;
                            match c.decision? {
                                (s, Decision::Prosecution { .. }) => {
                                    Some(item(&s, Some(c.id), Some(s.date.days() - r.date.days())))
                                }
                                (_, Decision::Closed) => None,
                            }
                        })
                        .collect(),
                };
                list.sort_by_key(|e| e.position);
                one(list);
            }
            (TableName::SocialServices, _) => match &cell.social {
                Some(SocialRow::Notifications { area }) => one(self
                    .notifications
                    .iter()
                    .filter_map(|(s, case)| {
                        let case = &self.cases[case];
                        (p.holds(s.date) && case.area == *area)
                            .then(|| item(s, None, Some(s.date.days() - case.opened.date.days())))
                    })
                    .collect()),
                Some(SocialRow::Support { kind, gender, age }) => one(self
                    .support
                    .iter()
                    .filter(|(s, k, g, a)| p.holds(s.date) && k == kind && g == gender && a == age)
                    .map(|(s, ..)| item(s, None, None))
                    .collect()),
                None => one(Vec::new()),
            },
            (TableName::CaseFlow, _) | (TableName::RegionComparison, _) => one(Vec::new()),
        }
        self.add_erased(cell, &mut sets);
        let size = |set: &ExplainedSet| set.events.len() + set.erased as usize;
        let value = if cell.measure == "percent" {
            let (cleared, handled) = (size(&sets[0]), size(&sets[1]));
            if handled == 0 {
                Cell::Null
            } else {
                Cell::Float(100.0 * cleared as f64 / handled as f64)
            }
        } else if cell.measure.starts_with("median_") {
            let mut days: Vec<i32> = sets[0].events.iter().filter_map(|e| e.days).collect();
            for &(d, n) in &sets[0].erased_days {
                days.extend(std::iter::repeat_n(d, n as usize));
            }
            days.sort_unstable();
            match days.len() {
                0 => Cell::Null,
                n => Cell::Float((f64::from(days[(n - 1) / 2]) + f64::from(days[n / 2])) / 2.0),
            }
        } else {
            Cell::Int(size(&sets[0]) as i64)
        };
        Explanation {
            cell: cell.clone(),
            value,
            position: self.position,
            sets,
        }
    }
}

impl Log {
    /// Adds to each set what the retention aggregates hold for the cell, by the same rules
    /// as the events: periods are whole quarters, which is as fine as the aggregates go.
    fn add_erased(&self, cell: &CellRef, sets: &mut [ExplainedSet]) {
        use gryning_domain::CrimeOutcome;
        if self.erasures.is_empty() {
            return;
        }
        let p = &cell.period;
        let holds = |q: gryning_domain::Quarter| {
            (p.first..=p.last).contains(&(q.year() * 4 + i32::from(q.number()) - 1))
        };
        let codes = |code: CrimeCode| cell.codes.as_ref().is_some_and(|c| c.holds(code));
        let region = |r: &str| cell.region.as_ref().is_none_or(|want| want == r);
        let crimes = || {
            self.erasures.iter().flat_map(|e| &e.crimes).filter(|c| {
                holds(c.reported_quarter) && codes(c.crime_code) && region(&c.police_region)
            })
        };
        let handled = || {
            self.erasures.iter().flat_map(|e| &e.crimes).filter(|c| {
                c.decided_quarter.is_some_and(holds)
                    && codes(c.crime_code)
                    && cell.gender.is_none_or(|g| g == c.victim_gender)
                    && region(&c.police_region)
            })
        };
        let sum = |it: &mut dyn Iterator<Item = u64>| it.sum::<u64>();
        let care = || self.erasures.iter().flat_map(|e| &e.care);
        for set in sets.iter_mut() {
            let mut days: Vec<(i32, u64)> = Vec::new();
            let n = match (cell.table, set.name) {
                (TableName::CaseFlow, "reported")
                | (TableName::Progress, "reported" | "in_case") => {
                    sum(&mut crimes().map(|c| c.count))
                }
                (TableName::CaseFlow, "cases") => sum(&mut self
                    .erasures
                    .iter()
                    .flat_map(|e| &e.cases_opened)
                    .filter(|c| {
                        holds(c.quarter) && codes(c.lead_crime_code) && region(&c.police_region)
                    })
                    .map(|c| c.count)),
                // A case counts once per period: in a quarter every referral node is the
                // case's only one there; over a year (or a year to date) its first of the year.
                (TableName::CaseFlow, "referred") => sum(&mut self
                    .erasures
                    .iter()
                    .flat_map(|e| &e.referrals)
                    .filter(|r| {
                        holds(r.quarter)
                            && (p.first == p.last || r.first_in_year)
                            && codes(r.lead_crime_code)
                            && region(&r.police_region)
                    })
                    .map(|r| r.count)),
                (TableName::Clearance, "handled") => sum(&mut handled().map(|c| c.count)),
                (TableName::Clearance, "cleared") => sum(&mut handled()
                    .filter(|c| c.outcome == CrimeOutcome::Cleared)
                    .map(|c| c.count)),
                (TableName::Care, "programmes_continuing") => {
                    let end = |q: gryning_domain::Quarter| {
                        q.year() * 4 + i32::from(q.number()) - 1 <= p.last
                    };
                    let started = sum(&mut care().filter(|c| end(c.quarter)).map(|c| c.started));
                    let ended = sum(&mut care()
                        .filter(|c| end(c.quarter))
                        .map(|c| c.completed + c.discontinued));
                    started.saturating_sub(ended)
                }
                (TableName::Care, "proposed") if cell.region.is_some() => sum(&mut self
                    .erasures
                    .iter()
                    .flat_map(|e| &e.contract_care)
                    .filter(|c| holds(c.quarter) && region(&c.police_region))
                    .map(|c| c.count)),
                (TableName::Care, _) if cell.region.is_some() => 0,
                (TableName::Care, measure) => sum(&mut care().filter(|c| holds(c.quarter)).map(
                    |c| match measure {
                        "proposed" => c.proposed,
                        "started" => c.started,
                        "completed" => c.completed,
                        "discontinued" => c.discontinued,
                        _ => 0,
                    },
                )),
                (TableName::Progress, "referred") => sum(&mut crimes()
                    .filter(|c| c.days_to_referral.is_some())
                    .map(|c| c.count)),
                (TableName::Progress, "decided") => sum(&mut crimes()
                    .filter(|c| c.outcome != CrimeOutcome::Undecided)
                    .map(|c| c.count)),
                (TableName::Progress, "cleared") => sum(&mut crimes()
                    .filter(|c| c.outcome == CrimeOutcome::Cleared)
                    .map(|c| c.count)),
                (TableName::Progress, "open") => sum(&mut crimes()
                    .filter(|c| c.outcome == CrimeOutcome::Undecided)
                    .map(|c| c.count)),
                (TableName::Progress, "median_days_to_referral") => {
                    days.extend(crimes().filter_map(|c| Some((c.days_to_referral?, c.count))));
                    days.iter().map(|d| d.1).sum()
                }
                (TableName::Progress, _) => {
                    days.extend(crimes().filter_map(|c| Some((c.days_to_decision?, c.count))));
                    days.iter().map(|d| d.1).sum()
                }
                (TableName::SocialServices, _) => match &cell.social {
                    Some(SocialRow::Notifications { area }) => {
                        days.extend(
                            self.erasures
                                .iter()
                                .flat_map(|e| &e.notifications)
                                .filter(|n| holds(n.quarter) && n.local_police_area == *area)
                                .map(|n| (n.days_from_opening, n.count)),
                        );
                        days.iter().map(|d| d.1).sum()
                    }
                    Some(SocialRow::Support { kind, gender, age }) => sum(&mut self
                        .erasures
                        .iter()
                        .flat_map(|e| &e.support)
                        .filter(|s| {
                            holds(s.quarter)
                                && s.kind == *kind
                                && s.gender == *gender
                                && s.age_group == *age
                        })
                        .map(|s| s.count)),
                    None => 0,
                },
                _ => 0,
            };
            set.erased = n;
            if cell.measure.starts_with("median_") {
                set.erased_days = days;
            }
        }
    }
}

/// The value of `cell` in `publication`, or `None` when its table has no such row (a row is
/// left out when every count in it is zero). The cell's period must be one of the
/// publication's: its quarter, or its year to date.
pub fn published_value(
    publication: &gryning_domain::Publication,
    cell: &CellRef,
) -> Result<Option<Cell>, Error> {
    use crate::publication::PublishedPeriod;
    let quarter = publication.quarter;
    let period = PublishedPeriod::ALL
        .into_iter()
        .find(|p| p.label(quarter) == cell.period.label)
        .ok_or_else(|| {
            invalid(
                "period",
                &cell.period.label,
                format!(
                    "the publication of {quarter} holds the periods {} and {}",
                    PublishedPeriod::Quarter.label(quarter),
                    PublishedPeriod::YearToDate.label(quarter)
                ),
            )
        })?;
    let by = match &cell.codes {
        None => "",
        Some(Codes::Code(_)) => "code",
        Some(Codes::Group { .. }) => "group",
    };
    let table = publication
        .tables
        .iter()
        .find(|t| t.name == cell.table.name() && t.by == by && t.period == period.name())
        .ok_or_else(|| {
            invalid(
                "table",
                cell.table.name(),
                format!(
                    "the publication of {quarter} revision {} holds no such table (it was \
                     recorded before the table was published): explain it live or publish \
                     the quarter again",
                    publication.revision
                ),
            )
        })?;
    let key = cell.row();
    let column = table.columns.iter().position(|c| c == cell.measure);
    let row = table.rows.iter().find(|row| {
        row.len() >= key.len()
            && row
                .iter()
                .zip(&key)
                .all(|(c, k)| matches!(c, gryning_domain::PublishedCell::Text(t) if t == k))
    });
    Ok(match (row, column) {
        (Some(row), Some(j)) => row.get(j).map(|c| match c {
            gryning_domain::PublishedCell::Text(t) => Cell::Text(t.clone()),
            gryning_domain::PublishedCell::Int(n) => Cell::Int(*n),
            gryning_domain::PublishedCell::Float(x) => Cell::Float(*x),
            gryning_domain::PublishedCell::Null => Cell::Null,
        }),
        _ => None,
    })
}

/// Folds the events of `store` at positions 1 to `to` into a [`Log`].
pub async fn replay(store: &dyn EventStore, to: u64) -> Result<Log, crate::Error> {
    let mut log = Log::new();
    let mut after = 0u64;
    while after < to {
        let limit = BATCH_SIZE.min(usize::try_from(to - after).unwrap_or(usize::MAX));
        let batch = store.read_payloads(after, limit).await?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (position, payload) in &batch {
            if *position > to {
                break;
            }
            let event =
                gryning_proto::decode_event(payload).map_err(|source| crate::Error::Decode {
                    position: *position,
                    source,
                })?;
            log.apply(*position, &event);
        }
        after = last;
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_bad_ones_name_the_field() {
        let p = Period::parse("2020").unwrap();
        assert_eq!((p.first, p.last), (2020 * 4, 2020 * 4 + 3));
        let p = Period::parse("2020-Q3").unwrap();
        assert_eq!((p.first, p.last), (2020 * 4 + 2, 2020 * 4 + 2));
        let p = Period::parse("2020-Q1..Q3").unwrap();
        assert_eq!((p.first, p.last), (2020 * 4, 2020 * 4 + 2));
        assert_eq!(p.last_day(), Date::parse("2020-09-30").unwrap(), "{p:?}");
        for bad in [
            "",
            "20",
            "2020-Q5",
            "2020Q4",
            "2020-Q3..Q1",
            "2020-Q1..",
            "x2020",
        ] {
            let e = Period::parse(bad).unwrap_err();
            assert_eq!(e.field, "period", "{bad}");
        }
    }

    /// A publication recorded before `social-services` existed holds no such table: the
    /// request names the table; a held table gives its value, or none for a missing row.
    #[test]
    fn a_publication_without_the_table_says_so() {
        use gryning_domain::{Publication, PublishedCell, PublishedTable, Quarter};
        let catalogue = Catalogue::default_catalogue();
        let quarter = Quarter::parse("2020-Q4").unwrap();
        let cell = |table: &str, measure: &str, code: &str| {
            CellRef::parse(
                &Request {
                    table: table.into(),
                    period: "2020-Q4".into(),
                    code: code.into(),
                    service: if code.is_empty() {
                        "SUPPORT_TALKS".into()
                    } else {
                        String::new()
                    },
                    victim_gender: if code.is_empty() {
                        "MALE".into()
                    } else {
                        String::new()
                    },
                    age_group: if code.is_empty() {
                        "ADULT".into()
                    } else {
                        String::new()
                    },
                    measure: measure.into(),
                    ..Request::default()
                },
                &catalogue,
            )
            .unwrap()
        };
        let text = |t: &str| PublishedCell::Text(t.into());
        let old = Publication {
            quarter,
            revision: 1,
            position: 9,
            catalogue_version: "2020.1".into(),
            catalogue_sha256: "0".repeat(64),
            published_at: String::new(),
            principal: "test".into(),
            note: String::new(),
            automatic: false,
            tables: vec![PublishedTable {
                name: "case-flow".into(),
                by: "code".into(),
                period: "quarter".into(),
                columns: ["period", "code", "reported", "cases", "referred"]
                    .map(String::from)
                    .to_vec(),
                rows: vec![vec![
                    text("2020-Q4"),
                    text("9365"),
                    PublishedCell::Int(3),
                    PublishedCell::Int(1),
                    PublishedCell::Int(0),
                ]],
            }],
        };
        let e = published_value(&old, &cell("social-services", "count", "")).unwrap_err();
        assert_eq!(e.field, "table", "{e}");
        assert!(e.to_string().contains("holds no such table"), "{e}");
        assert_eq!(
            published_value(&old, &cell("case-flow", "reported", "9365")).unwrap(),
            Some(Cell::Int(3))
        );
        assert_eq!(
            published_value(&old, &cell("case-flow", "reported", "4024")).unwrap(),
            None
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let catalogue = Catalogue::default_catalogue();
        let ok = Request {
            table: "clearance".into(),
            period: "2020".into(),
            code: "9365".into(),
            measure: "percent".into(),
            ..Request::default()
        };
        assert!(CellRef::parse(&ok, &catalogue).is_ok());
        let check = |r: Request, field: &str| {
            let e = CellRef::parse(&r, &catalogue).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().starts_with(&format!("field {field}:")), "{e}");
        };
        check(
            Request {
                table: "nope".into(),
                ..ok.clone()
            },
            "table",
        );
        check(
            Request {
                period: "2020-Q5".into(),
                ..ok.clone()
            },
            "period",
        );
        check(
            Request {
                code: "12".into(),
                ..ok.clone()
            },
            "code",
        );
        check(
            Request {
                code: "9999".into(),
                ..ok.clone()
            },
            "code",
        );
        check(
            Request {
                code: String::new(),
                ..ok.clone()
            },
            "code",
        );
        check(
            Request {
                group: "Brott i nära relation".into(),
                ..ok.clone()
            },
            "group",
        );
        check(
            Request {
                code: String::new(),
                group: "Nope".into(),
                ..ok.clone()
            },
            "group",
        );
        check(
            Request {
                victim_gender: "X".into(),
                ..ok.clone()
            },
            "victim_gender",
        );
        check(
            Request {
                measure: "reported".into(),
                ..ok.clone()
            },
            "measure",
        );
        check(
            Request {
                service: "SUPPORT_TALKS".into(),
                ..ok.clone()
            },
            "service",
        );
        check(
            Request {
                table: "care".into(),
                measure: "programmes_started".into(),
                ..ok.clone()
            },
            "code",
        );
        let social = Request {
            table: "social-services".into(),
            period: "2020".into(),
            service: "SUPPORT_TALKS".into(),
            victim_gender: "MALE".into(),
            age_group: "ADULT".into(),
            measure: "count".into(),
            ..Request::default()
        };
        assert!(CellRef::parse(&social, &catalogue).is_ok());
        check(
            Request {
                age_group: "OLD".into(),
                ..social.clone()
            },
            "age_group",
        );
        check(
            Request {
                service: "HOUSING".into(),
                ..social.clone()
            },
            "service",
        );
        check(
            Request {
                local_police_area: "Farsta".into(),
                ..social.clone()
            },
            "local_police_area",
        );
        check(
            Request {
                measure: "median_days_to_notification".into(),
                ..social.clone()
            },
            "measure",
        );
        check(
            Request {
                service: "CHILD_WELFARE_NOTIFICATION".into(),
                ..social.clone()
            },
            "local_police_area",
        );
    }
}
