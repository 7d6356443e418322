//! Measures the state's memory per live crime and the decode-and-apply throughput.
//!
//!     cargo run --release -p gryning-projections --example measure [CRIMES]
//!
//! Memory: applies CRIMES crimes (default 1,000,000; four per case, each case referred and two
//! of its crimes decided) generated on the fly, and reports the growth of VmRSS and the state's
//! own accounting. Throughput: encodes 2,000,000 such events to their stored (protobuf) form,
//! then times `decode_event` + `apply` over them, and `apply` alone.

use std::time::Instant;

use gryning_domain::{
    AgeGroup, Body, CrimeCode, Date, Event, Gender, ProsecutionDecision, Subject, Uuid,
};
use gryning_projections::{By, PeriodKind, Projections, TableName};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uuid(&mut self) -> Uuid {
        Uuid::from_u128(u128::from(self.next()) << 64 | u128::from(self.next()))
    }
}

const CODES: [&str; 6] = ["9365", "4012", "0418", "0610", "4024", "0419"];

/// Events of `cases` cases, in order: open, four crimes, referral, two decisions.
fn events(seed: u64, cases: usize, mut f: impl FnMut(Event)) {
    let mut rng = Rng(seed);
    let start = Date::parse("2019-01-01").unwrap();
    for _ in 0..cases {
        let case = Subject::Case(rng.uuid());
        let day = start.add_days((rng.next() % 1000) as i32);
        let code = |r: &mut Rng| CrimeCode::parse(CODES[(r.next() % 6) as usize]).unwrap();
        let mut event = |day: Date, body: Body, rng: &mut Rng| {
            f(Event {
                event_id: rng.uuid(),
                occurred_on: day,
                subject: case,
                body,
            })
        };
        let lead = code(&mut rng);
        event(
            day,
            Body::CaseOpened {
                lead_crime_code: lead,
                police_region: "Stockholm".into(),
                local_police_area: "City".into(),
            },
            &mut rng,
        );
        let mut crimes = Vec::with_capacity(4);
        for _ in 0..4 {
            let crime_id = rng.uuid();
            crimes.push(crime_id);
            let body = Body::CrimeReported {
                crime_id,
                crime_code: code(&mut rng),
                victim_gender: Gender::ALL[(rng.next() % 3) as usize],
                victim_age_group: AgeGroup::Adult,
            };
            event(day.add_days((rng.next() % 10) as i32), body, &mut rng);
        }
        event(
            day.add_days(20 + (rng.next() % 30) as i32),
            Body::CaseReferredToProsecutor,
            &mut rng,
        );
        for &crime_id in &crimes[..2] {
            let body = Body::ProsecutionDecided {
                crime_id,
                decision: ProsecutionDecision::Indictment,
            };
            event(day.add_days(60 + (rng.next() % 100) as i32), body, &mut rng);
        }
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let crimes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);

    // Memory.
    let before = vm_rss_kib();
    let mut p = Projections::new();
    let mut position = 0;
    events(1, crimes / 4, |e| {
        position += 1;
        p.apply(position, &e);
    });
    let after = vm_rss_kib();
    let use_ = p.memory_use();
    println!(
        "memory: {} crimes in {} cases, {} events",
        use_.crimes, use_.cases, position
    );
    println!(
        "  VmRSS growth {:.1} MiB = {:.1} bytes per crime (all state: crimes, cases, indexes, tallies)",
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / use_.crimes as f64
    );
    println!(
        "  accounted: crimes + crime index {:.1} bytes per crime; cases + case index + referral quarters {:.1} bytes per case ({:.1} per crime)",
        use_.crime_bytes as f64 / use_.crimes as f64,
        use_.case_bytes as f64 / use_.cases as f64,
        use_.case_bytes as f64 / use_.crimes as f64
    );
    let cat = gryning_domain::Catalogue::default_catalogue();
    let t = Instant::now();
    let table = p.table(TableName::Progress, By::Group, PeriodKind::Quarter, &cat);
    println!(
        "  progress by group and quarter: {} rows in {:?}",
        table.rows.len(),
        t.elapsed()
    );
    drop(p);

    // Throughput.
    let mut encoded = Vec::with_capacity(2_000_000);
    events(2, 2_000_000 / 8, |e| {
        encoded.push(gryning_proto::encode_event(&e))
    });
    let n = encoded.len();
    let mut p = Projections::new();
    let t = Instant::now();
    for (i, bytes) in encoded.iter().enumerate() {
        let event = gryning_proto::decode_event(bytes).expect("decodes");
        p.apply(i as u64 + 1, &event);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "throughput: decode + apply {n} events in {secs:.3} s = {:.2} M events/s",
        n as f64 / secs / 1e6
    );
    let decoded: Vec<Event> = encoded
        .iter()
        .map(|b| gryning_proto::decode_event(b).unwrap())
        .collect();
    let t = Instant::now();
    for _ in 0..3 {
        std::hint::black_box(&decoded);
        let t0 = Instant::now();
        let mut q = Projections::new();
        for (i, event) in decoded.iter().enumerate() {
            q.apply(i as u64 + 1, event);
        }
        println!(
            "  apply alone: {:.2} M events/s",
            n as f64 / t0.elapsed().as_secs_f64() / 1e6
        );
        assert_eq!(q, p);
    }
    let _ = t;
    let t = Instant::now();
    for bytes in &encoded {
        std::hint::black_box(gryning_proto::decode_event(bytes).unwrap());
    }
    println!(
        "  decode alone: {:.2} M events/s",
        n as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}
