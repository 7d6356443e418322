//! Publishing appends: the loop that syncs, lays out and publishes rounds until every request
//! of a batch is answered or the retry budget runs out, and the publishing of one round as
//! JetStream atomic batches (ADR-50), several in flight, recording each committed batch in the
//! index.
//!
//! **The batch protocol.** Every message of a batch carries `Nats-Batch-Id` (a fresh id) and
//! `Nats-Batch-Sequence` (1, 2, …); all but the last are plain core publishes without a reply
//! subject (the server stages them and answers nothing), the last also carries
//! `Nats-Batch-Commit: 1` and is published with a reply subject, whose answer is one publish
//! ack for the whole batch (the sequence of its last message) or one error (nothing of the
//! batch stored). The first message of each subject in a batch carries
//! `Nats-Expected-Last-Subject-Sequence`, checked when the batch commits; later messages of the
//! same subject in the batch carry none (the server refuses a second expectation on a subject
//! within one batch, and needs none: nothing can come between two messages of one batch).
//! `Nats-Msg-Id` is kept on every message; a batch holding an id the stream already has is
//! refused whole (error 10201), never stored in part.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use bytes::Bytes;
use gryning_store::{AppendRequest, Appended, Error, Position, Version};
use tokio::time::Instant;
use uuid::Uuid;

use crate::layout::{Planned, State, Work};
use crate::{raise, NatsStore};

impl NatsStore {
    pub(crate) async fn append_locked(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<Appended, Error>> {
        let mut work: Vec<Work> = requests
            .into_iter()
            .map(|request| Work {
                state: State::Undecided,
                request,
            })
            .collect();
        let mut deadline = Instant::now() + self.inner.options.retry_for;
        let mut last_problem = String::new();
        loop {
            if work.iter().all(|w| matches!(w.state, State::Done(_))) {
                break;
            }
            if Instant::now() >= deadline {
                for w in &mut work {
                    if !matches!(w.state, State::Done(_)) {
                        w.state = State::Done(Err(Error::Unavailable(format!(
                            "stream {}: no progress within {:?}: {last_problem}",
                            w.request.stream, self.inner.options.retry_for
                        ))));
                    }
                }
                break;
            }
            let synced = match self.sync().await {
                Ok(last) => last,
                Err(e) => {
                    last_problem = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let plan = match self.plan(&mut work, synced).await {
                Ok(plan) => plan,
                Err(e) => {
                    last_problem = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (progress, problem) = self.publish(&mut work, plan, synced).await;
            if progress {
                deadline = Instant::now() + self.inner.options.retry_for;
            }
            if let Some(p) = problem {
                last_problem = p;
            }
        }
        work.into_iter()
            .map(|w| match w.state {
                State::Done(result) => result,
                _ => unreachable!("every request is decided before the loop ends"),
            })
            .collect()
    }

    /// Publishes a round as atomic batches, several in flight. Returns whether anything was
    /// stored and, if the round stopped early, why. After the first refusal no further batch is
    /// sent (the predictions after it are void), but every commit already in flight is
    /// collected.
    async fn publish(
        &self,
        work: &mut [Work],
        plan: Vec<Planned>,
        synced: Position,
    ) -> (bool, Option<String>) {
        let max_messages = self.inner.options.max_in_flight.max(1);
        let limit = self.batch_limit();
        let mut batches = cut(plan, limit).into_iter();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut messages_in_flight = 0;
        let mut problem: Option<String> = None;
        let mut progress = false;
        let mut contiguous = true;
        loop {
            while problem.is_none()
                && (in_flight.len() < 2
                    || (messages_in_flight < max_messages && in_flight.len() < BATCHES_IN_FLIGHT))
            {
                let Some(batch) = batches.next() else { break };
                let items: Vec<(usize, usize)> = batch.iter().map(|p| (p.work, p.event)).collect();
                let predicted = batch[0].predicted;
                match self.send_batch(batch).await {
                    Ok(ack) => {
                        messages_in_flight += items.len();
                        in_flight.push_back((items, predicted, ack));
                    }
                    Err(e) => problem = Some(format!("publish failed: {e}")),
                }
            }
            let Some((items, predicted, ack)) = in_flight.pop_front() else {
                break;
            };
            messages_in_flight -= items.len();
            let stream = &work[items[0].0].request.stream;
            match ack.await {
                Ok(ack) if !ack.duplicate && ack.sequence >= items.len() as Position => {
                    progress = true;
                    // An atomic batch is stored as one run: its last message is at the acked
                    // sequence, the others right before it.
                    let first = ack.sequence + 1 - items.len() as Position;
                    contiguous &= first == predicted;
                    let mut index = self.index();
                    for (n, &(w_index, k)) in items.iter().enumerate() {
                        let position = first + n as Position;
                        let w = &mut work[w_index];
                        if let State::Publishing { base, stored } = &mut w.state {
                            stored[k] = Some(position);
                            let version = *base + k as Version + 1;
                            let recorded = index.record(
                                &w.request.stream,
                                version,
                                w.request.events[k].event_id,
                                position,
                            );
                            if let Err(e) = recorded {
                                problem.get_or_insert(e.to_string());
                            }
                        }
                    }
                    drop(index);
                    self.inner.head.send_if_modified(|h| raise(h, ack.sequence));
                }
                Ok(ack) => {
                    contiguous = false;
                    problem.get_or_insert(format!(
                        "an atomic batch of {} events (the first for stream {stream}) was acknowledged as {ack:?}",
                        items.len()
                    ));
                }
                Err(e) => {
                    contiguous = false;
                    let refusal = Refusal::of(&e);
                    if let Refusal::TooLarge(server_limit) = refusal {
                        self.lower_batch_limit(server_limit);
                    }
                    problem.get_or_insert(format!(
                        "an atomic batch of {} events (the first for stream {stream}) was refused, none of them stored: {e}{}",
                        items.len(),
                        match e.kind() {
                            PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => String::new(),
                            _ => std::error::Error::source(&e)
                                .map(|s| format!(" ({s})"))
                                .unwrap_or_default(),
                        }
                    ));
                }
            }
        }
        // When every ack came back at its predicted sequence and nothing failed, positions
        // synced+1..=last are exactly this round's messages: the index covers them already.
        if contiguous && problem.is_none() {
            let mut index = self.index();
            if index.applied == synced {
                let last = work
                    .iter()
                    .filter_map(|w| match &w.state {
                        State::Publishing { stored, .. } => stored.iter().flatten().max().copied(),
                        _ => None,
                    })
                    .max();
                if let Some(last) = last {
                    index.applied = last.max(index.applied);
                }
            }
        }
        // Requests fully stored become done at the next plan; finish them here so that a round
        // without refusals ends the loop without another sync.
        for w in work.iter_mut() {
            if let State::Publishing { base, stored } = &w.state {
                if stored.iter().all(Option::is_some) {
                    let positions = stored.iter().map(|s| s.unwrap_or(0)).collect::<Vec<_>>();
                    w.state = State::Done(Ok(Appended {
                        version: *base + positions.len() as Version,
                        positions,
                        duplicate: false,
                    }));
                }
            }
        }
        (progress, problem)
    }
}

/// A batch sent and not yet answered: its messages as (work item, event) pairs, the sequence
/// its first message is predicted to get, and its commit's ack.
type InFlight = (Vec<(usize, usize)>, Position, PublishAckFuture);

/// Atomic batches a round keeps in flight at most (the server allows 50 per stream, across
/// every client, by default).
const BATCHES_IN_FLIGHT: usize = 8;

/// Cuts a round's messages into atomic batches of at most `limit` messages. A request's events
/// go into one batch whenever the request fits in one (a batch is closed early rather than a
/// request split); only a request of more than `limit` events is split, into batches of
/// `limit`, each of which stays atomic and follows the previous one's last message.
fn cut(plan: Vec<Planned>, limit: usize) -> Vec<Vec<Planned>> {
    let limit = limit.max(1);
    let mut batches: Vec<Vec<Planned>> = Vec::new();
    let mut current: Vec<Planned> = Vec::new();
    let mut plan = plan.into_iter().peekable();
    while let Some(first) = plan.next() {
        // The messages of one request are consecutive in a round.
        let mut request = vec![first];
        while let Some(next) = plan.next_if(|p| p.work == request[0].work) {
            request.push(next);
        }
        if !current.is_empty() && current.len() + request.len() > limit {
            batches.push(std::mem::take(&mut current));
        }
        for message in request {
            if current.len() == limit {
                batches.push(std::mem::take(&mut current));
            }
            current.push(message);
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// What a refused commit says about the batch.
enum Refusal {
    /// The server's batch limit is lower than the store's (error 10199 names the limit).
    TooLarge(usize),
    Other,
}

impl Refusal {
    fn of(e: &PublishError) -> Refusal {
        let api = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>());
        match api {
            Some(api) if api.error_code().0 == BATCH_TOO_LARGE => too_large_limit(&api.to_string())
                .map(Refusal::TooLarge)
                .unwrap_or(Refusal::Other),
            _ => Refusal::Other,
        }
    }
}

/// JetStream's "atomic publish batch is too large: {limit}".
pub(crate) const BATCH_TOO_LARGE: u64 = 10199;

/// The limit named in a "batch is too large" error's description.
pub(crate) fn too_large_limit(description: &str) -> Option<usize> {
    let (_, rest) = description.split_once("too large:")?;
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
        .filter(|&n: &usize| n > 0)
}

impl NatsStore {
    /// Sends one atomic batch: every message but the last as a plain publish, the last as the
    /// commit, whose ack (or refusal) answers for the whole batch.
    async fn send_batch(&self, batch: Vec<Planned>) -> Result<PublishAckFuture, String> {
        let id = Uuid::new_v4().simple().to_string();
        let count = batch.len();
        let mut expected: HashSet<String> = HashSet::new();
        for (n, p) in batch.into_iter().enumerate() {
            let mut headers: HeaderMap = p.headers;
            headers.insert("Nats-Batch-Id", id.as_str());
            headers.insert("Nats-Batch-Sequence", (n + 1).to_string().as_str());
            if !expected.contains(&p.subject) {
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    p.follows.to_string().as_str(),
                );
                expected.insert(p.subject.clone());
            }
            if n + 1 < count {
                self.inner
                    .client
                    .publish_with_headers(p.subject, headers, p.payload)
                    .await
                    .map_err(|e| e.to_string())?;
            } else {
                headers.insert("Nats-Batch-Commit", "1");
                let message = PublishMessage::build().payload(p.payload).headers(headers);
                return self
                    .inner
                    .js
                    .send_publish(p.subject, message)
                    .await
                    .map_err(|e| e.to_string());
            }
        }
        Err("an empty batch".into())
    }

    /// The most messages one atomic batch may hold now.
    pub(crate) fn batch_limit(&self) -> usize {
        self.inner.batch_limit.load(Ordering::Relaxed)
    }

    fn lower_batch_limit(&self, server_limit: usize) {
        self.inner
            .batch_limit
            .fetch_min(server_limit.max(1), Ordering::Relaxed);
    }

    /// Asks the server for its batch limit without storing anything: a lone commit claiming a
    /// batch sequence beyond any limit is refused with error 10199, whose description names the
    /// limit (`jetstream.limits.batch.max_msgs`, 1000 unless configured). `None` if the answer
    /// is anything else.
    pub(crate) async fn probe_batch_limit(
        client: &async_nats::Client,
        subject: String,
    ) -> Option<usize> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Batch-Id",
            Uuid::new_v4().simple().to_string().as_str(),
        );
        headers.insert("Nats-Batch-Sequence", u32::MAX.to_string().as_str());
        headers.insert("Nats-Batch-Commit", "1");
        let answer = client
            .request_with_headers(subject, headers, Bytes::new())
            .await
            .ok()?;
        let answer: serde_json::Value = serde_json::from_slice(&answer.payload).ok()?;
        let error = answer.get("error")?;
        if error.get("err_code")?.as_u64()? != BATCH_TOO_LARGE {
            return None;
        }
        too_large_limit(error.get("description")?.as_str()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests of the given sizes, as a round lays them out, cut with `limit`: the sizes of
    /// the batches and, per batch, the requests it holds.
    fn cut_sizes(requests: &[usize], limit: usize) -> Vec<Vec<usize>> {
        let mut plan = Vec::new();
        for (work, &n) in requests.iter().enumerate() {
            for event in 0..n {
                plan.push(Planned {
                    work,
                    event,
                    subject: format!("s.{work}"),
                    headers: HeaderMap::new(),
                    payload: Bytes::new(),
                    follows: 0,
                    predicted: 0,
                });
            }
        }
        cut(plan, limit)
            .into_iter()
            .map(|batch| batch.iter().map(|p| p.work).collect())
            .collect()
    }

    #[test]
    fn cuts_whole_requests_and_splits_only_those_larger_than_a_batch() {
        let work = |w: usize, n: usize| vec![w; n];
        assert_eq!(
            cut_sizes(&[3, 3, 3, 3], 10),
            vec![[work(0, 3), work(1, 3), work(2, 3)].concat(), work(3, 3)],
            "a request that does not fit starts the next batch"
        );
        assert_eq!(
            cut_sizes(&[4, 25, 2], 10),
            vec![
                work(0, 4),
                work(1, 10),
                work(1, 10),
                [work(1, 5), work(2, 2)].concat()
            ],
            "only the request larger than a batch is split"
        );
        assert_eq!(cut_sizes(&[10, 1], 10), vec![work(0, 10), work(1, 1)]);
        assert!(cut_sizes(&[], 10).is_empty());
    }

    #[test]
    fn reads_the_limit_from_the_refusal() {
        assert_eq!(
            too_large_limit("atomic publish batch is too large: 1000"),
            Some(1000)
        );
        assert_eq!(
            too_large_limit("atomic publish batch is too large: 64 (code 400, error code 10199)"),
            Some(64)
        );
        assert_eq!(too_large_limit("atomic publish batch is too large"), None);
        assert_eq!(too_large_limit("too large: 0"), None);
    }
}
