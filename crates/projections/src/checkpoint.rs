//! Checkpoints: the whole state and its position in one file, so a restart reads only the
//! events after it. Written atomically and durably (temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new checkpoint, never a torn one.
//!
//! Format (all integers little-endian): the magic `GRYNPROJ`, a `u32` format version, a `u64`
//! payload length, the payload, and a `u64` FNV-1a hash of the payload that catches a damaged
//! file. The payload starts with the checkpoint's [`Origin`] — the store's backend and id, and
//! the id of the event at the checkpoint's position — then lists the position, the date span, cases, crimes, referral quarters, the
//! per-(quarter, code) tallies in key order, the yearly referral counts, the care counts and
//! (since version 3) the index of publications, then (since version 4) the social-services
//! state: the local police areas, each case's area, the notification counts per (quarter,
//! area) and the support counts per (quarter, kind, gender, age group).
//! The id indexes are not stored: they are rebuilt from the vectors on load.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use gryning_domain::{Quarter, Uuid};
use gryning_store::StoreIdentity;

use crate::index::IdIndex;
use crate::publication::PublicationEntry;
use crate::state::{
    CareTally, Case, Crime, NotificationTally, Projections, Referral, Tally, NIL, NO_DAY,
};
use crate::Error;

const MAGIC: &[u8; 8] = b"GRYNPROJ";
/// The checkpoint format this build writes and reads. A checkpoint of another version is
/// refused with [`Error::FormatVersion`]; the caller rebuilds from the event log.
pub const FORMAT_VERSION: u32 = 4;

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
    w.len(p.cases.len());
    for c in &p.cases {
        w.0.extend_from_slice(c.id.as_bytes());
        w.i32(c.opened_on);
        w.u32(c.crimes);
        w.u32(c.referrals);
        w.u16(c.lead);
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
    let mut keys: Vec<&(i32, u16)> = p.tallies.keys().collect();
    keys.sort();
    w.len(keys.len());
    for key in keys {
        let t = &p.tallies[key];
        w.i32(key.0);
        w.u16(key.1);
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
    let mut years: Vec<(&(i32, u16), &i64)> = p.referred_by_year.iter().collect();
    years.sort();
    w.len(years.len());
    for (&(year, code), &n) in years {
        w.i32(year);
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
    p.cases = r.items(30, |r| {
        Ok(Case {
            id: r.uuid()?,
            opened_on: r.i32()?,
            crimes: r.u32()?,
            referrals: r.u32()?,
            lead: r.u16()?,
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
    let tallies = r.items(6 + 12 * 8, |r| {
        let key = (r.i32()?, r.u16()?);
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
    let referred = r.items(14, |r| Ok(((r.i32()?, r.u16()?), r.i64()?)))?;
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
    if !r.bytes.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the state",
            r.bytes.len()
        ));
    }
    check_links(&p)?;
    p.area_index = p
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), i as u32))
        .collect();
    if p.area_index.len() != p.areas.len() {
        return Err("a local police area is listed twice".into());
    }
    p.case_index = IdIndex::rebuild(p.cases.len(), |i| p.case_hash(i));
    p.crime_index = IdIndex::rebuild(p.crimes.len(), |i| p.crime_hash(i));
    if (p.position == 0) != origin.event_id.is_none() {
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

/// Every link points inside its vector, so a damaged file that slipped past the hash still
/// cannot make a later `apply` index out of bounds.
pub(crate) fn check_links(p: &Projections) -> Result<(), Fail> {
    let ok = |link: u32, len: usize| link == NIL || (link as usize) < len;
    for (i, c) in p.cases.iter().enumerate() {
        if !ok(c.crimes, p.crimes.len()) || !ok(c.referrals, p.referrals.len()) {
            return Err(format!("case {i} links outside the state"));
        }
    }
    for (i, c) in p.crimes.iter().enumerate() {
        if (c.case as usize) >= p.cases.len()
            || !ok(c.next_in_case, p.crimes.len())
            || c.flags & 3 == 3
            || c.flags > 15
        {
            return Err(format!("crime {i} is malformed"));
        }
        if c.reported_on == NO_DAY {
            return Err(format!("crime {i} has no report date"));
        }
    }
    if p.referrals.iter().any(|r| !ok(r.next, p.referrals.len())) {
        return Err("a referral links outside the state".into());
    }
    if p.case_areas.len() != p.cases.len()
        || p.case_areas.iter().any(|&a| a as usize >= p.areas.len())
        || p.notifications
            .keys()
            .any(|&(_, a)| a as usize >= p.areas.len())
    {
        return Err("a case or a notification names an area outside the state".into());
    }
    if p.support
        .keys()
        .any(|&(_, kind, gender, age)| kind > 2 || gender > 2 || age > 2)
    {
        return Err("a support count has a kind, gender or age group out of range".into());
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
mod fuzz {
    use std::time::Duration;

    use gryning_domain::{
        Body, Catalogue, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision,
        Subject, TreatmentOutcome,
    };
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::{By, PeriodKind, TableName};

    fn runner(default: u32) -> TestRunner {
        let cases = std::env::var("GRYNING_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        })
    }

    fn seeds() -> Vec<Vec<u8>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/corpus/seeds/checkpoint.jsonl"
        );
        let text = std::fs::read_to_string(path).expect("checkpoint seeds");
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let hex: String = serde_json::from_str::<String>(l)
                    .unwrap()
                    .split_whitespace()
                    .collect();
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect()
            })
            .collect()
    }

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

    /// Events naming the decoded state's cases and crimes, then every table: no panic, and
    /// done within seconds (a damaged link could otherwise loop).
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
            let _ = done.send(());
        });
        match wait.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("a decoded checkpoint made apply or a table query loop")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("a decoded checkpoint made apply or a table query panic")
            }
        }
    }

    fn check(bytes: &[u8]) {
        if let Ok(checkpoint) = decode(bytes) {
            exercise(checkpoint.projections);
        }
    }

    #[test]
    #[ignore = "open defect: some damaged checkpoints that decode make apply or a table query \
                run for longer than the 20 s guard (the decoder does not yet bound the state's \
                ranges); run with --ignored"]
    fn damaged_checkpoints_are_refused_or_harmless_and_intact_ones_round_trip() {
        let state = sample();
        let origin = origin_at(601);
        let bytes = encode(&state, &origin);
        let back = decode(&bytes).expect("an intact checkpoint decodes");
        assert_eq!(
            (back.projections.clone(), back.origin),
            (state.clone(), origin)
        );
        exercise(back.projections);
        for seed in seeds() {
            check(&seed);
        }
        let edits = prop::collection::vec((any::<usize>(), any::<u8>()), 1..4);
        runner(1500)
            .run(&(edits, any::<usize>()), |(edits, cut)| {
                let mut damaged = bytes.clone();
                for (at, b) in edits {
                    let at = at % damaged.len();
                    damaged[at] = b;
                }
                check(&damaged);
                damaged.truncate(cut % (damaged.len() + 1));
                check(&damaged);
                Ok(())
            })
            .unwrap();
        runner(1500)
            .run(&prop::collection::vec(any::<u8>(), 0..200), |noise| {
                check(&noise);
                Ok(())
            })
            .unwrap();
    }
}
