//! Synthetic, deterministic event data for gryning. At scale 1 the dataset *is* the Stockholm
//! case flow of 2019–2020 as published in Länsstyrelsen Stockholm's *Regional lägesrapport
//! 2020*: computed by the table definitions of docs/contract.md with the default catalogue, it
//! gives Tabell 1 and Tabell 2, Kriminalvården's figures exactly and the 2019 person-clearance
//! rates within rounding (see [`reference()`]). Everything else about it is random but realistic:
//! victims, dates, police areas, reclassifications, superseded decisions, open crimes. At scale
//! N it is N independent copies of that flow (fresh ids, same dates), for benchmarks.
//!
//! With [`Options`] it also writes the six other police regions (each with its own volume,
//! areas and rates, placed so that Stockholm's 2019 rates compare with the median of the
//! regions as the report says) and years before 2019 (Stockholm's rates there follow the
//! report's time series).
//!
//! Output is a function of the seed, the scale and the options only: the generator has its own PRNG and
//! never reads the clock or the environment. Events come copy by copy, each copy in date order,
//! so appending them in output order passes every lifecycle rule; only one copy is held in
//! memory at a time.

mod care;
mod cases;
mod plan;
mod reference;
mod regions;
mod rng;

use std::collections::HashMap;
use std::io::{self, Write};

use gryning_domain::{Catalogue, CrimeCode, Date, Event};

pub use cases::POLICE_REGION;
pub use plan::YEARS;
pub use reference::{
    reference, ClearanceRow, CodeFlowRow, GroupFlowRow, Kriminalvarden, MapsTo, ProgrammeYear,
    Reference, ReportVerdict, SeriesPoint, VerdictRow, VictimGender, YearCount, REFERENCE_JSON,
};

use crate::plan::Plan;
use crate::rng::{splitmix64, Rng};

/// The seed the project's fixtures and benchmarks use unless they say otherwise.
pub const DEFAULT_SEED: u64 = 2021;

/// The first and the last date any generated event carries.
pub fn date_range() -> (Date, Date) {
    Options::default().date_range()
}

/// What to generate beyond the default (Stockholm, the report's years 2019–2020).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Every police region (Stockholm and the six others), or Stockholm only.
    pub every_region: bool,
    /// The first year; the last is always the report's last, 2020.
    pub first_year: i32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            every_region: false,
            first_year: YEARS[0],
        }
    }
}

/// The earliest first year [`Options::first_year`] may name.
pub const EARLIEST_YEAR: i32 = 2010;

impl Options {
    /// Checks the options, saying what is wrong and what would do.
    pub fn check(&self) -> Result<(), String> {
        if !(EARLIEST_YEAR..=YEARS[0]).contains(&self.first_year) {
            return Err(format!(
                "first year {}: the generated years run from a first year between {EARLIEST_YEAR} and {} to {} (the report's last year), e.g. 2016-{}",
                self.first_year, YEARS[0], YEARS[1], YEARS[1]
            ));
        }
        Ok(())
    }

    /// The first and the last date any event generated with these options carries.
    pub fn date_range(&self) -> (Date, Date) {
        (
            Date::from_ymd(self.first_year, 1, 1).expect("a real date"),
            Date::from_ymd(YEARS[1], 12, 31).expect("a real date"),
        )
    }
}

/// The events of `scale` copies of the 2019–2020 flow, lazily: one copy is planned and held at
/// a time (about 130,000 events), so scale 100 streams 13 million events in bounded memory.
///
/// # Panics
/// When `catalogue` lacks a code or group the generator uses, or groups them differently from
/// the default catalogue so that the published figures could not be met.
pub fn events(seed: u64, scale: u32, catalogue: &Catalogue) -> Events {
    events_with(seed, scale, catalogue, Options::default())
}

/// [`events`] with [`Options`]: with every region, each copy is Stockholm's flow (which
/// still gives the report's figures exactly) and then each other region's, one region at a
/// time, each in date order; with an earlier first year, every region's years start there.
///
/// # Panics
/// As [`events`], and when the options fail [`Options::check`].
pub fn events_with(seed: u64, scale: u32, catalogue: &Catalogue, options: Options) -> Events {
    if let Err(e) = options.check() {
        panic!("{e}");
    }
    let reference = reference();
    let stockholm = Plan::stockholm(
        &reference,
        catalogue,
        options.first_year,
        options.every_region,
    );
    let mut plans = Vec::new();
    if options.every_region {
        for (slot, (region, volume)) in regions::OTHER_REGIONS.iter().enumerate() {
            plans.push((*region, Plan::region(&stockholm, slot, *volume)));
        }
    }
    plans.insert(0, (cases::STOCKHOLM, stockholm));
    Events {
        plans,
        twin: same_text_neighbours(catalogue),
        seed,
        scale,
        next_block: 0,
        buffer: Vec::new().into_iter(),
    }
}

/// [`generate`] with [`Options`].
pub fn generate_with(seed: u64, scale: u32, catalogue: &Catalogue, options: Options) -> Vec<Event> {
    events_with(seed, scale, catalogue, options).collect()
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
    write_ndjson_with(seed, scale, catalogue, Options::default(), out)
}

/// [`write_ndjson`] with [`Options`].
pub fn write_ndjson_with(
    seed: u64,
    scale: u32,
    catalogue: &Catalogue,
    options: Options,
    out: impl Write,
) -> io::Result<u64> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let mut count = 0u64;
    for event in events_with(seed, scale, catalogue, options) {
        out.write_all(gryning_proto::ndjson::to_line(&gryning_proto::to_pb(&event)).as_bytes())?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    Ok(count)
}

/// Iterator over generated events; see [`events`].
pub struct Events {
    /// Stockholm's plan first, then the other regions' (with every region).
    plans: Vec<(cases::Region, Plan)>,
    twin: HashMap<CrimeCode, CrimeCode>,
    seed: u64,
    scale: u32,
    /// Copy × region, copy-major.
    next_block: u64,
    buffer: std::vec::IntoIter<Event>,
}

impl Events {
    /// One region of one copy, sorted by date. The sort is stable and each stream was written
    /// in order with dates that never decrease, so every stream keeps its order. Stockholm's
    /// block also holds the care events (Kriminalvården's published programmes, social
    /// services' support).
    fn block(&self, index: u32, region: usize) -> Vec<Event> {
        // Each copy has its own generator, seeded from (seed, copy), so copies are independent
        // and copy k is the same whatever the scale; the other regions' from (seed, copy,
        // region), so Stockholm's events are those of the same seed without them.
        let mut state = self.seed ^ u64::from(index).wrapping_mul(0xA076_1D64_78BD_642F);
        if region > 0 {
            state ^= (region as u64).wrapping_mul(0xE703_7ED1_A0B4_28DB);
        }
        let (place, plan) = &self.plans[region];
        let mut builder =
            cases::CopyBuilder::new(plan, &self.twin, Rng::new(splitmix64(&mut state)), *place);
        let mut out = Vec::with_capacity(140_000);
        builder.case_events(&mut out);
        if region == 0 {
            let mut rng = builder.into_rng();
            care::care_events(&mut rng, &plan.programmes, &mut out);
        }
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
            let regions = self.plans.len() as u64;
            if self.next_block >= u64::from(self.scale) * regions {
                return None;
            }
            let (copy, region) = (self.next_block / regions, self.next_block % regions);
            self.buffer = self.block(copy as u32, region as usize).into_iter();
            self.next_block += 1;
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
