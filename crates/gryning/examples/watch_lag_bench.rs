//! Watch lag: while an insight `Watch` on case-flow is open, referrals arrive through the police
//! service at a steady 5,000 per second (`gryning up`'s server in-process, embedded store). For
//! each referral, the time from the police acknowledgement to the first `Watch` message at or
//! past its position; prints p50/p99 (target p99 ≤ 50 ms) and, as a baseline measured in the
//! same run, the acknowledgement latency of the referrals themselves.
//!
//! ```text
//! cargo run --release -p gryning --example watch_lag_bench -- 10
//! ```
//! (the argument is the seconds of referrals, default 10).

#[path = "support/bench.rs"]
mod bench;

use std::time::{Duration, Instant};

use bench::{ms, percentile, Bearer};
use gryning_proto::pb;
use gryning_proto::pb::event::Body as B;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use gryning_proto::pb::police_client::PoliceClient;

const RATE: u64 = 5_000;
/// Referring tasks; each sends one referral per `TASKS / RATE` seconds.
const TASKS: u64 = 25;

#[tokio::main]
async fn main() {
    let duration = bench::seconds(10);
    let dir = tempfile::tempdir().unwrap();
    let server = bench::start(dir.path()).await;
    let channel = server.channel().await;

    // The cases to refer, opened (with a crime) beforehand in one bulk append.
    let cases: Vec<String> = (0..RATE * duration.as_secs())
        .map(|_| bench::id())
        .collect();
    let mut setup = Vec::new();
    for case in &cases {
        let event = |day: &str, body| pb::Event {
            event_id: bench::id(),
            occurred_on: format!("2020-{day}"),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(body),
        };
        setup.push(event(
            "01-10",
            B::CaseOpened(pb::CaseOpened {
                lead_crime_code: "9365".into(),
                ..Default::default()
            }),
        ));
        setup.push(event(
            "01-11",
            B::CrimeReported(pb::CrimeReported {
                crime_id: bench::id(),
                crime_code: "9365".into(),
                victim_gender: 1,
                victim_age_group: 2,
            }),
        ));
    }
    let summary =
        EventLogClient::with_interceptor(channel.clone(), Bearer::new(&server.tokens["admin"]))
            .append(tokio_stream::iter(setup))
            .await
            .expect("set-up append")
            .into_inner();
    assert_eq!(summary.rejected, 0, "{:?}", summary.rejections.first());

    let mut insight =
        InsightClient::with_interceptor(channel.clone(), Bearer::new(&server.tokens["analyst"]));
    let mut watch = insight
        .watch(pb::WatchRequest {
            name: "case-flow".into(),
            by: String::new(),
            period: String::new(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("watch")
        .expect("initial table");
    assert!(first.initial);
    // Every Watch message: the position it reflects and when it arrived.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(change)) = watch.message().await {
            if seen_tx.send((change.position, Instant::now())).is_err() {
                return;
            }
        }
    });

    let police = PoliceClient::with_interceptor(channel, Bearer::new(&server.tokens["police"]));
    let period = Duration::from_nanos(1_000_000_000 * TASKS / RATE);
    let per_task = cases.len() / TASKS as usize;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS as usize {
        let mine: Vec<String> = cases[t * per_task..(t + 1) * per_task].to_vec();
        let mut police = police.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut acks = Vec::with_capacity(mine.len());
            for case in mine {
                tick.tick().await;
                let sent = Instant::now();
                let recorded = police
                    .refer_to_prosecutor(pb::ReferToProsecutorRequest {
                        event_id: bench::id(),
                        occurred_on: "2020-02-01".into(),
                        case_id: case,
                    })
                    .await
                    .expect("refer")
                    .into_inner();
                acks.push((recorded.position, Instant::now(), sent));
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let last = acks.iter().map(|a| a.0).max().unwrap_or(0);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.last().map(|s: &(u64, Instant)| s.0) < Some(last) {
        match tokio::time::timeout_at(deadline.into(), seen_rx.recv()).await {
            Ok(Some(s)) => seen.push(s),
            _ => panic!("the watch did not reach position {last} within 30 s"),
        }
    }
    watcher.abort();

    let mut lags = Vec::new();
    let mut ack_latency = Vec::new();
    for (position, acked, sent) in &acks {
        ack_latency.push(acked.duration_since(*sent));
        // Messages arrive in position order: the first at or past the referral contains it.
        let i = seen.partition_point(|(p, _)| p < position);
        let (_, arrived) = seen[i];
        // A watch message can beat the acknowledgement to the client: that is no lag.
        lags.push(arrived.saturating_duration_since(*acked));
    }
    println!(
        "baseline  ReferToProsecutor ack latency: p50 {}  p99 {}  ({} referrals in {:.1} s = {:.0}/s offered {RATE}/s)",
        ms(percentile(&mut ack_latency, 0.5)),
        ms(percentile(&mut ack_latency, 0.99)),
        acks.len(),
        elapsed.as_secs_f64(),
        acks.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "watch     ack -> Watch message lag:      p50 {}  p99 {}  ({} watch messages; target p99 <= 50 ms)",
        ms(percentile(&mut lags, 0.5)),
        ms(percentile(&mut lags, 0.99)),
        seen.len()
    );
    server.stop().await;
}
