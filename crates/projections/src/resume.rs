//! Resuming from a checkpoint only when it fits the store at hand. A checkpoint records where
//! it was taken ([`Origin`]); it is used only if it comes from this very store (same backend
//! and id), its position is not above the store's head, and the store still holds, at that
//! position, the event the checkpoint was taken after. Otherwise it is discarded, saying why,
//! and the projections are rebuilt from the first event: a state folded from another log, or
//! from a log since restored to an older copy, would silently falsify every table.

use std::path::Path;

use gryning_domain::Uuid;
use gryning_store::{EventStore, Position, StoreIdentity};

use crate::checkpoint::{load_checkpoint, Checkpoint, Origin};
use crate::{Error, Projections};

/// Why a checkpoint was not used.
#[derive(Debug, thiserror::Error)]
pub enum Discarded {
    #[error("{0}")]
    Unreadable(Error),
    #[error("it was taken from {checkpoint}, not from this {store}")]
    OtherStore {
        checkpoint: StoreIdentity,
        store: StoreIdentity,
    },
    #[error("its position {position} is ahead of the store's head {head} (the store was replaced or restored to an older copy)")]
    AheadOfStore { position: Position, head: Position },
    #[error("the event at its position {position} is {}, not {} as when it was taken (the store was restored to an older copy or rewritten)", show(*store), show(*checkpoint))]
    Rewritten {
        position: Position,
        checkpoint: Option<Uuid>,
        store: Option<Uuid>,
    },
}

fn show(id: Option<Uuid>) -> String {
    id.map_or_else(|| "missing".to_string(), |id| id.to_string())
}

/// What [`resume`] found.
#[derive(Debug)]
// One value per start, moved once: boxing the state would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Resumed {
    /// No checkpoint: start from the first event.
    NoCheckpoint,
    /// The checkpoint fits the store: continue after its position.
    From(Projections),
    /// The checkpoint does not fit: start from the first event (the caller warns, saying why).
    Discarded(Discarded),
}

impl Resumed {
    /// The state to catch up from.
    pub fn into_projections(self) -> Projections {
        match self {
            Resumed::From(projections) => projections,
            Resumed::NoCheckpoint | Resumed::Discarded(_) => Projections::default(),
        }
    }
}

/// Loads the checkpoint at `path` and checks it against `store` (see the module). Only a
/// failure to read the store is an error; a damaged checkpoint is [`Discarded::Unreadable`].
pub async fn resume(path: &Path, store: &dyn EventStore) -> Result<Resumed, Error> {
    let Checkpoint {
        projections,
        origin,
    } = match load_checkpoint(path) {
        Ok(Some(checkpoint)) => checkpoint,
        Ok(None) => return Ok(Resumed::NoCheckpoint),
        Err(e) => return Ok(Resumed::Discarded(Discarded::Unreadable(e))),
    };
    let identity = store.identity();
    if origin.store != identity || identity.id.is_empty() {
        return Ok(Resumed::Discarded(Discarded::OtherStore {
            checkpoint: origin.store,
            store: identity,
        }));
    }
    let position = projections.position();
    let head = store.head().await?;
    if position > head {
        return Ok(Resumed::Discarded(Discarded::AheadOfStore {
            position,
            head,
        }));
    }
    let here = event_at(store, position).await?;
    if here != origin.event_id {
        return Ok(Resumed::Discarded(Discarded::Rewritten {
            position,
            checkpoint: origin.event_id,
            store: here,
        }));
    }
    Ok(Resumed::From(projections))
}

/// The origin to record with a checkpoint of state at `position` folded from `store`.
pub async fn origin_of(store: &dyn EventStore, position: Position) -> Result<Origin, Error> {
    Ok(Origin {
        store: store.identity(),
        event_id: event_at(store, position).await?,
    })
}

/// The id of the event stored at `position` (`None` at 0 or if there is none).
async fn event_at(store: &dyn EventStore, position: Position) -> Result<Option<Uuid>, Error> {
    if position == 0 {
        return Ok(None);
    }
    let found = store.read_all(position - 1, 1).await?;
    Ok(found
        .first()
        .filter(|e| e.position == position)
        .map(|e| e.event_id))
}
