//! Watch lag with `gryning up`'s server in-process (embedded store): while an insight `Watch`
//! on case-flow is open, referrals arrive through the police service at a steady offered rate.
//! For each referral, the time from the client's send to the first `Watch` message that
//! contains it; prints p50/p99/max (target p99 ≤ 50 ms) and, as a baseline measured in the
//! same run, the referrals' own send → acknowledgement latency. The measurement is
//! `src/bench/watch.rs`, which `gryning bench` runs against a `gryning up` child process.
//!
//! ```text
//! cargo run --release -p gryning --example watch_lag_bench -- 10 5000
//! ```
//! (seconds of referrals, default 10; offered referrals per second, default 5,000).

#[path = "support/bench.rs"]
mod bench;
#[path = "../src/bench/watch.rs"]
mod watch;

#[tokio::main]
async fn main() {
    let secs = bench::seconds(10);
    let rate: u64 = std::env::args()
        .nth(2)
        .map(|a| {
            a.parse()
                .expect("the second argument is referrals per second")
        })
        .unwrap_or(5_000);
    let dir = tempfile::tempdir().unwrap();
    let server = bench::start(dir.path()).await;
    let tokens = watch::Tokens {
        admin: &server.tokens["admin"],
        analyst: &server.tokens["analyst"],
        police: &server.tokens["police"],
    };
    let lag = watch::measure(
        server.channel().await,
        server.channel().await,
        &tokens,
        rate,
        secs.as_secs_f64(),
    )
    .await
    .expect("watch lag");
    let q = watch::Lag::quantile;
    println!(
        "baseline  ReferToProsecutor send -> ack:           p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} referrals, {:.0}/s reached of {}/s offered)",
        q(&lag.ack_ms, 0.5),
        q(&lag.ack_ms, 0.99),
        q(&lag.ack_ms, 1.0),
        lag.referrals,
        lag.reached,
        lag.offered
    );
    println!(
        "watch     send -> first Watch message with it:    p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} watch messages; target p99 <= 50 ms)",
        q(&lag.lag_ms, 0.5),
        q(&lag.lag_ms, 0.99),
        q(&lag.lag_ms, 1.0),
        lag.messages
    );
    server.stop().await;
}
