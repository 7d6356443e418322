//! The direct wire reader against prost, on the same stored bytes in the same run:
//!
//!     cargo run --release -p gryning-proto --example wire_bench [-- SCALE [RUNS]]
//!
//! Encodes the generated dataset (SCALE copies, default 8: about 1M events) to its stored form,
//! then decodes every event three ways, in each of RUNS rounds (default 3):
//! - `decode_event`: the direct reader into a borrowed view, then the field rules (what a
//!   replay runs);
//! - `prost`+`from_pb`: `pb::Event::decode` into an owned message, then the same field rules;
//! - `prost` alone: `pb::Event::decode`, without the field rules (a lower bound for any
//!   prost-based path).
//!
//! The three take turns within a round, so each round's figures share the machine's load, and
//! rates are of the thread's CPU time, not of wall time.

use std::hint::black_box;
use std::time::Instant;

use gryning_proto::{decode_event, encode_event, from_pb, pb};
use prost::Message;

/// Seconds of CPU time this thread has used. The figures count it rather than wall time: on a
/// machine shared with other work, wall time also counts the time other processes held the core.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scale: u32 = args
        .next()
        .map_or(8, |s| s.parse().expect("SCALE is a positive integer"));
    let runs: usize = args
        .next()
        .map_or(3, |s| s.parse().expect("RUNS is a positive integer"));
    let catalogue = gryning_domain::Catalogue::default_catalogue();
    // One buffer with offsets, as a page of payloads read from the store.
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for event in gryning_synth::events(gryning_synth::DEFAULT_SEED, scale, &catalogue) {
        bytes.extend_from_slice(&encode_event(&event));
        ends.push(bytes.len());
    }
    let payloads: Vec<&[u8]> = std::iter::once(0)
        .chain(ends.iter().copied())
        .zip(&ends)
        .map(|(start, &end)| &bytes[start..end])
        .collect();
    let n = payloads.len();
    println!(
        "{n} events (scale {scale}), {} bytes stored, {:.1} bytes an event",
        bytes.len(),
        bytes.len() as f64 / n as f64
    );

    // Each way returns a count that depends on every decoded event, so none is optimised away;
    // the first two must agree.
    type Way = fn(&[&[u8]]) -> usize;
    let ways: [(&str, Way); 3] = [
        ("decode_event (direct wire reader + field rules)", |ps| {
            ps.iter()
                .map(|p| {
                    black_box(decode_event(p).expect("stored event"))
                        .occurred_on
                        .days() as usize
                })
                .sum()
        }),
        ("prost decode + from_pb (same field rules)", |ps| {
            ps.iter()
                .map(|p| {
                    let message = pb::Event::decode(*p).expect("stored event");
                    black_box(from_pb(message).expect("valid event"))
                        .occurred_on
                        .days() as usize
                })
                .sum()
        }),
        ("prost decode alone (no field rules)", |ps| {
            ps.iter()
                .map(|p| {
                    black_box(pb::Event::decode(*p).expect("stored event"))
                        .occurred_on
                        .len()
                })
                .sum()
        }),
    ];
    let mut rates = vec![Vec::new(); ways.len()];
    for run in 1..=runs {
        let mut check = Vec::new();
        for (i, (name, way)) in ways.iter().enumerate() {
            let (started, cpu) = (Instant::now(), thread_cpu());
            check.push(way(&payloads));
            let rate = n as f64 / (thread_cpu() - cpu);
            let wall = n as f64 / started.elapsed().as_secs_f64();
            println!(
                "run {run}: {name}: {:.2} M events/s of CPU time ({:.2} M/s of wall time)",
                rate / 1e6,
                wall / 1e6
            );
            rates[i].push(rate);
        }
        assert_eq!(check[0], check[1], "the two decoders disagree");
        println!(
            "run {run}: direct reader / prost+from_pb = {:.2}, direct reader / prost alone = {:.2}",
            rates[0][run - 1] / rates[1][run - 1],
            rates[0][run - 1] / rates[2][run - 1]
        );
    }
    println!("summary over {runs} runs, M events/s of CPU time (min / median / max):");
    for ((name, _), r) in ways.iter().zip(&rates) {
        let mut r = r.clone();
        r.sort_by(f64::total_cmp);
        println!(
            "  {name}: {:.2} / {:.2} / {:.2}",
            r[0] / 1e6,
            r[r.len() / 2] / 1e6,
            r[r.len() - 1] / 1e6
        );
    }
}
