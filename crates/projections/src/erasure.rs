//! Retention's aggregate: what erased streams had added to the state, folded in as counts.
//!
//! `gryning retain` folds the streams it is about to erase into a fresh state of their own and
//! reads it back with [`Projections::erasure_of`]: counts keyed exactly as the tables key them
//! (quarter, region, code, gender, outcome, lead times in days), with no stream or event id.
//! Every case and crime contributes only to its own counts, and every count here is a sum, so
//! the state of the remaining events plus this aggregate is the state of all events: every
//! table, under every classification, answers the same (`tests/retention.rs` checks it).
//!
//! What a classification or a year-to-date publication recomputes from the crimes and cases
//! themselves is kept apart in [`Erased`]: the crime shapes, whose code a classification
//! reads afresh (with the victim's gender), and the referral quarters, which a year-to-date
//! count of distinct cases needs.

use std::collections::BTreeMap;

use gryning_domain::{
    CrimeCode, CrimeOutcome, ErasedCare, ErasedCases, ErasedContractCare, ErasedCrimes,
    ErasedNotifications, ErasedReferrals, ErasedSupport, Erasure, Gender, Quarter,
};

use crate::period::quarter_of_days;
use crate::state::{
    age_group_index, bump, gender_index, support_kind_index, Case, Crime, Projections, Tallies,
    AGE_GROUPS, CLEARED, CLOSED, NIL, NOT_CLEARED, NO_DAY, SUPPORT_KINDS, UNDECIDED,
};

/// Crimes of one shape, as a key: everything their counts depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CrimeShape {
    pub reported: i32,
    pub region: u16,
    pub code: u16,
    /// Index into `Gender::ALL`.
    pub gender: u8,
    /// [`UNDECIDED`], [`CLOSED`], [`NOT_CLEARED`] or [`CLEARED`].
    pub decision: u8,
    /// Quarter number of the decision, or [`NO_DAY`].
    pub decided: i32,
    /// Days from report to referral, or [`NO_DAY`].
    pub to_referral: i32,
    /// Days from referral to a prosecution decision, or [`NO_DAY`].
    pub to_decision: i32,
}

/// The part of the erased streams' contribution that queries read beside the counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Erased {
    pub crimes: BTreeMap<CrimeShape, i64>,
    /// (quarter, region, lead code, first referral of its year) → distinct cases referred.
    pub referrals: BTreeMap<(i32, u16, u16, bool), i64>,
    /// Cases opened.
    pub cases: i64,
    /// Care counts the aggregates added, which no event of the log stands for one by one any
    /// more (the checkpoint's plausibility check needs it).
    pub units: u64,
    /// Streams erased, over every run.
    pub streams: u64,
    /// Events erased, over every run.
    pub events: u64,
    /// Nonzero in a state taken before a retention's record (at this position) and changed
    /// by it: such a state answers as-of queries below this position only.
    pub valid_below: u64,
}

pub(crate) fn quarter_number(q: Quarter) -> i32 {
    q.year() * 4 + i32::from(q.number()) - 1
}

pub(crate) fn quarter_of_number(n: i32) -> Quarter {
    Quarter::new(n.div_euclid(4), (n.rem_euclid(4) + 1) as u8).expect("a quarter of the state")
}

/// Adds `n` crimes of `shape` to `tallies`, as `contribute_to` adds one crime of that form.
pub(crate) fn contribute_shape(tallies: &mut Tallies, shape: CrimeShape, n: i64) {
    let decided = shape.decision != UNDECIDED;
    let cleared = i64::from(shape.decision == CLEARED);
    let cohort = tallies
        .entry((shape.reported, shape.region, shape.code))
        .or_default();
    cohort.reported += n;
    if shape.to_referral != NO_DAY {
        cohort.cohort_referred += n;
        add_hist(&mut cohort.to_referral, shape.to_referral, n);
    }
    if decided {
        cohort.cohort_decided += n;
        cohort.cohort_cleared += n * cleared;
    }
    if shape.to_decision != NO_DAY {
        add_hist(&mut cohort.to_decision, shape.to_decision, n);
    }
    if decided {
        let handled = tallies
            .entry((shape.decided, shape.region, shape.code))
            .or_default();
        handled.handled[usize::from(shape.gender)] += n;
        handled.cleared[usize::from(shape.gender)] += n * cleared;
    }
}

fn add_hist(hist: &mut BTreeMap<i32, u32>, value: i32, n: i64) {
    if n > 0 {
        *hist.entry(value).or_insert(0) += u32::try_from(n).unwrap_or(u32::MAX);
    } else {
        for _ in 0..n.unsigned_abs() {
            bump(hist, value, -1);
        }
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Projections {
    /// Folds in a run of retention: adds what the erased streams had added.
    pub(crate) fn apply_erasure(&mut self, e: &Erasure) {
        if let Some((first, last)) = e.span {
            let (first, last) = (first.first_day().days(), last.last_day().days());
            self.span = Some(match self.span {
                None => (first, last),
                Some((a, b)) => (a.min(first), b.max(last)),
            });
        }
        self.erased.streams += e.cases + e.clients;
        self.erased.events += e.events;
        let mut units = 0u64;
        for c in &e.cases_opened {
            let region = self.intern_region(&c.police_region);
            let q = quarter_number(c.quarter);
            self.tally(q, region, c.lead_crime_code.number()).cases += count(c.count);
            self.erased.cases += count(c.count);
        }
        for r in &e.referrals {
            let region = self.intern_region(&r.police_region);
            let q = quarter_number(r.quarter);
            let lead = r.lead_crime_code.number();
            self.tally(q, region, lead).referred_cases += count(r.count);
            if r.first_in_year {
                *self
                    .referred_by_year
                    .entry((q.div_euclid(4), region, lead))
                    .or_default() += count(r.count);
            }
            *self
                .erased
                .referrals
                .entry((q, region, lead, r.first_in_year))
                .or_default() += count(r.count);
        }
        for c in &e.crimes {
            let region = self.intern_region(&c.police_region);
            let shape = CrimeShape {
                reported: quarter_number(c.reported_quarter),
                region,
                code: c.crime_code.number(),
                gender: gender_index(c.victim_gender),
                decision: match c.outcome {
                    CrimeOutcome::Undecided => UNDECIDED,
                    CrimeOutcome::Closed => CLOSED,
                    CrimeOutcome::NotCleared => NOT_CLEARED,
                    CrimeOutcome::Cleared => CLEARED,
                },
                decided: c.decided_quarter.map_or(NO_DAY, quarter_number),
                to_referral: c.days_to_referral.unwrap_or(NO_DAY),
                to_decision: c.days_to_decision.unwrap_or(NO_DAY),
            };
            contribute_shape(&mut self.tallies, shape, count(c.count));
            *self.erased.crimes.entry(shape).or_default() += count(c.count);
        }
        for c in &e.care {
            let tally = self.care_tally(c.quarter.first_day().days());
            tally.proposed += count(c.proposed);
            tally.started += count(c.started);
            tally.completed += count(c.completed);
            tally.discontinued += count(c.discontinued);
            units += c.proposed + c.started + c.completed + c.discontinued;
        }
        for c in &e.contract_care {
            let region = self.intern_region(&c.police_region);
            *self
                .contract_care
                .entry((quarter_number(c.quarter), region))
                .or_default() += count(c.count);
        }
        for n in &e.notifications {
            let area = self.intern_area(&n.local_police_area);
            let tally = self
                .notifications
                .entry((quarter_number(n.quarter), area))
                .or_default();
            tally.count += count(n.count);
            add_hist(
                &mut tally.to_notification,
                n.days_from_opening,
                count(n.count),
            );
        }
        for s in &e.support {
            let key = (
                quarter_number(s.quarter),
                support_kind_index(s.kind),
                gender_index(s.gender),
                age_group_index(s.age_group),
            );
            *self.support.entry(key).or_default() += count(s.count);
        }
        self.erased.units = self.erased.units.saturating_add(units);
    }

    /// The shape of one crime: what its counts depend on.
    fn shape_of(&self, c: &Crime) -> CrimeShape {
        let decision = c.decision();
        let referred = c.referred_on != NO_DAY;
        let prosecuted = decision == CLEARED || decision == NOT_CLEARED;
        CrimeShape {
            reported: quarter_of_days(c.reported_on),
            region: self.cases[c.case as usize].region,
            code: c.code,
            gender: c.gender() as u8,
            decision,
            decided: if decision == UNDECIDED {
                NO_DAY
            } else {
                quarter_of_days(c.decided_on)
            },
            to_referral: if referred {
                c.referred_on - c.reported_on
            } else {
                NO_DAY
            },
            to_decision: if referred && prosecuted {
                c.decided_on - c.referred_on
            } else {
                NO_DAY
            },
        }
    }

    /// A case's distinct referral quarters as (quarter, region, lead, first of its year).
    fn referral_keys(&self, case: &Case) -> Vec<(i32, u16, u16, bool)> {
        let mut keys = Vec::new();
        let mut p = case.referrals;
        while p != NIL {
            let node = self.referrals[p as usize];
            // The list runs newest first: a node is its year's first if no older one has the
            // same year.
            let mut q = node.next;
            let mut first_in_year = true;
            while q != NIL {
                let older = self.referrals[q as usize];
                first_in_year &= older.quarter.div_euclid(4) != node.quarter.div_euclid(4);
                q = older.next;
            }
            keys.push((node.quarter, case.region, case.lead, first_in_year));
            p = node.next;
        }
        keys
    }

    /// Forgets the cases `doomed` (and their crimes) while keeping every count they added: the
    /// crimes become shapes and the referrals quarters of [`Erased`], as a retention aggregate
    /// would have made them, so every table answers as before and no id of theirs is left.
    /// Client streams leave nothing to forget: the state keeps no per-client data. Returns how
    /// many cases were forgotten.
    ///
    /// `valid_below`: the position of the erasure's record when this state stands before it
    /// (a snapshot): it then answers as-of queries only below that position (see `asof.rs`).
    pub fn forget_cases(
        &mut self,
        doomed: &std::collections::HashSet<gryning_domain::Uuid>,
        valid_below: Option<u64>,
    ) -> u64 {
        let keep: Vec<bool> = self.cases.iter().map(|c| !doomed.contains(&c.id)).collect();
        let forgotten = keep.iter().filter(|k| !**k).count() as u64;
        if let Some(below) = valid_below {
            self.erased.valid_below = below;
        }
        if forgotten == 0 {
            return 0;
        }
        let mut shapes = Vec::new();
        for c in &self.crimes {
            if !keep[c.case as usize] {
                shapes.push(self.shape_of(c));
            }
        }
        for shape in shapes {
            *self.erased.crimes.entry(shape).or_default() += 1;
        }
        let mut keys = Vec::new();
        for (i, case) in self.cases.iter().enumerate() {
            if !keep[i] {
                keys.extend(self.referral_keys(case));
            }
        }
        for key in keys {
            *self.erased.referrals.entry(key).or_default() += 1;
        }
        self.erased.cases += forgotten as i64;
        // Rebuild the vectors without them, renumbering the links.
        let mut case_map = vec![NIL; self.cases.len()];
        let mut cases = Vec::with_capacity(self.cases.len() - forgotten as usize);
        let mut case_areas = Vec::with_capacity(cases.capacity());
        for (i, case) in self.cases.iter().enumerate() {
            if keep[i] {
                case_map[i] = cases.len() as u32;
                cases.push(*case);
                case_areas.push(self.case_areas[i]);
            }
        }
        let mut crime_map = vec![NIL; self.crimes.len()];
        let mut crimes = Vec::with_capacity(self.crimes.len());
        for (i, c) in self.crimes.iter().enumerate() {
            if keep[c.case as usize] {
                crime_map[i] = crimes.len() as u32;
                crimes.push(*c);
            }
        }
        let remap = |map: &[u32], p: u32| if p == NIL { NIL } else { map[p as usize] };
        for c in &mut crimes {
            c.case = case_map[c.case as usize];
            c.next_in_case = remap(&crime_map, c.next_in_case);
        }
        let mut owned = vec![false; self.referrals.len()];
        for case in &cases {
            let mut p = case.referrals;
            while p != NIL {
                owned[p as usize] = true;
                p = self.referrals[p as usize].next;
            }
        }
        let mut referral_map = vec![NIL; self.referrals.len()];
        let mut referrals = Vec::with_capacity(self.referrals.len());
        for (i, r) in self.referrals.iter().enumerate() {
            if owned[i] {
                referral_map[i] = referrals.len() as u32;
                referrals.push(*r);
            }
        }
        for r in &mut referrals {
            r.next = remap(&referral_map, r.next);
        }
        for case in &mut cases {
            case.crimes = remap(&crime_map, case.crimes);
            case.referrals = remap(&referral_map, case.referrals);
        }
        self.cases = cases;
        self.case_areas = case_areas;
        self.crimes = crimes;
        self.referrals = referrals;
        crate::checkpoint::finish(self).expect("forgetting cases keeps a state consistent");
        forgotten
    }

    /// Moves a state that [`Projections::forget_cases`] already changed past the record of
    /// that erasure at `position`: its counts are in the state already, only its totals are
    /// added.
    pub fn note_erasure(&mut self, position: u64, e: &Erasure) {
        self.position = position;
        self.erased.streams += e.cases + e.clients;
        self.erased.events += e.events;
        self.erased.units = self.erased.units.saturating_add(
            e.care
                .iter()
                .map(|c| c.proposed + c.started + c.completed + c.discontinued)
                .sum(),
        );
    }

    /// Where a retention's record stands after this state, if the state was taken before it:
    /// it then holds only the erased streams' contribution up to its own position.
    pub fn valid_below(&self) -> Option<u64> {
        (self.erased.valid_below != 0).then_some(self.erased.valid_below)
    }

    /// Streams and events erased by retention that this state's counts stand for.
    pub fn erased_totals(&self) -> (u64, u64) {
        (self.erased.streams, self.erased.events)
    }

    /// The counts this state holds, as a retention aggregate: what folding its events added
    /// to every table. Meant for a state folded from the streams to erase alone. The run's
    /// own fields (who, when, how many streams and events) are left for the caller.
    pub fn erasure_of(&self) -> Erasure {
        let region = |i: u16| self.regions[usize::from(i)].clone();
        let code = |c: u16| CrimeCode::from_number(c).expect("a code of the state");
        let mut e = Erasure {
            span: self.span.map(|(a, b)| {
                (
                    quarter_of_number(quarter_of_days(a)),
                    quarter_of_number(quarter_of_days(b)),
                )
            }),
            ..Erasure::default()
        };
        let mut keys: Vec<&(i32, u16, u16)> = self.tallies.keys().collect();
        keys.sort();
        for key in keys {
            let cases = self.tallies[key].cases;
            if cases > 0 {
                e.cases_opened.push(ErasedCases {
                    quarter: quarter_of_number(key.0),
                    police_region: region(key.1),
                    lead_crime_code: code(key.2),
                    count: cases as u64,
                });
            }
        }
        let mut referrals: BTreeMap<(i32, u16, u16, bool), u64> = BTreeMap::new();
        for case in &self.cases {
            for key in self.referral_keys(case) {
                *referrals.entry(key).or_default() += 1;
            }
        }
        for (&(q, r, lead, first_in_year), &n) in &self.erased.referrals {
            *referrals.entry((q, r, lead, first_in_year)).or_default() += n as u64;
        }
        e.referrals = referrals
            .into_iter()
            .map(|((q, r, lead, first_in_year), count)| ErasedReferrals {
                quarter: quarter_of_number(q),
                police_region: region(r),
                lead_crime_code: code(lead),
                first_in_year,
                count,
            })
            .collect();
        let mut crimes: BTreeMap<CrimeShape, u64> = BTreeMap::new();
        for c in &self.crimes {
            *crimes.entry(self.shape_of(c)).or_default() += 1;
        }
        for (&shape, &n) in &self.erased.crimes {
            *crimes.entry(shape).or_default() += n as u64;
        }
        e.crimes = crimes
            .into_iter()
            .map(|(s, count)| ErasedCrimes {
                reported_quarter: quarter_of_number(s.reported),
                police_region: region(s.region),
                crime_code: code(s.code),
                victim_gender: Gender::ALL[usize::from(s.gender)],
                outcome: match s.decision {
                    UNDECIDED => CrimeOutcome::Undecided,
                    CLOSED => CrimeOutcome::Closed,
                    NOT_CLEARED => CrimeOutcome::NotCleared,
                    _ => CrimeOutcome::Cleared,
                },
                decided_quarter: (s.decided != NO_DAY).then(|| quarter_of_number(s.decided)),
                days_to_referral: (s.to_referral != NO_DAY).then_some(s.to_referral),
                days_to_decision: (s.to_decision != NO_DAY).then_some(s.to_decision),
                count,
            })
            .collect();
        // The rest are plain sums already.
        e.care = self
            .care
            .iter()
            .filter(|(_, t)| **t != Default::default())
            .map(|(&q, t)| ErasedCare {
                quarter: quarter_of_number(q),
                proposed: t.proposed as u64,
                started: t.started as u64,
                completed: t.completed as u64,
                discontinued: t.discontinued as u64,
            })
            .collect();
        let mut proposals: Vec<(&(i32, u16), &i64)> = self.contract_care.iter().collect();
        proposals.sort();
        e.contract_care = proposals
            .into_iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&(q, r), &n)| ErasedContractCare {
                quarter: quarter_of_number(q),
                police_region: region(r),
                count: n as u64,
            })
            .collect();
        for (&(q, area), t) in &self.notifications {
            for (&days, &n) in &t.to_notification {
                e.notifications.push(ErasedNotifications {
                    quarter: quarter_of_number(q),
                    local_police_area: self.areas[area as usize].clone(),
                    days_from_opening: days,
                    count: u64::from(n),
                });
            }
        }
        e.support = self
            .support
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&(q, kind, gender, age), &n)| ErasedSupport {
                quarter: quarter_of_number(q),
                kind: SUPPORT_KINDS[usize::from(kind)],
                gender: Gender::ALL[usize::from(gender)],
                age_group: AGE_GROUPS[usize::from(age)],
                count: n as u64,
            })
            .collect();
        e
    }
}
