//! BLEU with sacrebleu's defaults (sacrebleu 2.6.0, `sacrebleu.corpus_bleu` / `sentence_bleu`).
//!
//! Defaults reproduced: case-sensitive, the [`tokenize_13a`](super::tokenizer_13a::tokenize_13a)
//! tokenizer after stripping trailing whitespace, n-grams up to 4, clipped counts against the
//! per-n-gram maximum over a segment's references, the reference length closest to the hypothesis
//! length (the shorter on ties), the brevity penalty exp(1 - r/c) when c < r (0 when c = 0), and
//! the `exp` smoothing (NIST mteval-v13a: the k-th order with no match gets precision 100 / (2^k ·
//! total)). Corpus BLEU sums statistics over segments and uses all 4 orders; sentence BLEU uses the
//! effective order (only orders that have any n-gram in the hypothesis). Scores are on sacrebleu's
//! 0–100 scale, and `log(0)` is floored at -9999999999 as in sacrebleu's `my_log`.
//!
//! Deliberate differences from sacrebleu, all on inputs it rejects or mishandles:
//! - references are grouped per hypothesis (`references[i]` holds every reference of
//!   hypothesis `i`), where sacrebleu takes reference *streams*; a segment may have any positive
//!   number of references, which sacrebleu expresses with `None` entries;
//! - an empty corpus, a hypothesis/reference count mismatch (sacrebleu silently truncates with
//!   `zip`) and a segment without references (sacrebleu then uses a reference length of -1) are
//!   errors here.
//!
//! The log-precisions are summed left to right, as Python 3.11's `sum` does; Python 3.12+
//! sums floats with compensation, which can move the score by an ulp (far inside the 1e-9
//! tolerance of the golden tests).

use std::cell::RefCell;

use super::interner::{ByteInterner, Generation, hash_halves};
use super::python_str::{python_rstrip, split_python_words};
use super::tokenizer_13a::{Scratch13a, tokenize_13a_spaced};

/// Highest n-gram order, sacrebleu's `MAX_NGRAM_ORDER`.
pub const MAX_NGRAM_ORDER: usize = 4;

/// What sacrebleu's `my_log` returns for `log(0)`.
const LOG_ZERO: f64 = -9_999_999_999.0;

/// A BLEU score with the statistics sacrebleu's `BLEUScore` reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BleuScore {
    /// BLEU on a 0–100 scale.
    pub score: f64,
    /// Clipped matching n-grams for orders 1..=4.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams for orders 1..=4.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// Smoothed precisions for orders 1..=4, in percent (all 0 when nothing matched).
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    /// Total hypothesis length in tokens.
    pub sys_len: u64,
    /// Total closest-reference length in tokens.
    pub ref_len: u64,
}

/// Errors for BLEU inputs that have no meaningful score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BleuError {
    /// The corpus has no hypotheses.
    #[error("BLEU needs at least one hypothesis")]
    EmptyCorpus,
    /// The number of reference groups differs from the number of hypotheses.
    #[error("{hypotheses} hypotheses but {reference_groups} groups of references")]
    LengthMismatch {
        /// Number of hypotheses.
        hypotheses: usize,
        /// Number of reference groups.
        reference_groups: usize,
    },
    /// A hypothesis has no reference.
    #[error("hypothesis {index} has no reference")]
    NoReference {
        /// Position of the hypothesis.
        index: usize,
    },
}

/// Corpus BLEU of `hypotheses` against `references[i]` for each hypothesis `i`.
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
) -> Result<BleuScore, BleuError> {
    if hypotheses.is_empty() {
        return Err(BleuError::EmptyCorpus);
    }
    if hypotheses.len() != references.len() {
        return Err(BleuError::LengthMismatch {
            hypotheses: hypotheses.len(),
            reference_groups: references.len(),
        });
    }
    let mut corpus = SufficientStats::default();
    for (index, (hypothesis, segment_references)) in hypotheses.iter().zip(references).enumerate() {
        let segment = segment_stats(hypothesis.as_ref(), segment_references)
            .ok_or(BleuError::NoReference { index })?;
        corpus.add(&segment);
    }
    Ok(corpus.score(false))
}

/// Sentence BLEU of one hypothesis against its references, with effective order.
pub fn sentence_bleu<R: AsRef<str>>(
    hypothesis: &str,
    references: &[R],
) -> Result<BleuScore, BleuError> {
    let stats = segment_stats(hypothesis, references).ok_or(BleuError::NoReference { index: 0 })?;
    Ok(stats.score(true))
}

/// The counts BLEU is computed from; they add up over segments.
#[derive(Debug, Clone, Copy, Default)]
struct SufficientStats {
    sys_len: u64,
    ref_len: u64,
    correct: [u64; MAX_NGRAM_ORDER],
    total: [u64; MAX_NGRAM_ORDER],
}

impl SufficientStats {
    fn add(&mut self, other: &SufficientStats) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for order in 0..MAX_NGRAM_ORDER {
            self.correct[order] += other.correct[order];
            self.total[order] += other.total[order];
        }
    }

    /// sacrebleu's `compute_bleu` with `exp` smoothing.
    fn score(&self, effective_order: bool) -> BleuScore {
        let bp = self.brevity_penalty();
        let mut result = BleuScore {
            score: 0.0,
            counts: self.correct,
            totals: self.total,
            precisions: [0.0; MAX_NGRAM_ORDER],
            bp,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
        };
        if self.correct.iter().all(|&count| count == 0) {
            return result;
        }
        let mut smoothing = 1.0;
        let mut orders_used = MAX_NGRAM_ORDER;
        for order in 0..MAX_NGRAM_ORDER {
            let (correct, total) = (self.correct[order], self.total[order]);
            if total == 0 {
                break;
            }
            if effective_order {
                orders_used = order + 1;
            }
            result.precisions[order] = if correct == 0 {
                smoothing *= 2.0;
                100.0 / (smoothing * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }
        let log_sum: f64 = result.precisions[..orders_used]
            .iter()
            .map(|&precision| {
                if precision == 0.0 {
                    LOG_ZERO
                } else {
                    precision.ln()
                }
            })
            .sum();
        result.score = bp * (log_sum / orders_used as f64).exp();
        result
    }

    fn brevity_penalty(&self) -> f64 {
        if self.sys_len >= self.ref_len {
            1.0
        } else if self.sys_len == 0 {
            0.0
        } else {
            (1.0 - self.ref_len as f64 / self.sys_len as f64).exp()
        }
    }
}

/// Statistics of one segment, or `None` when it has no reference.
fn segment_stats<R: AsRef<str>>(hypothesis: &str, references: &[R]) -> Option<SufficientStats> {
    if references.is_empty() {
        return None;
    }
    SCRATCH.with(|scratch| {
        let scratch = &mut *scratch.borrow_mut();
        scratch.tokens.clear();
        scratch.bounds.clear();
        for reference in references {
            scratch.add_segment(reference.as_ref());
        }
        scratch.add_segment(hypothesis);
        scratch.stats()
    })
}

thread_local! {
    /// Buffers reused across segments, so scoring allocates only while they grow.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Working memory of [`segment_stats`].
#[derive(Default)]
struct Scratch {
    tokenizer: Scratch13a,
    /// The tokens of every text of the segment (references first, the hypothesis last), each
    /// followed by a space.
    tokens: Vec<u8>,
    /// Byte range of each token in `tokens`.
    token_ranges: Vec<(u32, u32)>,
    /// Index in `token_ranges` where each text's tokens end.
    bounds: Vec<usize>,
    interner: ByteInterner,
    /// Token ids of all texts, in `token_ranges` order.
    ids: Vec<u32>,
    /// Open-addressing table of the references' n-grams; a slot is in use only when its
    /// stamp equals `generation`.
    ngrams: Vec<NgramSlot>,
    generation: Generation,
    /// Token count of each reference.
    reference_lengths: Vec<u64>,
}

/// One reference n-gram in [`Scratch::ngrams`].
#[derive(Clone, Copy, Default)]
struct NgramSlot {
    /// The n-gram packed by [`pack_ngram`].
    key: u128,
    /// Segment generation that wrote this slot.
    stamp: u32,
    /// Index of the reference whose occurrences `current` counts.
    reference: u32,
    /// Occurrences in that reference so far.
    current: u32,
    /// Most occurrences in any one reference of the segment.
    max_reference: u32,
    /// Occurrences in the hypothesis matched so far.
    hypothesis: u32,
}

impl Scratch {
    /// Tokenizes one text of the segment onto `tokens`.
    fn add_segment(&mut self, text: &str) {
        let spaced = tokenize_13a_spaced(python_rstrip(text), &mut self.tokenizer);
        let Scratch {
            tokens,
            token_ranges,
            ..
        } = self;
        split_python_words(spaced, |token| {
            let start = tokens.len() as u32;
            tokens.extend_from_slice(token);
            token_ranges.push((start, tokens.len() as u32));
            tokens.push(b' ');
        });
        self.bounds.push(self.token_ranges.len());
    }

    /// Clipped n-gram counts in one hash table: every reference n-gram records the most times
    /// it occurs in one reference, then each hypothesis n-gram counts as correct while its
    /// occurrences so far do not exceed that maximum, which sums `min(count, max_ref_count)`
    /// over the distinct n-grams without sorting or a second table.
    fn stats(&mut self) -> Option<SufficientStats> {
        let Scratch {
            tokens,
            token_ranges,
            bounds,
            interner,
            ids,
            ngrams,
            generation,
            reference_lengths,
            ..
        } = self;
        interner.reset(token_ranges.len());
        ids.clear();
        ids.extend(
            token_ranges
                .iter()
                .map(|&(start, end)| interner.id(&tokens[start as usize..end as usize])),
        );
        token_ranges.clear();
        let (hypothesis_start, hypothesis_end) =
            (bounds[bounds.len() - 2], bounds[bounds.len() - 1]);
        let stamp = generation.advance(|| ngrams.iter_mut().for_each(|slot| slot.stamp = 0));
        // At most MAX_NGRAM_ORDER n-grams per reference token; keep the table at most half full.
        let size = (hypothesis_start * MAX_NGRAM_ORDER * 2)
            .next_power_of_two()
            .max(64);
        if ngrams.len() < size {
            ngrams.resize(size, NgramSlot::default());
        }
        let mask = size - 1;
        reference_lengths.clear();
        let mut start = 0;
        for (reference, &end) in bounds[..bounds.len() - 1].iter().enumerate() {
            let reference = reference as u32;
            let reference_ids = &ids[start..end];
            reference_lengths.push(reference_ids.len() as u64);
            start = end;
            for_each_ngram(reference_ids, |_, key| {
                let mut index = hash_ngram(key) as usize & mask;
                loop {
                    let slot = &mut ngrams[index];
                    if slot.stamp != stamp {
                        *slot = NgramSlot {
                            key,
                            stamp,
                            reference,
                            current: 1,
                            max_reference: 1,
                            hypothesis: 0,
                        };
                        break;
                    }
                    if slot.key == key {
                        if slot.reference != reference {
                            slot.reference = reference;
                            slot.current = 0;
                        }
                        slot.current += 1;
                        slot.max_reference = slot.max_reference.max(slot.current);
                        break;
                    }
                    index = (index + 1) & mask;
                }
            });
        }
        let hypothesis_ids = &ids[hypothesis_start..hypothesis_end];
        let sys_len = hypothesis_ids.len() as u64;
        let mut stats = SufficientStats {
            sys_len,
            ref_len: closest_reference_length(sys_len, reference_lengths)?,
            ..SufficientStats::default()
        };
        for order in 0..MAX_NGRAM_ORDER {
            stats.total[order] = sys_len.saturating_sub(order as u64);
        }
        for_each_ngram(hypothesis_ids, |order, key| {
            let mut index = hash_ngram(key) as usize & mask;
            loop {
                let slot = &mut ngrams[index];
                if slot.stamp != stamp {
                    break;
                }
                if slot.key == key {
                    slot.hypothesis += 1;
                    if slot.hypothesis <= slot.max_reference {
                        stats.correct[order] += 1;
                    }
                    break;
                }
                index = (index + 1) & mask;
            }
        });
        Some(stats)
    }
}

/// Calls `on_ngram(order - 1, key)` for every n-gram of orders 1..=4 of `ids`, packed by
/// [`pack_ngram`].
fn for_each_ngram(ids: &[u32], mut on_ngram: impl FnMut(usize, u128)) {
    for order in 1..=MAX_NGRAM_ORDER {
        for window in ids.windows(order) {
            on_ngram(order - 1, pack_ngram(window));
        }
    }
}

/// Hash of a packed n-gram.
fn hash_ngram(key: u128) -> u64 {
    hash_halves(key as u64, (key >> 64) as u64)
}

/// Packs up to four token ids into one key, 32 bits each; ids are stored plus one, so the
/// n-gram's order can be read back from how many 32-bit slots are used.
fn pack_ngram(ids: &[u32]) -> u128 {
    ids.iter()
        .fold(0u128, |key, &id| (key << 32) | (u128::from(id) + 1))
}

#[cfg(test)]
fn ngram_order(key: u128) -> usize {
    (128 - key.leading_zeros() as usize).div_ceil(32)
}

/// The reference length closest to the hypothesis length, the shorter one on ties.
fn closest_reference_length(hypothesis_length: u64, reference_lengths: &[u64]) -> Option<u64> {
    reference_lengths
        .iter()
        .copied()
        .min_by_key(|&length| (length.abs_diff(hypothesis_length), length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sentence_scores_100() {
        let score = sentence_bleu("The cat sat on the mat.", &["The cat sat on the mat."]).unwrap();
        assert!((score.score - 100.0).abs() < 1e-12);
        assert_eq!(score.counts, [7, 6, 5, 4]);
        assert_eq!(score.bp, 1.0);
    }

    #[test]
    fn no_match_scores_zero_with_zero_precisions() {
        let score = corpus_bleu(&["abc"], &[vec!["xyz qq"]]).unwrap();
        assert_eq!(score.score, 0.0);
        assert_eq!(score.precisions, [0.0; 4]);
        assert_eq!((score.sys_len, score.ref_len), (1, 2));
    }

    #[test]
    fn closest_length_prefers_shorter_on_tie() {
        assert_eq!(closest_reference_length(5, &[7, 3, 6]), Some(6));
        assert_eq!(closest_reference_length(5, &[7, 3]), Some(3));
        assert_eq!(closest_reference_length(5, &[]), None);
    }

    #[test]
    fn packed_ngrams_remember_their_order() {
        assert_eq!(ngram_order(pack_ngram(&[0])), 1);
        assert_eq!(ngram_order(pack_ngram(&[u32::MAX - 1, 0, 7, 0])), 4);
        assert_ne!(pack_ngram(&[0, 1]), pack_ngram(&[1, 0]));
    }

    #[test]
    fn rejects_malformed_corpora() {
        let none: [&str; 0] = [];
        assert_eq!(
            corpus_bleu(&none, &Vec::<Vec<&str>>::new()),
            Err(BleuError::EmptyCorpus)
        );
        assert!(matches!(
            corpus_bleu(&["a"], &[vec!["a"], vec!["b"]]),
            Err(BleuError::LengthMismatch { .. })
        ));
        assert_eq!(
            sentence_bleu::<&str>("a", &[]),
            Err(BleuError::NoReference { index: 0 })
        );
    }
}
