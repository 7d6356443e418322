//! The calls a shutting-down server always waits for: unary calls and bulk `Append`s (the
//! contract promises an `Append` open at the signal is completed and its summary sent). A
//! tower layer counts each such call from its arrival until its response body is dropped, that
//! is after the last byte of the reply was handed to HTTP/2. Server streams (`Watch`,
//! `Subscribe`, `Read`, health `Watch`, reflection) are not counted: they are ended at the
//! signal, and a client that stops reading them must not hold the process.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context as TaskContext, Poll};

use prost::Message as _;
use tokio::sync::watch;
use tonic::codegen::{http, Service};

/// The gRPC paths of every unary and client-streaming RPC gryning and gRPC health serve.
static AWAITED: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    for bytes in [
        gryning_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let set = prost_types::FileDescriptorSet::decode(bytes).expect("a valid descriptor set");
        for file in &set.file {
            for service in &file.service {
                for method in service.method.iter().filter(|m| !m.server_streaming()) {
                    paths.insert(format!(
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
});

/// The number of awaited calls in flight.
#[derive(Clone)]
pub(crate) struct Calls(Arc<watch::Sender<usize>>);

impl Default for Calls {
    fn default() -> Calls {
        Calls(Arc::new(watch::channel(0).0))
    }
}

impl Calls {
    pub(crate) fn layer(&self) -> CallsLayer {
        CallsLayer(self.clone())
    }

    /// Completes when no awaited call is in flight.
    pub(crate) async fn finished(&self) {
        let mut count = self.0.subscribe();
        let _ = count.wait_for(|n| *n == 0).await;
    }

    fn enter(&self) -> InFlight {
        self.0.send_modify(|n| *n += 1);
        InFlight(self.clone())
    }
}

/// One awaited call, until dropped.
struct InFlight(Calls);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n -= 1);
    }
}

#[derive(Clone)]
pub(crate) struct CallsLayer(Calls);

impl<S> tower_layer::Layer<S> for CallsLayer {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            calls: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    calls: Calls,
}

impl<S, B, R> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Guarded<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = AWAITED
            .contains(request.uri().path())
            .then(|| self.calls.enter());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Guarded {
                body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its call counted until it is dropped.
pub(crate) struct Guarded<B> {
    body: B,
    _guard: Option<InFlight>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unary_and_client_streaming_calls_are_awaited_server_streams_are_not() {
        for path in [
            "/gryning.v1.Police/OpenCase",
            "/gryning.v1.EventLog/Append",
            "/gryning.v1.Insight/GetTable",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(AWAITED.contains(path), "{path}");
        }
        for path in [
            "/gryning.v1.EventLog/Subscribe",
            "/gryning.v1.EventLog/Read",
            "/gryning.v1.Insight/Watch",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(!AWAITED.contains(path), "{path}");
        }
    }

    #[tokio::test]
    async fn finished_waits_for_the_last_call() {
        let calls = Calls::default();
        let first = calls.enter();
        let second = calls.enter();
        drop(first);
        let waiting = tokio::spawn({
            let calls = calls.clone();
            async move { calls.finished().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(second);
        waiting.await.unwrap();
    }
}
