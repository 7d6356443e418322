//! The event-log service (`gryning.v1.EventLog`): bulk append (client streaming, recorded in
//! batches through `Recorder::record_batch`, each event checked on its own, including whether
//! the caller's role may record its type), bounded reads from a global position, and
//! catch-up-then-live subscriptions over `gryning_store::subscribe`. A bulk append past
//! `max_append_events` events, or with an event over `max_message_bytes`, records the events
//! before it and ends with RESOURCE_EXHAUSTED giving their counts.

use std::pin::Pin;
use std::sync::Arc;

use gryning_proto::pb;
use gryning_proto::pb::event_log_server::{EventLog, EventLogServer};
use gryning_service_common::auth::{require, Authenticator};
use gryning_service_common::status::AppendedBefore;
use gryning_service_common::{metrics, Context, Outbox, Rpc, ServiceError};
use gryning_store::RecordedEvent;
use prost::Message;
use tokio_stream::Stream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status, Streaming};

pub use gryning_proto::pb::event_log_server::SERVICE_NAME;

/// Events recorded per `record_batch` call during a bulk append: big enough to share appends
/// (group commit), small enough that a rejection report arrives without much delay.
pub const APPEND_BATCH: usize = 8_192;

/// The most rejections an `AppendSummary` lists (the first by index); the rest are counted in
/// `rejections_omitted`. A listed rejection is a few hundred bytes (messages echo at most a
/// short prefix of a value), so a summary stays far below a default client's 4 MiB limit.
pub const MAX_LISTED_REJECTIONS: usize = 1_000;

/// How long a bulk append waits for more events before recording a partial batch.
pub const APPEND_IDLE: std::time::Duration = std::time::Duration::from_millis(5);

/// `Read` returns this many events when the request names no limit.
pub const DEFAULT_READ_LIMIT: u32 = 1_000;

/// The most events one `Read` returns; read again from the last position for more.
pub const MAX_READ_LIMIT: u32 = 10_000;

/// Events buffered per subscriber beyond what HTTP/2 flow control has let through; a client
/// that leaves the buffer full for `stalled_stream_timeout` has its stream ended.
pub const SUBSCRIBER_BUFFER: usize = 256;

/// The gRPC path of `Subscribe` (its label in the stream metrics).
const SUBSCRIBE_METHOD: &str = "/gryning.v1.EventLog/Subscribe";

/// Events of a `Read` buffered beyond what HTTP/2 flow control has let through; a client that
/// leaves the buffer full for `stalled_stream_timeout` has its stream ended, and the events it
/// did not take are dropped.
pub const READ_BUFFER: usize = 64;

/// The gRPC path of `Read` (its label in the stream metrics).
const READ_METHOD: &str = "/gryning.v1.EventLog/Read";

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RecordedEvent, Status>> + Send>>;

pub struct EventLogService {
    ctx: Arc<Context>,
}

/// The service with its authentication interceptor and its request-size limit, ready to mount.
pub fn service(
    ctx: Arc<Context>,
) -> InterceptedService<EventLogServer<EventLogService>, Authenticator> {
    let auth = ctx.authenticator();
    let limit = gryning_service_common::limits::decoding_limit(&ctx.settings, Rpc::Append);
    InterceptedService::new(
        EventLogServer::new(EventLogService { ctx }).max_decoding_message_size(limit),
        auth,
    )
}

/// A stored event as the wire sees it. Payloads were validated on the way in, so one that
/// does not decode is reported rather than skipped. It is read by the same reader as a replay
/// (`decode_event`): an event body this version does not know is an error here too, not an
/// event handed on without its body.
fn to_wire(recorded: RecordedEvent) -> Result<pb::RecordedEvent, Status> {
    let event = gryning_proto::decode_event(&recorded.payload).map_err(|e| {
        ServiceError::StoredEventUnreadable {
            position: recorded.position,
            message: e.to_string(),
        }
    })?;
    // Metadata is informative; an event recorded without any (e.g. by `gryning import`)
    // still reads back, with empty metadata.
    let metadata = pb::EventMetadata::decode(recorded.metadata.as_slice()).unwrap_or_default();
    Ok(pb::RecordedEvent {
        position: recorded.position,
        stream: recorded.stream,
        version: recorded.version,
        event: Some(gryning_proto::to_pb(&event)),
        metadata: Some(metadata),
    })
}

/// Sends stored events down a stream, in order: the outbox back once all are buffered, `None`
/// once the stream has ended (the client went away or stalled, the server is shutting down,
/// or an event could not be read, which ends it with that status).
async fn send_events(
    mut outbox: Outbox<pb::RecordedEvent>,
    events: Vec<RecordedEvent>,
) -> Option<Outbox<pb::RecordedEvent>> {
    for event in events {
        let sent = match to_wire(event) {
            Ok(wire) => outbox.send(wire).await,
            Err(status) => {
                outbox.fail(status);
                return None;
            }
        };
        sent.ok()?;
    }
    Some(outbox)
}

struct Tally {
    summary: pb::AppendSummary,
    /// Streams of this call with an event the store could not take: their later events in the
    /// call are not recorded either, so that what a stream stored stays a prefix of what the
    /// call sent for it, in order, and a resend of the whole call stores the rest in order.
    unstored: std::collections::HashSet<String>,
}

impl Tally {
    fn reject(&mut self, index: u64, error: ServiceError) {
        let reason = match &error {
            ServiceError::Rejected(r) => r.reason(),
            other => other.reason(),
        };
        metrics::global().rejected(reason);
        self.summary.rejected += 1;
        self.summary.rejections.push(pb::AppendRejection {
            index,
            reason: reason.to_string(),
            message: error.to_string(),
        });
        // Rejections arrive nearly in index order (those refused while receiving come before
        // the batch ahead of them): keep up to twice the limit, then the first by index.
        if self.summary.rejections.len() >= 2 * MAX_LISTED_REJECTIONS {
            self.keep_first_rejections();
        }
    }

    /// Sorts the listed rejections by index and keeps the first `MAX_LISTED_REJECTIONS`.
    fn keep_first_rejections(&mut self) {
        let listed = &mut self.summary.rejections;
        listed.sort_by_key(|r| r.index);
        listed.truncate(MAX_LISTED_REJECTIONS);
        self.summary.rejections_omitted = self.summary.rejected - listed.len() as u64;
    }
}

/// One batch taken off a bulk append stream.
struct Received {
    batch: Vec<(u64, gryning_recording::Submission)>,
    /// Events refused before recording (e.g. an event type the caller's role may not append).
    rejected: Vec<(u64, ServiceError)>,
    /// The client closed the stream.
    ended: bool,
    /// What ends the call once the events before it are recorded: a message over
    /// `max_message_bytes`, an event past `max_append_events`, a broken stream.
    stop: Option<Stop>,
}

enum Stop {
    TooLarge { index: u64, found: Option<u64> },
    TooManyEvents { index: u64 },
    Broken(Status),
}

impl EventLogService {
    /// Reads up to `APPEND_BATCH` events from the stream, numbering them from `index`.
    async fn receive(
        &self,
        events: &mut Streaming<pb::Event>,
        principal: &gryning_service_common::Principal,
        index: &mut u64,
    ) -> Received {
        let mut received = Received {
            batch: Vec::with_capacity(APPEND_BATCH),
            rejected: Vec::new(),
            ended: false,
            stop: None,
        };
        while received.batch.len() < APPEND_BATCH {
            // A client that pauses gets what it sent recorded now, not when the batch is full.
            let next = if received.batch.is_empty() && received.rejected.is_empty() {
                events.message().await
            } else {
                match tokio::time::timeout(APPEND_IDLE, events.message()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            };
            let event = match next {
                Ok(Some(event)) => event,
                Ok(None) => {
                    received.ended = true;
                    break;
                }
                Err(status) if gryning_service_common::status::is_too_large(&status) => {
                    let found = gryning_service_common::status::found_bytes(status.message());
                    received.stop = Some(Stop::TooLarge {
                        index: *index,
                        found,
                    });
                    break;
                }
                Err(status) => {
                    received.stop = Some(Stop::Broken(status));
                    break;
                }
            };
            if *index >= self.ctx.settings.max_append_events {
                received.stop = Some(Stop::TooManyEvents { index: *index });
                break;
            }
            match self.ctx.submission(principal, event, Rpc::Append).await {
                Ok(submission) => received.batch.push((*index, submission)),
                Err(e) => received.rejected.push((*index, e)),
            }
            *index += 1;
        }
        received
    }

    /// The status that ends a call stopped at `stop`, after the events before it were recorded.
    fn stopped(&self, stop: Stop, tally: &Tally) -> Status {
        let before = |events| AppendedBefore {
            events,
            accepted: tally.summary.accepted,
            duplicates: tally.summary.duplicates,
            rejected: tally.summary.rejected,
        };
        match stop {
            Stop::TooLarge { index, found } => ServiceError::MessageTooLarge {
                rpc: "EventLog.Append".to_string(),
                what: format!("event #{index}"),
                found,
                limit: self.ctx.settings.max_message_bytes,
                setting: "max_message_bytes",
                before: Some(Box::new(before(index))),
            }
            .into(),
            Stop::TooManyEvents { index } => ServiceError::TooManyEvents {
                limit: self.ctx.settings.max_append_events,
                before: before(index),
            }
            .into(),
            Stop::Broken(status) => status,
        }
    }

    async fn flush(
        &self,
        batch: &mut Vec<(u64, gryning_recording::Submission)>,
        agency: &'static str,
        tally: &mut Tally,
    ) {
        if batch.is_empty() {
            return;
        }
        let mut pending = std::mem::take(batch);
        if !tally.unstored.is_empty() {
            pending.retain(|(index, submission)| {
                let stream = submission.event.subject.stream_name();
                if !tally.unstored.contains(&stream) {
                    return true;
                }
                let why = format!(
                    "not recorded: an earlier event of stream {stream} in this call was not stored; resend the call"
                );
                tally.reject(
                    *index,
                    ServiceError::Rejected(gryning_recording::Rejection::Store(
                        gryning_store::Error::Unavailable(why),
                    )),
                );
                false
            });
        }
        let streams: Vec<String> = pending
            .iter()
            .map(|(_, s)| s.event.subject.stream_name())
            .collect();
        let (indexes, submissions): (Vec<u64>, Vec<_>) = pending.into_iter().unzip();
        let types: Vec<&'static str> = submissions
            .iter()
            .map(|s| s.event.body.type_name())
            .collect();
        let results = self.ctx.recorder.record_batch(submissions).await;
        for (((index, event_type), stream), result) in
            indexes.into_iter().zip(types).zip(streams).zip(results)
        {
            match result {
                Ok(gryning_recording::Outcome::Stored { .. }) => {
                    metrics::global().appended(event_type, agency);
                    tally.summary.accepted += 1
                }
                Ok(gryning_recording::Outcome::Duplicate { .. }) => tally.summary.duplicates += 1,
                Err(rejection) => {
                    if matches!(rejection, gryning_recording::Rejection::Store(_)) {
                        tally.unstored.insert(stream);
                    }
                    tally.reject(index, rejection.into())
                }
            }
        }
    }
}

#[tonic::async_trait]
impl EventLog for EventLogService {
    async fn append(
        &self,
        request: Request<Streaming<pb::Event>>,
    ) -> Result<Response<pb::AppendSummary>, Status> {
        let principal = require(&request, Rpc::Append).map_err(ServiceError::from)?;
        let agency = principal.role.name();
        let mut events = request.into_inner();
        let mut tally = Tally {
            summary: pb::AppendSummary::default(),
            unstored: Default::default(),
        };
        let mut index = 0u64;
        // A stream stopped by a limit, or broken, ends the call once the events before it are
        // recorded; the caller learns how far it got from the status (and resending is safe:
        // stored events count as duplicates). Receiving the next batch overlaps with recording
        // the one before, so decoding the stream and the store's fsyncs run side by side.
        let mut received = self.receive(&mut events, &principal, &mut index).await;
        let stop = loop {
            let Received {
                mut batch,
                rejected,
                ended,
                stop,
            } = received;
            for (at, error) in rejected {
                tally.reject(at, error);
            }
            if ended || stop.is_some() {
                self.flush(&mut batch, agency, &mut tally).await;
                break stop;
            }
            let (next, ()) = tokio::join!(
                self.receive(&mut events, &principal, &mut index),
                self.flush(&mut batch, agency, &mut tally)
            );
            received = next;
        };
        if let Some(stop) = stop {
            tracing::info!(
                principal = %principal.name,
                accepted = tally.summary.accepted,
                duplicates = tally.summary.duplicates,
                rejected = tally.summary.rejected,
                "bulk append stopped"
            );
            return Err(self.stopped(stop, &tally));
        }
        // Refusals found while receiving are tallied before the batch ahead of them is
        // recorded: put the report back in stream order (and keep the first ones only).
        tally.keep_first_rejections();
        tracing::info!(
            principal = %principal.name,
            accepted = tally.summary.accepted,
            duplicates = tally.summary.duplicates,
            rejected = tally.summary.rejected,
            "bulk append"
        );
        Ok(Response::new(tally.summary))
    }

    type ReadStream = EventStream;

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<EventStream>, Status> {
        require(&request, Rpc::Read).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let limit = match r.limit {
            0 => DEFAULT_READ_LIMIT,
            n if n > MAX_READ_LIMIT => {
                return Err(ServiceError::InvalidArgument {
                    field: "limit",
                    value: n.to_string(),
                    problem: "must be at most 10000; read again after the last position for more",
                }
                .into())
            }
            n => n,
        };
        let events = self
            .ctx
            .store
            .read_all(r.after, limit as usize)
            .await
            .map_err(ServiceError::from)?;
        // Through a bounded buffer, as `Subscribe`: a client that stops reading cannot hold the
        // events it was sent (up to `MAX_READ_LIMIT`) for as long as it keeps the connection.
        let (outbox, stream) = Outbox::open(&self.ctx, READ_METHOD, READ_BUFFER);
        tokio::spawn(send_events(outbox, events));
        Ok(Response::new(stream))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let principal = require(&request, Rpc::Subscribe).map_err(ServiceError::from)?;
        let after = request.into_inner().after;
        let (mut outbox, stream) = Outbox::open(&self.ctx, SUBSCRIBE_METHOD, SUBSCRIBER_BUFFER);
        let mut subscription = gryning_store::subscribe(Arc::clone(&self.ctx.store), after);
        tracing::info!(principal = %principal.name, after, "subscription opened");
        tokio::spawn(async move {
            loop {
                let events = match outbox.wait(subscription.next_batch()).await {
                    Ok(Ok(events)) => events,
                    Ok(Err(e)) => return outbox.fail(ServiceError::from(e)),
                    Err(_) => return,
                };
                match send_events(outbox, events).await {
                    Some(open) => outbox = open,
                    None => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}
gryning_service_common::service_application! {
    /// The event-log server: this service plus health and reflection, on its own port.
    names: [SERVICE_NAME],
    mount(ctx, routes) {
        routes.add_service(service(std::sync::Arc::clone(&ctx)));
    }
}
