//! `catch_up` against an in-memory `EventStore` (the trait only; no backend): it applies every
//! stored event in batches, resumes from the state's position, and stops at `up_to`.

mod common;

use std::sync::Mutex;

use async_trait::async_trait;
use common::Log;
use gryning_domain::{Catalogue, Gender, ProsecutionDecision};
use gryning_projections::{catch_up, By, Error, PeriodKind, Projections, TableName, BATCH_SIZE};
use gryning_store::{AppendRequest, Appended, EventStore, Position, RecordedEvent, Version};

/// Events stored in memory, positions 1, 2, 3, …
struct MemoryStore {
    events: Mutex<Vec<RecordedEvent>>,
    head: tokio::sync::watch::Sender<Position>,
}

impl MemoryStore {
    fn with_payloads(payloads: Vec<Vec<u8>>) -> MemoryStore {
        let events: Vec<RecordedEvent> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| RecordedEvent {
                position: i as u64 + 1,
                stream: "s".into(),
                version: i as u64 + 1,
                event_id: gryning_domain::Uuid::from_u128(i as u128),
                payload,
                metadata: vec![],
            })
            .collect();
        let (head, _) = tokio::sync::watch::channel(events.len() as u64);
        MemoryStore {
            events: Mutex::new(events),
            head,
        }
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    fn identity(&self) -> gryning_store::StoreIdentity {
        gryning_store::StoreIdentity {
            backend: "memory".into(),
            id: "test".into(),
        }
    }
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<Appended, gryning_store::Error>> {
        let mut events = self.events.lock().unwrap();
        let mut results = Vec::new();
        for request in requests {
            let mut positions = Vec::new();
            for new in request.events {
                let position = events.len() as u64 + 1;
                events.push(RecordedEvent {
                    position,
                    stream: request.stream.clone(),
                    version: 0,
                    event_id: new.event_id,
                    payload: new.payload,
                    metadata: new.metadata,
                });
                positions.push(position);
            }
            results.push(Ok(Appended {
                positions,
                version: 0,
                duplicate: false,
            }));
        }
        self.head.send_replace(events.len() as u64);
        results
    }
    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, gryning_store::Error> {
        Ok(self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.stream == stream)
            .cloned()
            .collect())
    }
    async fn stream_version(&self, stream: &str) -> Result<Version, gryning_store::Error> {
        Ok(self.read_stream(stream).await?.len() as u64)
    }
    async fn find_event(
        &self,
        event_id: gryning_domain::Uuid,
    ) -> Result<Option<RecordedEvent>, gryning_store::Error> {
        Ok(self
            .events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.event_id == event_id)
            .cloned())
    }
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, gryning_store::Error> {
        Ok(self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.position > after)
            .take(limit)
            .cloned()
            .collect())
    }
    async fn head(&self) -> Result<Position, gryning_store::Error> {
        Ok(self.events.lock().unwrap().len() as u64)
    }
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Position> {
        self.head.subscribe()
    }
}

fn big_log() -> Log {
    let mut log = Log::default();
    // More than two batches of events.
    for case in 0..(BATCH_SIZE as u128 + 100) {
        log.open("2020-01-01", case, "9365")
            .report("2020-02-01", case, 1, "9365", Gender::Female);
    }
    log.refer("2020-03-01", 7)
        .decide("2020-04-01", 7, 1, ProsecutionDecision::Indictment);
    log
}

#[tokio::test]
async fn catches_up_in_batches_resumes_and_stops_at_a_position() {
    let log = big_log();
    let store =
        MemoryStore::with_payloads(log.events.iter().map(gryning_proto::encode_event).collect());
    let total = log.events.len() as u64;

    let mut as_of = Projections::new();
    let applied = catch_up(&mut as_of, &store, Some(1001), |_| {})
        .await
        .unwrap();
    assert_eq!((applied, as_of.position()), (1001, 1001));
    let partial = Log {
        events: log.events[..1001].to_vec(),
    };
    assert_eq!(as_of, partial.projections());

    let mut seen = Vec::new();
    let applied = catch_up(&mut as_of, &store, None, |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(applied, total - 1001);
    assert_eq!(seen.last(), Some(&total));
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(as_of, log.projections());
    let cat = Catalogue::default_catalogue();
    let clearance = as_of.table(TableName::Clearance, By::Code, PeriodKind::Year, &cat);
    assert_eq!(clearance.rows.len(), 2, "{}", clearance.to_text());

    // Nothing new: nothing applied.
    assert_eq!(catch_up(&mut as_of, &store, None, |_| {}).await.unwrap(), 0);
}

#[tokio::test]
async fn an_undecodable_event_names_its_position() {
    let log = big_log();
    let mut payloads: Vec<Vec<u8>> = log.events[..3]
        .iter()
        .map(gryning_proto::encode_event)
        .collect();
    payloads.push(vec![0xff, 0xff, 0xff]);
    let store = MemoryStore::with_payloads(payloads);
    let mut p = Projections::new();
    let err = catch_up(&mut p, &store, None, |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Decode { position: 4, .. }), "{err}");
    assert_eq!(p.position(), 3);
}
