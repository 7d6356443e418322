//! Synthetic, deterministic event data for gryning. At scale 1 the dataset *is* the Stockholm
//! case flow of 2019–2020 as published in Länsstyrelsen Stockholm's *Regional lägesrapport
//! 2020*: computed by the table definitions of docs/contract.md with the default catalogue, it
//! gives Tabell 1 and Tabell 2, Kriminalvården's figures exactly and the 2019 person-clearance
//! rates within rounding (see [`reference()`]). Everything else about it is random but realistic:
//! victims, dates, police areas, reclassifications, superseded decisions, open crimes. At scale
//! N it is N independent copies of that flow (fresh ids, same dates), for benchmarks.
//!
//! Output is a function of the seed and the scale only: the generator has its own PRNG and
//! never reads the clock or the environment. Events come copy by copy, each copy in date order,
//! so appending them in output order passes every lifecycle rule; only one copy is held in
//! memory at a time.

mod care;
mod cases;
mod plan;
mod reference;
mod rng;

use std::collections::HashMap;
use std::io::{self, Write};

use gryning_domain::{Catalogue, CrimeCode, Date, Event};

pub use cases::POLICE_REGION;
pub use plan::YEARS;
pub use reference::{
    reference, ClearanceRow, CodeFlowRow, GroupFlowRow, Kriminalvarden, MapsTo, ProgrammeYear,
    Reference, VictimGender, YearCount, REFERENCE_JSON,
};

use crate::plan::Plan;
use crate::rng::{splitmix64, Rng};

/// The seed the project's fixtures and benchmarks use unless they say otherwise.
pub const DEFAULT_SEED: u64 = 2021;

/// The first and the last date any generated event carries.
pub fn date_range() -> (Date, Date) {
    (
        Date::from_ymd(YEARS[0], 1, 1).expect("a real date"),
        Date::from_ymd(YEARS[1], 12, 31).expect("a real date"),
    )
}

/// The events of `scale` copies of the 2019–2020 flow, lazily: one copy is planned and held at
/// a time (about 130,000 events), so scale 100 streams 13 million events in bounded memory.
///
/// # Panics
/// When `catalogue` lacks a code or group the generator uses, or groups them differently from
/// the default catalogue so that the published figures could not be met.
pub fn events(seed: u64, scale: u32, catalogue: &Catalogue) -> Events {
    Events {
        plan: Plan::new(&reference(), catalogue),
        twin: same_text_neighbours(catalogue),
        seed,
        scale,
        next_copy: 0,
        buffer: Vec::new().into_iter(),
    }
}

/// All events of `scale` copies, in output order. Prefer [`events`] or [`write_ndjson`] for
/// large scales.
pub fn generate(seed: u64, scale: u32, catalogue: &Catalogue) -> Vec<Event> {
    events(seed, scale, catalogue).collect()
}

/// Writes the events as NDJSON (the interchange format of docs/contract.md, one event per line)
/// and returns how many were written. `out` is buffered here.
pub fn write_ndjson(
    seed: u64,
    scale: u32,
    catalogue: &Catalogue,
    out: impl Write,
) -> io::Result<u64> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let mut count = 0u64;
    for event in events(seed, scale, catalogue) {
        out.write_all(gryning_proto::ndjson::to_line(&gryning_proto::to_pb(&event)).as_bytes())?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    Ok(count)
}

/// Iterator over generated events; see [`events`].
pub struct Events {
    plan: Plan,
    twin: HashMap<CrimeCode, CrimeCode>,
    seed: u64,
    scale: u32,
    next_copy: u32,
    buffer: std::vec::IntoIter<Event>,
}

impl Events {
    /// One copy, sorted by date. The sort is stable and each stream was written in order with
    /// dates that never decrease, so every stream keeps its order.
    fn copy(&self, index: u32) -> Vec<Event> {
        // Each copy has its own generator, seeded from (seed, copy), so copies are independent
        // and copy k is the same whatever the scale.
        let mut state = self.seed ^ u64::from(index).wrapping_mul(0xA076_1D64_78BD_642F);
        let mut builder =
            cases::CopyBuilder::new(&self.plan, &self.twin, Rng::new(splitmix64(&mut state)));
        let mut out = Vec::with_capacity(140_000);
        builder.case_events(&mut out);
        let mut rng = builder.into_rng();
        care::care_events(&mut rng, &self.plan.programmes, &mut out);
        out.sort_by_key(|e| e.occurred_on);
        out
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.buffer.next() {
                return Some(event);
            }
            if self.next_copy >= self.scale {
                return None;
            }
            self.buffer = self.copy(self.next_copy).into_iter();
            self.next_copy += 1;
        }
    }
}

/// For each code, the nearest other code with the same catalogue text (the codes of one
/// interval, such as 9301-9348): a crime is plausibly first reported under such a twin and then
/// corrected.
fn same_text_neighbours(catalogue: &Catalogue) -> HashMap<CrimeCode, CrimeCode> {
    let codes: Vec<(CrimeCode, &str)> = catalogue.codes().collect();
    let mut twin = HashMap::new();
    for (i, &(code, text)) in codes.iter().enumerate() {
        let before = i
            .checked_sub(1)
            .map(|j| codes[j])
            .filter(|&(_, t)| t == text);
        let after = codes.get(i + 1).copied().filter(|&(_, t)| t == text);
        if let Some((other, _)) = after.or(before) {
            twin.insert(code, other);
        }
    }
    twin
}
