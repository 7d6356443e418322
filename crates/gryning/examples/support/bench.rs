//! What the benchmarks share: `gryning up`'s server started in-process on a temporary data
//! directory (embedded store, free port, default logging), the tokens it issued, bearer-token
//! clients and percentiles. Not a benchmark itself (no `main`), so cargo does not build it as an example.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gryning_service_common::{Context, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

#[allow(dead_code)]
#[path = "../../src/up.rs"]
mod up;

/// A running server; [`Running::stop`] shuts it down gracefully.
pub struct Running {
    pub url: String,
    pub tokens: HashMap<&'static str, String>,
    pub context: Arc<Context>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<()>,
}

/// Starts every service, as `gryning up` does, over an embedded store in `dir`.
pub async fn start(dir: &Path) -> Running {
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        // The bulk benchmarks stream their set-up in one `Append` call (511,242 events for
        // bulk_append_bench), past the default `max_append_events`; the other limits are the
        // defaults `gryning up` serves with.
        max_append_events: 10_000_000,
        ..Settings::default()
    };
    // Logging as `gryning up` logs by default (level info, to standard error).
    gryning_service_common::init_telemetry(&settings.log);
    let ctx = Context::open(settings)
        .await
        .expect("open the embedded store");
    let tokens = ctx
        .issued
        .iter()
        .map(|t| (t.principal.role.name(), t.token.clone()))
        .collect();
    let app = up::application(Arc::clone(&ctx)).await.expect("bind");
    let url = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    Running {
        url,
        tokens,
        context: ctx,
        stop,
        serving,
    }
}

impl Running {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.serving.await;
    }
}

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Bearer(pub MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Bearer {
        Bearer(format!("Bearer {token}").parse().unwrap())
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The `p`-quantile (0–1) of `samples`, which this sorts.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Seconds to run, from the first argument (default `default`).
pub fn seconds(default: u64) -> Duration {
    Duration::from_secs(
        std::env::args()
            .nth(1)
            .map(|a| {
                a.parse()
                    .expect("the first argument is a number of seconds")
            })
            .unwrap_or(default),
    )
}

pub fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}
