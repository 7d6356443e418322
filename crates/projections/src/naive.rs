//! Recomputes every table from the complete list of events, straight from the definitions:
//! first fold each case, crime and programme to its final form, then count. No incremental
//! bookkeeping, no quarter-to-year summing, no histograms: it exists to check [`crate::Projections`]
//! against (tests compare the two on random event sequences), and is too slow for real use.
//!
//! It shares nothing with the real path past the domain types: it finds a code's groups by
//! reading each group's list of codes in the catalogue (not the catalogue's code-to-groups
//! index), and keeps its own row values, columns, labels, medians, percents and rules for which
//! rows are shown, so a mistake in either path's grouping or layout makes the two tables differ.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gryning_domain::{
    AgeGroup, Body, Catalogue, CrimeCode, Date, Event, Gender, ProsecutionDecision, Subject,
    SupportKind, TreatmentOutcome, Uuid,
};

use crate::table::{By, Cell, PeriodKind, Table, TableName};

struct Case {
    opened: Date,
    lead: CrimeCode,
    region: String,
    area: String,
    /// (index of the event in the list, date) of every referral.
    referrals: Vec<(usize, Date)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Decision {
    Closed,
    Prosecution(ProsecutionDecision),
}

struct Crime {
    case: Uuid,
    reported_at: usize,
    reported: Date,
    code: CrimeCode,
    gender: Gender,
    decision: Option<(Date, Decision)>,
}

/// A period number: the year, or `year * 4 + quarter - 1`.
fn period_of(kind: PeriodKind, date: Date) -> i32 {
    let (year, month, _) = date.ymd();
    match kind {
        PeriodKind::Year => year,
        PeriodKind::Quarter => year * 4 + (month as i32 - 1) / 3,
    }
}

fn last_day(kind: PeriodKind, period: i32) -> Date {
    let next_start = match kind {
        PeriodKind::Year => Date::from_ymd(period + 1, 1, 1),
        PeriodKind::Quarter => {
            let next = period + 1;
            Date::from_ymd(next.div_euclid(4), (next.rem_euclid(4) * 3 + 1) as u32, 1)
        }
    };
    next_start.expect("a valid first day").add_days(-1)
}

/// The table `name` over `events`, given in position order (which is each stream's order).
pub fn table(
    events: &[Event],
    name: TableName,
    by: By,
    period: PeriodKind,
    catalogue: &Catalogue,
) -> Table {
    region_table(events, name, by, period, catalogue, None)
}

/// [`table`] of the cases whose `CaseOpened.police_region` is exactly `region` (`None`: every
/// case). Contract-care proposals count by their case's region; with a region, the programme
/// columns of `care` are null (clients carry no region).
pub fn region_table(
    events: &[Event],
    name: TableName,
    by: By,
    period: PeriodKind,
    catalogue: &Catalogue,
    region: Option<&str>,
) -> Table {
    if name == TableName::RegionComparison {
        return region_comparison(events, by, period, catalogue, region);
    }
    let mut cases: HashMap<Uuid, Case> = HashMap::new();
    let mut crimes: Vec<Crime> = Vec::new();
    let mut crime_at: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    let mut care_events: Vec<(Date, &Body)> = Vec::new();
    // Per client, its programmes as (start, end) in stream order.
    let mut programmes: HashMap<Uuid, Vec<(Date, Option<Date>)>> = HashMap::new();
    // Child-welfare notifications as (date, case), and support as (date, kind, gender, age).
    let mut notifications: Vec<(Date, Uuid)> = Vec::new();
    let mut support: Vec<(Date, SupportKind, Gender, AgeGroup)> = Vec::new();

    for (at, event) in events.iter().enumerate() {
        let date = event.occurred_on;
        let (case_id, client_id) = match event.subject {
            Subject::Case(id) => (Some(id), None),
            Subject::Client(id) => (None, Some(id)),
            // Publications are not case data.
            Subject::Publication(_) | Subject::Retention => continue,
        };
        let case_key = case_id.unwrap_or_default();
        match &event.body {
            Body::CaseOpened {
                lead_crime_code,
                police_region,
                local_police_area,
                ..
            } => {
                if let Some(id) = case_id {
                    cases.entry(id).or_insert(Case {
                        opened: date,
                        lead: *lead_crime_code,
                        region: police_region.clone(),
                        area: local_police_area.clone(),
                        referrals: vec![],
                    });
                }
            }
            Body::CrimeReported {
                crime_id,
                crime_code,
                victim_gender,
                ..
            } => {
                if case_id.is_some_and(|id| cases.contains_key(&id))
                    && !crime_at.contains_key(&(case_key, *crime_id))
                {
                    crime_at.insert((case_key, *crime_id), crimes.len());
                    crimes.push(Crime {
                        case: case_key,
                        reported_at: at,
                        reported: date,
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
                if let Some(&i) = crime_at.get(&(case_key, *crime_id)) {
                    crimes[i].code = *crime_code;
                }
            }
            Body::CaseReclassified { lead_crime_code } => {
                if let Some(case) = cases.get_mut(&case_key) {
                    case.lead = *lead_crime_code;
                }
            }
            Body::CaseReferredToProsecutor => {
                if let Some(case) = cases.get_mut(&case_key) {
                    case.referrals.push((at, date));
                }
            }
            Body::InvestigationClosed { crime_ids, .. } => {
                for crime_id in crime_ids {
                    if let Some(&i) = crime_at.get(&(case_key, *crime_id)) {
                        crimes[i].decision = Some((date, Decision::Closed));
                    }
                }
            }
            Body::ProsecutionDecided { crime_id, decision } => {
                if let Some(&i) = crime_at.get(&(case_key, *crime_id)) {
                    crimes[i].decision = Some((date, Decision::Prosecution(*decision)));
                }
            }
            Body::TreatmentProgrammeStarted { .. } => {
                programmes
                    .entry(client_id.unwrap_or_default())
                    .or_default()
                    .push((date, None));
                care_events.push((date, &event.body));
            }
            Body::TreatmentProgrammeEnded { .. } => {
                if let Some(last) = programmes
                    .entry(client_id.unwrap_or_default())
                    .or_default()
                    .last_mut()
                {
                    last.1 = Some(date);
                }
                care_events.push((date, &event.body));
            }
            Body::ContractCareProposed => {
                let in_region = region.is_none_or(|r| {
                    case_id
                        .and_then(|id| cases.get(&id))
                        .is_some_and(|c| c.region == r)
                });
                if in_region {
                    care_events.push((date, &event.body));
                }
            }
            Body::ChildWelfareNotified => {
                if cases.contains_key(&case_key) {
                    notifications.push((date, case_key));
                }
            }
            Body::SupportGranted {
                kind,
                gender,
                age_group,
            } => support.push((date, *kind, *gender, *age_group)),
            // The naive recomputation knows events only; retention's aggregates are checked
            // against it through the tables of the log before erasure (tests/retention.rs).
            Body::TablesPublished(_) | Body::StreamsErased(_) => {}
        }
    }

    if name == TableName::SocialServices {
        return social_services(period, &cases, &notifications, &support);
    }

    let is_year = period == PeriodKind::Year;
    let of = |date: Date| period_of(period, date);
    let mut rows = Vec::new();
    let dates = || {
        events
            .iter()
            .filter(|e| !e.body.is_publication())
            .map(|e| e.occurred_on)
    };
    let (Some(first), Some(last)) = (dates().min(), dates().max()) else {
        return Table {
            name: name.name().to_string(),
            columns: columns_of(name, by),
            rows,
        };
    };

    if name == TableName::Care {
        for p in of(first)..=of(last) {
            let end = last_day(period, p);
            let in_period = |kind: fn(&Body) -> bool| {
                care_events
                    .iter()
                    .filter(|(date, body)| of(*date) == p && kind(body))
                    .count() as i64
            };
            let row = CareRow {
                proposed: in_period(|b| matches!(b, Body::ContractCareProposed)),
                started: in_period(|b| matches!(b, Body::TreatmentProgrammeStarted { .. })),
                completed: in_period(|b| {
                    matches!(
                        b,
                        Body::TreatmentProgrammeEnded {
                            outcome: TreatmentOutcome::Completed
                        }
                    )
                }),
                discontinued: in_period(|b| {
                    matches!(
                        b,
                        Body::TreatmentProgrammeEnded {
                            outcome: TreatmentOutcome::Discontinued
                        }
                    )
                }),
                continuing: programmes
                    .values()
                    .flatten()
                    .filter(|(start, stop)| *start <= end && stop.is_none_or(|stop| stop > end))
                    .count() as i64,
            };
            let counts = [
                row.proposed,
                row.started,
                row.completed,
                row.discontinued,
                row.continuing,
            ];
            if region.is_some() {
                if row.proposed != 0 {
                    rows.push(vec![
                        Cell::Text(period_label(is_year, p)),
                        Cell::Int(row.proposed),
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                    ]);
                }
            } else if counts.iter().any(|&n| n != 0) {
                let mut cells = vec![Cell::Text(period_label(is_year, p))];
                cells.extend(counts.map(Cell::Int));
                rows.push(cells);
            }
        }
        return Table {
            name: name.name().to_string(),
            columns: columns_of(name, by),
            rows,
        };
    }

    // Rows by (period, the key's place in the table's order); each holds its label.
    let mut acc: BTreeMap<(i32, u32), (String, CodeRow)> = BTreeMap::new();
    fn row<'a>(
        acc: &'a mut BTreeMap<(i32, u32), (String, CodeRow)>,
        p: i32,
        (rank, label): &(u32, String),
    ) -> &'a mut CodeRow {
        &mut acc
            .entry((p, *rank))
            .or_insert_with(|| (label.clone(), CodeRow::default()))
            .1
    }

    let in_region = |case: &Case| region.is_none_or(|r| case.region == r);
    for case in cases.values().filter(|c| in_region(c)) {
        // Under a classification a lead code (no victim) is read as `classify_lead` gives it.
        for key in row_keys(by, catalogue.classify_lead(case.lead), catalogue) {
            row(&mut acc, of(case.opened), &key).cases += 1;
            let periods: BTreeSet<i32> = case.referrals.iter().map(|&(_, d)| of(d)).collect();
            for p in periods {
                row(&mut acc, p, &key).referred_cases += 1;
            }
        }
    }
    for crime in crimes.iter().filter(|c| in_region(&cases[&c.case])) {
        let gender = Gender::ALL
            .iter()
            .position(|&g| g == crime.gender)
            .expect("a gender");
        // The first referral of the case after the report, in stream order.
        let referral = cases[&crime.case]
            .referrals
            .iter()
            .find(|&&(at, _)| at > crime.reported_at)
            .map(|&(_, date)| date);
        // Under a classification a crime counts under its code for its victim's gender.
        for key in row_keys(by, catalogue.classify(crime.code, crime.gender), catalogue) {
            let cohort = row(&mut acc, of(crime.reported), &key);
            cohort.reported += 1;
            if let Some(referred) = referral {
                cohort.cohort_referred += 1;
                cohort
                    .to_referral
                    .push(referred.days() - crime.reported.days());
            }
            if let Some((decided, decision)) = crime.decision {
                let clears = matches!(decision, Decision::Prosecution(d) if d.clears());
                cohort.cohort_decided += 1;
                cohort.cohort_cleared += i64::from(clears);
                if let (Decision::Prosecution(_), Some(referred)) = (decision, referral) {
                    cohort.to_decision.push(decided.days() - referred.days());
                }
                let handled = row(&mut acc, of(decided), &key);
                handled.handled[gender] += 1;
                handled.cleared[gender] += i64::from(clears);
            }
        }
    }
    for ((p, _), (key, r)) in acc {
        let period = Cell::Text(period_label(is_year, p));
        let key = Cell::Text(key);
        match name {
            TableName::CaseFlow => {
                if r.reported != 0 || r.cases != 0 || r.referred_cases != 0 {
                    rows.push(vec![
                        period,
                        key,
                        Cell::Int(r.reported),
                        Cell::Int(r.cases),
                        Cell::Int(r.referred_cases),
                    ]);
                }
            }
            TableName::Clearance => {
                let mut lines = vec![(
                    "ALL",
                    r.handled.iter().sum::<i64>(),
                    r.cleared.iter().sum::<i64>(),
                )];
                for (i, g) in Gender::ALL.iter().enumerate() {
                    lines.push((g.table_name(), r.handled[i], r.cleared[i]));
                }
                for (gender, handled, cleared) in lines {
                    if handled == 0 {
                        continue;
                    }
                    rows.push(vec![
                        period.clone(),
                        key.clone(),
                        Cell::Text(gender.to_string()),
                        Cell::Int(handled),
                        Cell::Int(cleared),
                        Cell::Float(cleared as f64 * 100.0 / handled as f64),
                    ]);
                }
            }
            TableName::Progress => {
                let open = r.reported - r.cohort_decided;
                if r.reported != 0 || r.cohort_referred != 0 || r.cohort_decided != 0 {
                    rows.push(vec![
                        period,
                        key,
                        Cell::Int(r.reported),
                        Cell::Int(r.reported),
                        Cell::Int(r.cohort_referred),
                        Cell::Int(r.cohort_decided),
                        Cell::Int(r.cohort_cleared),
                        Cell::Int(open),
                        median(r.to_referral),
                        median(r.to_decision),
                    ]);
                }
            }
            TableName::Care | TableName::SocialServices | TableName::RegionComparison => {
                unreachable!("answered above")
            }
        }
    }
    Table {
        name: name.name().to_string(),
        columns: columns_of(name, by),
        rows,
    }
}

/// The values of one (period, code or group) row.
#[derive(Default)]
struct CodeRow {
    reported: i64,
    cases: i64,
    referred_cases: i64,
    /// Per gender, in `Gender::ALL` order.
    handled: [i64; 3],
    cleared: [i64; 3],
    cohort_referred: i64,
    cohort_decided: i64,
    cohort_cleared: i64,
    /// Days from report to referral, and from referral to a prosecution decision, one per crime.
    to_referral: Vec<i32>,
    to_decision: Vec<i32>,
}

struct CareRow {
    proposed: i64,
    started: i64,
    completed: i64,
    discontinued: i64,
    continuing: i64,
}

/// The rows a crime code counts under, as (place in the table's order, label): the code itself,
/// or every group whose list of codes holds it, in catalogue order (groups may overlap).
fn row_keys(by: By, code: CrimeCode, catalogue: &Catalogue) -> Vec<(u32, String)> {
    match by {
        By::Code => vec![(u32::from(code.number()), code.to_string())],
        By::Group => catalogue
            .groups()
            .iter()
            .enumerate()
            .filter(|(_, group)| group.codes.contains(&code))
            .map(|(i, group)| (i as u32, group.name.clone()))
            .collect(),
    }
}

fn columns_of(name: TableName, by: By) -> Vec<&'static str> {
    let key = match by {
        By::Code => "code",
        By::Group => "group",
    };
    match name {
        TableName::CaseFlow => vec!["period", key, "reported", "cases", "referred"],
        TableName::Clearance => vec![
            "period",
            key,
            "victim_gender",
            "handled",
            "cleared",
            "percent",
        ],
        TableName::Care => vec![
            "period",
            "contract_care_proposed",
            "programmes_started",
            "programmes_completed",
            "programmes_discontinued",
            "programmes_continuing",
        ],
        TableName::RegionComparison => vec![
            "period",
            key,
            "victim_gender",
            "region",
            "handled",
            "cleared",
            "percent",
            "median_percent",
            "regions_in_median",
            "verdict",
        ],
        TableName::Progress => vec![
            "period",
            key,
            "reported",
            "in_case",
            "referred",
            "decided",
            "cleared",
            "open",
            "median_days_to_referral",
            "median_days_to_decision",
        ],
        TableName::SocialServices => vec![
            "period",
            "service",
            "local_police_area",
            "gender",
            "age_group",
            "count",
            "median_days_to_notification",
        ],
    }
}

/// The `social-services` table: per period, a row per local police area with child-welfare
/// notifications (and the median days from the case's opening to them), then a row per
/// support kind × gender × age group with support granted; rows with a count only.
fn social_services(
    period: PeriodKind,
    cases: &HashMap<Uuid, Case>,
    notifications: &[(Date, Uuid)],
    support: &[(Date, SupportKind, Gender, AgeGroup)],
) -> Table {
    let is_year = period == PeriodKind::Year;
    // (period, service rank, area, gender rank, age rank) → days of each notification, or one
    // entry per support granted.
    let mut acc: BTreeMap<(i32, u8, String, u8, u8), Vec<i32>> = BTreeMap::new();
    for (date, case) in notifications {
        let case = &cases[case];
        acc.entry((period_of(period, *date), 0, case.area.clone(), 9, 9))
            .or_default()
            .push(date.days() - case.opened.days());
    }
    for &(date, kind, gender, age) in support {
        let service = match kind {
            SupportKind::ProtectedHousing => 1,
            SupportKind::SupportTalks => 2,
            SupportKind::Other => 3,
        };
        let gender = match gender {
            Gender::Female => 0,
            Gender::Male => 1,
            Gender::Unknown => 2,
        };
        let age = match age {
            AgeGroup::Child => 0,
            AgeGroup::Adult => 1,
            AgeGroup::Unknown => 2,
        };
        acc.entry((period_of(period, date), service, "ALL".into(), gender, age))
            .or_default()
            .push(0);
    }
    let services = [
        "CHILD_WELFARE_NOTIFICATION",
        "PROTECTED_HOUSING",
        "SUPPORT_TALKS",
        "OTHER_SUPPORT",
    ];
    let genders = ["FEMALE", "MALE", "UNKNOWN"];
    let ages = ["CHILD", "ADULT", "UNKNOWN"];
    let mut rows = Vec::new();
    for ((p, service, area, gender, age), days) in acc {
        fn name(names: &[&'static str], i: u8) -> &'static str {
            names.get(usize::from(i)).copied().unwrap_or("ALL")
        }
        rows.push(vec![
            Cell::Text(period_label(is_year, p)),
            Cell::Text(services[usize::from(service)].to_string()),
            Cell::Text(area),
            Cell::Text(name(&genders, gender).to_string()),
            Cell::Text(name(&ages, age).to_string()),
            Cell::Int(days.len() as i64),
            if service == 0 {
                median(days)
            } else {
                Cell::Null
            },
        ]);
    }
    Table {
        name: TableName::SocialServices.name().to_string(),
        columns: columns_of(TableName::SocialServices, By::Code),
        rows,
    }
}

/// "2020", or "2020-Q1" for the period number `2020 * 4`.
fn period_label(is_year: bool, p: i32) -> String {
    if is_year {
        p.to_string()
    } else {
        format!("{}-Q{}", p.div_euclid(4), p.rem_euclid(4) + 1)
    }
}

/// The middle value, or the mean of the middle two; null for no values.
fn median(mut values: Vec<i32>) -> Cell {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return Cell::Null;
    }
    let (a, b) = (values[(n - 1) / 2], values[n / 2]);
    Cell::Float((f64::from(a) + f64::from(b)) / 2.0)
}

/// `region-comparison` from each region's own naive `clearance` table: the regions are those
/// the cases were opened in; for each (period, key, victim gender) the regions with at least 10
/// handled crimes qualify, their median rate is given when at least 3 qualify, and a qualifying
/// region's verdict is `above` / `below` beyond 2 points from it, `in line` otherwise.
fn region_comparison(
    events: &[Event],
    by: By,
    period: PeriodKind,
    catalogue: &Catalogue,
    only: Option<&str>,
) -> Table {
    let mut region_of: HashMap<Uuid, &str> = HashMap::new();
    for event in events {
        if let (Subject::Case(id), Body::CaseOpened { police_region, .. }) =
            (event.subject, &event.body)
        {
            region_of.entry(id).or_insert(police_region.as_str());
        }
    }
    let regions: BTreeSet<&str> = region_of.values().copied().collect();
    let text = |cell: &Cell| match cell {
        Cell::Text(t) => t.clone(),
        other => panic!("a key cell is text, not {other:?}"),
    };
    let int = |cell: &Cell| match cell {
        Cell::Int(n) => *n,
        other => panic!("a count cell is an integer, not {other:?}"),
    };
    // (period, key's rank, key, gender's rank, gender) → region → (handled, cleared)
    type Line = (String, u32, String, usize, String);
    let mut lines: BTreeMap<Line, Vec<(&str, i64, i64)>> = BTreeMap::new();
    let genders = ["ALL", "FEMALE", "MALE", "UNKNOWN"];
    for &region in &regions {
        let clearance = region_table(
            events,
            TableName::Clearance,
            by,
            period,
            catalogue,
            Some(region),
        );
        for row in clearance.rows {
            let key = text(&row[1]);
            let rank = match by {
                By::Code => key.parse::<u32>().expect("a four-digit code"),
                By::Group => catalogue
                    .groups()
                    .iter()
                    .position(|g| g.name == key)
                    .expect("a group of the catalogue") as u32,
            };
            let gender = text(&row[2]);
            let gender_rank = genders.iter().position(|g| *g == gender).expect("a gender");
            lines
                .entry((text(&row[0]), rank, key, gender_rank, gender))
                .or_default()
                .push((region, int(&row[3]), int(&row[4])));
        }
    }
    let region_rank = |name: &str| {
        let police = [
            "Polisregion Nord",
            "Polisregion Mitt",
            "Polisregion Bergslagen",
            "Polisregion Stockholm",
            "Polisregion Öst",
            "Polisregion Väst",
            "Polisregion Syd",
        ];
        (
            police.iter().position(|p| *p == name).unwrap_or(7),
            name.to_string(),
        )
    };
    let mut rows = Vec::new();
    for ((period, _, key, _, gender), mut members) in lines {
        let mut rates: Vec<f64> = members
            .iter()
            .filter(|(_, handled, _)| *handled >= 10)
            .map(|&(_, handled, cleared)| cleared as f64 * 100.0 / handled as f64)
            .collect();
        rates.sort_by(|a, b| a.partial_cmp(b).expect("rates are numbers"));
        let n = rates.len();
        let median = (n >= 3).then(|| (rates[(n - 1) / 2] + rates[n / 2]) / 2.0);
        members.sort_by_key(|(region, _, _)| region_rank(region));
        for (region, handled, cleared) in members {
            if only.is_some_and(|o| o != region) {
                continue;
            }
            let percent = cleared as f64 * 100.0 / handled as f64;
            let verdict = match median {
                Some(m) if handled >= 10 => Cell::Text(
                    // The same floating-point comparisons as the rule's statement, so that a
                    // rate exactly at the margin is judged alike.
                    if percent > m + 2.0 {
                        "above"
                    } else if percent < m - 2.0 {
                        "below"
                    } else {
                        "in line"
                    }
                    .to_string(),
                ),
                _ => Cell::Null,
            };
            rows.push(vec![
                Cell::Text(period.clone()),
                Cell::Text(key.clone()),
                Cell::Text(gender.clone()),
                Cell::Text(region.to_string()),
                Cell::Int(handled),
                Cell::Int(cleared),
                Cell::Float(percent),
                median.map_or(Cell::Null, Cell::Float),
                Cell::Int(n as i64),
                verdict,
            ]);
        }
    }
    Table {
        name: TableName::RegionComparison.name().to_string(),
        columns: columns_of(TableName::RegionComparison, by),
        rows,
    }
}
