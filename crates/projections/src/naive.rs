//! Recomputes every table from the complete list of events, straight from the definitions:
//! first fold each case, crime and programme to its final form, then count. No incremental
//! bookkeeping, no quarter-to-year summing, no histograms: it exists to check [`crate::Projections`]
//! against (tests compare the two on random event sequences), and is too slow for real use.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gryning_domain::{
    Body, Catalogue, CrimeCode, Date, Event, Gender, ProsecutionDecision, Subject,
    TreatmentOutcome, Uuid,
};

use crate::period::{label, median_sorted};
use crate::query::{columns, key_label, keys_of, push_care_row, push_rows, CareCounts, Counts};
use crate::table::{By, PeriodKind, Table, TableName};

struct Case {
    opened: Date,
    lead: CrimeCode,
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
    let mut cases: HashMap<Uuid, Case> = HashMap::new();
    let mut crimes: Vec<Crime> = Vec::new();
    let mut crime_at: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    let mut care_events: Vec<(Date, &Body)> = Vec::new();
    // Per client, its programmes as (start, end) in stream order.
    let mut programmes: HashMap<Uuid, Vec<(Date, Option<Date>)>> = HashMap::new();

    for (at, event) in events.iter().enumerate() {
        let date = event.occurred_on;
        let (case_id, client_id) = match event.subject {
            Subject::Case(id) => (Some(id), None),
            Subject::Client(id) => (None, Some(id)),
        };
        let case_key = case_id.unwrap_or_default();
        match &event.body {
            Body::CaseOpened {
                lead_crime_code, ..
            } => {
                if let Some(id) = case_id {
                    cases.entry(id).or_insert(Case {
                        opened: date,
                        lead: *lead_crime_code,
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
            Body::ContractCareProposed => care_events.push((date, &event.body)),
            Body::ChildWelfareNotified | Body::SupportGranted { .. } => {}
        }
    }

    let mut rows = Vec::new();
    let dates = events.iter().map(|e| e.occurred_on);
    let (Some(first), Some(last)) = (dates.clone().min(), dates.max()) else {
        return Table {
            name: name.name().to_string(),
            columns: columns(name, by),
            rows,
        };
    };
    let is_year = period == PeriodKind::Year;
    let of = |date: Date| period_of(period, date);

    if name == TableName::Care {
        for p in of(first)..=of(last) {
            let end = last_day(period, p);
            let mut c = CareCounts::default();
            for (date, body) in &care_events {
                if of(*date) != p {
                    continue;
                }
                match body {
                    Body::ContractCareProposed => c.proposed += 1,
                    Body::TreatmentProgrammeStarted { .. } => c.started += 1,
                    Body::TreatmentProgrammeEnded {
                        outcome: TreatmentOutcome::Completed,
                    } => c.completed += 1,
                    Body::TreatmentProgrammeEnded {
                        outcome: TreatmentOutcome::Discontinued,
                    } => c.discontinued += 1,
                    _ => {}
                }
            }
            c.continuing = programmes
                .values()
                .flatten()
                .filter(|(start, stop)| *start <= end && stop.is_none_or(|stop| stop > end))
                .count() as i64;
            push_care_row(&label(is_year, p), &c, &mut rows);
        }
        return Table {
            name: name.name().to_string(),
            columns: columns(name, by),
            rows,
        };
    }

    #[derive(Default)]
    struct Acc {
        counts: Counts,
        to_referral: Vec<i32>,
        to_decision: Vec<i32>,
    }
    let mut acc: BTreeMap<(i32, u32), Acc> = BTreeMap::new();
    let keys = |code: CrimeCode| keys_of(by, code.number(), catalogue);

    for case in cases.values() {
        for key in keys(case.lead) {
            acc.entry((of(case.opened), key)).or_default().counts.cases += 1;
        }
        let periods: BTreeSet<i32> = case.referrals.iter().map(|&(_, d)| of(d)).collect();
        for p in periods {
            for key in keys(case.lead) {
                acc.entry((p, key)).or_default().counts.referred_cases += 1;
            }
        }
    }
    for crime in &crimes {
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
        for key in keys(crime.code) {
            let cohort = acc.entry((of(crime.reported), key)).or_default();
            cohort.counts.reported += 1;
            if let Some(referred) = referral {
                cohort.counts.cohort_referred += 1;
                cohort
                    .to_referral
                    .push(referred.days() - crime.reported.days());
            }
            if let Some((decided, decision)) = crime.decision {
                let clears = matches!(decision, Decision::Prosecution(d) if d.clears());
                cohort.counts.cohort_decided += 1;
                cohort.counts.cohort_cleared += i64::from(clears);
                if let (Decision::Prosecution(_), Some(referred)) = (decision, referral) {
                    cohort.to_decision.push(decided.days() - referred.days());
                }
                let handled = acc.entry((of(decided), key)).or_default();
                handled.counts.handled[gender] += 1;
                handled.counts.cleared[gender] += i64::from(clears);
            }
        }
    }
    for ((p, key), mut a) in acc {
        a.to_referral.sort_unstable();
        a.to_decision.sort_unstable();
        a.counts.median_to_referral = median_sorted(&a.to_referral);
        a.counts.median_to_decision = median_sorted(&a.to_decision);
        push_rows(
            name,
            &label(is_year, p),
            &key_label(by, key, catalogue),
            &a.counts,
            &mut rows,
        );
    }
    Table {
        name: name.name().to_string(),
        columns: columns(name, by),
        rows,
    }
}
