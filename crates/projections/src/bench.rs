//! Internals for the benchmark examples only (feature `bench`, which the crate's own examples
//! and tests enable): the id index and the checkpoint payload's writer and reader, so that they
//! can be measured beside the libraries they are kept instead of. Not part of the crate's API.

pub use crate::index::{hash_id, IdIndex};
use crate::Projections;

/// The checkpoint payload as [`Projections::save_checkpoint`] writes it, without the header and
/// the checksum around it (with a stand-in [`crate::Origin`]: a few dozen bytes).
pub fn write_checkpoint_payload(p: &Projections) -> Vec<u8> {
    let origin = crate::Origin {
        store: gryning_store::StoreIdentity {
            backend: "sqlite".into(),
            id: "00000000-0000-4000-8000-000000000000".into(),
        },
        event_id: (p.position() > 0).then(gryning_domain::Uuid::nil),
    };
    crate::checkpoint::encode(p, &origin)
}

/// Reads a payload back as [`crate::load_checkpoint`] does: links checked, indexes rebuilt.
pub fn read_checkpoint_payload(bytes: &[u8]) -> Result<Projections, String> {
    crate::checkpoint::decode(bytes).map(|c| c.projections)
}

/// What a reader of any other format must still do after deserialising the state (serde
/// skips the id indexes): check the state as the checkpoint reader does and rebuild the
/// indexes.
pub fn finish_read(mut p: Projections) -> Result<Projections, String> {
    crate::checkpoint::finish(&mut p)?;
    Ok(p)
}
