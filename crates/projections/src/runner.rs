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
///
/// Reading and applying overlap: while one batch is decoded and applied on this task, the
/// store already reads the next one (the SQLite backend reads on a blocking thread), so a
/// replay uses both cores.
pub async fn catch_up(
    projections: &mut Projections,
    store: &dyn EventStore,
    up_to: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<u64, Error> {
    // Positions grow by at least one, so this many events never run past the stop position.
    let limit = |after: u64| match up_to {
        Some(stop) => {
            BATCH_SIZE.min(usize::try_from(stop.saturating_sub(after)).unwrap_or(usize::MAX))
        }
        None => BATCH_SIZE,
    };
    let mut applied = 0u64;
    let start = projections.position();
    if up_to.is_some_and(|stop| start >= stop) {
        return Ok(0);
    }
    let mut batch = store.read_payloads(start, limit(start)).await?;
    while let Some(last) = batch.last().map(|(position, _)| *position) {
        let done = up_to.is_some_and(|stop| last >= stop);
        let apply = async {
            let mut n = 0u64;
            for (position, payload) in &batch {
                if up_to.is_some_and(|stop| *position > stop) {
                    break;
                }
                let event =
                    gryning_proto::decode_event(payload).map_err(|source| Error::Decode {
                        position: *position,
                        source,
                    })?;
                projections.apply(*position, &event);
                n += 1;
            }
            Ok::<u64, Error>(n)
        };
        let (next, n) = if done {
            (Ok(Vec::new()), apply.await)
        } else {
            tokio::join!(store.read_payloads(last, limit(last)), apply)
        };
        applied += n?;
        progress(projections.position());
        batch = next?;
    }
    Ok(applied)
}
