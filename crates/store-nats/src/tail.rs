//! Following the tail: an ordered consumer over the whole stream keeps the head watch current
//! with other processes' appends.

use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt;
use gryning_store::Position;
use tokio::sync::watch;
use uuid::Uuid;

use crate::raise;

/// Feeds the head watch from an ordered consumer over the whole stream (headers only), so that
/// subscribers in this process see other processes' appends without polling. Own appends raise
/// the watch directly on their acks. The ordered consumer recreates itself after a gap or a
/// leader change; if it cannot be created at all, the task tries again.
pub(crate) async fn tail(stream: Stream, head: watch::Sender<Position>) {
    loop {
        let start = *head.borrow() + 1;
        let config = jetstream::consumer::push::OrderedConfig {
            deliver_subject: format!("_GRYNING_TAIL.{}", Uuid::new_v4().simple()),
            filter_subject: String::new(),
            headers_only: true,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await,
            Err(e) => Err(async_nats::error::Error::with_source(
                jetstream::consumer::StreamErrorKind::Other,
                e,
            )),
        };
        if let Ok(mut messages) = messages {
            while let Some(Ok(message)) = messages.next().await {
                if let Ok(info) = message.info() {
                    let seq = info.stream_sequence;
                    head.send_if_modified(|h| raise(h, seq));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
