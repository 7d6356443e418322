//! `gryning import` stores a file's accepted lines in file order, whatever the file mixes in:
//! resent lines (same id, same content, including resends that break no lifecycle rule), reused
//! ids (same id, other content) and invalid lines, several of each in every batch the import
//! hands to the recorder. So `gryning table --as-of P` is the table after the first P accepted
//! lines, which is checked against the deliberately simple recomputation (`naive`).

use std::path::Path;
use std::process::{Command, Output};

use gryning_domain::{Body, Catalogue, Event, Subject, Uuid};
use gryning_projections::{naive, By, PeriodKind, TableName};
use gryning_proto::{ndjson, to_pb};
use gryning_store::{sqlite::SqliteStore, EventStore};

/// Generated events taken as the file's valid lines: about two import batches' worth.
const VALID: usize = 15_000;

fn gryning(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gryning"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("GRYNING_STORE")
        .env_remove("GRYNING_CATALOG")
        .output()
        .expect("gryning runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn line(event: &Event) -> String {
    ndjson::to_line(&to_pb(event))
}

/// A small deterministic generator, so that the file is the same in every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn uuid(&mut self) -> Uuid {
        let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        // Version 4, variant 1: a well-formed random UUID.
        Uuid::from_u128((bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
    }
}

/// What the file holds beside its valid lines, counted to show the test covers each kind.
#[derive(Debug, Default)]
struct Mix {
    resent: usize,
    resent_passing_rules: usize,
    reused: usize,
    invalid: usize,
}

/// The file's lines, and the valid events in file order (the lines that must be accepted).
fn mixed_file() -> (String, Vec<Event>, Mix) {
    let catalogue = Catalogue::default_catalogue();
    let valid: Vec<Event> = gryning_synth::events(gryning_synth::DEFAULT_SEED, 1, &catalogue)
        .take(VALID)
        .collect();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut mix = Mix::default();
    let mut out = String::new();
    for (i, event) in valid.iter().enumerate() {
        out.push_str(&line(event));
        out.push('\n');
        // A resend that breaks no rule (a second referral, a second reclassification) is
        // the case only the id lookup recognises.
        let passes_rules = matches!(
            event.body,
            Body::CaseReferredToProsecutor | Body::CrimeReclassified { .. }
        );
        if passes_rules && noise.below(3) == 0 {
            out.push_str(&line(event));
            out.push('\n');
            mix.resent += 1;
            mix.resent_passing_rules += 1;
        }
        match noise.below(100) {
            // A resend of a recent line, often in the same batch as the original.
            0..=3 => {
                let earlier = &valid[i - noise.below(i.min(3_000) + 1)];
                out.push_str(&line(earlier));
                mix.resent += 1;
                mix.resent_passing_rules += usize::from(matches!(
                    earlier.body,
                    Body::CaseReferredToProsecutor | Body::CrimeReclassified { .. }
                ));
            }
            // An earlier line's id with other content.
            4..=5 => {
                let mut other = valid[noise.below(i + 1)].clone();
                other.occurred_on =
                    gryning_domain::Date::parse(if other.occurred_on.to_string() == "2018-12-31" {
                        "2018-12-30"
                    } else {
                        "2018-12-31"
                    })
                    .unwrap();
                out.push_str(&line(&other));
                mix.reused += 1;
            }
            // Not JSON.
            6 => {
                out.push_str(r#"{"eventId": "not finished"#);
                mix.invalid += 1;
            }
            // A date in the future (field rule), with a new id.
            7 => {
                let mut future = event.clone();
                future.event_id = noise.uuid();
                future.occurred_on = gryning_domain::Date::parse("2999-01-01").unwrap();
                out.push_str(&line(&future));
                mix.invalid += 1;
            }
            // A referral of a case never opened (lifecycle rule).
            8 => {
                let orphan = Event {
                    event_id: noise.uuid(),
                    occurred_on: event.occurred_on,
                    subject: Subject::Case(noise.uuid()),
                    body: Body::CaseReferredToProsecutor,
                };
                out.push_str(&line(&orphan));
                mix.invalid += 1;
            }
            _ => continue,
        }
        out.push('\n');
    }
    (out, valid, mix)
}

fn table(data_dir: &Path, name: &str, as_of: usize) -> serde_json::Value {
    let as_of = as_of.to_string();
    let args = [
        "table", name, "--period", "quarter", "--as-of", &as_of, "--format", "json",
    ];
    let out = gryning(data_dir, &args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("table --format json prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_stores_accepted_lines_in_file_order_and_as_of_matches_a_recomputation() {
    let (file_text, valid, mix) = mixed_file();
    // Several of each kind in every batch of 8,192 lines.
    assert!(
        mix.resent > 200 && mix.resent_passing_rules > 30 && mix.reused > 100 && mix.invalid > 100,
        "{mix:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.ndjson");
    std::fs::write(&file, &file_text).unwrap();
    let data = dir.path().join("data");
    let out = gryning(&data, &["import", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let summary = format!(
        "{} accepted, {} duplicate, {} rejected",
        valid.len(),
        mix.resent,
        mix.reused + mix.invalid
    );
    assert!(
        stdout.contains(&summary),
        "expected {summary:?}: {stdout}\n{}",
        text(&out.stderr)
    );

    // The store's positions, in file order, are 1, 2, 3, … : accepted line k is at position k.
    let store = SqliteStore::open(&data).unwrap();
    let stored = store.read_all(0, usize::MAX).await.unwrap();
    assert_eq!(stored.len(), valid.len());
    let position_of: std::collections::HashMap<Uuid, u64> =
        stored.iter().map(|r| (r.event_id, r.position)).collect();
    let misplaced: Vec<(usize, u64)> = valid
        .iter()
        .enumerate()
        .map(|(k, event)| (k + 1, position_of[&event.event_id]))
        .filter(|&(k, position)| position != k as u64)
        .collect();
    assert!(
        misplaced.is_empty(),
        "{} of {} accepted lines are not stored in file order; the first: accepted line {} at position {}",
        misplaced.len(),
        valid.len(),
        misplaced[0].0,
        misplaced[0].1
    );
    drop(store);

    // As of position P the tables are those of the first P accepted lines.
    let catalogue = Catalogue::default_catalogue();
    for p in [1, 777, 5_000, 8_000, 9_001, VALID - 1, VALID] {
        for name in [
            TableName::CaseFlow,
            TableName::Clearance,
            TableName::Progress,
        ] {
            let expected: serde_json::Value = serde_json::from_str(
                &naive::table(&valid[..p], name, By::Code, PeriodKind::Quarter, &catalogue)
                    .to_json(),
            )
            .unwrap();
            assert_eq!(
                table(&data, name.name(), p),
                expected,
                "table {} as of position {p}",
                name.name()
            );
        }
    }
}
