//! Checkpoints: the whole state and its position in one file, so a restart reads only the
//! events after it. Written atomically and durably (temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new checkpoint, never a torn one.
//!
//! Format (all integers little-endian): the magic `GRYNPROJ`, a `u32` format version, a `u64`
//! payload length, the payload, and a `u64` FNV-1a hash of the payload that catches a damaged
//! file. The payload starts with the checkpoint's [`Origin`] — the store's backend and id, and
//! the id of the event at the checkpoint's position — then lists the position, the date span,
//! (since version 4) the region names, cases (with their region's index since version 4),
//! crimes, referral quarters, the per-(quarter, region, code) tallies in key order, the yearly
//! referral counts per region, the care counts, (since version 3) the index of publications,
//! and (since version 4) the contract-care proposals per quarter and region, then the
//! social-services state: the local police areas, each case's area, the notification counts
//! per (quarter, area) and the support counts per (quarter, kind, gender, age group), and
//! (since version 5) what retention's aggregates hold beside the counts: the erased crime
//! shapes, the erased referral quarters, and the totals of cases, counted units, streams and
//! events they stand for.
//! The id indexes are not stored: they are rebuilt from the vectors on load.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use gryning_domain::{CrimeCode, Date, Quarter, Uuid};
use gryning_store::StoreIdentity;

use crate::index::IdIndex;
use crate::period::quarter_of_days;
use crate::publication::PublicationEntry;
use crate::state::{
    CareTally, Case, Crime, NotificationTally, Projections, Referral, Tally, CLEARED, NIL,
    NOT_CLEARED, NO_DAY, UNDECIDED,
};
use crate::Error;

const MAGIC: &[u8; 8] = b"GRYNPROJ";
/// The checkpoint format this build writes and reads. A checkpoint of another version is
/// refused with [`Error::FormatVersion`]; the caller rebuilds from the event log.
pub const FORMAT_VERSION: u32 = 5;

/// Where a checkpoint's state was taken: the store, and the event at the checkpoint's position,
/// which tells the same store restored to an older copy (or otherwise rewritten) from the one
/// the state was folded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub store: StoreIdentity,
    /// The id of the event at the checkpoint's position (`None` at position 0).
    pub event_id: Option<Uuid>,
}

/// A checkpoint as read back: the state and where it was taken.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub projections: Projections,
    pub origin: Origin,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn text(&mut self, text: &str) {
        self.len(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }
    fn hist(&mut self, hist: &BTreeMap<i32, u32>) {
        self.len(hist.len());
        for (&v, &n) in hist {
            self.i32(v);
            self.u32(n);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

type Fail = String;

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        if self.bytes.len() < N {
            return Err("payload ends early".into());
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("split at N"))
    }
    fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Fail> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, Fail> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Result<i32, Fail> {
        self.take().map(i32::from_le_bytes)
    }
    fn i64(&mut self) -> Result<i64, Fail> {
        self.take().map(i64::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, Fail> {
        self.take().map(u64::from_le_bytes)
    }
    /// A count of items of at least `item_size` bytes each, checked against what is left, so a
    /// damaged count cannot make us allocate wildly.
    fn len(&mut self, item_size: usize) -> Result<usize, Fail> {
        let n = self.u64()?;
        if n > (self.bytes.len() / item_size.max(1)) as u64 {
            return Err(format!("a count of {n} items exceeds the rest of the file"));
        }
        Ok(n as usize)
    }
    /// A counted list of items of at least `item_size` bytes each, each read by `item`; the
    /// vector holds exactly the items read (no spare capacity: it is kept as live state).
    fn items<T>(
        &mut self,
        item_size: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, Fail>,
    ) -> Result<Vec<T>, Fail> {
        let n = self.len(item_size)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(item(self)?);
        }
        Ok(items)
    }
    fn uuid(&mut self) -> Result<Uuid, Fail> {
        self.take().map(Uuid::from_bytes)
    }
    fn text(&mut self) -> Result<String, Fail> {
        let bytes = self.items(1, |r| r.u8())?;
        String::from_utf8(bytes).map_err(|_| "a name is not UTF-8".to_string())
    }
    fn hist(&mut self) -> Result<BTreeMap<i32, u32>, Fail> {
        let pairs = self.items(8, |r| Ok((r.i32()?, r.u32()?)))?;
        Ok(pairs.into_iter().collect())
    }
}

pub(crate) fn encode(p: &Projections, origin: &Origin) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(
        128 + p.crimes.len() * 40 + p.cases.len() * 32,
    ));
    w.text(&origin.store.backend);
    w.text(&origin.store.id);
    match origin.event_id {
        None => w.u8(0),
        Some(id) => {
            w.u8(1);
            w.0.extend_from_slice(id.as_bytes());
        }
    }
    w.u64(p.position);
    match p.span {
        None => w.u8(0),
        Some((first, last)) => {
            w.u8(1);
            w.i32(first);
            w.i32(last);
        }
    }
    w.len(p.regions.len());
    for name in &p.regions {
        w.text(name);
    }
    w.len(p.cases.len());
    for c in &p.cases {
        w.0.extend_from_slice(c.id.as_bytes());
        w.i32(c.opened_on);
        w.u32(c.crimes);
        w.u32(c.referrals);
        w.u16(c.lead);
        w.u16(c.region);
    }
    w.len(p.crimes.len());
    for c in &p.crimes {
        w.0.extend_from_slice(c.id.as_bytes());
        w.u32(c.case);
        w.u32(c.next_in_case);
        w.i32(c.reported_on);
        w.i32(c.referred_on);
        w.i32(c.decided_on);
        w.u16(c.code);
        w.u8(c.flags);
    }
    w.len(p.referrals.len());
    for r in &p.referrals {
        w.i32(r.quarter);
        w.u32(r.next);
    }
    // Key order, so equal states write equal bytes.
    let mut keys: Vec<&(i32, u16, u16)> = p.tallies.keys().collect();
    keys.sort();
    w.len(keys.len());
    for key in keys {
        let t = &p.tallies[key];
        w.i32(key.0);
        w.u16(key.1);
        w.u16(key.2);
        for v in [
            t.reported,
            t.cases,
            t.referred_cases,
            t.cohort_referred,
            t.cohort_decided,
            t.cohort_cleared,
        ] {
            w.i64(v);
        }
        for v in t.handled.iter().chain(&t.cleared) {
            w.i64(*v);
        }
        w.hist(&t.to_referral);
        w.hist(&t.to_decision);
    }
    let mut years: Vec<(&(i32, u16, u16), &i64)> = p.referred_by_year.iter().collect();
    years.sort();
    w.len(years.len());
    for (&(year, region, code), &n) in years {
        w.i32(year);
        w.u16(region);
        w.u16(code);
        w.i64(n);
    }
    w.len(p.care.len());
    for (&quarter, c) in &p.care {
        w.i32(quarter);
        for v in [c.proposed, c.started, c.completed, c.discontinued] {
            w.i64(v);
        }
    }
    let publications: Vec<&PublicationEntry> = p.publications().collect();
    w.len(publications.len());
    for e in publications {
        w.i32(e.quarter.year());
        w.u8(e.quarter.number());
        w.u32(e.revision);
        w.u64(e.computed_at);
        w.u64(e.recorded_at);
        for text in [
            &e.catalogue_version,
            &e.catalogue_sha256,
            &e.published_at,
            &e.principal,
            &e.note,
        ] {
            w.text(text);
        }
        w.u8(u8::from(e.automatic));
    }
    let mut proposals: Vec<(&(i32, u16), &i64)> = p.contract_care.iter().collect();
    proposals.sort();
    w.len(proposals.len());
    for (&(quarter, region), &n) in proposals {
        w.i32(quarter);
        w.u16(region);
        w.i64(n);
    }
    w.len(p.areas.len());
    for area in &p.areas {
        w.text(area);
    }
    w.len(p.case_areas.len());
    for &area in &p.case_areas {
        w.u32(area);
    }
    w.len(p.notifications.len());
    for (&(quarter, area), t) in &p.notifications {
        w.i32(quarter);
        w.u32(area);
        w.i64(t.count);
        w.hist(&t.to_notification);
    }
    w.len(p.support.len());
    for (&(quarter, kind, gender, age), &n) in &p.support {
        w.i32(quarter);
        w.u8(kind);
        w.u8(gender);
        w.u8(age);
        w.i64(n);
    }
    w.len(p.erased.crimes.len());
    for (shape, &n) in &p.erased.crimes {
        w.i32(shape.reported);
        w.u16(shape.region);
        w.u16(shape.code);
        w.u8(shape.gender);
        w.u8(shape.decision);
        w.i32(shape.decided);
        w.i32(shape.to_referral);
        w.i32(shape.to_decision);
        w.i64(n);
    }
    w.len(p.erased.referrals.len());
    for (&(quarter, region, lead, first), &n) in &p.erased.referrals {
        w.i32(quarter);
        w.u16(region);
        w.u16(lead);
        w.u8(u8::from(first));
        w.i64(n);
    }
    w.i64(p.erased.cases);
    w.u64(p.erased.units);
    w.u64(p.erased.streams);
    w.u64(p.erased.events);
    w.u64(p.erased.valid_below);
    w.0
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, Fail> {
    let mut r = Reader { bytes };
    let store = StoreIdentity {
        backend: r.text()?,
        id: r.text()?,
    };
    let event_id = match r.u8()? {
        0 => None,
        1 => Some(r.uuid()?),
        other => return Err(format!("bad event-id marker {other}")),
    };
    let origin = Origin { store, event_id };
    let mut p = Projections {
        position: r.u64()?,
        ..Projections::default()
    };
    p.span = match r.u8()? {
        0 => None,
        1 => Some((r.i32()?, r.i32()?)),
        other => return Err(format!("bad date-span marker {other}")),
    };
    p.regions = r.items(8, |r| r.text())?;
    if p.regions.len() > crate::state::MAX_REGIONS {
        return Err(format!(
            "{} region names, more than a state keeps",
            p.regions.len()
        ));
    }
    for (i, name) in p.regions.iter().enumerate() {
        if p.region_ids.insert(name.clone(), i as u16).is_some() {
            return Err(format!("region name {name:?} is listed twice"));
        }
    }
    p.cases = r.items(32, |r| {
        Ok(Case {
            id: r.uuid()?,
            opened_on: r.i32()?,
            crimes: r.u32()?,
            referrals: r.u32()?,
            lead: r.u16()?,
            region: r.u16()?,
        })
    })?;
    p.crimes = r.items(39, |r| {
        Ok(Crime {
            id: r.uuid()?,
            case: r.u32()?,
            next_in_case: r.u32()?,
            reported_on: r.i32()?,
            referred_on: r.i32()?,
            decided_on: r.i32()?,
            code: r.u16()?,
            flags: r.u8()?,
        })
    })?;
    p.referrals = r.items(8, |r| {
        Ok(Referral {
            quarter: r.i32()?,
            next: r.u32()?,
        })
    })?;
    let tallies = r.items(8 + 12 * 8, |r| {
        let key = (r.i32()?, r.u16()?, r.u16()?);
        let mut t = Tally::default();
        for field in [
            &mut t.reported,
            &mut t.cases,
            &mut t.referred_cases,
            &mut t.cohort_referred,
            &mut t.cohort_decided,
            &mut t.cohort_cleared,
        ] {
            *field = r.i64()?;
        }
        for g in 0..3 {
            t.handled[g] = r.i64()?;
        }
        for g in 0..3 {
            t.cleared[g] = r.i64()?;
        }
        t.to_referral = r.hist()?;
        t.to_decision = r.hist()?;
        Ok((key, t))
    })?;
    p.tallies = tallies.into_iter().collect();
    let referred = r.items(16, |r| Ok(((r.i32()?, r.u16()?, r.u16()?), r.i64()?)))?;
    p.referred_by_year = referred.into_iter().collect();
    let care = r.items(36, |r| {
        let quarter = r.i32()?;
        let tally = CareTally {
            proposed: r.i64()?,
            started: r.i64()?,
            completed: r.i64()?,
            discontinued: r.i64()?,
        };
        Ok((quarter, tally))
    })?;
    p.care = care.into_iter().collect();
    let publications = r.items(66, |r| {
        let (year, number) = (r.i32()?, r.u8()?);
        let quarter = Quarter::new(year, number)
            .ok_or_else(|| format!("bad publication quarter {year}-Q{number}"))?;
        Ok(PublicationEntry {
            quarter,
            revision: r.u32()?,
            computed_at: r.u64()?,
            recorded_at: r.u64()?,
            catalogue_version: r.text()?,
            catalogue_sha256: r.text()?,
            published_at: r.text()?,
            principal: r.text()?,
            note: r.text()?,
            automatic: r.u8()? != 0,
        })
    })?;
    for e in publications {
        p.publications.0.entry(e.quarter).or_default().push(e);
    }
    let proposals = r.items(14, |r| Ok(((r.i32()?, r.u16()?), r.i64()?)))?;
    p.contract_care = proposals.into_iter().collect();
    p.areas = r.items(8, |r| r.text())?;
    p.case_areas = r.items(4, |r| r.u32())?;
    let notifications = r.items(24, |r| {
        let key = (r.i32()?, r.u32()?);
        let tally = NotificationTally {
            count: r.i64()?,
            to_notification: r.hist()?,
        };
        Ok((key, tally))
    })?;
    p.notifications = notifications.into_iter().collect();
    let support = r.items(15, |r| {
        Ok(((r.i32()?, r.u8()?, r.u8()?, r.u8()?), r.i64()?))
    })?;
    p.support = support.into_iter().collect();
    let crimes = r.items(30, |r| {
        Ok((
            crate::erasure::CrimeShape {
                reported: r.i32()?,
                region: r.u16()?,
                code: r.u16()?,
                gender: r.u8()?,
                decision: r.u8()?,
                decided: r.i32()?,
                to_referral: r.i32()?,
                to_decision: r.i32()?,
            },
            r.i64()?,
        ))
    })?;
    p.erased.crimes = crimes.into_iter().collect();
    let referrals = r.items(17, |r| {
        Ok(((r.i32()?, r.u16()?, r.u16()?, r.u8()? != 0), r.i64()?))
    })?;
    p.erased.referrals = referrals.into_iter().collect();
    p.erased.cases = r.i64()?;
    p.erased.units = r.u64()?;
    p.erased.streams = r.u64()?;
    p.erased.events = r.u64()?;
    p.erased.valid_below = r.u64()?;
    if !r.bytes.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the state",
            r.bytes.len()
        ));
    }
    p.area_index = p
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), i as u32))
        .collect();
    if p.area_index.len() != p.areas.len() {
        return Err("a local police area is listed twice".into());
    }
    finish(&mut p)?;
    // A state past position 0 records the id of the event at its position, unless retention
    // erased that event (a snapshot it changed: then the position is a gap of the log).
    if (p.position == 0 && origin.event_id.is_some())
        || (p.position != 0 && origin.event_id.is_none() && p.erased.valid_below == 0)
    {
        return Err(format!(
            "position {} does not fit the recorded event id {:?}",
            p.position, origin.event_id
        ));
    }
    Ok(Checkpoint {
        projections: p,
        origin,
    })
}

/// The days an event's date can have (the years -9999 to 9999, as [`Date`]), and the quarters
/// and years they fall in: every date, quarter and year a state holds lies within them.
struct Calendar {
    days: std::ops::RangeInclusive<i32>,
    quarters: std::ops::RangeInclusive<i32>,
    years: std::ops::RangeInclusive<i32>,
}

impl Calendar {
    /// The calendar of a state whose events are dated within `span` (none: an empty range).
    fn of(span: Option<(i32, i32)>) -> Calendar {
        let Some((first, last)) = span else {
            #[allow(clippy::reversed_empty_ranges)]
            return Calendar {
                days: 1..=0,
                quarters: 1..=0,
                years: 1..=0,
            };
        };
        let (q0, q1) = (quarter_of_days(first), quarter_of_days(last));
        Calendar {
            days: first..=last,
            quarters: q0..=q1,
            years: q0.div_euclid(4)..=q1.div_euclid(4),
        }
    }

    /// Days between two dates of the state, either way round.
    fn max_lead(&self) -> i64 {
        i64::from(*self.days.end()) - i64::from(*self.days.start())
    }
}

/// Checks everything the queries and later events rely on, so that a damaged file that slipped
/// past the checksum is refused instead of making a query or an `apply` panic, loop or run
/// for long; then builds the id indexes. What a state folded from events always satisfies:
///
/// - every date lies within the date span, which lies within [`Date`]'s years, and every quarter
///   and year of a count within the span's; codes are four-digit numbers;
/// - the intrusive lists are what the events built: each crime links to the crime of its case
///   reported just before it, each case to its newest crime; each case's referral quarters
///   are distinct, each node older than the one before it and owned by exactly one case;
/// - the counts are what the cases, crimes and referrals add up to (crimes reported, cases
///   opened, referrals, decisions, lead-time histograms), none negative, and together no more
///   events than the position;
/// - ids are unique: no two cases share one, nor two crimes of a case.
pub(crate) fn finish(p: &mut Projections) -> Result<(), Fail> {
    check_state(p)?;
    p.case_index = unique_index(
        p.cases.len(),
        |i| p.case_hash(i),
        |a, b| p.cases[a as usize].id == p.cases[b as usize].id,
    )
    .map_err(|i| format!("case {i} has the id of an earlier case"))?;
    p.crime_index = unique_index(
        p.crimes.len(),
        |i| p.crime_hash(i),
        |a, b| {
            let (a, b) = (&p.crimes[a as usize], &p.crimes[b as usize]);
            a.id == b.id && a.case == b.case
        },
    )
    .map_err(|i| format!("crime {i} has the id of an earlier crime of its case"))?;
    Ok(())
}

/// The index of positions `0..len`, or the first position whose entry equals an earlier one.
fn unique_index(
    len: usize,
    hash_of: impl Fn(u32) -> u64,
    same: impl Fn(u32, u32) -> bool,
) -> Result<IdIndex, u32> {
    let mut index = IdIndex::default();
    for i in 0..len as u32 {
        let hash = hash_of(i);
        if index.find(hash, |earlier| same(earlier, i)).is_some() {
            return Err(i);
        }
        index.push(hash, &hash_of);
    }
    Ok(index)
}

/// What the crimes add up to, for the counts to be checked against.
#[derive(Default)]
struct Totals {
    referred: i64,
    decided: i64,
    cleared: i64,
    /// Referred and decided by a prosecutor: the crimes with a referral-to-decision lead time.
    prosecuted: i64,
    /// Distinct (case, year) of the referrals.
    referral_years: i64,
}

fn check_state(p: &Projections) -> Result<(), Fail> {
    let span = p.span;
    if let Some((first, last)) = span {
        let valid = |day: i32| Date::from_days(day).is_some();
        if !valid(first) || !valid(last) || first > last {
            return Err(format!(
                "the date span {first}..{last} is not a span of dates"
            ));
        }
    }
    let calendar = Calendar::of(span);
    let code_ok = |code: u16| CrimeCode::from_number(code).is_some();
    let mut totals = Totals::default();

    // Cases and crimes: dates, codes, flags, and the crime lists.
    if p.cases.len() >= NIL as usize || p.crimes.len() >= NIL as usize {
        return Err("more cases or crimes than a state can link".into());
    }
    let mut newest = vec![NIL; p.cases.len()];
    for (i, c) in p.crimes.iter().enumerate() {
        let bad = |what: &str| Err(format!("crime {i}: {what}"));
        let Some(previous) = newest.get_mut(c.case as usize) else {
            return bad("its case is not in the state");
        };
        if c.next_in_case != *previous {
            return bad("it does not link to the crime of its case reported before it");
        }
        *previous = i as u32;
        if !code_ok(c.code) || c.flags & 3 == 3 || c.flags > 15 {
            return bad("its code or flags are out of range");
        }
        if !calendar.days.contains(&c.reported_on) {
            return bad("its report date is outside the state's dates");
        }
        let referred = c.referred_on != NO_DAY;
        if referred && !calendar.days.contains(&c.referred_on) {
            return bad("its referral date is outside the state's dates");
        }
        // A referral marks every crime of the case reported before it.
        if referred
            && c.next_in_case != NIL
            && p.crimes[c.next_in_case as usize].referred_on == NO_DAY
        {
            return bad("it is referred but a crime of its case reported before it is not");
        }
        let decision = c.decision();
        if (decision == UNDECIDED) != (c.decided_on == NO_DAY)
            || (decision != UNDECIDED && !calendar.days.contains(&c.decided_on))
        {
            return bad("its decision and decision date do not fit");
        }
        totals.referred += i64::from(referred);
        totals.decided += i64::from(decision != UNDECIDED);
        totals.cleared += i64::from(decision == CLEARED);
        totals.prosecuted +=
            i64::from(referred && (decision == CLEARED || decision == NOT_CLEARED));
    }

    // Cases: dates, codes, the newest crime, and the referral lists.
    let mut owned = vec![false; p.referrals.len()];
    let mut quarters: Vec<i32> = Vec::new();
    for (i, c) in p.cases.iter().enumerate() {
        let bad = |what: &str| Err(format!("case {i}: {what}"));
        if !calendar.days.contains(&c.opened_on) || !code_ok(c.lead) {
            return bad("its opening date or lead code is out of range");
        }
        if usize::from(c.region) >= p.regions.len() {
            return bad("its region is not in the state's regions");
        }
        if c.crimes != newest[i] {
            return bad("it does not link to its newest crime");
        }
        quarters.clear();
        let (mut at, mut above) = (c.referrals, p.referrals.len() as u64);
        while at != NIL {
            // Each node is older (pushed earlier) than the one before it: the walk ends.
            if u64::from(at) >= above || owned[at as usize] {
                return bad("its referral list is not a list of its own referrals");
            }
            owned[at as usize] = true;
            let node = p.referrals[at as usize];
            if !calendar.quarters.contains(&node.quarter) {
                return bad("a referral quarter is outside the state's dates");
            }
            quarters.push(node.quarter);
            above = u64::from(at);
            at = node.next;
        }
        quarters.sort_unstable();
        if quarters.windows(2).any(|w| w[0] == w[1]) {
            return bad("its referral quarters repeat");
        }
        quarters.dedup_by_key(|q| q.div_euclid(4));
        totals.referral_years += quarters.len() as i64;
    }
    if owned.iter().any(|&o| !o) {
        return Err("a referral belongs to no case".into());
    }

    // The counts.
    #[derive(Default)]
    struct Sums {
        reported: i64,
        cases: i64,
        referred_cases: i64,
        handled: i64,
        cleared: i64,
        cohort_referred: i64,
        cohort_decided: i64,
        cohort_cleared: i64,
        to_decision: i64,
    }
    let mut s = Sums::default();
    // Each count is at most the number of crimes (or cases, or referrals), so no sum of them
    // overflows: checked while adding.
    let add = |sum: &mut i64, v: i64| -> Result<(), Fail> {
        if v < 0 {
            return Err(format!("a count is negative ({v})"));
        }
        *sum = sum
            .checked_add(v)
            .filter(|&n| n <= i64::from(u32::MAX))
            .ok_or_else(|| "the counts add up to more than a state can hold".to_string())?;
        Ok(())
    };
    let lead = calendar.max_lead();
    let hist = |h: &BTreeMap<i32, u32>| -> Result<i64, Fail> {
        let mut n = 0i64;
        for (&days, &count) in h {
            if i64::from(days).abs() > lead || count == 0 {
                return Err(format!("a lead-time histogram holds {count} × {days} days"));
            }
            n += i64::from(count);
        }
        Ok(n)
    };
    let region_ok = |region: u16| usize::from(region) < p.regions.len();
    for (&(quarter, region, code), t) in &p.tallies {
        if !calendar.quarters.contains(&quarter) || !code_ok(code) || !region_ok(region) {
            return Err(format!(
                "a count is kept for quarter number {quarter}, region {region}, code {code}"
            ));
        }
        add(&mut s.reported, t.reported)?;
        add(&mut s.cases, t.cases)?;
        add(&mut s.referred_cases, t.referred_cases)?;
        for g in 0..3 {
            add(&mut s.handled, t.handled[g])?;
            add(&mut s.cleared, t.cleared[g])?;
        }
        add(&mut s.cohort_referred, t.cohort_referred)?;
        add(&mut s.cohort_decided, t.cohort_decided)?;
        add(&mut s.cohort_cleared, t.cohort_cleared)?;
        // Every referred crime has a report-to-referral lead time in its cohort.
        if hist(&t.to_referral)? != t.cohort_referred {
            return Err(format!(
                "quarter number {quarter}, code {code}: the report-to-referral lead times do not count the referred crimes"
            ));
        }
        add(&mut s.to_decision, hist(&t.to_decision)?)?;
    }
    // Retention's aggregates stand for crimes, cases and referrals of their own.
    let mut erased_referrals = 0i64;
    for (&(quarter, region, lead, first), &n) in &p.erased.referrals {
        if !calendar.quarters.contains(&quarter) || !code_ok(lead) || !region_ok(region) {
            return Err(format!(
                "an erased referral count is kept for quarter number {quarter}, region {region}, code {lead}"
            ));
        }
        add(&mut erased_referrals, n)?;
        totals.referral_years += if first { n } else { 0 };
    }
    let mut erased_crimes = 0i64;
    for (shape, &n) in &p.erased.crimes {
        if !calendar.quarters.contains(&shape.reported)
            || !code_ok(shape.code)
            || !region_ok(shape.region)
            || shape.gender > 2
            || shape.decision > 3
            || (shape.decision == UNDECIDED) != (shape.decided == NO_DAY)
            || (shape.decided != NO_DAY && !calendar.quarters.contains(&shape.decided))
            || (shape.to_referral != NO_DAY && i64::from(shape.to_referral).abs() > lead)
            || (shape.to_decision != NO_DAY && i64::from(shape.to_decision).abs() > lead)
        {
            return Err("an erased crime count is out of range".into());
        }
        add(&mut erased_crimes, n)?;
        let decided = shape.decision != UNDECIDED;
        totals.referred += n * i64::from(shape.to_referral != NO_DAY);
        totals.decided += n * i64::from(decided);
        totals.cleared += n * i64::from(shape.decision == CLEARED);
        totals.prosecuted += n * i64::from(shape.to_decision != NO_DAY);
    }
    if p.erased.cases < 0 {
        return Err("the erased case count is negative".into());
    }
    for (what, counted, expected) in [
        (
            "crimes reported",
            s.reported,
            p.crimes.len() as i64 + erased_crimes,
        ),
        (
            "cases opened",
            s.cases,
            p.cases.len() as i64 + p.erased.cases,
        ),
        (
            "case referrals",
            s.referred_cases,
            p.referrals.len() as i64 + erased_referrals,
        ),
        ("crimes decided", s.handled, totals.decided),
        ("crimes cleared", s.cleared, totals.cleared),
        ("crimes referred", s.cohort_referred, totals.referred),
        ("crimes decided by cohort", s.cohort_decided, totals.decided),
        ("crimes cleared by cohort", s.cohort_cleared, totals.cleared),
        (
            "referral-to-decision lead times",
            s.to_decision,
            totals.prosecuted,
        ),
    ] {
        if counted != expected {
            return Err(format!(
                "the counts hold {counted} {what}, the crimes and cases {expected}"
            ));
        }
    }
    let mut years = 0i64;
    for (&(year, region, code), &n) in &p.referred_by_year {
        if !calendar.years.contains(&year) || !code_ok(code) || !region_ok(region) {
            return Err(format!(
                "a yearly count is kept for year {year}, region {region}, code {code}"
            ));
        }
        add(&mut years, n)?;
    }
    if years != totals.referral_years {
        return Err(format!(
            "the yearly counts hold {years} case referrals, the cases {}",
            totals.referral_years
        ));
    }
    // Every case, crime, referral and care count stands for an event of its own.
    let mut events = p.cases.len() as u64 + p.crimes.len() as u64 + p.referrals.len() as u64;
    for (&quarter, c) in &p.care {
        if !calendar.quarters.contains(&quarter) {
            return Err(format!("a care count is kept for quarter number {quarter}"));
        }
        for v in [c.proposed, c.started, c.completed, c.discontinued] {
            let v = u64::try_from(v).map_err(|_| format!("a care count is negative ({v})"))?;
            events = events.saturating_add(v);
        }
    }
    let events = events.saturating_sub(p.erased.units);
    if events > p.position || p.position > i64::MAX as u64 {
        return Err(format!(
            "the state counts {events} events up to position {}",
            p.position
        ));
    }
    for e in p.publications() {
        if e.revision == 0 || e.recorded_at == 0 || e.recorded_at > p.position {
            return Err(format!(
                "publication {} revision {} recorded at {} does not fit position {}",
                e.quarter, e.revision, e.recorded_at, p.position
            ));
        }
    }
    if p.case_areas.len() != p.cases.len()
        || p.case_areas.iter().any(|&a| a as usize >= p.areas.len())
        || p.notifications
            .keys()
            .any(|&(q, a)| a as usize >= p.areas.len() || !calendar.quarters.contains(&q))
    {
        return Err("a case or a notification names an area outside the state".into());
    }
    if p.support.keys().any(|&(q, kind, gender, age)| {
        kind > 2 || gender > 2 || age > 2 || !calendar.quarters.contains(&q)
    }) {
        return Err("a support count has a quarter, kind, gender or age group out of range".into());
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

impl Projections {
    /// Writes the state, its position and `origin` (where it was taken, see
    /// [`crate::origin_of`]) to `path`, atomically and durably: `path.tmp` is written and
    /// fsynced, renamed over `path`, and the directory is fsynced.
    pub fn save_checkpoint(&self, path: &Path, origin: &Origin) -> Result<(), Error> {
        let payload = encode(self, origin);
        let mut bytes = Vec::with_capacity(payload.len() + 28);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&fnv1a(&payload).to_le_bytes());
        let tmp = temporary_path(path);
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io(path))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // The rename is durable only once the directory entry is on disk.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }
}

/// Reads a checkpoint written by [`Projections::save_checkpoint`]: `None` if there is none,
/// an error if the file is damaged or of another format version. Whether it fits the store at
/// hand is [`crate::resume`]'s question.
pub fn load_checkpoint(path: &Path) -> Result<Option<Checkpoint>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(Error::NotACheckpoint {
            path: path.to_path_buf(),
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(Error::FormatVersion {
            path: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    if bytes.len() < 28 {
        return Err(corrupt("the file is truncated".into()));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    if len != (bytes.len() - 28) as u64 {
        return Err(corrupt(format!(
            "the header says {len} payload bytes but the file holds {}",
            bytes.len() - 28
        )));
    }
    let (payload, hash) = bytes[20..].split_at(bytes.len() - 28);
    if fnv1a(payload).to_le_bytes() != hash {
        return Err(corrupt("the checksum does not match the contents".into()));
    }
    decode(payload).map(Some).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            store: StoreIdentity {
                backend: "sqlite".into(),
                id: "3f0c5d8e-1111-4222-8333-444455556666".into(),
            },
            event_id: None,
        }
    }

    #[test]
    fn missing_is_none_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projections.ckpt");
        assert!(load_checkpoint(&path).unwrap().is_none());
        Projections::new()
            .save_checkpoint(&path, &origin())
            .unwrap();
        assert_eq!(
            load_checkpoint(&path).unwrap(),
            Some(Checkpoint {
                projections: Projections::new(),
                origin: origin()
            })
        );
        assert!(!temporary_path(&path).exists());

        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 9;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = load_checkpoint(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");

        bytes[last] ^= 1;
        bytes[8] = 9;
        fs::write(&path, &bytes).unwrap();
        let err = load_checkpoint(&path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::FormatVersion {
                    found: 9,
                    expected: FORMAT_VERSION,
                    ..
                }
            ),
            "{err}"
        );

        fs::write(&path, b"hello").unwrap();
        assert!(matches!(
            load_checkpoint(&path).unwrap_err(),
            Error::NotACheckpoint { .. }
        ));
    }
}

/// The fuzz target of the checkpoint decoder (property-based, proptest, stable toolchain): a
/// damaged checkpoint whose checksum still matches must be refused or give a state that
/// later events and every table query handle without a panic or a hang; an intact one
/// round-trips. Seeds: `tests/corpus/seeds/checkpoint.jsonl` (payloads in hex);
/// `GRYNING_FUZZ_CASES` sets the generated cases.
#[cfg(test)]
#[path = "../../../tests/support/fuzz.rs"]
mod fuzz_support;

#[cfg(test)]
mod fuzz {
    use std::cell::Cell;
    use std::time::Duration;

    use gryning_domain::{
        Body, Catalogue, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision,
        Subject, TreatmentOutcome,
    };
    use proptest::prelude::*;

    use super::fuzz_support::{runner, seed_bytes};
    use super::*;
    use crate::{By, PeriodKind, TableName};

    fn event(n: u128, day: &str, subject: Subject, body: Body) -> Event {
        Event {
            event_id: Uuid::from_u128(n),
            occurred_on: Date::parse(day).unwrap(),
            subject,
            body,
        }
    }

    /// A small state with every kind of entry: cases, crimes, referrals, decisions, care.
    fn sample() -> Projections {
        let code = |c| CrimeCode::parse(c).unwrap();
        let case = |n| Subject::Case(Uuid::from_u128(n));
        let client = Subject::Client(Uuid::from_u128(900));
        let mut events = Vec::new();
        for c in 0..3u128 {
            events.push(event(
                100 + c,
                "2020-01-10",
                case(c),
                Body::CaseOpened {
                    lead_crime_code: code("4024"),
                    police_region: String::new(),
                    local_police_area: String::new(),
                },
            ));
            for k in 0..2u128 {
                events.push(event(
                    200 + c * 10 + k,
                    "2020-02-01",
                    case(c),
                    Body::CrimeReported {
                        crime_id: Uuid::from_u128(1000 + c * 10 + k),
                        crime_code: code(if k == 0 { "9365" } else { "0418" }),
                        victim_gender: Gender::Female,
                        victim_age_group: gryning_domain::AgeGroup::Adult,
                    },
                ));
            }
            events.push(event(
                300 + c,
                "2020-04-01",
                case(c),
                Body::CaseReferredToProsecutor,
            ));
            events.push(event(
                400 + c,
                "2020-06-01",
                case(c),
                Body::ProsecutionDecided {
                    crime_id: Uuid::from_u128(1000 + c * 10),
                    decision: ProsecutionDecision::Indictment,
                },
            ));
            events.push(event(
                500 + c,
                "2020-07-01",
                case(c),
                Body::InvestigationClosed {
                    crime_ids: vec![Uuid::from_u128(1001 + c * 10)],
                    reason: ClosureReason::Other,
                },
            ));
        }
        events.push(event(
            600,
            "2020-03-01",
            client,
            Body::TreatmentProgrammeStarted {
                programme: "IDAP".into(),
            },
        ));
        events.push(event(
            601,
            "2020-09-01",
            client,
            Body::TreatmentProgrammeEnded {
                outcome: TreatmentOutcome::Completed,
            },
        ));
        let mut p = Projections::new();
        for (i, e) in events.iter().enumerate() {
            p.apply(i as u64 + 1, e);
        }
        p
    }

    fn origin_at(event: u128) -> Origin {
        Origin {
            store: StoreIdentity {
                backend: "sqlite".into(),
                id: "3f0c5d8e-1111-4222-8333-444455556666".into(),
            },
            event_id: Some(Uuid::from_u128(event)),
        }
    }

    /// Events naming the decoded state's cases and crimes, then every table and every
    /// publication's tables: no panic, and done within seconds (a damaged link could
    /// otherwise loop, a damaged date or count make a query run over millions of periods).
    fn exercise(mut p: Projections) {
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut position = p.position;
            let mut next = |p: &mut Projections, subject, body| {
                position += 1;
                p.apply(
                    position,
                    &event(position as u128, "2020-10-01", subject, body),
                );
            };
            let cases: Vec<Uuid> = p.cases.iter().take(4).map(|c| c.id).collect();
            let crimes: Vec<(Uuid, Uuid)> = p
                .crimes
                .iter()
                .take(4)
                .map(|c| (p.cases[c.case as usize].id, c.id))
                .collect();
            for id in cases {
                next(&mut p, Subject::Case(id), Body::CaseReferredToProsecutor);
                next(
                    &mut p,
                    Subject::Case(id),
                    Body::CaseReclassified {
                        lead_crime_code: CrimeCode::parse("9365").unwrap(),
                    },
                );
            }
            for (case, crime) in crimes {
                next(
                    &mut p,
                    Subject::Case(case),
                    Body::CrimeReclassified {
                        crime_id: crime,
                        crime_code: CrimeCode::parse("4012").unwrap(),
                    },
                );
                next(
                    &mut p,
                    Subject::Case(case),
                    Body::ProsecutionDecided {
                        crime_id: crime,
                        decision: ProsecutionDecision::WaiverOfProsecution,
                    },
                );
            }
            let catalogue = Catalogue::default_catalogue();
            for name in TableName::ALL {
                for by in By::ALL {
                    for period in PeriodKind::ALL {
                        let _ = p.table(name, by, period, &catalogue);
                    }
                }
            }
            let mut quarters: Vec<Quarter> = p.publications().map(|e| e.quarter).collect();
            quarters.extend(p.earliest_date().map(Quarter::of));
            for quarter in quarters {
                let _ = p.publish_tables(quarter, &catalogue);
            }
            let _ = done.send(());
        });
        match wait.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("a decoded checkpoint made apply or a table query loop")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("a decoded checkpoint made apply or a table query panic")
            }
        }
    }

    /// How many damaged inputs were refused, and how many decoded (and were then exercised).
    #[derive(Default)]
    struct Tally {
        refused: Cell<usize>,
        decoded: Cell<usize>,
    }

    impl Tally {
        fn counts(&self) -> (usize, usize, usize) {
            let (refused, decoded) = (self.refused.get(), self.decoded.get());
            (refused + decoded, refused, decoded)
        }
    }

    fn check(bytes: &[u8], tally: &Tally) {
        match decode(bytes) {
            Ok(checkpoint) => {
                tally.decoded.set(tally.decoded.get() + 1);
                exercise(checkpoint.projections);
            }
            Err(_) => tally.refused.set(tally.refused.get() + 1),
        }
    }

    /// One value of the state set to `value`: a date, a link, a code, a count. `which` picks
    /// the field, `at` the element.
    fn damage(p: &mut Projections, which: u8, at: usize, value: i64) {
        let (i32v, u32v, u16v) = (value as i32, value as u32, value as u16);
        let case = at % p.cases.len();
        let crime = at % p.crimes.len();
        let referral = at % p.referrals.len();
        match which % 16 {
            0 => p.span = p.span.map(|(a, b)| (i32v, b.max(a))),
            1 => p.span = p.span.map(|(a, _)| (a, i32v)),
            2 => p.cases[case].opened_on = i32v,
            3 => p.cases[case].crimes = u32v,
            4 => p.cases[case].referrals = u32v,
            5 => p.cases[case].lead = u16v,
            6 => p.crimes[crime].next_in_case = u32v,
            7 => p.crimes[crime].reported_on = i32v,
            8 => p.crimes[crime].referred_on = i32v,
            9 => p.crimes[crime].decided_on = i32v,
            10 => p.crimes[crime].flags = value as u8,
            11 => p.referrals[referral].next = u32v,
            12 => p.referrals[referral].quarter = i32v,
            13 => {
                let key = *p.tallies.keys().nth(at % p.tallies.len()).unwrap();
                let t = p.tallies.get_mut(&key).unwrap();
                match at % 4 {
                    0 => t.reported = value,
                    1 => t.cohort_referred = value,
                    2 => t.handled[at % 3] = value,
                    _ => {
                        t.to_referral.insert(i32v, u32v);
                    }
                }
            }
            14 => {
                let key = *p.tallies.keys().nth(at % p.tallies.len()).unwrap();
                let t = p.tallies.remove(&key).unwrap();
                // Moved to another quarter, or to another region.
                if at.is_multiple_of(2) {
                    p.tallies.insert((i32v, key.1, key.2), t);
                } else {
                    p.tallies.insert((key.0, u16v, key.2), t);
                }
            }
            _ => {
                let n = p.care.len().max(1);
                if let Some(c) = p.care.values_mut().nth(at % n) {
                    c.started = value;
                }
            }
        }
    }

    #[test]
    fn damaged_checkpoints_are_refused_or_harmless_and_intact_ones_round_trip() {
        let started = std::time::Instant::now();
        let state = sample();
        let origin = origin_at(601);
        let bytes = encode(&state, &origin);
        let back = decode(&bytes).expect("an intact checkpoint decodes");
        assert_eq!(
            (back.projections.clone(), back.origin.clone()),
            (state.clone(), origin.clone())
        );
        exercise(back.projections);
        let seeds = Tally::default();
        for seed in seed_bytes("checkpoint") {
            check(&seed, &seeds);
        }
        // Random bytes changed, and the payload cut short.
        let edited = Tally::default();
        let edits = prop::collection::vec((any::<usize>(), any::<u8>()), 1..4);
        runner(1500)
            .run(&(edits, any::<usize>()), |(edits, cut)| {
                let mut damaged = bytes.clone();
                for (at, b) in edits {
                    let at = at % damaged.len();
                    damaged[at] = b;
                }
                check(&damaged, &edited);
                damaged.truncate(cut % (damaged.len() + 1));
                check(&damaged, &edited);
                Ok(())
            })
            .unwrap();
        // One value of the state changed, written with a matching checksum: the damage that
        // byte edits rarely reach (every length and marker still fits).
        let changed = Tally::default();
        let values = prop_oneof![
            any::<i64>(),
            -3i64..40,
            Just(i64::from(i32::MIN)),
            Just(i64::from(i32::MAX)),
            Just(i64::from(NIL)),
            (-800_000i64..800_000),
        ];
        runner(1500)
            .run(
                &(any::<u8>(), any::<usize>(), values),
                |(which, at, value)| {
                    let mut damaged = state.clone();
                    damage(&mut damaged, which, at, value);
                    check(&encode(&damaged, &origin), &changed);
                    Ok(())
                },
            )
            .unwrap();
        let noise = Tally::default();
        runner(1500)
            .run(&prop::collection::vec(any::<u8>(), 0..200), |bytes| {
                check(&bytes, &noise);
                Ok(())
            })
            .unwrap();
        let (seeds, edited, changed, noise) = (
            seeds.counts(),
            edited.counts(),
            changed.counts(),
            noise.counts(),
        );
        println!(
            "checkpoint fuzz target: {} seeds ({} refused), {} byte-edited and cut payloads \
             ({} refused, {} decoded and exercised), {} states with one value changed ({} \
             refused, {} decoded and exercised), {} noise payloads ({} refused) in {:?}",
            seeds.0,
            seeds.1,
            edited.0,
            edited.1,
            edited.2,
            changed.0,
            changed.1,
            changed.2,
            noise.0,
            noise.1,
            started.elapsed()
        );
    }
}
