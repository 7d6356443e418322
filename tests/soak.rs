//! A bounded soak of one `gryning up`: for `GRYNING_SOAK_SECS` seconds (60 by default) a steady
//! offered load of police calls (two events every 10 ms) and bulk `Append`s (100 events every
//! second, four event types), table reads every 100 ms, and a `Watch` and a `Subscribe` client
//! reading all the time. Then: no call failed; every acknowledged event is in the `Subscribe`
//! stream and in `EventLog.Read` exactly once; the watcher's table, folded from its changes, is
//! the served table; the served tables equal an offline rebuild of the stopped data directory;
//! and the server's resident memory (VmRSS) grew by at most [`RSS_GROWTH_BOUND_MIB`] after the
//! warm-up. The RSS figures are printed (`--nocapture`).

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gryning_proto::pb;
use harness::DEADLINE;
use tokio::time::MissedTickBehavior;
use up::{as_role, fold, four_event_cases, gryning, id, key, tokio_stream_iter, up, Folded};

/// The soak's length unless `GRYNING_SOAK_SECS` says otherwise.
const DEFAULT_SECS: u64 = 60;

/// Memory is compared from this point on: the allocator's arenas, SQLite's page cache and the
/// HTTP/2 buffers have reached their working size by then.
const WARM_UP: Duration = Duration::from_secs(15);

/// The most VmRSS may grow after the warm-up, in MiB, for the default length (BENCHMARKS.md has
/// the measured figures). Longer soaks record more cases, whose state the projections keep, so
/// the bound grows by [`RSS_GROWTH_PER_MINUTE_MIB`] for each minute past the first.
const RSS_GROWTH_BOUND_MIB: f64 = 32.0;
const RSS_GROWTH_PER_MINUTE_MIB: f64 = 8.0;

/// The server's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// A stream's next message; `None` at its end, or when the server ends it for shutting down.
fn until_shutdown<T>(what: &str, next: Result<Option<T>, tonic::Status>) -> Option<T> {
    match next {
        Ok(next) => next,
        Err(status) if up::reason(&status) == "shutting-down" => None,
        Err(status) => panic!("{what}: {status:?}"),
    }
}

const TABLES: [&str; 4] = ["case-flow", "clearance", "care", "progress"];

fn table_request(name: &str) -> pb::GetTableRequest {
    pb::GetTableRequest {
        name: name.into(),
        by: "code".into(),
        period: "quarter".into(),
        as_of: None,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_mixed_load_loses_nothing_and_keeps_memory_bounded() {
    let secs: u64 = match std::env::var("GRYNING_SOAK_SECS") {
        Ok(v) => v
            .parse()
            .expect("GRYNING_SOAK_SECS: whole seconds, at least 30"),
        Err(_) => DEFAULT_SECS,
    };
    assert!(
        secs >= 30,
        "GRYNING_SOAK_SECS: at least 30 (a 15 s warm-up)"
    );
    let run = Duration::from_secs(secs);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up(dir.path());
    let tokens = server.tokens.clone();
    let pid = server.child.id();
    let started = Instant::now();
    let until = started + run;

    // Memory, every second, from the start to the end of the load.
    let samples = Arc::new(Mutex::new(vec![(Duration::ZERO, rss_kib(pid))]));
    let sampler = tokio::spawn({
        let samples = Arc::clone(&samples);
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            while Instant::now() < until {
                every.tick().await;
                samples
                    .lock()
                    .unwrap()
                    .push((started.elapsed(), rss_kib(pid)));
            }
        }
    });

    // The readers: a subscription from the first event and a watch of a table, all the time.
    let auditor = as_role(&server, &tokens, "auditor").await;
    let mut subscription = auditor
        .log
        .clone()
        .subscribe(pb::SubscribeRequest { after: 0 })
        .await
        .expect("subscribe")
        .into_inner();
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(0usize);
    let subscribed = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let subscriber = tokio::spawn({
        let subscribed = Arc::clone(&subscribed);
        async move {
            while let Some(event) = until_shutdown("Subscribe", subscription.message().await) {
                let mut seen = subscribed.lock().unwrap();
                seen.push((event.position, event.event.expect("an event").event_id));
                seen_tx.send_replace(seen.len());
            }
        }
    });
    let analyst = as_role(&server, &tokens, "analyst").await;
    let mut watch = analyst
        .insight
        .clone()
        .watch(pb::WatchRequest {
            name: "case-flow".into(),
            by: "code".into(),
            period: "quarter".into(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let (watched_tx, mut watched_rx) = tokio::sync::watch::channel(Folded::new());
    let watcher = tokio::spawn(async move {
        let mut table = Folded::new();
        let mut changes = 0u64;
        while let Some(change) = until_shutdown("Watch", watch.message().await) {
            fold(&mut table, &change);
            changes += 1;
            watched_tx.send_replace(table.clone());
        }
        changes
    });

    // The load. Each acknowledged event's id is kept.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let police = as_role(&server, &tokens, "police").await;
    let unary = tokio::spawn({
        let mut police = police.police.clone();
        let acknowledged = Arc::clone(&acknowledged);
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(10));
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut n = 0usize;
            while Instant::now() < until {
                every.tick().await;
                let case = id();
                let occurred_on = format!("20{}-{:02}-02", 19 + n % 2, 1 + n % 12);
                let opened = pb::OpenCaseRequest {
                    event_id: id(),
                    occurred_on: occurred_on.clone(),
                    case_id: case.clone(),
                    case_opened: Some(pb::CaseOpened {
                        lead_crime_code: "9365".into(),
                        ..Default::default()
                    }),
                };
                let reported = pb::ReportCrimeRequest {
                    event_id: id(),
                    occurred_on,
                    case_id: case,
                    crime_reported: Some(pb::CrimeReported {
                        crime_id: id(),
                        crime_code: ["4024", "9365", "0418"][n % 3].into(),
                        victim_gender: pb::Gender::Female as i32,
                        victim_age_group: pb::AgeGroup::Adult as i32,
                    }),
                };
                let (a, b) = (opened.event_id.clone(), reported.event_id.clone());
                let r = police.open_case(opened).await.expect("OpenCase");
                assert!(!r.into_inner().duplicate);
                acknowledged.lock().unwrap().push(a);
                let r = police.report_crime(reported).await.expect("ReportCrime");
                assert!(!r.into_inner().duplicate);
                acknowledged.lock().unwrap().push(b);
                n += 1;
            }
        }
    });
    let admin = as_role(&server, &tokens, "admin").await;
    let bulk = tokio::spawn({
        let mut log = admin.log.clone();
        let acknowledged = Arc::clone(&acknowledged);
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut year = 2019;
            while Instant::now() < until {
                every.tick().await;
                let events = four_event_cases(25, year);
                year = 4039 - year; // 2019, 2020, 2019, …
                let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
                let summary = log
                    .append(tokio_stream_iter(events))
                    .await
                    .expect("Append")
                    .into_inner();
                assert_eq!(
                    (summary.accepted, summary.duplicates, summary.rejected),
                    (100, 0, 0),
                    "{:?}",
                    summary.rejections
                );
                acknowledged.lock().unwrap().extend(ids);
            }
        }
    });
    let reader = tokio::spawn({
        let mut insight = analyst.insight.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut reads = 0usize;
            while Instant::now() < until {
                every.tick().await;
                let t = insight
                    .get_table(table_request(TABLES[reads % TABLES.len()]))
                    .await
                    .expect("GetTable")
                    .into_inner();
                assert!(!t.columns.is_empty());
                reads += 1;
            }
            reads
        }
    });
    unary.await.expect("the police callers");
    bulk.await.expect("the bulk appender");
    let reads = reader.await.expect("the table reader");
    sampler.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let head = acknowledged.len() as u64;
    println!(
        "soak: {secs} s, {head} events acknowledged ({:.0}/s), {reads} table reads",
        head as f64 / run.as_secs_f64()
    );

    // The subscription saw every acknowledged event once, in position order.
    tokio::time::timeout(DEADLINE, seen_rx.wait_for(|n| *n >= acknowledged.len()))
        .await
        .expect("the subscriber caught up")
        .unwrap();
    let expected: HashSet<&String> = acknowledged.iter().collect();
    assert_eq!(expected.len(), acknowledged.len(), "event ids are unique");
    let check = |what: &str, events: &[(u64, String)]| {
        let positions: Vec<u64> = events.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            positions,
            (1..=head).collect::<Vec<_>>(),
            "{what}: positions 1..={head}"
        );
        let ids: HashSet<&String> = events.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), events.len(), "{what}: an event twice");
        assert!(ids == expected, "{what}: not the acknowledged events");
    };
    check("Subscribe", &subscribed.lock().unwrap());

    // So did a read of the whole log.
    let mut log = auditor.log.clone();
    let mut read = Vec::new();
    loop {
        let after = read.last().map_or(0, |(p, _)| *p);
        let mut page = log
            .read(pb::ReadRequest {
                after,
                limit: 10_000,
            })
            .await
            .expect("Read")
            .into_inner();
        let before = read.len();
        while let Some(e) = page.message().await.expect("Read page") {
            read.push((e.position, e.event.expect("an event").event_id));
        }
        if read.len() == before {
            break;
        }
    }
    check("Read", &read);

    // The tables as served at the head, and the watcher's folded table.
    let mut insight = analyst.insight.clone();
    let mut served = HashMap::new();
    for name in TABLES {
        let deadline = Instant::now() + DEADLINE;
        let t = loop {
            let t = insight
                .get_table(table_request(name))
                .await
                .expect("GetTable")
                .into_inner();
            if t.position == head {
                break t;
            }
            assert!(Instant::now() < deadline, "{name} stuck at {}", t.position);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if name == "case-flow" {
            let table: Folded = t.rows.iter().map(|r| (key(r), r.clone())).collect();
            tokio::time::timeout(DEADLINE, watched_rx.wait_for(|w| *w == table))
                .await
                .expect("the watcher's table reached the served one")
                .unwrap();
        }
        served.insert(name, t.json);
    }
    drop((auditor, analyst, police, admin));
    server.stop();
    let changes = watcher.await.expect("the watcher");
    subscriber.await.expect("the subscriber");

    // An offline rebuild of the stopped data directory computes the same tables.
    let d = data.to_str().unwrap();
    gryning(&["rebuild", "--data-dir", d]);
    for name in TABLES {
        let offline = gryning(&[
            "table",
            name,
            "--by",
            "code",
            "--period",
            "quarter",
            "--format",
            "json",
            "--data-dir",
            d,
        ]);
        assert_eq!(offline, served[name], "{name}");
    }

    // Memory after the warm-up.
    let samples = samples.lock().unwrap().clone();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let start = samples[0].1;
    let warm = samples
        .iter()
        .find(|(at, _)| *at >= WARM_UP)
        .expect("a sample after the warm-up")
        .1;
    let max = samples
        .iter()
        .filter(|(at, _)| *at >= WARM_UP)
        .map(|(_, kib)| *kib)
        .max()
        .unwrap();
    let end = samples.last().unwrap().1;
    let minutes_past_first = (secs.saturating_sub(60)) as f64 / 60.0;
    let bound = RSS_GROWTH_BOUND_MIB + RSS_GROWTH_PER_MINUTE_MIB * minutes_past_first;
    println!(
        "soak: VmRSS start {:.1} MiB, after {} s warm-up {:.1} MiB, max {:.1} MiB, end {:.1} MiB; growth after warm-up {:.1} MiB (bound {bound:.0} MiB); {} samples",
        mib(start),
        WARM_UP.as_secs(),
        mib(warm),
        mib(max),
        mib(end),
        mib(max) - mib(warm),
        samples.len()
    );
    println!(
        "soak: checked {head} events in Subscribe and Read, {changes} Watch changes, {} tables against a rebuild",
        TABLES.len()
    );
    assert!(
        mib(max) - mib(warm) <= bound,
        "VmRSS grew {:.1} MiB after the warm-up (bound {bound:.0} MiB)",
        mib(max) - mib(warm)
    );
}
