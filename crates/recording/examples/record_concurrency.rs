//! Throughput of single-event recording with 32 concurrent tasks, in-process (no gRPC): the
//! recorder's and store's share of a unary command.
//! `cargo run --release -p gryning-recording --example record_concurrency`
use std::sync::Arc;
use std::time::Instant;

use gryning_domain::{AgeGroup, Body, Catalogue, CrimeCode, Date, Event, Gender, Subject, Uuid};
use gryning_recording::{Recorder, Submission};

// The allocator the servers use (see gryning-service-common), so that this baseline differs
// from them only by gRPC.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::temp_dir().join(format!("record-concurrency-{}", std::process::id()));
    let store = Arc::new(gryning_store::sqlite::SqliteStore::open(&dir).unwrap());
    let recorder = Arc::new(Recorder::new(
        store,
        Arc::new(Catalogue::default_catalogue()),
    ));
    let per_task = 4000u128;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..32u128 {
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task / 2 {
                let n = (t << 64) | i;
                let case = Subject::Case(Uuid::from_u128(n | 1 << 120));
                let day = Date::parse("2020-03-02").unwrap();
                let code = CrimeCode::parse("4024").unwrap();
                let opened = Event {
                    event_id: Uuid::from_u128(n | 2 << 120),
                    occurred_on: day,
                    subject: case,
                    body: Body::CaseOpened {
                        lead_crime_code: code,
                        police_region: "Polisregion Stockholm".into(),
                        local_police_area: "Farsta".into(),
                    },
                };
                let crime = Event {
                    event_id: Uuid::from_u128(n | 3 << 120),
                    occurred_on: day,
                    subject: case,
                    body: Body::CrimeReported {
                        crime_id: Uuid::from_u128(n | 4 << 120),
                        crime_code: code,
                        victim_gender: Gender::Female,
                        victim_age_group: AgeGroup::Adult,
                    },
                };
                recorder.record(Submission::from(opened)).await.unwrap();
                recorder.record(Submission::from(crime)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = 32 * per_task;
    println!(
        "{n} events, 32 tasks, one event per record: {:.0} events/s",
        n as f64 / started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
}
