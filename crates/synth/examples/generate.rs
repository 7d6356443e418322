//! Writes the synthetic dataset as NDJSON to standard output and reports the event count and
//! the time taken on standard error: `cargo run --release -p gryning-synth --example generate
//! -- [SEED] [SCALE] > events.ndjson`.

use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let seed = args.next().map_or(gryning_synth::DEFAULT_SEED, |s| {
        s.parse().expect("SEED is an unsigned integer")
    });
    let scale = args
        .next()
        .map_or(1, |s| s.parse().expect("SCALE is a positive integer"));
    let catalogue = gryning_domain::Catalogue::default_catalogue();
    let started = Instant::now();
    let stdout = std::io::stdout().lock();
    let count = gryning_synth::write_ndjson(seed, scale, &catalogue, stdout)?;
    eprintln!(
        "{count} events (seed {seed}, scale {scale}) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
