//! Watch lag, shared by `gryning bench` (against a `gryning up` child process) and
//! `examples/watch_lag_bench.rs` (against the same server in-process): while an insight `Watch`
//! on case-flow is open, referrals arrive through the police service at a steady offered rate.
//! Each referral's lag runs from the moment its client sends `ReferToProsecutor` to the
//! arrival of the first `Watch` message at or past its position (the first that contains it),
//! never from the acknowledgement and never clamped; the referrals' own send → acknowledgement
//! latency is the baseline measured in the same run.
//!
//! Uses nothing of the `gryning` crate itself, so the example can include the file by path.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use gryning_proto::pb;
use gryning_proto::pb::event::Body as B;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use gryning_proto::pb::police_client::PoliceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

/// Referrals each referring task sends per second; the offered rate sets how many tasks.
const PER_TASK: u64 = 200;
/// Events per set-up `Append` call (the server's default limit is 100,000).
const SETUP_CHUNK: usize = 50_000;

/// The bearer tokens of the three roles the measurement calls with.
pub struct Tokens<'a> {
    pub admin: &'a str,
    pub analyst: &'a str,
    pub police: &'a str,
}

/// One run at one offered rate.
pub struct Lag {
    pub offered: u64,
    /// Referrals acknowledged per second of the run.
    pub reached: f64,
    pub referrals: usize,
    pub messages: usize,
    /// Send → first Watch message containing the referral, milliseconds, sorted.
    pub lag_ms: Vec<f64>,
    /// Send → acknowledgement of the referral, milliseconds, sorted.
    pub ack_ms: Vec<f64>,
}

impl Lag {
    /// The `p`-quantile (0–1) of sorted `samples` (nearest rank).
    pub fn quantile(samples: &[f64], p: f64) -> f64 {
        if samples.is_empty() {
            return f64::NAN;
        }
        samples[((samples.len() - 1) as f64 * p).round() as usize]
    }
}

pub fn bearer(token: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    format!("Bearer {token}")
        .parse()
        .context("token is not a header value")
}

pub fn with_bearer<T>(value: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.clone());
    request
}

/// Milliseconds from `from` to `to`, negative when `to` came first (never clamped).
pub fn signed_ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(from.duration_since(to).as_secs_f64() * 1e3),
    }
}

pub fn id() -> String {
    gryning_domain::Uuid::new_v4().to_string()
}

/// Opens `n` new cases, each with one crime reported (code 9365, 2020), in bulk `Append`
/// calls with the admin's token; their ids, to be referred.
pub async fn open_cases(channel: Channel, admin: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let cases: Vec<String> = (0..n).map(|_| id()).collect();
    let admin = bearer(admin)?;
    let mut setup = Vec::with_capacity(cases.len() * 2);
    for case in &cases {
        let event = |day: &str, body| pb::Event {
            event_id: id(),
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
                crime_id: id(),
                crime_code: "9365".into(),
                victim_gender: 1,
                victim_age_group: 2,
            }),
        ));
    }
    let mut log = EventLogClient::new(channel);
    for chunk in setup.chunks(SETUP_CHUNK) {
        let summary = log
            .append(with_bearer(&admin, tokio_stream::iter(chunk.to_vec())))
            .await
            .context("the set-up Append")?
            .into_inner();
        if summary.rejected > 0 {
            bail!("the set-up was refused: {:?}", summary.rejections.first());
        }
    }
    Ok(cases)
}

/// Opens `rate × secs` cases (each with a crime) in bulk, then refers each of them at `rate`
/// per second while a Watch on case-flow runs on `watch_channel`.
pub async fn measure(
    channel: Channel,
    watch_channel: Channel,
    tokens: &Tokens<'_>,
    rate: u64,
    secs: f64,
) -> anyhow::Result<Lag> {
    let tasks = (rate / PER_TASK).max(1) as usize;
    let per_task = ((rate as f64 * secs) as usize / tasks).max(1);
    let cases = open_cases(channel.clone(), tokens.admin, per_task * tasks).await?;

    let analyst = bearer(tokens.analyst)?;
    let mut watch = InsightClient::new(watch_channel)
        .watch(with_bearer(
            &analyst,
            pb::WatchRequest {
                name: "case-flow".into(),
                ..Default::default()
            },
        ))
        .await
        .context("Watch")?
        .into_inner();
    let first = watch
        .message()
        .await
        .context("Watch")?
        .context("the Watch ended before its first message")?;
    if !first.initial {
        bail!("the first Watch message is not the initial table");
    }
    // Every Watch message: the position it brings the table to and when it arrived.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(change)) = watch.message().await {
            if seen_tx.send((change.position, Instant::now())).is_err() {
                return;
            }
        }
    });

    let police = PoliceClient::new(channel);
    let police_token = bearer(tokens.police)?;
    let period = Duration::from_nanos(1_000_000_000 * tasks as u64 / rate);
    let started = Instant::now();
    let mut handles = Vec::new();
    for mine in cases.chunks(per_task) {
        let mine = mine.to_vec();
        let mut police = police.clone();
        let token = police_token.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut sent_acked = Vec::with_capacity(mine.len());
            for case in mine {
                tick.tick().await;
                let request = with_bearer(
                    &token,
                    pb::ReferToProsecutorRequest {
                        event_id: id(),
                        occurred_on: "2020-02-01".into(),
                        case_id: case,
                    },
                );
                let sent = Instant::now();
                let recorded = police.refer_to_prosecutor(request).await?.into_inner();
                sent_acked.push((recorded.position, sent, Instant::now()));
            }
            Ok::<_, tonic::Status>(sent_acked)
        }));
    }
    let mut referrals = Vec::new();
    for handle in handles {
        referrals.extend(handle.await?.context("ReferToProsecutor")?);
    }
    let elapsed = started.elapsed();
    let last = referrals.iter().map(|r| r.0).max().unwrap_or(0);
    let mut seen: Vec<(u64, Instant)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.last().map(|s| s.0) < Some(last) {
        match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
            Ok(Some(s)) => seen.push(s),
            _ => {
                watcher.abort();
                bail!("the Watch did not reach position {last} within 60 s");
            }
        }
    }
    watcher.abort();

    let mut lag_ms = Vec::with_capacity(referrals.len());
    let mut ack_ms = Vec::with_capacity(referrals.len());
    for &(position, sent, acked) in &referrals {
        ack_ms.push(signed_ms(sent, acked));
        // Messages arrive in position order: the first at or past the referral contains it.
        let (_, arrived) = seen[seen.partition_point(|(p, _)| *p < position)];
        lag_ms.push(signed_ms(sent, arrived));
    }
    lag_ms.sort_by(f64::total_cmp);
    ack_ms.sort_by(f64::total_cmp);
    Ok(Lag {
        offered: rate,
        reached: referrals.len() as f64 / elapsed.as_secs_f64(),
        referrals: referrals.len(),
        messages: seen.len(),
        lag_ms,
        ack_ms,
    })
}
