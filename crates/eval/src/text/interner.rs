//! Token interning, so that the metrics compare small integers instead of strings, and the
//! pieces shared by the metrics' own open-addressing tables: the hash and the generation stamp.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// A hash map with a fast non-cryptographic hasher: the keys are our own tokens, and a
/// collision-heavy input only slows scoring down, it cannot change a result.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Assigns each distinct token a dense id, in order of first appearance.
#[derive(Default)]
pub(crate) struct Interner<'a> {
    ids: FastMap<&'a str, u32>,
}

impl<'a> Interner<'a> {
    /// The id of `token`, assigning the next free one to a new token.
    pub(crate) fn id(&mut self, token: &'a str) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(token).or_insert(next)
    }

    /// The ids of `tokens`, in order.
    pub(crate) fn ids<I: IntoIterator<Item = &'a str>>(&mut self, tokens: I) -> Vec<u32> {
        tokens.into_iter().map(|token| self.id(token)).collect()
    }
}

/// Assigns each distinct byte string a dense id, in order of first appearance, in reusable
/// memory: [`ByteInterner::reset`] forgets the tokens but keeps the allocations.
#[derive(Default)]
pub(crate) struct ByteInterner {
    /// Each distinct token: its hash and its byte range in `bytes`.
    entries: Vec<(u64, u32, u32)>,
    /// The distinct tokens' bytes, back to back.
    bytes: Vec<u8>,
    /// Open-addressing table: entry index plus one, 0 for an empty slot.
    slots: Vec<u32>,
}

impl ByteInterner {
    /// Forgets every token and makes room for `capacity` distinct ones.
    pub(crate) fn reset(&mut self, capacity: usize) {
        self.entries.clear();
        self.bytes.clear();
        let size = (capacity * 2).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(size, 0);
    }

    /// The id of `token`, assigning the next free one to a new token.
    ///
    /// At most the `capacity` given to the last [`ByteInterner::reset`] distinct tokens may be
    /// added; more would fill the table.
    pub(crate) fn id(&mut self, token: &[u8]) -> u32 {
        let hash = foldhash::fast::FixedState::with_seed(0x1D5).hash_one(token);
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let index = self.slots[slot];
            if index == 0 {
                let start = self.bytes.len() as u32;
                self.bytes.extend_from_slice(token);
                self.entries.push((hash, start, self.bytes.len() as u32));
                self.slots[slot] = self.entries.len() as u32;
                return self.entries.len() as u32 - 1;
            }
            let (entry_hash, start, end) = self.entries[index as usize - 1];
            if entry_hash == hash && &self.bytes[start as usize..end as usize] == token {
                return index - 1;
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// The two halves of the 128-bit product xored: one multiplication mixes every input bit.
#[inline(always)]
pub(crate) fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    product as u64 ^ (product >> 64) as u64
}

/// A hash of a 128-bit key given as two halves, for the metrics' open-addressing tables.
#[inline(always)]
pub(crate) fn hash_halves(lo: u64, hi: u64) -> u64 {
    fold_multiply(lo ^ 0x243F_6A88_85A3_08D3, hi ^ 0x1319_8A2E_0370_7344)
}

/// Which slots of a reused open-addressing table are current: a slot is in use only while its
/// stamp equals the generation, so advancing it empties the table without touching it.
#[derive(Debug, Default)]
pub(crate) struct Generation(u32);

impl Generation {
    /// A stamp that no slot holds yet. On the one wrap-around in 2^32 calls, stamps from 2^32
    /// generations ago would look current again, so `clear_stamps` must set every slot's to 0.
    #[inline(always)]
    pub(crate) fn advance(&mut self, clear_stamps: impl FnOnce()) -> u32 {
        self.0 = self.0.wrapping_add(1);
        if self.0 == 0 {
            clear_stamps();
            self.0 = 1;
        }
        self.0
    }
}
