//! The limits every gryning RPC is served under, enforced by one tower layer around the
//! services (health and reflection pass through it untouched), in this order:
//!
//! 1. per-principal rate limit (`rate_limit_per_second`, `rate_limit_burst`): a keyed GCRA
//!    limiter (`governor`), one bucket per principal of the credentials file, one cell per call
//!    (a bulk `Append` is one call); a caller over it gets RESOURCE_EXHAUSTED `rate-limited`
//!    with the wait in `retry-after-ms` and a `google.rpc.RetryInfo` detail, and is counted in
//!    [`crate::metrics::RATE_LIMITED_TOTAL`];
//! 2. concurrent calls (`max_concurrent_calls`): a call holds a permit until its reply is sent
//!    in full (a stream's until it ends); with none left the call is refused at once,
//!    RESOURCE_EXHAUSTED `too-many-calls`, never queued;
//! 3. the deadline: the shorter of `request_deadline_ms` and the client's `grpc-timeout`, to the
//!    reply's head (a unary reply, `Append`'s summary, the start of a stream); past it the
//!    handler is dropped and the caller gets DEADLINE_EXCEEDED `deadline-exceeded`;
//! 4. the request message size (`max_message_bytes`, `max_query_bytes`), which tonic's decoder
//!    enforces (each service sets its limit): its OUT_OF_RANGE refusal is answered as
//!    RESOURCE_EXHAUSTED `message-too-large`, naming the RPC and the setting.
//!
//! A call without a valid token is not rate-limited here: the service's interceptor answers it
//! UNAUTHENTICATED before any work.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::BodyExt as _;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::{http, Service};

use crate::auth::{Credentials, Principal, Rpc};
use crate::{ServiceError, Settings};

/// The request-size setting of `rpc` and its value: queries of the insight service are small,
/// everything else (recording calls, `Append`'s events, the event log's reads) shares
/// `max_message_bytes`.
pub fn message_limit(settings: &Settings, rpc: Rpc) -> (&'static str, u64) {
    match rpc {
        Rpc::GetTable
        | Rpc::Watch
        | Rpc::Status
        | Rpc::Publish
        | Rpc::ListPublications
        | Rpc::Explain
        | Rpc::Audit => ("max_query_bytes", settings.max_query_bytes),
        _ => ("max_message_bytes", settings.max_message_bytes),
    }
}

/// `message_limit` as tonic's `max_decoding_message_size` takes it.
pub fn decoding_limit(settings: &Settings, rpc: Rpc) -> usize {
    usize::try_from(message_limit(settings, rpc).1).unwrap_or(usize::MAX)
}

/// One RPC as the layer knows it.
struct Route {
    rpc: Rpc,
    /// `Service.Method`, as messages name it.
    name: String,
    setting: &'static str,
    limit: u64,
}

struct Limits {
    credentials: Arc<Credentials>,
    /// By request path (`/gryning.v1.Police/OpenCase`): every RPC of the gryning services.
    routes: HashMap<String, Route>,
    rate: Option<(DefaultKeyedRateLimiter<String>, u64, u64)>,
    calls: Option<(Arc<Semaphore>, u64)>,
    deadline: Option<Duration>,
}

/// The tower layer of [`Limits`]; cheap to clone.
#[derive(Clone)]
pub struct LimitLayer(Arc<Limits>);

impl LimitLayer {
    pub fn new(settings: &Settings, credentials: Arc<Credentials>) -> LimitLayer {
        let routes = Rpc::ALL
            .iter()
            .map(|&rpc| {
                let method = format!("{rpc:?}");
                let service = rpc_service(rpc);
                let (setting, limit) = message_limit(settings, rpc);
                (
                    format!("/gryning.v1.{service}/{method}"),
                    Route {
                        rpc,
                        name: format!("{service}.{method}"),
                        setting,
                        limit,
                    },
                )
            })
            .collect();
        let rate = NonZeroU32::new(
            u32::try_from(settings.rate_limit_per_second).unwrap_or(u32::MAX),
        )
        .map(|per_second| {
            let burst =
                NonZeroU32::new(u32::try_from(settings.rate_limit_burst).unwrap_or(u32::MAX))
                    .unwrap_or(per_second);
            (
                RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
                u64::from(per_second.get()),
                u64::from(burst.get()),
            )
        });
        let calls = (settings.max_concurrent_calls > 0).then(|| {
            let permits = usize::try_from(settings.max_concurrent_calls)
                .unwrap_or(Semaphore::MAX_PERMITS)
                .min(Semaphore::MAX_PERMITS);
            (
                Arc::new(Semaphore::new(permits)),
                settings.max_concurrent_calls,
            )
        });
        let deadline = (settings.request_deadline_ms > 0)
            .then(|| Duration::from_millis(settings.request_deadline_ms));
        LimitLayer(Arc::new(Limits {
            credentials,
            routes,
            rate,
            calls,
            deadline,
        }))
    }
}

/// The gryning service an RPC belongs to (its proto service name).
fn rpc_service(rpc: Rpc) -> &'static str {
    use Rpc::*;
    match rpc {
        OpenCase | ReportCrime | ReclassifyCrime | ReclassifyCase | ReferToProsecutor
        | CloseInvestigation | NotifyChildWelfare => "Police",
        DecideProsecution => "Prosecution",
        ProposeContractCare | StartTreatmentProgramme | EndTreatmentProgramme | GrantSupport => {
            "Care"
        }
        Append | Read | Subscribe => "EventLog",
        GetTable | Watch | Status | Publish | ListPublications | Explain | Audit => "Insight",
    }
}

impl<S> tower_layer::Layer<S> for LimitLayer {
    type Service = Limited<S>;
    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            limits: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    limits: Arc<Limits>,
}

/// A client's `grpc-timeout` (an integer of at most 8 digits and a unit: `H`, `M`, `S`, `m`,
/// `u`, `n`); `None` when absent or not of that form (then it is ignored, as tonic does).
pub fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

type Reply = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

fn refuse(error: ServiceError) -> Reply {
    let response = tonic::Status::from(error).into_http::<Body>();
    Box::pin(std::future::ready(Ok(response)))
}

impl<S> Limited<S> {
    /// The principal of the request's token, if it has a valid one.
    fn principal(&self, request: &http::Request<Body>) -> Option<Principal> {
        let header = request.headers().get("authorization")?.to_str().ok()?;
        self.limits.credentials.authenticate(Some(header)).ok()
    }
}

impl<S> Service<http::Request<Body>> for Limited<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Reply;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Reply {
        // The clone is ready (tonic's routes always are); `self.inner` stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limits = Arc::clone(&self.limits);
        let Some(route) = limits.routes.get(request.uri().path()) else {
            // Health, reflection, and paths no service has: not limited.
            return Box::pin(inner.call(request));
        };
        // For the service's interceptor, which sees no path, to name the RPC it refuses.
        request
            .extensions_mut()
            .insert(crate::auth::CalledRpc(route.rpc));
        if let Some((limiter, per_second, burst)) = &limits.rate {
            if let Some(principal) = self.principal(&request) {
                if let Err(not_until) = limiter.check_key(&principal.name) {
                    let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                    crate::metrics::global().rate_limited(
                        &principal.name,
                        principal.role.name(),
                        request.uri().path(),
                    );
                    return refuse(ServiceError::RateLimited {
                        rpc: route.name.clone(),
                        principal: principal.name,
                        role: principal.role.name(),
                        per_second: *per_second,
                        burst: *burst,
                        retry_after,
                    });
                }
            }
        }
        let permit = match &limits.calls {
            None => None,
            Some((semaphore, limit)) => match Arc::clone(semaphore).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return refuse(ServiceError::TooManyCalls {
                        rpc: route.name.clone(),
                        limit: *limit,
                    })
                }
            },
        };
        let client = grpc_timeout(request.headers());
        let deadline = match (client, limits.deadline) {
            (Some(c), Some(s)) if c < s => Some((c, true)),
            (Some(c), None) => Some((c, true)),
            (_, Some(s)) => Some((s, false)),
            (None, None) => None,
        };
        // Taken now, before tonic's own timer for the client's `grpc-timeout` (which answers
        // CANCELLED) starts: this deadline is never the later one, so its answer wins.
        let expires = deadline.map(|(d, _)| Instant::now() + d);
        let (name, setting, limit) = (route.name.clone(), route.setting, route.limit);
        let records = route.rpc.records();
        let reply = inner.call(request);
        Box::pin(async move {
            let response = match expires {
                None => reply.await?,
                Some(at) => match tokio::time::timeout_at(at, reply).await {
                    Ok(response) => response?,
                    Err(_) => {
                        let (deadline, from_client) = deadline.unwrap_or_default();
                        return Ok(tonic::Status::from(ServiceError::DeadlineExceeded {
                            rpc: name,
                            deadline,
                            from_client,
                            records,
                        })
                        .into_http::<Body>());
                    }
                },
            };
            if let Some(found) = crate::status::refused_as_too_large(response.headers()) {
                return Ok(tonic::Status::from(ServiceError::MessageTooLarge {
                    rpc: name,
                    what: "the request message".to_string(),
                    found,
                    limit,
                    setting,
                    before: None,
                })
                .into_http::<Body>());
            }
            Ok::<_, Infallible>(match permit {
                None => response,
                // The permit is held until the reply's body is sent in full or dropped.
                Some(permit) => response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _held = &permit;
                        frame
                    }))
                }),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rpc_is_named_as_its_route() {
        for rpc in Rpc::ALL {
            let path = format!("/gryning.v1.{}/{rpc:?}", rpc_service(rpc));
            assert_eq!(rpc.name(), format!("{}.{rpc:?}", rpc_service(rpc)));
            assert_eq!(Rpc::from_name(&path), Some(rpc), "{path}");
            assert_eq!(Rpc::from_name(rpc.name()), Some(rpc));
        }
    }

    #[test]
    fn grpc_timeout_reads_every_unit_and_ignores_what_is_not_one() {
        let parse = |text: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", text.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "100", "123456789m", "1x", "-1S", "1.5S", "１S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }

    #[test]
    fn every_rpc_has_a_route_and_queries_have_the_small_limit() {
        let settings = Settings::default();
        let layer = LimitLayer::new(&settings, Arc::new(Credentials::default()));
        let mut served: Vec<String> = crate::metrics::rpc_paths()
            .into_iter()
            .filter(|p| p.starts_with("/gryning.v1."))
            .collect();
        let mut routed: Vec<String> = layer.0.routes.keys().cloned().collect();
        served.sort();
        routed.sort();
        assert_eq!(routed, served, "a route per RPC of the proto");
        let route = &layer.0.routes["/gryning.v1.Insight/GetTable"];
        assert_eq!(
            (route.name.as_str(), route.setting, route.limit),
            ("Insight.GetTable", "max_query_bytes", 4096)
        );
        let route = &layer.0.routes["/gryning.v1.EventLog/Append"];
        assert_eq!((route.setting, route.limit), ("max_message_bytes", 65536));
        assert!(layer.0.rate.is_none(), "no rate limit by default");
    }
}
