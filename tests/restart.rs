//! A restart of `gryning up`: a graceful stop writes a projection checkpoint, the next start
//! resumes from it (and shows no tokens again), the resumed projections follow new events, the
//! remote `table` command renders what the server serves, and an offline rebuild from the first
//! event agrees with all of it.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::HashMap;
use std::path::Path;

use gryning_proto::pb;
use harness::Server;
use up::{as_role, four_event_cases, gryning, tokio_stream_iter, up};

/// Starts `gryning up` on `dir`, appends 800 events (200 cases of 2019), waits until the live
/// projections have applied them, stops gracefully and starts again: the restarted server and
/// the tokens the first start printed.
async fn restarted_after_800_events(dir: &Path) -> (Server, HashMap<String, String>) {
    let server = up(dir);
    let tokens = server.tokens.clone();
    let mut admin = as_role(&server, &tokens, "admin").await;
    let summary = admin
        .log
        .append(tokio_stream_iter(four_event_cases(200, 2019)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.rejected),
        (800, 0),
        "{:?}",
        summary.rejections
    );
    let mut analyst = as_role(&server, &tokens, "analyst").await;
    let deadline = std::time::Instant::now() + harness::DEADLINE;
    loop {
        let s = analyst
            .insight
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.head == 800 && s.projections.iter().all(|p| p.lag == 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projections did not catch up: {s:?}"
        );
        tokio::task::yield_now().await;
    }
    server.stop();
    assert!(
        dir.join("data/projections.ckpt").exists(),
        "shutdown writes a checkpoint"
    );
    (up(dir), tokens)
}

/// Each table by quarter as the server serves it once it has applied position `position`.
async fn served_at(
    server: &Server,
    tokens: &HashMap<String, String>,
    position: u64,
) -> HashMap<&'static str, String> {
    let mut analyst = as_role(server, tokens, "analyst").await;
    let mut served = HashMap::new();
    for name in ["case-flow", "clearance", "care", "progress"] {
        let deadline = std::time::Instant::now() + harness::DEADLINE;
        let t = loop {
            let t = analyst
                .insight
                .get_table(pb::GetTableRequest {
                    name: name.into(),
                    period: "quarter".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            if t.position == position {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} stuck at {}",
                t.position
            );
            tokio::task::yield_now().await;
        };
        served.insert(name, t.json);
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_projections_from_the_checkpoint_and_shows_no_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tokens) = restarted_after_800_events(dir.path()).await;
    assert!(
        server.tokens.is_empty(),
        "tokens are shown on the first start only"
    );
    let mut analyst = as_role(&server, &tokens, "analyst").await;
    let s = analyst
        .insight
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        s.projections
            .iter()
            .all(|p| p.resumed_from == 800 && p.position == 800),
        "{s:?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_projections_follow_new_events_and_agree_with_the_remote_table_and_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, tokens) = restarted_after_800_events(dir.path()).await;
    let mut admin = as_role(&server, &tokens, "admin").await;
    let summary = admin
        .log
        .append(tokio_stream_iter(four_event_cases(100, 2020)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, 400);
    let served = served_at(&server, &tokens, 1200).await;
    assert!(served["clearance"].contains("2019-Q2") && served["clearance"].contains("2020-Q2"));

    // The remote table command renders what the server serves.
    let remote = gryning(&[
        "table",
        "clearance",
        "--period",
        "quarter",
        "--format",
        "json",
        "--server",
        &server.url(),
        "--token",
        &tokens["analyst"],
    ]);
    assert_eq!(remote, served["clearance"]);
    server.stop();

    // A rebuild from the first event agrees with what the resumed projections served.
    let d = data.to_str().unwrap();
    gryning(&["rebuild", "--data-dir", d]);
    for (name, json) in &served {
        let offline = gryning(&[
            "table",
            name,
            "--period",
            "quarter",
            "--format",
            "json",
            "--data-dir",
            d,
        ]);
        assert_eq!(&offline, json, "{name}");
    }
}
