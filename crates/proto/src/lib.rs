//! The wire format of gryning: protobuf types generated from `proto/gryning/v1`, their proto3
//! canonical JSON mapping (NDJSON interchange), and the conversions between them and the domain
//! types. Architecture invariant: only this crate knows protobuf; the domain never derives prost.

pub mod codec;
pub mod convert;
mod erasure;
pub mod ndjson;
mod wire;

/// Generated code of package `gryning.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/gryning.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/gryning.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of every gryning proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gryning_descriptor.bin"));

pub use convert::{decode_event, encode_event, from_pb, to_pb, DecodeError};
pub use erasure::erasure_summary;
pub use wire::WireError;

/// The instant an event was recorded, from its stored metadata (`EventMetadata.recorded_at`):
/// `None` when the metadata is empty, does not decode, or carries no time (events imported
/// offline before import stamped them).
pub fn recorded_at(metadata: &[u8]) -> Option<jiff::Timestamp> {
    use prost::Message as _;
    let metadata = pb::EventMetadata::decode(metadata).ok()?;
    metadata.recorded_at.parse().ok()
}

/// The stored metadata of an event recorded by `principal` (of `agency`) at `recorded_at`
/// (RFC 3339; see `EventMetadata`).
pub fn encode_metadata(principal: &str, agency: &str, recorded_at: &str) -> Vec<u8> {
    use prost::Message as _;
    pb::EventMetadata {
        principal: principal.to_string(),
        agency: agency.to_string(),
        recorded_at: recorded_at.to_string(),
        scope: String::new(),
    }
    .encode_to_vec()
}
