//! Micro-benchmarks of the steps every stored event and every answer goes through, on the
//! generated dataset (scale 1, 127,730 events, as `gryning generate` writes it):
//!
//!     cargo bench -p gryning-projections --bench micro
//!
//! - `decode`: a stored payload (protobuf) into a domain event (`gryning_proto::decode_event`,
//!   the direct wire reader with the field rules of the wire form);
//! - `validate_fields`: the domain's field rules (`gryning_domain::validate::check_fields`:
//!   dates, catalogue codes, subject and body, identity numbers in free text);
//! - `project`: applying events in log order to fresh projections (`Projections::apply`);
//! - `render_table`: computing a table from the projections of the whole dataset
//!   (`Projections::table`), per table.
//!
//! Each timed sample handles a block of `BLOCK` consecutive events, so the figures divan
//! prints per item are per event; `render_table` is per table.

use std::sync::LazyLock;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use gryning_domain::{Catalogue, Date, Event};
use gryning_projections::{By, PeriodKind, Projections, TableName};

/// Events handled per timed sample.
const BLOCK: usize = 10_000;

struct Data {
    catalogue: Catalogue,
    events: Vec<Event>,
    payloads: Vec<Vec<u8>>,
    /// The projections of every event.
    whole: Projections,
}

static DATA: LazyLock<Data> = LazyLock::new(|| {
    let catalogue = Catalogue::default_catalogue();
    let events: Vec<Event> =
        gryning_synth::events(gryning_synth::DEFAULT_SEED, 1, &catalogue).collect();
    let payloads = events.iter().map(gryning_proto::encode_event).collect();
    let mut whole = Projections::new();
    for (i, event) in events.iter().enumerate() {
        whole.apply(i as u64 + 1, event);
    }
    Data {
        catalogue,
        events,
        payloads,
        whole,
    }
});

fn main() {
    divan::main();
}

#[divan::bench]
fn decode(bencher: Bencher) {
    let data = &*DATA;
    bencher.counter(ItemsCount::new(BLOCK)).bench(|| {
        for payload in &data.payloads[..BLOCK] {
            black_box(gryning_proto::decode_event(black_box(payload)).is_ok());
        }
    });
}

#[divan::bench]
fn validate_fields(bencher: Bencher) {
    let data = &*DATA;
    let today = Date::parse("2021-06-30").expect("a date");
    bencher.counter(ItemsCount::new(BLOCK)).bench(|| {
        for event in &data.events[..BLOCK] {
            black_box(
                gryning_domain::validate::check_fields(black_box(event), &data.catalogue, today)
                    .is_ok(),
            );
        }
    });
}

#[divan::bench]
fn project(bencher: Bencher) {
    let data = &*DATA;
    bencher
        .counter(ItemsCount::new(BLOCK))
        .with_inputs(Projections::new)
        .bench_local_values(|mut projections| {
            for (i, event) in data.events[..BLOCK].iter().enumerate() {
                projections.apply(i as u64 + 1, black_box(event));
            }
            projections
        });
}

#[divan::bench(args = ["case-flow", "clearance", "progress", "care"])]
fn render_table(bencher: Bencher, table: &str) {
    let data = &*DATA;
    let name = TableName::ALL
        .into_iter()
        .find(|t| t.name() == table)
        .expect("a table of the contract");
    bencher.bench(|| {
        black_box(
            data.whole
                .table(name, By::Code, PeriodKind::Year, &data.catalogue)
                .rows
                .len(),
        )
    });
}
