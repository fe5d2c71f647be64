//! Token interning: the metrics compare small integers instead of strings.

use std::collections::HashMap;

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
