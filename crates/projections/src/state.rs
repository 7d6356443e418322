//! The incremental state behind every table. Each event changes a bounded amount of it (a
//! referral sets the referral date of the crimes reported since the previous referral, each
//! crime once over its lifetime); counts are kept per (quarter, crime code) so that years, codes
//! and the groups of any catalogue are all answered at query time.
//!
//! Per live crime the state holds one 40-byte [`Crime`] plus about 5–13 bytes of index; per
//! case a 32-byte [`Case`] plus its index share. Everything that moves when a crime or a case is
//! reclassified (report, referral and decision dates, the decision, the victim's gender, the
//! distinct quarters a case was referred in) is kept so its counts can be moved, not recomputed.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use gryning_domain::{AgeGroup, Body, Event, Gender, Subject, SupportKind, TreatmentOutcome, Uuid};

use crate::index::{hash_id, IdIndex};
use crate::period::quarter_of_days;

/// "No date" for a crime's referral or decision date.
pub(crate) const NO_DAY: i32 = i32::MIN;
/// "No element" in the intrusive lists.
pub(crate) const NIL: u32 = u32::MAX;
/// Distinct region names the state keeps apart.
pub(crate) const MAX_REGIONS: usize = u16::MAX as usize;

/// A crime's final decision, in bits 2–3 of [`Crime::flags`].
pub(crate) const UNDECIDED: u8 = 0;
pub(crate) const CLOSED: u8 = 1;
pub(crate) const NOT_CLEARED: u8 = 2;
pub(crate) const CLEARED: u8 = 3;

/// One reported crime. Field order keeps it at 40 bytes with no padding to speak of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Crime {
    pub id: Uuid,
    /// Position of its case in [`Projections::cases`]; crime ids are unique only per case.
    pub case: u32,
    /// The crime reported before it in the same case, or [`NIL`]: the case's crimes, newest first.
    pub next_in_case: u32,
    pub reported_on: i32,
    /// Date of the case's first referral after this crime's report, or [`NO_DAY`].
    pub referred_on: i32,
    /// Date of the final decision, or [`NO_DAY`].
    pub decided_on: i32,
    pub code: u16,
    /// Bits 0–1: victim gender (index into `Gender::ALL`); bits 2–3: the decision.
    pub flags: u8,
}

impl Crime {
    pub(crate) fn gender(&self) -> usize {
        usize::from(self.flags & 3)
    }

    pub(crate) fn decision(&self) -> u8 {
        (self.flags >> 2) & 3
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Case {
    pub id: Uuid,
    pub opened_on: i32,
    /// Newest crime of the case, or [`NIL`].
    pub crimes: u32,
    /// Newest distinct referral quarter of the case in [`Projections::referrals`], or [`NIL`].
    pub referrals: u32,
    pub lead: u16,
    /// The case's police region, as an index into [`Projections::regions`] (it fits in what
    /// was padding, so a case stays 32 bytes).
    pub region: u16,
}

/// One distinct quarter in which a case was referred: a case counts once per period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Referral {
    pub quarter: i32,
    pub next: u32,
}

/// Counts for one (quarter, crime code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Tally {
    /// Crimes reported in the quarter (case-flow `reported`, progress cohort).
    pub reported: i64,
    /// Cases opened in the quarter, by lead code.
    pub cases: i64,
    /// Distinct cases referred in the quarter, by lead code.
    pub referred_cases: i64,
    /// Crimes whose final decision is dated in the quarter, per victim gender.
    pub handled: [i64; 3],
    pub cleared: [i64; 3],
    /// Of the crimes reported in the quarter: referred, decided, cleared.
    pub cohort_referred: i64,
    pub cohort_decided: i64,
    pub cohort_cleared: i64,
    /// Of the crimes reported in the quarter: days from report to referral, and from referral to
    /// a prosecution decision, as value → count (bounded by distinct values, not by crimes).
    pub to_referral: BTreeMap<i32, u32>,
    pub to_decision: BTreeMap<i32, u32>,
}

/// Care counts for one quarter, by event date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct CareTally {
    pub proposed: i64,
    pub started: i64,
    pub completed: i64,
    pub discontinued: i64,
}

/// Child-welfare notifications of one (quarter, local police area), by notification date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct NotificationTally {
    pub count: i64,
    /// Days from the case's opening to the notification, as value → count.
    pub to_notification: BTreeMap<i32, u32>,
}

/// The key of the support counts: (quarter, kind, gender, age group), each enum as its index
/// in [`SUPPORT_KINDS`], `Gender::ALL` and [`AGE_GROUPS`].
pub(crate) type SupportKey = (i32, u8, u8, u8);

/// Support kinds in table order.
pub(crate) const SUPPORT_KINDS: [SupportKind; 3] = [
    SupportKind::ProtectedHousing,
    SupportKind::SupportTalks,
    SupportKind::Other,
];

/// Age groups in table order.
pub(crate) const AGE_GROUPS: [AgeGroup; 3] = [AgeGroup::Child, AgeGroup::Adult, AgeGroup::Unknown];

/// The Fx hash (as in rustc) for the small integer keys of the count maps: a few hundred keys,
/// hashed on every event, so speed matters and flooding does not.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_i32(&mut self, n: i32) {
        self.add(n as u32 as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Counts per (quarter, region, crime code), as [`Projections::tallies`] holds them.
pub(crate) type Tallies = FxMap<(i32, u16, u16), Tally>;

/// Which of a crime's contributions to add or remove.
const REPORT: u8 = 1;
const REFERRAL: u8 = 2;
const DECISION: u8 = 4;

/// The projections' state after the events up to [`Projections::position`].
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "bench", derive(serde::Serialize, serde::Deserialize))]
pub struct Projections {
    pub(crate) position: u64,
    /// Earliest and latest `occurred_on` (days) of any applied event.
    pub(crate) span: Option<(i32, i32)>,
    pub(crate) cases: Vec<Case>,
    #[cfg_attr(feature = "bench", serde(skip))]
    pub(crate) case_index: IdIndex,
    pub(crate) crimes: Vec<Crime>,
    #[cfg_attr(feature = "bench", serde(skip))]
    pub(crate) crime_index: IdIndex,
    pub(crate) referrals: Vec<Referral>,
    /// The police regions of the cases, each name once, in order of first appearance: cases
    /// and counts name a region by its index here, so one region keeps as many count keys as
    /// no region at all.
    pub(crate) regions: Vec<String>,
    #[cfg_attr(feature = "bench", serde(skip))]
    pub(crate) region_ids: FxMap<String, u16>,
    /// Counts per (quarter, region, crime code).
    pub(crate) tallies: FxMap<(i32, u16, u16), Tally>,
    /// Distinct cases referred per (year, region, lead code): not a sum of quarters, as a case
    /// referred in two quarters of a year counts once in the year.
    pub(crate) referred_by_year: FxMap<(i32, u16, u16), i64>,
    /// Care counts of every region together (treatment programmes are client events, which
    /// carry no region).
    pub(crate) care: BTreeMap<i32, CareTally>,
    /// Contract-care proposals per (quarter, region of the case).
    pub(crate) contract_care: FxMap<(i32, u16), i64>,
    /// The local police areas named by the cases, each once, in the order first met.
    pub(crate) areas: Vec<String>,
    /// Area name → its index in `areas` (rebuilt from `areas` on load).
    #[cfg_attr(feature = "bench", serde(skip))]
    pub(crate) area_index: HashMap<String, u32>,
    /// Per case (as [`Projections::cases`]), the index of its local police area in `areas`.
    /// Apart from [`Case`], which it would grow past 32 bytes, and a case's area never changes.
    pub(crate) case_areas: Vec<u32>,
    /// Child-welfare notifications per (quarter, area index).
    pub(crate) notifications: BTreeMap<(i32, u32), NotificationTally>,
    /// Support granted per (quarter, kind, gender, age group).
    pub(crate) support: BTreeMap<SupportKey, i64>,
    /// Every publication applied: quarter → revisions (see `publication.rs`).
    #[cfg_attr(feature = "bench", serde(skip))]
    pub(crate) publications: crate::publication::Index,
    /// What the streams erased by retention had added, as far as a query needs more than the
    /// counts above (see `erasure.rs`).
    #[cfg_attr(feature = "bench", serde(skip))]
    pub(crate) erased: crate::erasure::Erased,
}

/// How much memory the state holds, from its allocations' capacities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUse {
    pub crimes: usize,
    pub cases: usize,
    /// The crime vector and the crime index.
    pub crime_bytes: usize,
    /// The case vector, the case index and the referral-quarter lists.
    pub case_bytes: usize,
}

pub(crate) fn bump(hist: &mut BTreeMap<i32, u32>, value: i32, sign: i64) {
    if sign > 0 {
        *hist.entry(value).or_insert(0) += 1;
    } else if let Some(count) = hist.get_mut(&value) {
        *count -= 1;
        if *count == 0 {
            // Keep histograms bounded by live values and equal to a freshly built one.
            hist.remove(&value);
        }
    }
}

pub(crate) fn support_kind_index(kind: SupportKind) -> u8 {
    match kind {
        SupportKind::ProtectedHousing => 0,
        SupportKind::SupportTalks => 1,
        SupportKind::Other => 2,
    }
}

pub(crate) fn age_group_index(age: AgeGroup) -> u8 {
    match age {
        AgeGroup::Child => 0,
        AgeGroup::Adult => 1,
        AgeGroup::Unknown => 2,
    }
}

pub(crate) fn gender_index(gender: Gender) -> u8 {
    match gender {
        Gender::Female => 0,
        Gender::Male => 1,
        Gender::Unknown => 2,
    }
}

impl Projections {
    pub fn new() -> Projections {
        Projections::default()
    }

    /// Position of the last applied event (0 before any).
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn memory_use(&self) -> MemoryUse {
        MemoryUse {
            crimes: self.crimes.len(),
            cases: self.cases.len(),
            crime_bytes: self.crimes.capacity() * size_of::<Crime>()
                + self.crime_index.heap_bytes(),
            case_bytes: self.cases.capacity() * size_of::<Case>()
                + self.case_index.heap_bytes()
                + self.referrals.capacity() * size_of::<Referral>()
                + self.case_areas.capacity() * size_of::<u32>(),
        }
    }

    /// Folds in the event stored at `position`. Events must come in position order. The store
    /// holds only events that passed validation; an event naming a case or crime this state
    /// does not know (which validation rules out) is counted in the date span and otherwise
    /// ignored, rather than guessed at.
    pub fn apply(&mut self, position: u64, event: &Event) {
        debug_assert!(
            position > self.position || (position == 0 && self.position == 0),
            "events out of order"
        );
        self.position = position;
        if let Body::TablesPublished(publication) = &event.body {
            // Not case data: no table counts it, and its date is not a period of any table.
            self.publications.record(position, publication);
            return;
        }
        if let Body::StreamsErased(erasure) = &event.body {
            // Its own date is when retention ran; the counts carry their quarters.
            self.apply_erasure(erasure);
            return;
        }
        let day = event.occurred_on.days();
        self.span = Some(match self.span {
            None => (day, day),
            Some((first, last)) => (first.min(day), last.max(day)),
        });
        let case_id = match event.subject {
            Subject::Case(id) => Some(id),
            Subject::Client(_) | Subject::Publication(_) | Subject::Retention => None,
        };
        match &event.body {
            Body::CaseOpened {
                lead_crime_code,
                police_region,
                local_police_area,
                ..
            } => {
                if let Some(id) = case_id {
                    self.open_case(
                        id,
                        day,
                        lead_crime_code.number(),
                        police_region,
                        local_police_area,
                    );
                }
            }
            Body::CrimeReported {
                crime_id,
                crime_code,
                victim_gender,
                ..
            } => {
                if let Some(case) = self.find_case(case_id) {
                    self.report_crime(
                        case,
                        *crime_id,
                        day,
                        crime_code.number(),
                        gender_index(*victim_gender),
                    );
                }
            }
            Body::CrimeReclassified {
                crime_id,
                crime_code,
            } => {
                if let Some(crime) = self.find_crime(case_id, crime_id) {
                    self.reclassify_crime(crime, crime_code.number());
                }
            }
            Body::CaseReclassified { lead_crime_code } => {
                if let Some(case) = self.find_case(case_id) {
                    self.reclassify_case(case, lead_crime_code.number());
                }
            }
            Body::CaseReferredToProsecutor => {
                if let Some(case) = self.find_case(case_id) {
                    self.refer(case, day);
                }
            }
            Body::InvestigationClosed { crime_ids, .. } => {
                for crime_id in crime_ids {
                    if let Some(crime) = self.find_crime(case_id, crime_id) {
                        self.decide(crime, day, CLOSED);
                    }
                }
            }
            Body::ProsecutionDecided { crime_id, decision } => {
                if let Some(crime) = self.find_crime(case_id, crime_id) {
                    self.decide(
                        crime,
                        day,
                        if decision.clears() {
                            CLEARED
                        } else {
                            NOT_CLEARED
                        },
                    );
                }
            }
            Body::ContractCareProposed => {
                self.care_tally(day).proposed += 1;
                if let Some(case) = self.find_case(case_id) {
                    let region = self.cases[case as usize].region;
                    *self
                        .contract_care
                        .entry((quarter_of_days(day), region))
                        .or_default() += 1;
                }
            }
            Body::TreatmentProgrammeStarted { .. } => self.care_tally(day).started += 1,
            Body::TreatmentProgrammeEnded {
                outcome: TreatmentOutcome::Completed,
            } => self.care_tally(day).completed += 1,
            Body::TreatmentProgrammeEnded {
                outcome: TreatmentOutcome::Discontinued,
            } => self.care_tally(day).discontinued += 1,
            Body::ChildWelfareNotified => {
                if let Some(case) = self.find_case(case_id) {
                    self.notify(case, day);
                }
            }
            Body::SupportGranted {
                kind,
                gender,
                age_group,
            } => {
                let key = (
                    quarter_of_days(day),
                    support_kind_index(*kind),
                    gender_index(*gender),
                    age_group_index(*age_group),
                );
                *self.support.entry(key).or_default() += 1;
            }
            Body::TablesPublished(_) | Body::StreamsErased(_) => {}
        }
    }

    pub(crate) fn case_hash(&self, position: u32) -> u64 {
        hash_id(self.cases[position as usize].id.as_u128(), 0)
    }

    pub(crate) fn crime_hash(&self, position: u32) -> u64 {
        let crime = &self.crimes[position as usize];
        hash_id(crime.id.as_u128(), crime.case)
    }

    fn find_case(&self, id: Option<Uuid>) -> Option<u32> {
        let id = id?;
        self.case_index.find(hash_id(id.as_u128(), 0), |p| {
            self.cases[p as usize].id == id
        })
    }

    fn find_crime(&self, case_id: Option<Uuid>, crime_id: &Uuid) -> Option<u32> {
        let case = self.find_case(case_id)?;
        self.crime_index
            .find(hash_id(crime_id.as_u128(), case), |p| {
                let crime = &self.crimes[p as usize];
                crime.id == *crime_id && crime.case == case
            })
    }

    pub(crate) fn tally(&mut self, quarter: i32, region: u16, code: u16) -> &mut Tally {
        self.tallies.entry((quarter, region, code)).or_default()
    }

    /// The index of a region's name, adding it on first sight. Past [`MAX_REGIONS`] distinct
    /// names (only hostile data has so many) the rest share the last index.
    pub(crate) fn intern_region(&mut self, name: &str) -> u16 {
        if let Some(&id) = self.region_ids.get(name) {
            return id;
        }
        if self.regions.len() >= MAX_REGIONS {
            return (MAX_REGIONS - 1) as u16;
        }
        let id = self.regions.len() as u16;
        self.regions.push(name.to_string());
        self.region_ids.insert(name.to_string(), id);
        id
    }

    /// The index of a local police area's name, adding it on first sight.
    pub(crate) fn intern_area(&mut self, area: &str) -> u32 {
        match self.area_index.get(area) {
            Some(&i) => i,
            None => {
                let i = self.areas.len() as u32;
                self.areas.push(area.to_string());
                self.area_index.insert(area.to_string(), i);
                i
            }
        }
    }

    /// The region names of the cases applied, in order of first appearance.
    pub fn regions(&self) -> impl Iterator<Item = &str> + Clone {
        self.regions.iter().map(String::as_str)
    }

    pub(crate) fn care_tally(&mut self, day: i32) -> &mut CareTally {
        self.care.entry(quarter_of_days(day)).or_default()
    }

    fn open_case(&mut self, id: Uuid, day: i32, lead: u16, region: &str, area: &str) {
        if self.find_case(Some(id)).is_some() {
            return;
        }
        let region = self.intern_region(region);
        let area = self.intern_area(area);
        self.case_areas.push(area);
        self.cases.push(Case {
            id,
            opened_on: day,
            crimes: NIL,
            referrals: NIL,
            lead,
            region,
        });
        let hash = hash_id(id.as_u128(), 0);
        let cases = &self.cases;
        self.case_index
            .push(hash, |p| hash_id(cases[p as usize].id.as_u128(), 0));
        self.tally(quarter_of_days(day), region, lead).cases += 1;
    }

    fn notify(&mut self, case: u32, day: i32) {
        let area = self.case_areas[case as usize];
        let days = day - self.cases[case as usize].opened_on;
        let tally = self
            .notifications
            .entry((quarter_of_days(day), area))
            .or_default();
        tally.count += 1;
        bump(&mut tally.to_notification, days, 1);
    }

    fn report_crime(&mut self, case: u32, id: Uuid, day: i32, code: u16, gender: u8) {
        let hash = hash_id(id.as_u128(), case);
        let crimes = &self.crimes;
        if self
            .crime_index
            .find(hash, |p| {
                crimes[p as usize].id == id && crimes[p as usize].case == case
            })
            .is_some()
        {
            return;
        }
        let position = self.crimes.len() as u32;
        let crime = Crime {
            id,
            case,
            next_in_case: self.cases[case as usize].crimes,
            reported_on: day,
            referred_on: NO_DAY,
            decided_on: NO_DAY,
            code,
            flags: gender,
        };
        self.crimes.push(crime);
        self.cases[case as usize].crimes = position;
        let crimes = &self.crimes;
        self.crime_index.push(hash, |p| {
            hash_id(crimes[p as usize].id.as_u128(), crimes[p as usize].case)
        });
        self.contribute(crime, 1, REPORT);
    }

    fn reclassify_crime(&mut self, position: u32, code: u16) {
        let crime = self.crimes[position as usize];
        if crime.code == code {
            return;
        }
        self.contribute(crime, -1, REPORT | REFERRAL | DECISION);
        let moved = Crime { code, ..crime };
        self.crimes[position as usize] = moved;
        self.contribute(moved, 1, REPORT | REFERRAL | DECISION);
    }

    fn decide(&mut self, position: u32, day: i32, decision: u8) {
        let crime = self.crimes[position as usize];
        self.contribute(crime, -1, DECISION);
        let decided = Crime {
            decided_on: day,
            flags: (crime.flags & 3) | (decision << 2),
            ..crime
        };
        self.crimes[position as usize] = decided;
        self.contribute(decided, 1, DECISION);
    }

    fn refer(&mut self, case: u32, day: i32) {
        let quarter = quarter_of_days(day);
        let year = quarter.div_euclid(4);
        let Case {
            lead,
            referrals,
            crimes,
            region,
            ..
        } = self.cases[case as usize];
        let (mut seen_quarter, mut seen_year) = (false, false);
        let mut p = referrals;
        while p != NIL && !seen_quarter {
            let node = self.referrals[p as usize];
            seen_quarter = node.quarter == quarter;
            seen_year |= node.quarter.div_euclid(4) == year;
            p = node.next;
        }
        if !seen_quarter {
            self.referrals.push(Referral {
                quarter,
                next: referrals,
            });
            self.cases[case as usize].referrals = (self.referrals.len() - 1) as u32;
            self.tally(quarter, region, lead).referred_cases += 1;
            if !seen_year {
                *self
                    .referred_by_year
                    .entry((year, region, lead))
                    .or_default() += 1;
            }
        }
        // The crimes not yet referred are exactly those reported since the previous referral,
        // and the list runs newest first: walk until the first crime already referred.
        let mut p = crimes;
        while p != NIL && self.crimes[p as usize].referred_on == NO_DAY {
            self.crimes[p as usize].referred_on = day;
            let crime = self.crimes[p as usize];
            self.contribute(crime, 1, REFERRAL);
            p = crime.next_in_case;
        }
    }

    fn reclassify_case(&mut self, case: u32, lead: u16) {
        let old = self.cases[case as usize];
        if old.lead == lead {
            return;
        }
        self.cases[case as usize].lead = lead;
        let region = old.region;
        let opened = quarter_of_days(old.opened_on);
        self.tally(opened, region, old.lead).cases -= 1;
        self.tally(opened, region, lead).cases += 1;
        let mut p = old.referrals;
        while p != NIL {
            let node = self.referrals[p as usize];
            self.tally(node.quarter, region, old.lead).referred_cases -= 1;
            self.tally(node.quarter, region, lead).referred_cases += 1;
            // Move each year once: at the first node of the list that has that year.
            let year = node.quarter.div_euclid(4);
            let mut q = old.referrals;
            let mut first_of_year = true;
            while q != p {
                first_of_year &= self.referrals[q as usize].quarter.div_euclid(4) != year;
                q = self.referrals[q as usize].next;
            }
            if first_of_year {
                *self
                    .referred_by_year
                    .entry((year, region, old.lead))
                    .or_default() -= 1;
                *self
                    .referred_by_year
                    .entry((year, region, lead))
                    .or_default() += 1;
            }
            p = node.next;
        }
    }

    /// Adds (`sign` 1) or removes (`sign` -1) the chosen parts of a crime's counts.
    fn contribute(&mut self, crime: Crime, sign: i64, parts: u8) {
        let region = self.cases[crime.case as usize].region;
        contribute_to(&mut self.tallies, region, crime, sign, parts);
    }

    /// The counts of [`Projections::tallies`] and [`Projections::referred_by_year`] with every
    /// code read through a classification: each crime's under its code for its victim's gender,
    /// each case's under its lead code's (`Catalogue::classify_lead`). Computed afresh from the
    /// crimes and the lead-code counts, so a classification needs no state of its own.
    pub(crate) fn classified_counts(
        &self,
        catalogue: &gryning_domain::Catalogue,
    ) -> (Tallies, FxMap<(i32, u16, u16), i64>) {
        let lead = |code: u16| {
            gryning_domain::CrimeCode::from_number(code)
                .map_or(code, |c| catalogue.classify_lead(c).number())
        };
        let mut tallies: Tallies = FxMap::default();
        for (&(quarter, region, code), t) in &self.tallies {
            if t.cases != 0 || t.referred_cases != 0 {
                let out = tallies.entry((quarter, region, lead(code))).or_default();
                out.cases += t.cases;
                out.referred_cases += t.referred_cases;
            }
        }
        let mut by_year: FxMap<(i32, u16, u16), i64> = FxMap::default();
        for (&(year, region, code), &n) in &self.referred_by_year {
            if n != 0 {
                *by_year.entry((year, region, lead(code))).or_default() += n;
            }
        }
        for crime in &self.crimes {
            let code = gryning_domain::CrimeCode::from_number(crime.code).map_or(crime.code, |c| {
                catalogue.classify_index(c, crime.gender()).number()
            });
            let region = self.cases[crime.case as usize].region;
            contribute_to(
                &mut tallies,
                region,
                Crime { code, ..*crime },
                1,
                REPORT | REFERRAL | DECISION,
            );
        }
        for (&key, &n) in &self.erased.crimes {
            let code = gryning_domain::CrimeCode::from_number(key.code).map_or(key.code, |c| {
                catalogue
                    .classify_index(c, usize::from(key.gender))
                    .number()
            });
            crate::erasure::contribute_shape(
                &mut tallies,
                crate::erasure::CrimeShape { code, ..key },
                n,
            );
        }
        (tallies, by_year)
    }
}

/// Adds (`sign` 1) or removes (`sign` -1) the chosen parts of a crime's counts (its case in
/// `region`) to `tallies`. The lead time from referral to decision needs both dates, so it goes
/// with either part. A crime's counts are a function of its final form, so adding every part
/// of it once gives what its events added and removed one by one.
fn contribute_to(tallies: &mut Tallies, region: u16, crime: Crime, sign: i64, parts: u8) {
    let decision = crime.decision();
    let decided = decision != UNDECIDED;
    let cleared = decision == CLEARED;
    let referred = crime.referred_on != NO_DAY;
    let cohort = tallies
        .entry((quarter_of_days(crime.reported_on), region, crime.code))
        .or_default();
    if parts & REPORT != 0 {
        cohort.reported += sign;
    }
    if parts & REFERRAL != 0 && referred {
        cohort.cohort_referred += sign;
        bump(
            &mut cohort.to_referral,
            crime.referred_on - crime.reported_on,
            sign,
        );
    }
    if parts & DECISION != 0 && decided {
        cohort.cohort_decided += sign;
        cohort.cohort_cleared += sign * i64::from(cleared);
    }
    let prosecution = decision == CLEARED || decision == NOT_CLEARED;
    if parts & (REFERRAL | DECISION) != 0 && referred && prosecution {
        bump(
            &mut cohort.to_decision,
            crime.decided_on - crime.referred_on,
            sign,
        );
    }
    if parts & DECISION != 0 && decided {
        let gender = crime.gender();
        let handled = tallies
            .entry((quarter_of_days(crime.decided_on), region, crime.code))
            .or_default();
        handled.handled[gender] += sign;
        handled.cleared[gender] += sign * i64::from(cleared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crime_fits_in_40_bytes_and_a_case_in_32() {
        assert_eq!(size_of::<Crime>(), 40);
        assert_eq!(size_of::<Case>(), 32);
    }
}
