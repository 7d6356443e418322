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

// Two indexes are equal when they hold the same entries: the same positions, each with the same
// tag (seven bits of its id's hash), whatever the slot layout (which depends on growth history).
// Indexes over different ids then differ but for a 1 in 128 tag collision per entry.
impl PartialEq for IdIndex {
    fn eq(&self, other: &IdIndex) -> bool {
        self.len == other.len && self.tags_by_position() == other.tags_by_position()
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

    /// Builds the index of positions `0..len` (the checkpoint reader builds its own, refusing
    /// duplicate ids as it goes).
    #[cfg(test)]
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

    /// The tag of each position `0..len`, read from the slots; `None` if a position is missing,
    /// out of range or held twice (which `push` never does).
    fn tags_by_position(&self) -> Option<Vec<u8>> {
        let mut tags = vec![0u8; self.len];
        for (&tag, &position) in self.tags.iter().zip(&self.slots) {
            if tag == 0 {
                continue;
            }
            let held = tags.get_mut(position as usize)?;
            if *held != 0 {
                return None;
            }
            *held = tag;
        }
        tags.iter().all(|&t| t != 0).then_some(tags)
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

    fn index_of(ids: &[u128]) -> IdIndex {
        IdIndex::rebuild(ids.len(), |p| hash_id(ids[p as usize], 0))
    }

    #[test]
    fn equal_when_the_entries_are_equal_whatever_the_layout() {
        let ids: Vec<u128> = (0..100u128).map(|i| i * 7919).collect();
        let built = index_of(&ids);
        // Pushed one by one into a table that grew differently: a larger capacity, other slots.
        let hash_of = |p: u32| hash_id(ids[p as usize], 0);
        let mut grown = IdIndex::rebuild(400, |p| hash_id(u128::from(p) + 1_000_000, 0));
        grown.tags.iter_mut().for_each(|t| *t = 0);
        grown.len = 0;
        for p in 0..ids.len() as u32 {
            grown.push(hash_of(p), hash_of);
        }
        assert_ne!(grown.tags.len(), built.tags.len(), "the layouts differ");
        assert_eq!(grown, built);
    }

    #[test]
    fn unequal_when_the_ids_differ_at_the_same_length() {
        let ids: Vec<u128> = (0..100u128).map(|i| i * 7919).collect();
        let mut other = ids.clone();
        other[37] = 12_345_678_901;
        assert_ne!(index_of(&ids), index_of(&other));
        let shorter = index_of(&ids[..99]);
        assert_ne!(index_of(&ids), shorter);
        // Salted hashes (crimes are keyed by case) count as different ids too.
        let salted = IdIndex::rebuild(ids.len(), |p| hash_id(ids[p as usize], 1));
        assert_ne!(index_of(&ids), salted);
    }
}
