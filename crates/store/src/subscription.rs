//! Catch-up-then-live subscriptions, built on `read_all` and the head watch so that every
//! backend gets the same hand-over logic. The watch is consulted only when a read came back
//! empty; since it is marked seen before that read, an append acknowledged after the read wakes
//! the subscriber, and reading "after the last position delivered" rules out duplicates.

use std::sync::Arc;

use crate::{Error, EventStore, Position, RecordedEvent};

/// How many events one read fetches while catching up.
const CATCH_UP_BATCH: usize = 4096;

pub struct Subscription {
    store: Arc<dyn EventStore>,
    head: tokio::sync::watch::Receiver<Position>,
    last: Position,
}

impl Subscription {
    pub(crate) fn new(store: Arc<dyn EventStore>, after: Position) -> Subscription {
        let head = store.watch_head();
        Subscription {
            store,
            head,
            last: after,
        }
    }

    /// The position of the last event handed out.
    pub fn position(&self) -> Position {
        self.last
    }

    /// The next events in position order; waits while there are none. Never returns an empty batch.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, Error> {
        loop {
            self.head.borrow_and_update();
            let events = self.store.read_all(self.last, CATCH_UP_BATCH).await?;
            if let Some(last) = events.last() {
                self.last = last.position;
                return Ok(events);
            }
            if self.head.changed().await.is_err() {
                return Err(Error::Unavailable("the event store was closed".into()));
            }
        }
    }
}
