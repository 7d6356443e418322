//! Prometheus metrics, kept by the `metrics` crate's handles and rendered by
//! `metrics-exporter-prometheus` in the text exposition format, served by a minimal HTTP/1.1
//! responder (`GET /metrics`) on its own port (`metrics_listen`).
//!
//! The hot path takes no lock: the request-duration histogram of every RPC the server can
//! serve, and the append counter of every event type and role, are registered once, when the
//! metrics are first used, from the protobuf descriptors (so a new RPC or event type is
//! labelled without a list to keep); a request then finds its handle in an immutable map and
//! records into it atomically. The histograms' samples are folded into buckets at each scrape
//! and every few seconds.
//!
//! The metrics are process-global because the one place that classifies failed calls
//! (`impl From<ServiceError> for Status`) has no server context, and a process serves one
//! `/metrics` anyway. Every metric name is a constant below.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Recorder as _, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codegen::{http, Service};

use crate::context::Context;

/// Events stored, by `event_type` and `agency` (the recording principal's role).
pub const APPENDS_TOTAL: &str = "gryning_appends_total";
/// Calls and bulk-appended events refused, by short `reason` (the `gryning-reason` value).
pub const REJECTIONS_TOTAL: &str = "gryning_rejections_total";
/// Calls refused by the per-principal rate limit, by `principal`, `role` and gRPC `method` path
/// (also counted in [`REJECTIONS_TOTAL`] as `rate-limited`).
pub const RATE_LIMITED_TOTAL: &str = "gryning_rate_limited_total";
/// Calls and events refused by access control, by `reason` (`missing-token`, `malformed-token`,
/// `unknown-token`, `rpc-denied`, `event-type-denied`, `out-of-scope`) and `rpc`
/// (`Service.Method`, or `other`). The principal is in the log line, not a label.
pub const ACCESS_REFUSED_TOTAL: &str = "gryning_access_refused_total";
/// Reloads of the credentials file by a running server, by `outcome` (`loaded`, `refused`).
pub const CREDENTIALS_RELOADS_TOTAL: &str = "gryning_credentials_reloads_total";
/// Store head minus the position the live projections have applied (insight only).
pub const PROJECTION_LAG: &str = "gryning_projection_lag_events";
/// Store head: the global position of the newest event.
pub const STORE_HEAD: &str = "gryning_store_head";
/// Time from a request's arrival to its response head, by gRPC `method` path.
pub const REQUEST_DURATION: &str = "gryning_request_duration_seconds";
/// `Watch` and `Subscribe` streams with a task feeding them, by gRPC `method` path.
pub const STREAMS_OPEN: &str = "gryning_streams_open";
/// `Watch` and `Subscribe` streams ended because their client stopped reading, by `method`.
pub const STREAMS_STALLED_TOTAL: &str = "gryning_streams_stalled_total";

/// The `method` label of a request path no served RPC has, so that a scanner sending random
/// paths cannot grow the label set without bound.
const OTHER_METHOD: &str = "other";

/// Upper bounds of the request-duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How often histogram samples are folded into buckets between scrapes (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Largest request head the responder reads; a scrape is one short line.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// A scraper that sends nothing is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The process's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// By gRPC path: every method of the served descriptors.
    durations: HashMap<String, Histogram>,
    other_duration: Histogram,
    /// By event type and role name: every body of `gryning.v1.Event` × every role.
    appends: HashMap<String, HashMap<&'static str, Counter>>,
    store_head: Gauge,
    projections: OnceLock<(watch::Receiver<u64>, Gauge)>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process-global metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// The descriptor sets of what a server serves: gryning's services and gRPC health.
fn descriptor_sets() -> Vec<prost_types::FileDescriptorSet> {
    [
        gryning_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ]
    .into_iter()
    .map(|bytes| prost_types::FileDescriptorSet::decode(bytes).expect("a valid descriptor set"))
    .collect()
}

/// `/package.Service/Method` of every RPC in the served descriptors.
pub(crate) fn rpc_paths() -> Vec<String> {
    let mut paths = Vec::new();
    for set in descriptor_sets() {
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    paths.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    paths
}

/// The message names of `gryning.v1.Event`'s `body` oneof: every event type.
fn event_types() -> Vec<String> {
    let mut types = Vec::new();
    for set in descriptor_sets() {
        for file in set.file.iter().filter(|f| f.package() == "gryning.v1") {
            for message in file.message_type.iter().filter(|m| m.name() == "Event") {
                let Some(body) = message.oneof_decl.iter().position(|o| o.name() == "body") else {
                    continue;
                };
                for field in &message.field {
                    if field.oneof_index == Some(body as i32) {
                        let name = field.type_name();
                        types.push(name.rsplit('.').next().unwrap_or(name).to_string());
                    }
                }
            }
        }
    }
    types
}

impl Default for Metrics {
    fn default() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_string()), &BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let describe = |name: &'static str, help: &'static str| {
            (KeyName::from(name), SharedString::from(help))
        };
        let (name, help) = describe(
            APPENDS_TOTAL,
            "Events stored, by event type and recording agency.",
        );
        recorder.describe_counter(name, None, help);
        let (name, help) = describe(
            REJECTIONS_TOTAL,
            "Calls and bulk-appended events refused, by reason.",
        );
        recorder.describe_counter(name, None, help);
        let (name, help) = describe(
            RATE_LIMITED_TOTAL,
            "Calls refused by the per-principal rate limit, by principal, role and gRPC method.",
        );
        recorder.describe_counter(name, None, help);
        let (name, help) = describe(
            ACCESS_REFUSED_TOTAL,
            "Calls and events refused by access control, by reason and RPC.",
        );
        recorder.describe_counter(name, None, help);
        let (name, help) = describe(
            CREDENTIALS_RELOADS_TOTAL,
            "Reloads of the changed credentials file, by outcome.",
        );
        recorder.describe_counter(name, None, help);
        let (name, help) = describe(
            REQUEST_DURATION,
            "Time from request to response head, by gRPC method.",
        );
        recorder.describe_histogram(name, None, help);
        let (name, help) = describe(STORE_HEAD, "Global position of the newest stored event.");
        recorder.describe_gauge(name, None, help);
        let (name, help) = describe(
            PROJECTION_LAG,
            "Store head minus the position the live projections have applied.",
        );
        recorder.describe_gauge(name, None, help);
        let (name, help) = describe(
            STREAMS_OPEN,
            "Watch and Subscribe streams with a task feeding them, by gRPC method.",
        );
        recorder.describe_gauge(name, None, help);
        let (name, help) = describe(
            STREAMS_STALLED_TOTAL,
            "Watch and Subscribe streams ended because the client stopped reading, by gRPC method.",
        );
        recorder.describe_counter(name, None, help);
        let duration = |method: &str| {
            let key = Key::from_parts(
                REQUEST_DURATION,
                vec![Label::new("method", method.to_string())],
            );
            recorder.register_histogram(&key, &METADATA)
        };
        let durations = rpc_paths()
            .into_iter()
            .map(|p| {
                let h = duration(&p);
                (p, h)
            })
            .collect();
        let other_duration = duration(OTHER_METHOD);
        let appends = event_types()
            .into_iter()
            .map(|event_type| {
                let by_role = crate::Role::ALL
                    .into_iter()
                    .map(|role| {
                        let key = append_key(&event_type, role.name());
                        (role.name(), recorder.register_counter(&key, &METADATA))
                    })
                    .collect();
                (event_type, by_role)
            })
            .collect();
        let store_head = recorder.register_gauge(&Key::from_name(STORE_HEAD), &METADATA);
        Metrics {
            handle: recorder.handle(),
            recorder,
            durations,
            other_duration,
            appends,
            store_head,
            projections: OnceLock::new(),
        }
    }
}

fn append_key(event_type: &str, agency: &str) -> Key {
    Key::from_parts(
        APPENDS_TOTAL,
        vec![
            Label::new("event_type", event_type.to_string()),
            Label::new("agency", agency.to_string()),
        ],
    )
}

impl Metrics {
    /// One event stored.
    pub fn appended(&self, event_type: &'static str, agency: &'static str) {
        match self
            .appends
            .get(event_type)
            .and_then(|by_role| by_role.get(agency))
        {
            Some(counter) => counter.increment(1),
            // Not in the descriptors (cannot happen for a decoded event): registered on the way.
            None => self
                .recorder
                .register_counter(&append_key(event_type, agency), &METADATA)
                .increment(1),
        }
    }

    /// One call or bulk-appended event refused.
    pub fn rejected(&self, reason: &'static str) {
        let key = Key::from_parts(REJECTIONS_TOTAL, vec![Label::new("reason", reason)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// One call or event refused by access control (`rpc`: `Service.Method` or `other`).
    pub fn access_refused(&self, reason: &'static str, rpc: &str) {
        let rpc = if crate::Rpc::from_name(rpc).is_some() {
            rpc.to_string()
        } else {
            OTHER_METHOD.to_string()
        };
        let key = Key::from_parts(
            ACCESS_REFUSED_TOTAL,
            vec![Label::new("reason", reason), Label::new("rpc", rpc)],
        );
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// One reload of the changed credentials file (`loaded` or `refused`).
    pub fn credentials_reloaded(&self, outcome: &'static str) {
        let key = Key::from_parts(
            CREDENTIALS_RELOADS_TOTAL,
            vec![Label::new("outcome", outcome)],
        );
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// One call refused by the rate limit. The labels are bounded: principals are those of
    /// the credentials file, methods those the server serves.
    pub fn rate_limited(&self, principal: &str, role: &'static str, method: &str) {
        let key = Key::from_parts(
            RATE_LIMITED_TOTAL,
            vec![
                Label::new("principal", principal.to_string()),
                Label::new("role", role),
                Label::new("method", method.to_string()),
            ],
        );
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Live projections announce their position here; the lag is computed at scrape time
    /// against the store's head, so it is right even when other processes append. The first
    /// projections of the process are the ones measured.
    pub fn follow_projections(&self, position: watch::Receiver<u64>) {
        let _ = self.projections.get_or_init(|| {
            let gauge = self
                .recorder
                .register_gauge(&Key::from_name(PROJECTION_LAG), &METADATA);
            (position, gauge)
        });
    }

    /// One more open stream of `method` (a gRPC path) until the guard is dropped.
    pub fn stream_opened(&self, method: &'static str) -> OpenStream {
        let key = Key::from_parts(STREAMS_OPEN, vec![Label::new("method", method)]);
        let gauge = self.recorder.register_gauge(&key, &METADATA);
        gauge.increment(1.0);
        OpenStream(gauge)
    }

    /// A stream of `method` ended because its client stopped reading.
    pub fn stream_stalled(&self, method: &'static str) {
        let key = Key::from_parts(STREAMS_STALLED_TOTAL, vec![Label::new("method", method)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// The duration histogram of a request `path`.
    fn duration(&self, path: &str) -> &Histogram {
        self.durations.get(path).unwrap_or(&self.other_duration)
    }

    /// The text exposition format (version 0.0.4), given the store's head.
    pub fn render(&self, head: Option<u64>) -> String {
        if let Some(head) = head {
            self.store_head.set(head as f64);
            if let Some((position, lag)) = self.projections.get() {
                lag.set(head.saturating_sub(*position.borrow()) as f64);
            }
        }
        self.handle.render()
    }
}

/// Counts a stream in [`STREAMS_OPEN`] while it lives.
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Folds histogram samples into buckets every few seconds until the server shuts down, so
/// that a server nobody scrapes keeps bounded memory.
pub(crate) async fn upkeep(mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => global().handle.run_upkeep(),
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// A tower layer timing every request into [`REQUEST_DURATION`].
#[derive(Clone, Copy, Default)]
pub struct TimingLayer;

impl<S> tower_layer::Layer<S> for TimingLayer {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed { inner }
    }
}

#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Timed<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let histogram = global().duration(request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            histogram.record(started.elapsed());
            result
        })
    }
}

/// Serves `GET /metrics` on `listener` until the server shuts down.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let mut shutdown = ctx.shutdown_signal();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            if let Err(e) = respond(stream, &ctx).await {
                tracing::debug!(error = %e, "metrics: scrape failed");
            }
        });
    }
}

async fn respond(mut stream: tokio::net::TcpStream, ctx: &Context) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, content_type, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            // A store that cannot answer leaves out the head and the lag, not the counters.
            let head = ctx.store.head().await.ok();
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                global().render(head),
            )
        }
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is served here\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_labels_and_lag() {
        let m = Metrics::default();
        m.appended("CaseOpened", "police");
        m.appended("CaseOpened", "police");
        m.rejected("case-opened-once");
        m.duration("/gryning.v1.Police/OpenCase")
            .record(Duration::from_millis(3));
        let (tx, rx) = watch::channel(7);
        m.follow_projections(rx);
        let text = m.render(Some(10));
        assert!(
            text.contains("gryning_appends_total{event_type=\"CaseOpened\",agency=\"police\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("gryning_rejections_total{reason=\"case-opened-once\"} 1"),
            "{text}"
        );
        assert!(text.contains("gryning_request_duration_seconds_bucket{method=\"/gryning.v1.Police/OpenCase\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("gryning_request_duration_seconds_bucket{method=\"/gryning.v1.Police/OpenCase\",le=\"0.0025\"} 0"), "{text}");
        assert!(
            text.contains("# TYPE gryning_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("gryning_projection_lag_events 3"), "{text}");
        assert!(text.contains("gryning_store_head 10"), "{text}");
        tx.send_replace(10);
        assert!(m
            .render(Some(10))
            .contains("gryning_projection_lag_events 0"));
    }

    /// Every RPC of the role policy and of gRPC health has its own label, from the descriptors,
    /// and every event type × role its own counter; other paths share `other`.
    #[test]
    fn labels_come_from_the_descriptors() {
        let m = Metrics::default();
        let paths = rpc_paths();
        assert_eq!(
            paths.len(),
            crate::Rpc::ALL.len() + 2,
            "every gryning RPC and health's Check and Watch: {paths:?}"
        );
        for path in &paths {
            assert!(!std::ptr::eq(m.duration(path), &m.other_duration), "{path}");
        }
        assert!(paths.contains(&"/gryning.v1.Insight/Watch".to_string()));
        assert!(paths.contains(&"/grpc.health.v1.Health/Check".to_string()));
        assert!(std::ptr::eq(m.duration("/x/y"), &m.other_duration));
        let types = event_types();
        assert!(types.contains(&"CaseOpened".to_string()), "{types:?}");
        assert!(
            types.contains(&"SupportGranted".to_string()) || types.len() >= 12,
            "{types:?}"
        );
        assert_eq!(m.appends.len(), types.len());
        assert!(m
            .appends
            .values()
            .all(|by_role| by_role.len() == crate::Role::ALL.len()));
    }
}
