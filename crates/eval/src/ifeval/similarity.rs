//! Response similarity as SN37's duplicate check computes it: Python's
//! `difflib.SequenceMatcher(lambda x: x in " \t", a, b).ratio()` over characters.
//!
//! The ratio depends on difflib's exact matching procedure (longest matching block first,
//! junk characters ` ` and `\t`, and the "popular element" heuristic that ignores characters
//! making up more than 1% of a `b` of 200+ characters), so that procedure is reproduced
//! here rather than using a generic edit distance.

use std::collections::{HashMap, HashSet};

/// Similarity in [0, 1]: `2 * matched / (len(a) + len(b))`, 1.0 when both are empty.
pub fn similarity_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let matcher = Matcher::new(&a, &b);
    2.0 * matcher.matched_count() as f64 / total as f64
}

/// SN37's junk predicate: space and tab.
fn is_junk(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// difflib's state for one pair of sequences.
struct Matcher<'a> {
    a: &'a [char],
    b: &'a [char],
    /// Positions in `b` of each non-junk, non-popular character, ascending.
    b_positions: HashMap<char, Vec<usize>>,
    /// Junk characters that occur in `b`.
    b_junk: HashSet<char>,
}

impl<'a> Matcher<'a> {
    /// difflib's `__chain_b` with `autojunk=True`.
    fn new(a: &'a [char], b: &'a [char]) -> Self {
        let mut b_positions: HashMap<char, Vec<usize>> = HashMap::new();
        for (index, &c) in b.iter().enumerate() {
            b_positions.entry(c).or_default().push(index);
        }
        let b_junk: HashSet<char> = b_positions
            .keys()
            .copied()
            .filter(|&c| is_junk(c))
            .collect();
        b_positions.retain(|c, _| !b_junk.contains(c));
        if b.len() >= 200 {
            let limit = b.len() / 100 + 1;
            b_positions.retain(|_, positions| positions.len() <= limit);
        }
        Self {
            a,
            b,
            b_positions,
            b_junk,
        }
    }

    /// Sum of the sizes of difflib's matching blocks.
    fn matched_count(&self) -> usize {
        let mut total = 0;
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        while let Some((a_lo, a_hi, b_lo, b_hi)) = queue.pop() {
            let (i, j, size) = self.longest_match(a_lo, a_hi, b_lo, b_hi);
            if size == 0 {
                continue;
            }
            total += size;
            if a_lo < i && b_lo < j {
                queue.push((a_lo, i, b_lo, j));
            }
            if i + size < a_hi && j + size < b_hi {
                queue.push((i + size, a_hi, j + size, b_hi));
            }
        }
        total
    }

    /// difflib's `find_longest_match`: the earliest longest non-junk block, then extended
    /// by equal non-junk and junk neighbours.
    fn longest_match(
        &self,
        a_lo: usize,
        a_hi: usize,
        b_lo: usize,
        b_hi: usize,
    ) -> (usize, usize, usize) {
        let (mut best_i, mut best_j, mut best_size) = (a_lo, b_lo, 0);
        let mut run_ending_at: HashMap<usize, usize> = HashMap::new();
        for i in a_lo..a_hi {
            let mut next_runs = HashMap::new();
            for &j in self
                .b_positions
                .get(&self.a[i])
                .map_or(&[][..], Vec::as_slice)
            {
                if j < b_lo {
                    continue;
                }
                if j >= b_hi {
                    break;
                }
                let size = j
                    .checked_sub(1)
                    .and_then(|p| run_ending_at.get(&p))
                    .copied()
                    .unwrap_or(0)
                    + 1;
                next_runs.insert(j, size);
                if size > best_size {
                    (best_i, best_j, best_size) = (i + 1 - size, j + 1 - size, size);
                }
            }
            run_ending_at = next_runs;
        }
        for junk_pass in [false, true] {
            let is_extendable = |c: char| self.b_junk.contains(&c) == junk_pass;
            while best_i > a_lo
                && best_j > b_lo
                && is_extendable(self.b[best_j - 1])
                && self.a[best_i - 1] == self.b[best_j - 1]
            {
                (best_i, best_j, best_size) = (best_i - 1, best_j - 1, best_size + 1);
            }
            while best_i + best_size < a_hi
                && best_j + best_size < b_hi
                && is_extendable(self.b[best_j + best_size])
                && self.a[best_i + best_size] == self.b[best_j + best_size]
            {
                best_size += 1;
            }
        }
        (best_i, best_j, best_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_and_disjoint_texts() {
        assert_eq!(similarity_ratio("abc", "abc"), 1.0);
        assert_eq!(similarity_ratio("abc", "xyz"), 0.0);
        assert_eq!(similarity_ratio("", ""), 1.0);
    }

    #[test]
    fn ratio_counts_matching_blocks() {
        // difflib: SequenceMatcher(None, "abcd", "bcde").ratio() == 0.75
        assert_eq!(similarity_ratio("abcd", "bcde"), 0.75);
    }
}
