//! Deterministic MinHash signatures over word shingles, and the choice of LSH bands.
//!
//! A shingle is `shingle_words` consecutive canonical tokens. Each shingle is hashed once to 32 bits;
//! the `num_perm` hash functions are `h_i(x) = xorshift(a_i * x + b_i mod 2^32)` with odd `a_i` and `b_i` drawn
//! from a SplitMix64 stream seeded by the caller, so the same seed gives the same signatures on
//! every machine. Texts shorter than one shingle contribute a single shingle of all their tokens.

use crate::canonical::canonical_tokens;
use serde::{Deserialize, Serialize};

/// Parameters of MinHash signatures and of the LSH index built on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinHashParams {
    /// Number of hash functions (signature length).
    pub num_perm: usize,
    /// Words per shingle.
    pub shingle_words: usize,
    /// Estimated Jaccard similarity at or above which two texts are near duplicates.
    pub threshold: f32,
    /// LSH bands; `None` picks the bands and rows that minimise false positives plus false
    /// negatives around `threshold` (the rule of `datasketch.MinHashLSH`, with
    /// `false_negative_weight` in place of its equal weights).
    pub bands: Option<usize>,
    /// Rows per band; used only together with `bands`.
    pub rows: Option<usize>,
    /// Weight of false negatives (false positives get `1 - weight`) when choosing bands and rows.
    /// Above 0.5 because a missed copy costs more than a candidate that the Jaccard check drops.
    pub false_negative_weight: f64,
    /// Seed of the hash functions.
    pub seed: u64,
}

impl Default for MinHashParams {
    fn default() -> Self {
        Self {
            num_perm: 128,
            shingle_words: 3,
            threshold: 0.7,
            bands: None,
            rows: None,
            false_negative_weight: 0.9,
            seed: 0x005E_ED1D,
        }
    }
}

/// Invalid MinHash or LSH parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// `num_perm` or `shingle_words` is zero, or `num_perm` is unreasonably large.
    #[error(
        "num_perm must be in 1..=4096 and shingle_words at least 1 (got num_perm={num_perm}, shingle_words={shingle_words})"
    )]
    BadSize {
        /// The requested number of hash functions.
        num_perm: usize,
        /// The requested shingle size.
        shingle_words: usize,
    },
    /// The threshold is not in (0, 1].
    #[error("threshold must be in (0, 1], got {0}")]
    BadThreshold(f32),
    /// bands × rows does not fit in the signature.
    #[error("bands ({bands}) × rows ({rows}) must be at least 1 and at most num_perm ({num_perm})")]
    BadBands {
        /// Requested bands.
        bands: usize,
        /// Requested rows per band.
        rows: usize,
        /// Signature length.
        num_perm: usize,
    },
}

impl MinHashParams {
    /// Checks the parameters and returns the (bands, rows) the LSH index will use.
    pub fn lsh_shape(&self) -> Result<(usize, usize), ParamError> {
        if self.num_perm == 0 || self.num_perm > 4096 || self.shingle_words == 0 {
            return Err(ParamError::BadSize {
                num_perm: self.num_perm,
                shingle_words: self.shingle_words,
            });
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(ParamError::BadThreshold(self.threshold));
        }
        let (bands, rows) = match (self.bands, self.rows) {
            (Some(bands), Some(rows)) => (bands, rows),
            (Some(bands), None) => (bands, self.num_perm / bands.max(1)),
            _ => {
                let fn_weight = self.false_negative_weight.clamp(0.0, 1.0);
                optimal_lsh_shape(
                    self.threshold as f64,
                    self.num_perm,
                    1.0 - fn_weight,
                    fn_weight,
                )
            }
        };
        if bands == 0 || rows == 0 || bands.saturating_mul(rows) > self.num_perm {
            return Err(ParamError::BadBands {
                bands,
                rows,
                num_perm: self.num_perm,
            });
        }
        Ok((bands, rows))
    }
}

/// The (bands, rows) with `bands * rows <= num_perm` that minimises the weighted area of false
/// positives (similarity below `threshold`) and false negatives (above it) under the LSH S-curve.
pub fn optimal_lsh_shape(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> (usize, usize) {
    let mut best = (1, num_perm.max(1));
    let mut best_error = f64::INFINITY;
    for bands in 1..=num_perm {
        for rows in 1..=num_perm / bands {
            let candidate = |s: f64| 1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32);
            let false_positive = integrate(candidate, 0.0, threshold);
            let false_negative = integrate(|s| 1.0 - candidate(s), threshold, 1.0);
            let error = false_positive * fp_weight + false_negative * fn_weight;
            if error < best_error {
                best_error = error;
                best = (bands, rows);
            }
        }
    }
    best
}

/// Composite Simpson's rule; the integrands are smooth polynomials, so 256 panels are plenty.
fn integrate(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    const PANELS: usize = 256;
    let h = (hi - lo) / PANELS as f64;
    let inner: f64 = (1..PANELS)
        .map(|i| f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    (f(lo) + f(hi) + inner) * h / 3.0
}

/// Computes MinHash signatures with a fixed, seeded family of hash functions.
#[derive(Debug, Clone)]
pub struct MinHasher {
    multipliers: Vec<u32>,
    offsets: Vec<u32>,
    shingle_words: usize,
    seed: u64,
}

impl MinHasher {
    /// Builds the hash family for `num_perm` functions and `shingle_words`-word shingles.
    pub fn new(num_perm: usize, shingle_words: usize, seed: u64) -> Self {
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut next = || splitmix64(&mut state);
        let (multipliers, offsets) = (0..num_perm)
            .map(|_| ((next() as u32) | 1, next() as u32))
            .unzip();
        Self {
            multipliers,
            offsets,
            shingle_words: shingle_words.max(1),
            seed,
        }
    }

    /// Signature length.
    pub fn num_perm(&self) -> usize {
        self.multipliers.len()
    }

    /// Writes the signature of a canonical text into `signature` (length `num_perm`). Returns the
    /// number of shingles; 0 means the text had no tokens and the signature is all `u32::MAX`.
    pub fn signature_into(
        &self,
        canonical: &str,
        token_hashes: &mut Vec<u64>,
        signature: &mut [u32],
    ) -> usize {
        token_hashes.clear();
        token_hashes
            .extend(canonical_tokens(canonical).map(|t| hash_bytes(t.as_bytes(), self.seed)));
        signature.fill(u32::MAX);
        if token_hashes.is_empty() {
            return 0;
        }
        let width = self.shingle_words.min(token_hashes.len());
        let count = token_hashes.len() - width + 1;
        // Shingle j only reads tokens j.., so the hashes can be overwritten in place.
        for j in 0..count {
            let h = token_hashes[j..j + width]
                .iter()
                .fold(self.seed, |acc, &h| mix64(acc.rotate_left(23) ^ h));
            token_hashes[j] = h ^ (h >> 32);
        }
        self.fold_shingles(&token_hashes[..count], signature);
        count
    }

    /// Convenience form of [`MinHasher::signature_into`] that allocates.
    pub fn signature(&self, canonical: &str) -> Vec<u32> {
        let mut signature = vec![0; self.num_perm()];
        self.signature_into(canonical, &mut Vec::new(), &mut signature);
        signature
    }

    /// Folds every shingle hash into the running minimum of every hash function. Uses AVX2 when
    /// the CPU has it; both paths do the same integer arithmetic, so signatures are identical.
    fn fold_shingles(&self, shingles: &[u64], signature: &mut [u32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.fold_shingles_avx2(shingles, signature) };
            return;
        }
        self.fold_shingles_portable(shingles, signature);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fold_shingles_avx2(&self, shingles: &[u64], signature: &mut [u32]) {
        self.fold_shingles_portable(shingles, signature);
    }

    /// `h_i(x) = xorshift(a_i * x + b_i mod 2^32)`: with odd `a_i` each is a bijection of the
    /// 32-bit space (a permutation, as MinHash wants); 32-bit lanes keep the loop vectorised.
    #[inline(always)]
    fn fold_shingles_portable(&self, shingles: &[u64], signature: &mut [u32]) {
        for &shingle in shingles {
            let shingle = shingle as u32;
            for ((slot, &a), &b) in signature
                .iter_mut()
                .zip(&self.multipliers)
                .zip(&self.offsets)
            {
                let value = a.wrapping_mul(shingle).wrapping_add(b);
                *slot = (*slot).min(value ^ (value >> 15));
            }
        }
    }
}

/// Fraction of equal positions: the MinHash estimate of Jaccard similarity.
pub fn estimated_jaccard(a: &[u32], b: &[u32]) -> f32 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f32 / a.len() as f32
}

/// SplitMix64 step: a well-mixed 64-bit stream from any seed.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// The SplitMix64 finaliser: a bijective 64-bit mixer.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeded 64-bit hash of a byte string, eight bytes at a time.
pub(crate) fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        h = mix64(h ^ word);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    mix64(h ^ u64::from_le_bytes(tail) ^ 0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jaccard_of_shingles(a: &str, b: &str, k: usize) -> f32 {
        let shingles = |s: &str| {
            let tokens: Vec<&str> = s.split(' ').collect();
            tokens
                .windows(k)
                .map(|w| w.join(" "))
                .collect::<std::collections::HashSet<_>>()
        };
        let (sa, sb) = (shingles(a), shingles(b));
        sa.intersection(&sb).count() as f32 / sa.union(&sb).count() as f32
    }

    #[test]
    fn signatures_are_deterministic_and_seed_dependent() {
        let text = "the quick brown fox jumps over the lazy dog";
        let a = MinHasher::new(64, 3, 7).signature(text);
        assert_eq!(a, MinHasher::new(64, 3, 7).signature(text));
        assert_ne!(a, MinHasher::new(64, 3, 8).signature(text));
    }

    #[test]
    fn estimate_tracks_true_jaccard() {
        let hasher = MinHasher::new(512, 2, 1);
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let a = words.join(" ");
        let mut changed = words.clone();
        for i in (0..200).step_by(10) {
            changed[i] = format!("x{i}");
        }
        let b = changed.join(" ");
        let truth = jaccard_of_shingles(&a, &b, 2);
        let estimate = estimated_jaccard(&hasher.signature(&a), &hasher.signature(&b));
        assert!(
            (truth - estimate).abs() < 0.06,
            "truth {truth} estimate {estimate}"
        );
    }

    #[test]
    fn empty_text_has_no_shingles() {
        let hasher = MinHasher::new(8, 3, 1);
        let mut signature = vec![0; 8];
        assert_eq!(
            hasher.signature_into("", &mut Vec::new(), &mut signature),
            0
        );
        assert!(signature.iter().all(|&v| v == u32::MAX));
        assert_eq!(
            hasher.signature_into("two words", &mut Vec::new(), &mut signature),
            1
        );
    }

    #[test]
    fn bad_params_are_rejected() {
        let mut params = MinHashParams {
            threshold: 1.5,
            ..Default::default()
        };
        assert!(matches!(
            params.lsh_shape(),
            Err(ParamError::BadThreshold(_))
        ));
        params.threshold = 0.5;
        params.bands = Some(64);
        params.rows = Some(4);
        assert!(matches!(
            params.lsh_shape(),
            Err(ParamError::BadBands { .. })
        ));
        params.num_perm = 0;
        assert!(matches!(
            params.lsh_shape(),
            Err(ParamError::BadSize { .. })
        ));
    }
}
