//! The domain of gryning: the events agencies record, the rules they must follow, and the
//! crime-code catalogue. Architecture invariant: this crate does no I/O and knows nothing of
//! protobuf, SQLite or gRPC; the edges convert to and from these types.

pub mod catalogue;
pub mod date;
mod error;
mod event;
pub mod lifecycle;
pub mod personnummer;
mod quarter;
pub mod region;
pub mod validate;

pub use catalogue::Catalogue;
pub use date::Date;
pub use error::{echo, Error, Rule, ECHO_CHARS};
pub use event::*;
pub use lifecycle::StreamState;
pub use quarter::{Quarter, QuarterError};
pub use region::{resolve_region, UnknownRegion, POLICE_REGIONS};
pub use uuid::Uuid;
