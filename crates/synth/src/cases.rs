//! One copy of the police case flow: cases with their crimes planned first (who leads, which
//! crimes sit where, which cases reach the prosecutor, how each crime ends), then written out as
//! case events dated within their case's year. Planning before writing is what lets the published
//! counts come out exactly while the details (dates, victims, reclassifications, superseded
//! decisions) stay random.

use std::collections::HashMap;

use gryning_domain::{
    AgeGroup, Body, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision, Subject,
    Uuid,
};

use crate::plan::{ClearanceTarget, Plan};
use crate::rng::Rng;

pub const POLICE_REGION: &str = "Polisregion Stockholm";

/// A police region as the generator writes it: its name and its local police areas
/// (lokalpolisområden), weighted roughly by population, with the areas of the child-welfare
/// notification pilot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub name: &'static str,
    pub areas: &'static [(&'static str, u32)],
    pub pilot_areas: &'static [&'static str],
}

pub(crate) const STOCKHOLM: Region = Region {
    name: POLICE_REGION,
    areas: AREAS,
    pilot_areas: &PILOT_AREAS,
};

/// Local police areas (lokalpolisområden) of Stockholm county, weighted roughly by population.
const AREAS: &[(&str, u32)] = &[
    ("Norrmalm", 8),
    ("Södermalm", 9),
    ("Västerort", 7),
    ("Järva", 9),
    ("Farsta", 7),
    ("Skärholmen", 6),
    ("Botkyrka", 7),
    ("Huddinge", 7),
    ("Haninge/Nynäshamn", 6),
    ("Nacka", 7),
    ("Södertälje", 8),
    ("Jakobsberg", 5),
    ("Solna", 5),
    ("Sollentuna", 4),
    ("Täby", 5),
    ("Norrtälje", 3),
];

/// The areas of the child-welfare notification pilot, where police notify social services far
/// more often.
const PILOT_AREAS: [&str; 2] = ["Farsta", "Skärholmen"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Open,
    Closed(ClosureReason),
    Decided(ProsecutionDecision),
}

struct Crime {
    id: Uuid,
    /// Final (current) code.
    code: CrimeCode,
    /// Codes the crime carried before its final one, oldest first; empty if never reclassified.
    earlier_codes: Vec<CrimeCode>,
    gender: Gender,
    age: AgeGroup,
    outcome: Outcome,
    /// A decision recorded before the final one and replaced by it.
    superseded: Option<Outcome>,
}

struct Case {
    id: Uuid,
    year: i32,
    /// Final (current) lead code.
    lead: CrimeCode,
    /// The lead code the case was opened with, when later reclassified.
    opened_as: Option<CrimeCode>,
    area: &'static str,
    referred: bool,
    referred_twice: bool,
    child_welfare: bool,
    contract_care: bool,
    crimes: Vec<Crime>,
}

fn n(code: CrimeCode) -> u16 {
    code.number()
}

/// Victim profile of a code: shares of female and male victims (the rest unknown) and of
/// children. Follows the code texts: codes
/// "mot kvinna" have women victims, child codes children.
fn victim_profile(code: CrimeCode) -> (f64, f64, f64) {
    match n(code) {
        9365 | 9381 | 9382 | 412 | 4090 | 424 | 9627..=9642 => (0.97, 0.0, 0.0),
        9643..=9658 | 425 | 9369 => (0.0, 0.97, 0.0),
        648..=651 | 660..=663 | 9611..=9614 | 9659..=9674 => (0.86, 0.11, 0.0),
        9605 | 9606 | 9691..=9698 => (0.85, 0.12, 0.0),
        607 => (0.80, 0.12, 0.15),
        9301..=9348 | 450..=453 => (0.48, 0.47, 0.97),
        640..=643 | 652..=655 | 684..=699 | 9601..=9604 => (0.80, 0.17, 0.97),
        422 => (0.98, 0.0, 0.99),
        423 => (0.0, 0.98, 0.99),
        682 => (0.0, 0.90, 0.98),
        610 => (0.70, 0.25, 0.97),
        611 => (0.75, 0.20, 0.97),
        418 => (0.85, 0.05, 0.99),
        419 | 609 => (0.88, 0.02, 0.0),
        4024 => (0.80, 0.02, 0.0),
        411 => (0.55, 0.40, 0.0),
        9440 => (0.80, 0.18, 0.0),
        433 | 434 | 9469 => (0.90, 0.08, 0.40),
        9470 => (0.90, 0.08, 0.95),
        9595 | 9596 | 9599 => (0.96, 0.0, 0.80),
        1607 | 1608 | 1616 => (0.25, 0.15, 0.99),
        _ => (0.50, 0.45, 0.10),
    }
}

/// Where a code's crimes beyond one per own case are placed (lead codes of host cases), and
/// which share of them goes into referred host cases. Realistic co-occurrence, and it puts
/// crimes of codes with few referred cases of their own (0418, 0419, 0609) where a prosecutor
/// can decide on them.
fn hosting(code: CrimeCode) -> (&'static [u16], f64) {
    match n(code) {
        9365 => (&[9365, 412], 0.35),
        609 => (&[609, 4024], 0.9),
        419 => (&[419, 609, 4024], 0.4),
        418 => (&[418, 610, 611], 0.5),
        610 => (&[610, 611], 0.9),
        4024 => (&[4024], 0.7),
        4090 => (&[9365, 412, 4090], 0.2),
        9440 => (&[9365, 9381, 412], 0.2),
        1607 | 1616 => (&[611], 0.3),
        _ => (&[], 0.25),
    }
}

/// The code a crime of final code `code` may first have been reported under: a neighbouring
/// code that an investigation plausibly corrects (unknown perpetrator turns out to be the
/// partner, an attempt turns out completed, the victim's age is established).
fn neighbour(
    code: CrimeCode,
    catalogue_twin: impl Fn(CrimeCode) -> Option<CrimeCode>,
) -> Option<CrimeCode> {
    let to = |x: u16| CrimeCode::from_number(x);
    match n(code) {
        9365 | 9381 => to(365),
        9382 => to(355),
        412 => to(9365),
        411 => to(412),
        418 => to(419),
        419 => to(418),
        609 => to(4024),
        4024 => to(609),
        610 => to(611),
        611 => to(1607),
        682 => to(9601),
        660..=663 => to(648),
        9635..=9642 => to(9627),
        4090 => to(4086),
        _ => catalogue_twin(code),
    }
}

fn crime_decision(rng: &mut Rng, code: CrimeCode, clearing_only: bool) -> ProsecutionDecision {
    use ProsecutionDecision::*;
    // Sex purchase is mostly settled by summary penalty order; other crimes go to court.
    let weights: [u32; 4] = if n(code) == 4024 {
        [15, 55, 5, 25]
    } else {
        [48, 8, 6, 38]
    };
    let kinds = [
        Indictment,
        SummaryPenaltyOrder,
        WaiverOfProsecution,
        NoProsecution,
    ];
    let upto = if clearing_only { 3 } else { 4 };
    kinds[rng.weighted(&weights[..upto])]
}

fn closure_reason(rng: &mut Rng, after_referral: bool) -> ClosureReason {
    use ClosureReason::*;
    let kinds = [NotACrime, InsufficientEvidence, NoSuspect, Other];
    // A prosecutor closing a referred case rarely lacks a suspect.
    let weights: [u32; 4] = if after_referral {
        [15, 60, 0, 25]
    } else {
        [16, 50, 22, 12]
    };
    kinds[rng.weighted(&weights)]
}

fn natural_outcome(rng: &mut Rng, code: CrimeCode, referred: bool) -> Outcome {
    let x = rng.unit();
    if referred {
        if x < 0.72 {
            Outcome::Decided(crime_decision(rng, code, false))
        } else if x < 0.84 {
            Outcome::Closed(closure_reason(rng, true))
        } else {
            Outcome::Open
        }
    } else if x < 0.72 {
        Outcome::Closed(closure_reason(rng, false))
    } else {
        Outcome::Open
    }
}

/// Handled and cleared counts for a target: about 70 % of the candidates handled, the rounded
/// rate within 0.25 points of the published one, and no more cleared crimes than sit in referred
/// cases (only those can get a prosecution decision).
/// Handled and cleared counts as near a rate as a small volume allows: about 70 % of the
/// candidates handled (at least 12 where there are that many, so a region can be compared),
/// and of the handled counts from three quarters of that up, the one whose rounded rate lies
/// nearest `percent`; never more cleared than sit in referred cases.
fn nearest_split(percent: f64, candidates: usize, in_referred: usize) -> (usize, usize) {
    let desired = ((candidates * 7 + 5) / 10).max(candidates.min(12));
    let mut best = (0, 0, f64::INFINITY);
    for handled in (desired * 3 / 4).max(1)..=desired {
        let cleared = ((handled as f64 * percent / 100.0).round() as usize).min(in_referred);
        let error = (100.0 * cleared as f64 / handled as f64 - percent).abs();
        if error <= best.2 {
            best = (handled, cleared, error);
        }
    }
    (best.0, best.1)
}

fn handled_and_cleared(percent: f64, candidates: usize, in_referred: usize) -> (usize, usize) {
    let desired = (candidates * 7 + 5) / 10;
    for handled in (1..=desired).rev() {
        let cleared = (handled as f64 * percent / 100.0).round() as usize;
        if cleared <= in_referred
            && (100.0 * cleared as f64 / handled as f64 - percent).abs() < 0.25
        {
            return (handled, cleared);
        }
    }
    panic!("no handled/cleared split reaches {percent} % with {candidates} crimes, {in_referred} in referred cases")
}

pub(crate) struct CopyBuilder<'a> {
    plan: &'a Plan,
    rng: Rng,
    twin: &'a HashMap<CrimeCode, CrimeCode>,
    region: Region,
}

impl<'a> CopyBuilder<'a> {
    pub(crate) fn new(
        plan: &'a Plan,
        twin: &'a HashMap<CrimeCode, CrimeCode>,
        rng: Rng,
        region: Region,
    ) -> CopyBuilder<'a> {
        CopyBuilder {
            plan,
            rng,
            twin,
            region,
        }
    }

    pub(crate) fn into_rng(self) -> Rng {
        self.rng
    }

    fn crime(&mut self, code: CrimeCode, referred: bool) -> Crime {
        let (female, male, child) = victim_profile(code);
        let g = self.rng.unit();
        let gender = if g < female {
            Gender::Female
        } else if g < female + male {
            Gender::Male
        } else {
            Gender::Unknown
        };
        let a = self.rng.unit();
        // Child codes name the age in the code itself, so their other victims are of unknown
        // age (not recorded), never adults; elsewhere a sliver of ages is unknown.
        let age = if a < child {
            AgeGroup::Child
        } else if child < 0.5 && a < child + (1.0 - child) * 0.98 {
            AgeGroup::Adult
        } else {
            AgeGroup::Unknown
        };
        let twin = self.twin;
        let mut earlier_codes = Vec::new();
        if self.rng.chance(0.07) {
            if let Some(first) = neighbour(code, |c| twin.get(&c).copied()) {
                earlier_codes.push(first);
                // Now and then the first correction is wrong too and is corrected again.
                if self.rng.chance(0.1) {
                    let middle = twin
                        .get(&first)
                        .filter(|&&m| m != code)
                        .or(twin.get(&code).filter(|&&m| m != first));
                    if let Some(&middle) = middle {
                        earlier_codes.push(middle);
                    }
                }
            }
        }
        let outcome = natural_outcome(&mut self.rng, code, referred);
        Crime {
            id: self.rng.uuid(),
            code,
            earlier_codes,
            gender,
            age,
            outcome,
            superseded: None,
        }
    }

    /// Plans every case of one copy.
    fn plan_cases(&mut self) -> Vec<Case> {
        let mut cases: Vec<Case> = Vec::new();
        let mut by_lead: HashMap<(i32, CrimeCode), Vec<usize>> = HashMap::new();
        let areas = self.region.areas;
        let area_weights: Vec<u32> = areas.iter().map(|&(_, w)| w).collect();
        for q in &self.plan.quotas {
            for i in 0..q.cases {
                let referred = i < q.referred;
                let first = self.crime(q.code, referred);
                let area = areas[self.rng.weighted(&area_weights)].0;
                by_lead
                    .entry((q.year, q.code))
                    .or_default()
                    .push(cases.len());
                cases.push(Case {
                    id: self.rng.uuid(),
                    year: q.year,
                    lead: q.code,
                    opened_as: None,
                    area,
                    referred,
                    referred_twice: false,
                    child_welfare: false,
                    contract_care: false,
                    crimes: vec![first],
                });
            }
        }
        // Crimes beyond one per own case go into host cases.
        for q in &self.plan.quotas {
            let extras = q.reported - q.cases;
            if extras == 0 {
                continue;
            }
            let (host_codes, share_referred) = hosting(q.code);
            let mut hosts: Vec<usize> = by_lead.get(&(q.year, q.code)).cloned().unwrap_or_default();
            for &h in host_codes {
                let h = CrimeCode::from_number(h).expect("host codes have four digits");
                if h != q.code {
                    hosts.extend(by_lead.get(&(q.year, h)).into_iter().flatten());
                }
            }
            assert!(
                !hosts.is_empty(),
                "no host case for the extra crimes of {} in {}",
                q.code,
                q.year
            );
            let referred_hosts: Vec<usize> = hosts
                .iter()
                .copied()
                .filter(|&i| cases[i].referred)
                .collect();
            let to_referred = if referred_hosts.is_empty() {
                0
            } else {
                (f64::from(extras) * share_referred).round() as u32
            };
            for k in 0..extras {
                let pool = if k < to_referred {
                    &referred_hosts
                } else {
                    &hosts
                };
                let at = pool[self.rng.below(pool.len())];
                let crime = self.crime(q.code, cases[at].referred);
                cases[at].crimes.push(crime);
            }
        }
        for target in &self.plan.targets {
            self.meet_target(&mut cases, target);
        }
        self.add_history(&mut cases);
        cases
    }

    /// Overrides the outcomes of a target's crimes so that exactly the planned number are handled
    /// and cleared within the year.
    fn meet_target(&mut self, cases: &mut [Case], target: &ClearanceTarget) {
        let mut in_referred = Vec::new();
        let mut others = Vec::new();
        for (ci, case) in cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.year == target.year)
        {
            for (k, crime) in case.crimes.iter().enumerate() {
                if target.codes.contains(&crime.code)
                    && target.gender.is_none_or(|g| g == crime.gender)
                {
                    if case.referred {
                        in_referred.push((ci, k))
                    } else {
                        others.push((ci, k))
                    }
                }
            }
        }
        let split = if target.exact {
            handled_and_cleared
        } else {
            nearest_split
        };
        let (handled, cleared) = split(
            target.percent,
            in_referred.len() + others.len(),
            in_referred.len(),
        );
        self.rng.shuffle(&mut in_referred);
        let mut rest: Vec<(usize, usize)> = in_referred.split_off(cleared);
        for &(ci, k) in &in_referred {
            let code = cases[ci].crimes[k].code;
            cases[ci].crimes[k].outcome =
                Outcome::Decided(crime_decision(&mut self.rng, code, true));
        }
        rest.extend(others);
        self.rng.shuffle(&mut rest);
        for (i, &(ci, k)) in rest.iter().enumerate() {
            let referred = cases[ci].referred;
            let outcome = if i >= handled - cleared {
                Outcome::Open
            } else if referred && self.rng.chance(0.55) {
                Outcome::Decided(ProsecutionDecision::NoProsecution)
            } else {
                Outcome::Closed(closure_reason(&mut self.rng, referred))
            };
            cases[ci].crimes[k].outcome = outcome;
        }
    }

    /// Everything that changes no published count: superseded decisions, case reclassification,
    /// second referrals, child-welfare notifications and, exactly as many as published,
    /// contract-care proposals.
    fn add_history(&mut self, cases: &mut [Case]) {
        for case in cases.iter_mut() {
            for crime in &mut case.crimes {
                crime.superseded = match crime.outcome {
                    Outcome::Decided(d) if self.rng.chance(0.04) => {
                        // A review reverses the first decision.
                        let first = if d.clears() {
                            ProsecutionDecision::NoProsecution
                        } else {
                            ProsecutionDecision::Indictment
                        };
                        Some(Outcome::Decided(first))
                    }
                    // Closed, then reopened and sent to the prosecutor.
                    Outcome::Decided(_) if self.rng.chance(0.02) => {
                        Some(Outcome::Closed(ClosureReason::InsufficientEvidence))
                    }
                    Outcome::Closed(r) if self.rng.chance(0.02) => {
                        Some(Outcome::Closed(if r == ClosureReason::Other {
                            ClosureReason::NoSuspect
                        } else {
                            ClosureReason::Other
                        }))
                    }
                    _ => None,
                };
            }
            if let Some(first) = case.crimes[0].earlier_codes.first() {
                if self.rng.chance(0.75) {
                    case.opened_as = Some(*first);
                }
            }
            case.referred_twice = case.referred && self.rng.chance(0.08);
            let domestic = matches!(n(case.lead), 9365 | 9381 | 9382 | 412 | 4090 | 9369);
            let rate = if self.region.pilot_areas.contains(&case.area) {
                0.35
            } else {
                0.12
            };
            case.child_welfare = domestic && self.rng.chance(rate);
        }
        for &(year, count) in &self.plan.contract_care {
            // A pre-sentence investigation precedes a trial: only cases with an indictment qualify,
            // violent and sexual crimes first.
            let mut eligible: Vec<usize> = (0..cases.len())
                .filter(|&i| {
                    let c = &cases[i];
                    c.year == year
                        && c.referred
                        && c.crimes
                            .iter()
                            .any(|k| k.outcome == Outcome::Decided(ProsecutionDecision::Indictment))
                })
                .collect();
            self.rng.shuffle(&mut eligible);
            eligible.sort_by_key(|&i| !matches!(n(cases[i].lead), 9365 | 9381 | 9382 | 412 | 411 | 4090 | 648..=651 | 660..=663 | 9627..=9658));
            assert!(
                eligible.len() >= count as usize,
                "too few indicted cases in {year} for {count} contract-care proposals"
            );
            for &i in eligible.iter().take(count as usize) {
                cases[i].contract_care = true;
            }
        }
    }

    /// Plans and writes one copy's case events, in stream order per case (dates never decrease
    /// within a case).
    pub(crate) fn case_events(&mut self, out: &mut Vec<Event>) {
        let cases = self.plan_cases();
        for case in &cases {
            self.write_case(case, out);
        }
    }

    fn write_case(&mut self, case: &Case, out: &mut Vec<Event>) {
        let rng = &mut self.rng;
        let year_end = Date::from_ymd(case.year, 12, 31).expect("31 December exists");
        let mut t = rng.day_in(case.year, 0, 365);
        let step = |rng: &mut Rng, t: &mut Date, lo: i32, hi: i32| {
            *t = t.add_days(rng.between(lo, hi)).min(year_end)
        };
        let mut push = |rng: &mut Rng, t: Date, body: Body| {
            out.push(Event {
                event_id: rng.uuid(),
                occurred_on: t,
                subject: Subject::Case(case.id),
                body,
            });
        };
        push(
            rng,
            t,
            Body::CaseOpened {
                lead_crime_code: case.opened_as.unwrap_or(case.lead),
                police_region: self.region.name.to_string(),
                local_police_area: case.area.to_string(),
            },
        );
        for (i, crime) in case.crimes.iter().enumerate() {
            if i > 0 {
                step(rng, &mut t, 0, 12);
            }
            let reported_as = crime.earlier_codes.first().copied().unwrap_or(crime.code);
            push(
                rng,
                t,
                Body::CrimeReported {
                    crime_id: crime.id,
                    crime_code: reported_as,
                    victim_gender: crime.gender,
                    victim_age_group: crime.age,
                },
            );
        }
        if case.child_welfare {
            step(rng, &mut t, 0, 2);
            push(rng, t, Body::ChildWelfareNotified);
        }
        for (i, crime) in case
            .crimes
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.earlier_codes.is_empty())
        {
            for &code in crime.earlier_codes[1..]
                .iter()
                .chain(std::iter::once(&crime.code))
            {
                step(rng, &mut t, 1, 25);
                push(
                    rng,
                    t,
                    Body::CrimeReclassified {
                        crime_id: crime.id,
                        crime_code: code,
                    },
                );
            }
            if i == 0 && case.opened_as.is_some() {
                step(rng, &mut t, 0, 3);
                push(
                    rng,
                    t,
                    Body::CaseReclassified {
                        lead_crime_code: case.lead,
                    },
                );
            }
        }
        // Closures: superseded ones one crime at a time, final ones grouped by reason, as a
        // closing decision usually covers several crimes of a case.
        let close = |rng: &mut Rng,
                     t: Date,
                     crimes: &[&Crime],
                     out: &mut dyn FnMut(&mut Rng, Date, Body)| {
            for reason in [
                ClosureReason::NotACrime,
                ClosureReason::InsufficientEvidence,
                ClosureReason::NoSuspect,
                ClosureReason::Other,
            ] {
                let ids: Vec<Uuid> = crimes
                    .iter()
                    .filter(|c| c.outcome == Outcome::Closed(reason))
                    .map(|c| c.id)
                    .collect();
                if !ids.is_empty() {
                    out(
                        rng,
                        t,
                        Body::InvestigationClosed {
                            crime_ids: ids,
                            reason,
                        },
                    );
                }
            }
        };
        let superseded_closures: Vec<(Uuid, ClosureReason)> = case
            .crimes
            .iter()
            .filter_map(|c| match c.superseded {
                Some(Outcome::Closed(r)) => Some((c.id, r)),
                _ => None,
            })
            .collect();
        let closed: Vec<&Crime> = case
            .crimes
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Closed(_)))
            .collect();
        let mut push_dyn = |rng: &mut Rng, t: Date, body: Body| push(rng, t, body);
        if !case.referred {
            step(rng, &mut t, 10, 120);
            for &(id, reason) in &superseded_closures {
                push_dyn(
                    rng,
                    t,
                    Body::InvestigationClosed {
                        crime_ids: vec![id],
                        reason,
                    },
                );
            }
            step(rng, &mut t, 0, 30);
            close(rng, t, &closed, &mut push_dyn);
            return;
        }
        // Referred: some crimes are closed before the referral, the rest by the prosecutor.
        let (before, after): (Vec<&Crime>, Vec<&Crime>) =
            closed.iter().partition(|_| rng.chance(0.5));
        step(rng, &mut t, 5, 60);
        for &(id, reason) in &superseded_closures {
            push_dyn(
                rng,
                t,
                Body::InvestigationClosed {
                    crime_ids: vec![id],
                    reason,
                },
            );
        }
        close(rng, t, &before, &mut push_dyn);
        step(rng, &mut t, 5, 60);
        push_dyn(rng, t, Body::CaseReferredToProsecutor);
        if case.contract_care {
            step(rng, &mut t, 3, 30);
            push_dyn(rng, t, Body::ContractCareProposed);
        }
        if case.referred_twice {
            // Sent back for a supplementary investigation and referred again.
            step(rng, &mut t, 10, 45);
            push_dyn(rng, t, Body::CaseReferredToProsecutor);
        }
        let decided: Vec<(&Crime, ProsecutionDecision)> = case
            .crimes
            .iter()
            .filter_map(|c| match c.outcome {
                Outcome::Decided(d) => Some((c, d)),
                _ => None,
            })
            .collect();
        step(rng, &mut t, 5, 60);
        for (crime, _) in &decided {
            if let Some(Outcome::Decided(first)) = crime.superseded {
                push_dyn(
                    rng,
                    t,
                    Body::ProsecutionDecided {
                        crime_id: crime.id,
                        decision: first,
                    },
                );
                step(rng, &mut t, 0, 7);
            }
        }
        if decided
            .iter()
            .any(|(c, _)| matches!(c.superseded, Some(Outcome::Decided(_))))
        {
            step(rng, &mut t, 14, 60);
        }
        for (crime, decision) in &decided {
            push_dyn(
                rng,
                t,
                Body::ProsecutionDecided {
                    crime_id: crime.id,
                    decision: *decision,
                },
            );
            step(rng, &mut t, 0, 3);
        }
        step(rng, &mut t, 0, 20);
        close(rng, t, &after, &mut push_dyn);
    }
}
