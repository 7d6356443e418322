//! Why a projection operation failed: checkpoint I/O and format problems, and store or decoding
//! trouble while catching up.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path} is not a gryning projections checkpoint (bad magic header)")]
    NotACheckpoint { path: PathBuf },
    #[error("checkpoint {path} has format version {found}, this build reads version {expected}; delete it to rebuild from the event log")]
    FormatVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("reading the event log: {0}")]
    Store(#[from] gryning_store::Error),
    #[error("stored event at position {position} cannot be decoded: {source}")]
    Decode {
        position: u64,
        source: gryning_proto::convert::DecodeError,
    },
}
