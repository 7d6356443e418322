//! The sending side of a server stream (`Watch`, `Subscribe`): a bounded buffer between the
//! task that produces the messages and the HTTP/2 stream that carries them. HTTP/2 flow control
//! stops taking messages once the client's window is full, so a client that stops reading
//! fills the buffer and then the producer waits. It waits at most `stalled_stream_timeout`:
//! then the stream is ended with RESOURCE_EXHAUSTED (`gryning-reason: stream-stalled`), the
//! producer task returns and drops what it holds, and only the messages already buffered (at
//! most the buffer's capacity) stay, to reach the client, followed by the status, if it reads
//! again. When the server shuts down, the stream is ended at once with UNAVAILABLE
//! (`shutting-down`), after what is buffered, without waiting for the client.
//!
//! The terminal status travels beside the buffer, not in it, so that it can be set while the
//! buffer is full.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Duration;

use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::Stream;
use tonic::Status;

use crate::context::Context;
use crate::metrics::{self, OpenStream};
use crate::status::ServiceError;

/// A server stream's response body as tonic takes it.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Why a stream ended before its producer was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client cancelled or went away.
    ClientGone,
    /// The client accepted no message for the stall timeout; the status is queued.
    Stalled,
    /// The server is shutting down; the status is queued.
    ShuttingDown,
}

/// The producer's end of a server stream.
pub struct Outbox<T> {
    tx: Option<mpsc::Sender<Result<T, Status>>>,
    end: Option<oneshot::Sender<Status>>,
    shutdown: watch::Receiver<bool>,
    stall_after: Duration,
    capacity: usize,
    method: &'static str,
    _open: OpenStream,
}

impl<T: Send + 'static> Outbox<T> {
    /// A stream of gRPC `method` (its path, for the metrics and the log) buffering at most
    /// `capacity` messages, and the response to hand to tonic.
    pub fn open(
        ctx: &Context,
        method: &'static str,
        capacity: usize,
    ) -> (Outbox<T>, ResponseStream<T>) {
        let (tx, rx) = mpsc::channel(capacity);
        let (end_tx, end_rx) = oneshot::channel();
        let outbox = Outbox {
            tx: Some(tx),
            end: Some(end_tx),
            shutdown: ctx.shutdown_signal(),
            stall_after: ctx.settings.stalled_stream_timeout,
            capacity,
            method,
            _open: metrics::global().stream_opened(method),
        };
        let delivery = Delivery {
            rx,
            end: Some(end_rx),
        };
        (outbox, Box::pin(delivery))
    }

    /// Awaits `next` (the producer's next thing to send) unless the stream ends first: the
    /// client goes away, or the server shuts down (then the stream is ended with
    /// `shutting-down`).
    pub async fn wait<F: Future>(&mut self, next: F) -> Result<F::Output, Ended> {
        let Some(tx) = &self.tx else {
            return Err(Ended::ClientGone);
        };
        let outcome = tokio::select! {
            biased;
            _ = self.shutdown.wait_for(|stop| *stop) => Err(Ended::ShuttingDown),
            _ = tx.closed() => Err(Ended::ClientGone),
            out = next => Ok(out),
        };
        self.settle(outcome)
    }

    /// Queues `message`, waiting while the buffer is full: at most the stall timeout, after
    /// which the stream is ended with `stream-stalled`.
    pub async fn send(&mut self, message: T) -> Result<(), Ended> {
        let Some(tx) = &self.tx else {
            return Err(Ended::ClientGone);
        };
        let outcome = tokio::select! {
            biased;
            _ = self.shutdown.wait_for(|stop| *stop) => Err(Ended::ShuttingDown),
            sent = tx.send_timeout(Ok(message), self.stall_after) => match sent {
                Ok(()) => Ok(()),
                Err(SendTimeoutError::Closed(_)) => Err(Ended::ClientGone),
                Err(SendTimeoutError::Timeout(_)) => Err(Ended::Stalled),
            },
        };
        self.settle(outcome)
    }

    /// Ends the stream with `error` after the buffered messages.
    pub fn fail(mut self, error: impl Into<Status>) {
        self.finish(error.into());
    }

    fn settle<R>(&mut self, outcome: Result<R, Ended>) -> Result<R, Ended> {
        match outcome {
            Ok(r) => Ok(r),
            Err(Ended::ClientGone) => {
                self.tx = None;
                Err(Ended::ClientGone)
            }
            Err(Ended::ShuttingDown) => {
                self.finish(ServiceError::ShuttingDown.into());
                Err(Ended::ShuttingDown)
            }
            Err(Ended::Stalled) => {
                metrics::global().stream_stalled(self.method);
                tracing::warn!(
                    method = self.method,
                    timeout_ms = self.stall_after.as_millis() as u64,
                    buffered = self.capacity,
                    "ending a stream whose client stopped reading (stalled_stream_timeout)"
                );
                self.finish(
                    ServiceError::StreamStalled {
                        timeout: self.stall_after,
                        buffered: self.capacity,
                    }
                    .into(),
                );
                Err(Ended::Stalled)
            }
        }
    }

    /// Sets the terminal status, then closes the buffer (the order the reader relies on).
    fn finish(&mut self, status: Status) {
        if let Some(end) = self.end.take() {
            let _ = end.send(status);
        }
        self.tx = None;
    }
}

/// The reading end: the buffered messages, then the terminal status if one was set.
struct Delivery<T> {
    rx: mpsc::Receiver<Result<T, Status>>,
    end: Option<oneshot::Receiver<Status>>,
}

impl<T> Stream for Delivery<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(message) = ready!(this.rx.poll_recv(cx)) {
            return Poll::Ready(Some(message));
        }
        // Every sender is gone, so the terminal status is set or never will be.
        let Some(end) = this.end.as_mut() else {
            return Poll::Ready(None);
        };
        let status = ready!(Pin::new(end).poll(cx));
        this.end = None;
        Poll::Ready(status.ok().map(Err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    async fn context(stall: Duration) -> (tempfile::TempDir, std::sync::Arc<Context>) {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::Settings {
            data_dir: dir.path().join("data"),
            stalled_stream_timeout: stall,
            ..crate::Settings::default()
        };
        let ctx = Context::open(settings).await.unwrap();
        (dir, ctx)
    }

    #[tokio::test]
    async fn a_full_buffer_ends_the_stream_after_the_timeout_with_the_buffered_messages_first() {
        let (_dir, ctx) = context(Duration::from_millis(50)).await;
        let (mut outbox, mut stream) = Outbox::open(&ctx, "/test/Stall", 2);
        outbox.send(1u32).await.unwrap();
        outbox.send(2).await.unwrap();
        assert_eq!(outbox.send(3).await, Err(Ended::Stalled));
        assert_eq!(
            outbox.send(4).await,
            Err(Ended::ClientGone),
            "ended for good"
        );
        drop(outbox);
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        assert_eq!(stream.next().await.unwrap().unwrap(), 2);
        let status = stream.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.metadata().get("gryning-reason").unwrap(),
            "stream-stalled"
        );
        assert!(status.message().contains("50ms"), "{}", status.message());
        assert!(status.message().contains("stalled_stream_timeout"));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn shutdown_ends_the_stream_without_waiting_for_the_client() {
        let (_dir, ctx) = context(Duration::from_secs(3600)).await;
        let (mut outbox, mut stream) = Outbox::open(&ctx, "/test/Shutdown", 1);
        outbox.send(1u32).await.unwrap();
        ctx.begin_shutdown();
        assert_eq!(outbox.send(2).await, Err(Ended::ShuttingDown));
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        let status = stream.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none());
        let (mut idle, _stream) = Outbox::<u32>::open(&ctx, "/test/Shutdown", 1);
        let pending = std::future::pending::<()>();
        assert_eq!(idle.wait(pending).await, Err(Ended::ShuttingDown));
    }

    #[tokio::test]
    async fn a_dropped_reader_is_a_client_gone_and_a_finished_producer_ends_cleanly() {
        let (_dir, ctx) = context(Duration::from_secs(3600)).await;
        let (mut outbox, stream) = Outbox::open(&ctx, "/test/Gone", 1);
        drop(stream);
        assert_eq!(outbox.send(1u32).await, Err(Ended::ClientGone));
        let (mut outbox, mut stream) = Outbox::open(&ctx, "/test/Done", 4);
        outbox.send(7u32).await.unwrap();
        drop(outbox);
        assert_eq!(stream.next().await.unwrap().unwrap(), 7);
        assert!(stream.next().await.is_none());
    }
}
