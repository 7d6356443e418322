//! The read side of gryning: the contract's tables (`case-flow`, `clearance`, `care`,
//! `social-services`), the per-crime-code `progress` funnel and the `region-comparison` of
//! clearance rates against the median of the police regions, kept incrementally from the event
//! log (every table for all regions together or for one); and [`explain`], which lists the
//! events behind any one cell.
//!
//! [`Projections`] is pure state folded event by event in store position order; it keeps counts
//! per (quarter, crime code) and answers any table for years or quarters, by code or by the
//! groups of whichever catalogue is in force, at query time. [`Projections::save_checkpoint`]
//! and [`load_checkpoint`] persist it so a restart only reads the events after the checkpoint
//! ([`resume`] uses a checkpoint only if it was taken from the store at hand),
//! [`catch_up`] feeds it from an [`gryning_store::EventStore`], and [`naive`] recomputes every
//! table from scratch, straight from the definitions, to check the incremental state against.
//! [`asof`] answers tables as they stood at an earlier position or time, from snapshots.

pub mod asof;
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;
mod checkpoint;
pub mod comparison;
pub mod diff;
mod erasure;
mod error;
pub mod explain;
mod index;
pub mod naive;
mod period;
pub mod publication;
mod query;
mod resume;
mod runner;
pub mod social;
mod state;
mod table;

pub use asof::{AsOf, Snapshots};
pub use checkpoint::{load_checkpoint, Checkpoint, Origin, FORMAT_VERSION};
pub use comparison::{RegionComparisonRow, Verdict};
pub use error::Error;
pub use publication::{
    read_publication, stored_table, stored_table_or_why, PublicationEntry, PublishedPeriod,
};
pub use resume::{origin_of, resume, Discarded, Resumed};
pub use runner::{catch_up, BATCH_SIZE};
pub use state::{MemoryUse, Projections};
pub use table::{By, Cell, PeriodKind, Table, TableName};
