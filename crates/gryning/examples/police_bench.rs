//! Police service throughput: `gryning up`'s server in-process (embedded store in a temporary
//! directory), 32 concurrent clients over 4 channels, each opening a case and reporting a crime
//! on it in a loop. Prints events/s and p50/p99 latency per call, and a baseline measured in
//! the same run with the same concurrency: the gRPC health `Check` RPC (tonic alone, no
//! recording), calls/s.
//!
//! ```text
//! cargo run --release -p gryning --example police_bench -- 10
//! ```
//! (the argument is the seconds each part runs, default 10).

#[path = "support/bench.rs"]
mod bench;

use std::time::{Duration, Instant};

use bench::{ms, percentile, Bearer};
use gryning_proto::pb;
use gryning_proto::pb::police_client::PoliceClient;
use tonic_health::pb::health_client::HealthClient;

const CLIENTS: usize = 32;
const CHANNELS: usize = 4;

/// Runs `CLIENTS` tasks calling `call` until `duration` has passed; returns the calls made,
/// their latencies and the elapsed time.
async fn drive<F, Fut>(duration: Duration, call: F) -> (u64, Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                n += call(i).await;
                latencies.push(t.elapsed());
            }
            (n, latencies)
        }));
    }
    let mut total = 0;
    let mut all = Vec::new();
    for t in tasks {
        let (n, l) = t.await.unwrap();
        total += n;
        all.extend(l);
    }
    (total, all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let duration = bench::seconds(10);
    let dir = tempfile::tempdir().unwrap();
    let server = bench::start(dir.path()).await;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(server.channel().await);
    }

    let health: Vec<_> = channels.iter().cloned().map(HealthClient::new).collect();
    let (calls, mut latencies, elapsed) = drive(duration, move |i| {
        let mut client = health[i % CHANNELS].clone();
        async move {
            client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "gryning.v1.Police".into(),
                })
                .await
                .expect("health check");
            1
        }
    })
    .await;
    println!(
        "baseline  health Check (tonic alone): {:>8.0} calls/s  p50 {}  p99 {}  ({CLIENTS} clients, {CHANNELS} channels, {calls} calls)",
        calls as f64 / elapsed.as_secs_f64(),
        ms(percentile(&mut latencies, 0.5)),
        ms(percentile(&mut latencies, 0.99)),
    );

    let bearer = Bearer::new(&server.tokens["police"]);
    let police: Vec<_> = channels
        .iter()
        .cloned()
        .map(|c| PoliceClient::with_interceptor(c, bearer.clone()))
        .collect();
    // One call per iteration alternates OpenCase and ReportCrime on the case it opened, so every
    // latency sample is one recorded event.
    let next_case: std::sync::Arc<Vec<std::sync::Mutex<Option<String>>>> =
        std::sync::Arc::new((0..CLIENTS).map(|_| std::sync::Mutex::new(None)).collect());
    let (events, mut latencies, elapsed) = drive(duration, move |i| {
        let mut client = police[i % CHANNELS].clone();
        let pending = next_case[i].lock().unwrap().take();
        let slot = std::sync::Arc::clone(&next_case);
        async move {
            match pending {
                None => {
                    let case = bench::id();
                    client
                        .open_case(pb::OpenCaseRequest {
                            event_id: bench::id(),
                            occurred_on: "2020-03-02".into(),
                            case_id: case.clone(),
                            case_opened: Some(pb::CaseOpened {
                                lead_crime_code: "9365".into(),
                                ..Default::default()
                            }),
                        })
                        .await
                        .expect("open case");
                    *slot[i].lock().unwrap() = Some(case);
                }
                Some(case) => {
                    client
                        .report_crime(pb::ReportCrimeRequest {
                            event_id: bench::id(),
                            occurred_on: "2020-03-03".into(),
                            case_id: case,
                            crime_reported: Some(pb::CrimeReported {
                                crime_id: bench::id(),
                                crime_code: "9365".into(),
                                victim_gender: 1,
                                victim_age_group: 2,
                            }),
                        })
                        .await
                        .expect("report crime");
                }
            }
            1
        }
    })
    .await;
    println!(
        "police    OpenCase + ReportCrime:     {:>8.0} events/s p50 {}  p99 {}  ({CLIENTS} clients, {CHANNELS} channels, {events} events; target 20000 events/s)",
        events as f64 / elapsed.as_secs_f64(),
        ms(percentile(&mut latencies, 0.5)),
        ms(percentile(&mut latencies, 0.99)),
    );
    let head = server.context.store.head().await.unwrap();
    assert_eq!(head, events, "every acknowledged event is stored");
    server.stop().await;
}
