//! A compact hash index from ids to positions in a `Vec`. A `HashMap<Uuid, u32>` spends about
//! 21 bytes per bucket and up to two buckets per entry; this index keeps only a one-byte tag and
//! a `u32` per slot, because the id itself already lives in the vector's element. That is what
//! keeps a live crime within 64 bytes. Entries are never removed: the index holds exactly the
//! vector positions `0..len`, which is also what lets it rebuild itself when it grows.

/// Open addressing with linear probing, at most 3/4 full. A slot's tag is `0` when empty, else
/// `0x80` | seven hash bits, so a probe compares ids only on a (1 in 128 false) tag match.
#[derive(Clone, Debug, Default)]
pub struct IdIndex {
    tags: Vec<u8>,
    slots: Vec<u32>,
    len: usize,
}

// The index is derived data: two states with equal vectors have equivalent indexes, whatever
// their slot layout (which depends on growth history). State equality compares the vectors.
impl PartialEq for IdIndex {
    fn eq(&self, other: &IdIndex) -> bool {
        self.len == other.len
    }
}

/// A 64-bit mix (the MurmurHash3 finaliser) of an id and a salt. Not keyed: ids come from the
/// validated event log, not from anonymous clients, and a fixed hash keeps behaviour reproducible.
#[inline]
pub fn hash_id(id: u128, salt: u32) -> u64 {
    let (hi, lo) = ((id >> 64) as u64, id as u64);
    mix(hi ^ mix(lo ^ u64::from(salt).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[inline]
fn tag(hash: u64) -> u8 {
    0x80 | (hash >> 57) as u8
}

impl IdIndex {
    /// The entry with this hash for which `is_it` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.tags.is_empty() {
            return None;
        }
        let mask = self.tags.len() - 1;
        let wanted = tag(hash);
        let mut i = hash as usize & mask;
        loop {
            match self.tags[i] {
                0 => return None,
                t if t == wanted && is_it(self.slots[i]) => return Some(self.slots[i]),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds position `len` (the next one) with its hash; `hash_of` gives the hash of any earlier
    /// position, for when the table grows.
    pub fn push(&mut self, hash: u64, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 4 > self.tags.len() * 3 {
            let capacity = (self.tags.len() * 2).max(16);
            self.tags = vec![0; capacity];
            self.slots = vec![0; capacity];
            for position in 0..self.len as u32 {
                self.place(hash_of(position), position);
            }
        }
        self.place(hash, self.len as u32);
        self.len += 1;
    }

    /// Builds the index of positions `0..len`.
    pub(crate) fn rebuild(len: usize, hash_of: impl Fn(u32) -> u64) -> IdIndex {
        let mut index = IdIndex::default();
        for position in 0..len as u32 {
            index.push(hash_of(position), &hash_of);
        }
        index
    }

    #[inline]
    fn place(&mut self, hash: u64, position: u32) {
        let mask = self.tags.len() - 1;
        let mut i = hash as usize & mask;
        while self.tags[i] != 0 {
            i = (i + 1) & mask;
        }
        self.tags[i] = tag(hash);
        self.slots[i] = position;
    }

    /// Bytes held by the index.
    pub fn heap_bytes(&self) -> usize {
        self.tags.capacity() + self.slots.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_entry_and_nothing_else() {
        let ids: Vec<u128> = (0..10_000u128).map(|i| i * 7919).collect();
        let hash_of = |p: u32| hash_id(ids[p as usize], 0);
        let mut index = IdIndex::default();
        for p in 0..ids.len() as u32 {
            index.push(hash_of(p), hash_of);
        }
        for (p, &id) in ids.iter().enumerate() {
            assert_eq!(
                index.find(hash_id(id, 0), |q| ids[q as usize] == id),
                Some(p as u32)
            );
        }
        assert_eq!(index.find(hash_id(3, 0), |q| ids[q as usize] == 3), None);
        assert!(index.heap_bytes() <= ids.len() * 5 * 8 / 3 + 80);
    }
}
