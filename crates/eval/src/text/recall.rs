//! Word recall: the "naive string overlap" metric of the Datacomp subnet interview.
//!
//! Reference: `naive_string_similarity` in
//! `CrucibleAILabs/technical-interview:reference_solution.py@ece3749`. Both texts are lower-cased
//! (Python `str.lower()`, i.e. full Unicode lower-casing), split on whitespace (Python
//! `str.split()`), and turned into sets. The score is |output ∩ reference| / |reference|, or 0
//! when the reference has no words. Order and repeats are ignored and there is no precision term,
//! so an output that lists many words scores well: it is kept for fidelity to the seed, not as a
//! good metric.
//!
//! Deliberate difference: Rust's lower-casing follows a newer Unicode version than Python 3.11
//! (Unicode 14), so characters that gained a lower-case mapping after Unicode 14 compare
//! case-insensitively here but not in Python.

use std::collections::HashMap;

use super::python_str::python_split;

/// Distinct words with a flag each, under a fast hasher (the result does not depend on it).
type WordFlags<'a> = HashMap<&'a str, bool, foldhash::fast::RandomState>;

/// Fraction of the distinct lower-cased words of `reference` that also occur in `output`.
///
/// Returns 0.0 when `reference` has no words.
pub fn word_recall(output: &str, reference: &str) -> f64 {
    let reference_lower = reference.to_lowercase();
    // Each distinct reference word, and whether the output contains it.
    let mut found: WordFlags = python_split(&reference_lower)
        .map(|word| (word, false))
        .collect();
    if found.is_empty() {
        return 0.0;
    }
    let output_lower = output.to_lowercase();
    for word in python_split(&output_lower) {
        if let Some(flag) = found.get_mut(word) {
            *flag = true;
        }
    }
    let shared = found.values().filter(|&&flag| flag).count();
    shared as f64 / found.len() as f64
}

/// Mean [`word_recall`] over `(output, reference)` pairs, or 0.0 for no pairs.
///
/// This is the reference's `validate_and_score` aggregate: a plain left-to-right sum divided by
/// the count, so it reproduces Python's float result bit for bit.
pub fn mean_word_recall<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for (output, reference) in pairs {
        sum += word_recall(output, reference);
        count += 1;
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_reference_words() {
        let score = word_recall("The SKY is blue blue", "the sky appears blue the");
        assert_eq!(score, 3.0 / 4.0);
    }

    #[test]
    fn empty_reference_scores_zero() {
        assert_eq!(word_recall("anything", " \t\u{1c} "), 0.0);
    }

    #[test]
    fn mean_of_no_pairs_is_zero() {
        assert_eq!(mean_word_recall([]), 0.0);
        assert_eq!(mean_word_recall([("a", "a b"), ("4", "4")]), 0.75);
    }
}
