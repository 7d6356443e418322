//! Publishing appends: the loop that syncs, lays out and publishes rounds until every request
//! of a batch is answered or the retry budget runs out, and the publishing of one round with
//! many acks in flight, recording each acknowledged message in the index.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use gryning_store::{AppendRequest, Appended, Error, Position, Version};
use tokio::time::Instant;

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

    /// Publishes a round with many acks in flight. Returns whether anything was stored and,
    /// if the round stopped early, why. After the first refusal nothing more is sent (the
    /// predictions after it are void), but every ack already in flight is collected.
    async fn publish(
        &self,
        work: &mut [Work],
        plan: Vec<Planned>,
        synced: Position,
    ) -> (bool, Option<String>) {
        let max = self.inner.options.max_in_flight.max(1);
        let mut in_flight: VecDeque<(usize, usize, Position, PublishAckFuture)> = VecDeque::new();
        let mut problem: Option<String> = None;
        let mut progress = false;
        let mut contiguous = true;
        let mut plan = plan.into_iter();
        loop {
            while problem.is_none() && in_flight.len() < max {
                let Some(p) = plan.next() else { break };
                match self.inner.js.send_publish(p.subject, p.message).await {
                    Ok(ack) => in_flight.push_back((p.work, p.event, p.predicted, ack)),
                    Err(e) => problem = Some(format!("publish failed: {e}")),
                }
            }
            let Some((w_index, k, predicted, ack)) = in_flight.pop_front() else {
                break;
            };
            match ack.await {
                Ok(ack) if !ack.duplicate => {
                    progress = true;
                    contiguous &= ack.sequence == predicted;
                    let w = &mut work[w_index];
                    if let State::Publishing { base, stored } = &mut w.state {
                        stored[k] = Some(ack.sequence);
                        let version = *base + k as Version + 1;
                        let recorded = self.index().record(
                            &w.request.stream,
                            version,
                            w.request.events[k].event_id,
                            ack.sequence,
                        );
                        if let Err(e) = recorded {
                            problem.get_or_insert(e.to_string());
                        }
                    }
                    self.inner.head.send_if_modified(|h| raise(h, ack.sequence));
                }
                Ok(ack) => {
                    contiguous = false;
                    problem.get_or_insert(format!(
                        "event id {} already stored at position {} by another writer",
                        work[w_index].request.events[k].event_id, ack.sequence
                    ));
                }
                Err(e) => {
                    contiguous = false;
                    problem.get_or_insert(format!(
                        "stream {}: publish refused: {e}",
                        work[w_index].request.stream
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
