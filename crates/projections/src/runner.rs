//! Feeds the projections from an event store: reads the log in batches after the state's
//! position, decodes each stored payload and applies it, optionally stopping at a position for
//! "as of" tables.

use gryning_store::EventStore;

use crate::{Error, Projections};

/// Events read per `read_all` call: large enough that the per-call cost vanishes, small enough
/// that a batch (payloads of ~100 bytes) stays around a megabyte.
pub const BATCH_SIZE: usize = 10_000;

/// Applies every stored event after `projections.position()`, up to and including position
/// `up_to` if given, calling `progress` with the position reached after each batch. Returns the
/// number of events applied.
pub async fn catch_up(
    projections: &mut Projections,
    store: &dyn EventStore,
    up_to: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<u64, Error> {
    let mut applied = 0u64;
    loop {
        let after = projections.position();
        if up_to.is_some_and(|limit| after >= limit) {
            return Ok(applied);
        }
        let limit = match up_to {
            // Positions grow by at least one, so this many events never run past the stop position.
            Some(stop) => BATCH_SIZE.min(usize::try_from(stop - after).unwrap_or(usize::MAX)),
            None => BATCH_SIZE,
        };
        let batch = store.read_all(after, limit).await?;
        if batch.is_empty() {
            return Ok(applied);
        }
        for recorded in &batch {
            if up_to.is_some_and(|stop| recorded.position > stop) {
                progress(projections.position());
                return Ok(applied);
            }
            let event =
                gryning_proto::decode_event(&recorded.payload).map_err(|source| Error::Decode {
                    position: recorded.position,
                    source,
                })?;
            projections.apply(recorded.position, &event);
            applied += 1;
        }
        progress(projections.position());
    }
}
