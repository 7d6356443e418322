//! The embedded store's in-memory lookups, kept small: they hold an entry for every event and
//! every stream ever stored, so their bytes per event are most of the store's memory.
//!
//! - [`Ids`]: event id → position. Open addressing over 12-byte slots holding 32 bits of the
//!   id's hash and the position; the id itself is not kept. A slot whose hash bits match is a
//!   *candidate*, confirmed by the caller reading the id stored at its position (rare but for
//!   the id that is really there: two ids share 32 hash bits about once in four billion).
//! - [`Streams`]: stream name → the stream's version and the position of its last event. The
//!   names live once in an arena of bytes, a name ending in a UUID in its canonical text form
//!   as the prefix and the UUID's 16 bytes.
//! - [`Chain`]: for every position, how far back the previous event of the same stream is, so
//!   that a stream's positions are found by walking back from its last event.
//!
//! Both tables probe linearly from a start slot taken from the hash bits by multiplication (so
//! any capacity works), grow by half when three quarters full and are never shrunk; entries
//! are never removed (retention erases offline, and the index is rebuilt at the next open).
//! The hashes are keyed with a random key per table (`std`'s SipHash `RandomState`), so ids
//! or names chosen to collide cannot slow the lookups down.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use uuid::Uuid;

use crate::{Position, Version};

/// Tables grow when more than `MAX_LOAD_NUM / MAX_LOAD_DEN` of their slots are taken.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;
const MIN_CAPACITY: usize = 16;

/// The start slot for 32 hash bits in a table of `capacity` slots.
fn start(bits: u32, capacity: usize) -> usize {
    ((u64::from(bits) * capacity as u64) >> 32) as usize
}

/// The capacity that holds `n` entries below the maximum load.
fn capacity_for(n: usize) -> usize {
    (n.saturating_mul(MAX_LOAD_DEN) / MAX_LOAD_NUM + 1).max(MIN_CAPACITY)
}

fn full(len: usize, capacity: usize) -> bool {
    (len + 1) * MAX_LOAD_DEN > capacity * MAX_LOAD_NUM
}

/// Event id → position, confirmed by the caller (see the module).
pub(crate) struct Ids {
    /// `[hash bits, position low 32 bits, position high 32 bits]`; position 0 is an empty slot.
    slots: Vec<[u32; 3]>,
    len: usize,
    keys: RandomState,
}

impl Ids {
    pub(crate) fn with_capacity(n: usize) -> Ids {
        Ids {
            slots: vec![[0; 3]; capacity_for(n)],
            len: 0,
            keys: RandomState::new(),
        }
    }

    fn bits(&self, id: &Uuid) -> u32 {
        (self.keys.hash_one(id.as_u128()) >> 32) as u32
    }

    fn position(slot: &[u32; 3]) -> Position {
        u64::from(slot[1]) | (u64::from(slot[2]) << 32)
    }

    /// The positions that may hold `id`, in probe order (the id stored there is to be
    /// compared); the one that does, if any, is among them.
    pub(crate) fn candidates(&self, id: &Uuid) -> Vec<Position> {
        let bits = self.bits(id);
        let capacity = self.slots.len();
        let mut i = start(bits, capacity);
        let mut found = Vec::new();
        loop {
            let slot = &self.slots[i];
            let position = Ids::position(slot);
            if position == 0 {
                return found;
            }
            if slot[0] == bits {
                found.push(position);
            }
            i += 1;
            if i == capacity {
                i = 0;
            }
        }
    }

    /// Records `id` at `position` (the caller has made sure the id is not stored yet).
    pub(crate) fn insert(&mut self, id: &Uuid, position: Position) {
        debug_assert!(position > 0);
        if full(self.len, self.slots.len()) {
            self.grow();
        }
        let bits = self.bits(id);
        Ids::place(&mut self.slots, bits, position);
        self.len += 1;
    }

    fn place(slots: &mut [[u32; 3]], bits: u32, position: Position) {
        let capacity = slots.len();
        let mut i = start(bits, capacity);
        while Ids::position(&slots[i]) != 0 {
            i += 1;
            if i == capacity {
                i = 0;
            }
        }
        slots[i] = [bits, position as u32, (position >> 32) as u32];
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() + self.slots.len() / 2).max(MIN_CAPACITY);
        let mut slots = vec![[0u32; 3]; capacity];
        for slot in &self.slots {
            let position = Ids::position(slot);
            if position != 0 {
                Ids::place(&mut slots, slot[0], position);
            }
        }
        self.slots = slots;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// What the store keeps of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    pub(crate) version: Version,
    /// The position of its last event.
    pub(crate) last: Position,
}

#[derive(Clone, Copy, Default)]
struct StreamSlot {
    /// 0: an empty slot.
    last: Position,
    /// Where the name starts in the arena.
    name: u64,
    version: u32,
    bits: u32,
}

/// Stream name → [`StreamEntry`].
pub(crate) struct Streams {
    slots: Vec<StreamSlot>,
    len: usize,
    /// The names, each encoded by [`encode_name`] after a length byte.
    names: Vec<u8>,
    keys: RandomState,
}

/// A name's arena form: a name whose last 36 characters are a UUID in canonical lower-case
/// text is kept as `0x80 | prefix length`, the prefix and the UUID's 16 bytes (22 bytes for
/// `case-…`, not 41); any other name as its length (below 128) and its bytes, or `0xFF`, a
/// 4-byte length and its bytes.
fn encode_name(name: &str, out: &mut Vec<u8>) {
    let bytes = name.as_bytes();
    if bytes.len() >= 36 && bytes.len() - 36 < 0x7F {
        let (prefix, tail) = bytes.split_at(bytes.len() - 36);
        if let Some(id) = std::str::from_utf8(tail)
            .ok()
            .and_then(|t| Uuid::try_parse(t).ok())
            .filter(|id| {
                let mut text = [0u8; 36];
                id.hyphenated().encode_lower(&mut text).as_bytes() == tail
            })
        {
            out.push(0x80 | prefix.len() as u8);
            out.extend_from_slice(prefix);
            out.extend_from_slice(id.as_bytes());
            return;
        }
    }
    if bytes.len() < 0x80 {
        out.push(bytes.len() as u8);
    } else {
        out.push(0xFF);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(bytes);
}

/// The length of the encoded name at the start of `bytes`.
fn encoded_len(bytes: &[u8]) -> usize {
    match bytes[0] {
        0xFF => 5 + u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize,
        b if b & 0x80 != 0 => 1 + usize::from(b & 0x7F) + 16,
        b => 1 + usize::from(b),
    }
}

impl Streams {
    pub(crate) fn new() -> Streams {
        Streams {
            slots: vec![StreamSlot::default(); MIN_CAPACITY],
            len: 0,
            names: Vec::new(),
            keys: RandomState::new(),
        }
    }

    fn bits(&self, name: &str) -> u32 {
        (self.keys.hash_one(name) >> 32) as u32
    }

    /// The slot holding `name` (whose encoding is `encoded`), or the empty slot where it goes.
    fn find(&self, bits: u32, encoded: &[u8]) -> usize {
        let capacity = self.slots.len();
        let mut i = start(bits, capacity);
        loop {
            let slot = &self.slots[i];
            if slot.last == 0 {
                return i;
            }
            if slot.bits == bits {
                let at = slot.name as usize;
                let stored = &self.names[at..at + encoded_len(&self.names[at..])];
                if stored == encoded {
                    return i;
                }
            }
            i += 1;
            if i == capacity {
                i = 0;
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<StreamEntry> {
        let mut encoded = Vec::with_capacity(name.len() + 5);
        encode_name(name, &mut encoded);
        let slot = &self.slots[self.find(self.bits(name), &encoded)];
        (slot.last != 0).then_some(StreamEntry {
            version: Version::from(slot.version),
            last: slot.last,
        })
    }

    /// Records that `name`'s next event is at `position`: its entry before (`None` for a new
    /// stream). Versions above `u32::MAX` are refused by the caller.
    pub(crate) fn push(&mut self, name: &str, position: Position) -> Option<StreamEntry> {
        debug_assert!(position > 0);
        let mut encoded = Vec::with_capacity(name.len() + 5);
        encode_name(name, &mut encoded);
        let bits = self.bits(name);
        let mut i = self.find(bits, &encoded);
        if self.slots[i].last != 0 {
            let slot = &mut self.slots[i];
            let before = StreamEntry {
                version: Version::from(slot.version),
                last: slot.last,
            };
            slot.version += 1;
            slot.last = position;
            return Some(before);
        }
        if full(self.len, self.slots.len()) {
            self.grow();
            i = self.find(bits, &encoded);
        }
        let at = self.names.len() as u64;
        self.names.extend_from_slice(&encoded);
        self.slots[i] = StreamSlot {
            last: position,
            name: at,
            version: 1,
            bits,
        };
        self.len += 1;
        None
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() + self.slots.len() / 2).max(MIN_CAPACITY);
        let mut slots = vec![StreamSlot::default(); capacity];
        for slot in &self.slots {
            if slot.last == 0 {
                continue;
            }
            let mut i = start(slot.bits, capacity);
            while slots[i].last != 0 {
                i += 1;
                if i == capacity {
                    i = 0;
                }
            }
            slots[i] = *slot;
        }
        self.slots = slots;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// For every position, the distance back to the previous event of its stream (0: the
/// stream's first event, or a position retention erased).
#[derive(Default)]
pub(crate) struct Chain {
    back: Vec<u32>,
    /// The rare distances that do not fit in 32 bits, by position.
    far: HashMap<Position, Position>,
}

impl Chain {
    pub(crate) fn with_capacity(n: usize) -> Chain {
        Chain {
            back: Vec::with_capacity(n),
            far: HashMap::new(),
        }
    }

    /// Notes the event at `position` (each position once, in any order), whose stream's
    /// previous event is at `previous` (`None`: the stream's first).
    pub(crate) fn push(&mut self, position: Position, previous: Option<Position>) {
        let index = (position - 1) as usize;
        if self.back.len() < index + 1 {
            self.back.resize(index + 1, 0);
        }
        let distance = previous.map_or(0, |p| position - p);
        match u32::try_from(distance) {
            Ok(d) => self.back[index] = d,
            Err(_) => {
                self.back[index] = u32::MAX;
                self.far.insert(position, distance);
            }
        }
    }

    /// The positions of the stream whose `version`-th event is at `last`, in version order.
    pub(crate) fn positions(&self, entry: StreamEntry) -> Vec<Position> {
        let mut out = Vec::with_capacity(entry.version as usize);
        let mut p = entry.last;
        for _ in 0..entry.version {
            out.push(p);
            let distance = match self.back.get((p - 1) as usize) {
                Some(&u32::MAX) => self.far.get(&p).copied().unwrap_or(0),
                Some(&d) => Position::from(d),
                None => 0,
            };
            if distance == 0 {
                break;
            }
            p -= distance;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_find_every_position_among_their_candidates_through_growth() {
        let mut ids = Ids::with_capacity(0);
        let all: Vec<Uuid> = (0..50_000).map(|_| Uuid::new_v4()).collect();
        for (i, id) in all.iter().enumerate() {
            ids.insert(id, i as Position + 1);
        }
        assert_eq!(ids.len(), all.len());
        for (i, id) in all.iter().enumerate() {
            assert!(
                ids.candidates(id).contains(&(i as Position + 1)),
                "id {i} lost"
            );
        }
        // An id never inserted has (almost always) no candidate at all, and never one of
        // its own: the caller's check against the stored id is what decides.
        let strangers = (0..10_000)
            .filter(|_| !ids.candidates(&Uuid::new_v4()).is_empty())
            .count();
        assert!(
            strangers < 10,
            "{strangers} of 10,000 unknown ids had candidates"
        );
    }

    #[test]
    fn ids_keep_positions_above_32_bits() {
        let mut ids = Ids::with_capacity(4);
        let id = Uuid::new_v4();
        ids.insert(&id, (1 << 40) + 7);
        assert_eq!(ids.candidates(&id), vec![(1 << 40) + 7]);
    }

    #[test]
    fn names_round_trip_in_both_forms_and_never_alias() {
        let id = Uuid::new_v4();
        let names = [
            format!("case-{id}"),
            format!("client-{id}"),
            // Upper-case UUID text is not the canonical form: kept as its bytes, a stream of
            // its own.
            format!("case-{}", id.hyphenated().to_string().to_uppercase()),
            "publication-2020-Q4".to_string(),
            "retention".to_string(),
            String::new(),
            "x".repeat(300),
            id.to_string(),
        ];
        let mut encoded: Vec<Vec<u8>> = Vec::new();
        for name in &names {
            let mut e = Vec::new();
            encode_name(name, &mut e);
            assert_eq!(encoded_len(&e), e.len(), "{name:?}");
            encoded.push(e);
        }
        assert_eq!(encoded[0].len(), 22, "case-UUID in 22 bytes");
        for (i, a) in encoded.iter().enumerate() {
            for b in &encoded[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn streams_count_versions_and_keep_the_last_position_through_growth() {
        let mut streams = Streams::new();
        let names: Vec<String> = (0..5_000)
            .map(|i| {
                if i % 3 == 0 {
                    format!("s{i}")
                } else {
                    format!("case-{}", Uuid::new_v4())
                }
            })
            .collect();
        let mut position = 0;
        for round in 1..=3u64 {
            for name in &names {
                position += 1;
                let before = streams.push(name, position);
                if round == 1 {
                    assert_eq!(before, None, "{name} is new");
                } else {
                    assert_eq!(before.map(|e| e.version), Some(round - 1), "{name}");
                }
            }
        }
        assert_eq!(streams.len(), names.len());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                streams.get(name),
                Some(StreamEntry {
                    version: 3,
                    last: 2 * names.len() as u64 + i as u64 + 1
                })
            );
        }
        assert_eq!(streams.get("never"), None);
    }

    #[test]
    fn a_chain_walks_back_over_other_streams_and_gaps() {
        let mut chain = Chain::default();
        // Stream a at 1, 3 and 6; stream b at 2 and 5; position 4 erased (never noted).
        chain.push(1, None);
        chain.push(2, None);
        chain.push(3, Some(1));
        chain.push(5, Some(2));
        chain.push(6, Some(3));
        let a = StreamEntry {
            version: 3,
            last: 6,
        };
        assert_eq!(chain.positions(a), vec![1, 3, 6]);
        let b = StreamEntry {
            version: 2,
            last: 5,
        };
        assert_eq!(chain.positions(b), vec![2, 5]);
    }
}
