//! Prometheus metrics: counters kept in process memory, rendered in the text exposition format
//! by a minimal HTTP/1.1 responder (`GET /metrics`) on its own port (`metrics_listen`). Hand
//! written on purpose: five metric families do not justify a metrics framework and its
//! dependencies.
//!
//! The counters are process-global because the one place that classifies failed calls
//! (`impl From<ServiceError> for Status`) has no server context, and a process serves one
//! `/metrics` anyway. Every metric name is a constant below.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codegen::{http, Service};

use crate::context::Context;

/// Events stored, by `event_type` and `agency` (the recording principal's role).
pub const APPENDS_TOTAL: &str = "gryning_appends_total";
/// Calls and bulk-appended events refused, by short `reason` (the `gryning-reason` value).
pub const REJECTIONS_TOTAL: &str = "gryning_rejections_total";
/// Store head minus the position the live projections have applied (insight only).
pub const PROJECTION_LAG: &str = "gryning_projection_lag_events";
/// Store head: the global position of the newest event.
pub const STORE_HEAD: &str = "gryning_store_head";
/// Time from a request's arrival to its response head, by gRPC `method` path.
pub const REQUEST_DURATION: &str = "gryning_request_duration_seconds";

/// Upper bounds of the request-duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Largest request head the responder reads; a scrape is one short line.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// A scraper that sends nothing is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    appends: BTreeMap<(&'static str, &'static str), u64>,
    rejections: BTreeMap<&'static str, u64>,
    durations: BTreeMap<&'static str, Histogram>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    projection_position: Mutex<Option<watch::Receiver<u64>>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process-global metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One event stored.
    pub fn appended(&self, event_type: &'static str, agency: &'static str) {
        *self
            .counters()
            .appends
            .entry((event_type, agency))
            .or_default() += 1;
    }

    /// One call or bulk-appended event refused.
    pub fn rejected(&self, reason: &'static str) {
        *self.counters().rejections.entry(reason).or_default() += 1;
    }

    /// Live projections announce their position here; the lag is computed at scrape time
    /// against the store's head, so it is right even when other processes append.
    pub fn follow_projections(&self, position: watch::Receiver<u64>) {
        *self
            .projection_position
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(position);
    }

    fn observe(&self, method: &'static str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut counters = self.counters();
        let h = counters.durations.entry(method).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The text exposition format (version 0.0.4), given the store's head.
    pub fn render(&self, head: Option<u64>) -> String {
        let mut out = String::new();
        let counters = self.counters();
        let _ = writeln!(out, "# HELP {APPENDS_TOTAL} Events stored, by event type and recording agency.\n# TYPE {APPENDS_TOTAL} counter");
        for ((event_type, agency), n) in &counters.appends {
            let _ = writeln!(
                out,
                "{APPENDS_TOTAL}{{event_type=\"{event_type}\",agency=\"{agency}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP {REJECTIONS_TOTAL} Calls and bulk-appended events refused, by reason.\n# TYPE {REJECTIONS_TOTAL} counter");
        for (reason, n) in &counters.rejections {
            let _ = writeln!(out, "{REJECTIONS_TOTAL}{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP {REQUEST_DURATION} Time from request to response head, by gRPC method.\n# TYPE {REQUEST_DURATION} histogram");
        for (method, h) in &counters.durations {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "{REQUEST_DURATION}_bucket{{method=\"{method}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "{REQUEST_DURATION}_bucket{{method=\"{method}\",le=\"+Inf\"}} {}\n{REQUEST_DURATION}_sum{{method=\"{method}\"}} {}\n{REQUEST_DURATION}_count{{method=\"{method}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        drop(counters);
        if let Some(head) = head {
            let _ = writeln!(out, "# HELP {STORE_HEAD} Global position of the newest stored event.\n# TYPE {STORE_HEAD} gauge\n{STORE_HEAD} {head}");
            let position = self
                .projection_position
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|rx| *rx.borrow());
            if let Some(position) = position {
                let _ = writeln!(out, "# HELP {PROJECTION_LAG} Store head minus the position the live projections have applied.\n# TYPE {PROJECTION_LAG} gauge\n{PROJECTION_LAG} {}", head.saturating_sub(position));
            }
        }
        out
    }
}

/// The label for a request path: gryning's and gRPC's own methods by name; anything else is
/// `other`, so a scanner sending random paths cannot grow the label set without bound.
fn method_label(path: &str) -> &'static str {
    static KNOWN: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        let mut v = Vec::new();
        for (service, methods) in [
            (
                "gryning.v1.Police",
                &[
                    "OpenCase",
                    "ReportCrime",
                    "ReclassifyCrime",
                    "ReclassifyCase",
                    "ReferToProsecutor",
                    "CloseInvestigation",
                    "NotifyChildWelfare",
                ][..],
            ),
            ("gryning.v1.Prosecution", &["DecideProsecution"][..]),
            (
                "gryning.v1.Care",
                &[
                    "ProposeContractCare",
                    "StartTreatmentProgramme",
                    "EndTreatmentProgramme",
                    "GrantSupport",
                ][..],
            ),
            ("gryning.v1.EventLog", &["Append", "Read", "Subscribe"][..]),
            ("gryning.v1.Insight", &["GetTable", "Watch", "Status"][..]),
            ("grpc.health.v1.Health", &["Check", "Watch"][..]),
        ] {
            for m in methods {
                v.push(&*Box::leak(format!("/{service}/{m}").into_boxed_str()));
            }
        }
        v
    });
    KNOWN
        .iter()
        .copied()
        .find(|k| *k == path)
        .unwrap_or("other")
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
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            global().observe(method, started.elapsed());
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
        m.observe("/gryning.v1.Police/OpenCase", Duration::from_millis(3));
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
        assert!(text.contains("gryning_projection_lag_events 3"), "{text}");
        tx.send_replace(10);
        assert!(m
            .render(Some(10))
            .contains("gryning_projection_lag_events 0"));
        assert_eq!(
            method_label("/gryning.v1.Insight/Watch"),
            "/gryning.v1.Insight/Watch"
        );
        assert_eq!(method_label("/x/y"), "other");
    }
}
