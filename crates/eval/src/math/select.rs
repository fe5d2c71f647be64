//! Best-of-N selection over (answers, scores), as search-and-learn's `sal/utils/math.py` does it.
//!
//! Answers are grouped by a key: the reference uses `memoized_canonical_form` (latex2sympy +
//! `simplify`, falling back to `strip_string`); here the caller passes the key function:
//! [`symbolic_key`] approximates the reference's canonical form, [`canonical_key`] is its fallback,
//! `strip_string`. Grouping is equality of keys, not [`math_equal`](super::math_equal): under
//! [`canonical_key`], `0.5` and `\frac{1}{2}` are different groups; under [`symbolic_key`] they are one,
//! as in the reference (latex2sympy reads `0.5` as the fraction 1/2).
//!
//! Each rule returns the index of the chosen answer; the reference then reports the answer wrapped as
//! `\boxed{answer}` (see [`boxed`]).
//!
//! Differences from the reference, both about input it does not guard against: mismatched lengths are
//! an error (the reference silently truncates with `zip`), and so are non-finite scores (Python's `max`
//! and `sorted` give order-dependent results with NaN).

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::expr::{self, Parsed};
use super::normalize::strip_string;

/// Why a selection cannot be made.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SelectError {
    /// No answers were given.
    #[error("no answers to select from; pass at least one completion")]
    Empty,
    /// Answers and scores differ in length.
    #[error("{answers} answers but {scores} scores; pass one score per answer")]
    LengthMismatch {
        /// Number of answers.
        answers: usize,
        /// Number of scores.
        scores: usize,
    },
    /// A score is NaN or infinite.
    #[error("score {value} at index {index} is not finite; scores must be finite numbers")]
    NonFiniteScore {
        /// Index of the score.
        index: usize,
        /// The score.
        value: f64,
    },
}

/// How per-step PRM scores become one score per completion (`sal/utils/score.py::aggregate_scores`).
/// The reference's `score()` always uses [`Aggregation::Last`] for selection; the configured strategy
/// only picks the stored `pred`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    /// The final step's score.
    Last,
    /// The smallest step score.
    Min,
    /// The product of the step scores.
    Prod,
}

/// One score from per-step scores; `None` for an empty list (the reference raises).
pub fn aggregate_scores(step_scores: &[f64], how: Aggregation) -> Option<f64> {
    let last = *step_scores.last()?;
    Some(match how {
        Aggregation::Last => last,
        Aggregation::Min => step_scores.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Prod => step_scores.iter().product(),
    })
}

/// Unbiased pass@k (Codex paper): `1 - prod_{i=n-c+1..n} (1 - k/i)`, and 1 when `n - c < k`.
/// `None` when `c > n`.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - miss)
}

/// The reference's fallback canonical form: [`strip_string`] with units removed.
pub fn canonical_key(answer: &str) -> String {
    strip_string(answer, false)
}

/// A grouping key closer to the reference's `memoized_canonical_form` (latex2sympy, `simplify`, print
/// back to LaTeX): answers that read as the same value share a key.
///
/// latex2sympy turns decimals into exact fractions, so `0.5` and `\frac{1}{2}` simplify to the same
/// form, as do `2\sqrt{3}` and `\sqrt{12}`. Here an answer that parses as a LaTeX expression
/// ([`expr::parse_latex_key`], which also reads `\frac34`) is keyed by its value (10 significant digits) or, with
/// symbols, by its values at fixed sample points; anything else (equations, lists, text, parse errors)
/// falls back to [`canonical_key`], as the reference falls back to `strip_string`.
pub fn symbolic_key(answer: &str) -> String {
    match expr::parse_latex_key(answer) {
        Ok(Parsed::Expr(e)) => {
            let names: Vec<String> = e.symbols().into_iter().collect();
            let fallback = || format!("s:{}", canonical_key(answer));
            if names.is_empty() {
                let value = e.eval(&|_| f64::NAN);
                // An undefined value (`\sqrt{-1}`, `\frac{0}{0}`) groups by its text, never with
                // other undefined answers (the reference's keys `i`, `nan`, ... differ too).
                return if value.is_nan() {
                    fallback()
                } else {
                    format!("v:{}", value_text(value))
                };
            }
            let values: Vec<f64> = (0..3)
                .map(|point| {
                    let value_of = |name: &str| {
                        let index = names.iter().position(|n| n == name).unwrap_or(0);
                        0.613 + 0.457 * point as f64 + 0.239 * index as f64
                    };
                    e.eval(&value_of)
                })
                .collect();
            if values.iter().all(|v| v.is_nan()) {
                return fallback();
            }
            let values: Vec<String> = values.into_iter().map(value_text).collect();
            format!("p:{}:{}", names.join(","), values.join(","))
        }
        _ => format!("s:{}", canonical_key(answer)),
    }
}

/// A value rounded to 10 significant digits, so that rounding noise does not split a group.
fn value_text(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x:.9e}")
    }
}

/// `\boxed{answer}`, the form in which the reference reports a selected answer.
pub fn boxed(answer: &str) -> String {
    format!("\\boxed{{{answer}}}")
}

/// Weighted best-of-N (`find_answer_with_largest_sum`): scores are summed per group, in order; the group
/// with the largest sum wins, ties going to the group seen first; the result is the group's first answer.
pub fn weighted_best_of_n<K: Eq + Hash>(
    answers: &[impl AsRef<str>],
    scores: &[f64],
    key: impl Fn(&str) -> K,
) -> Result<usize, SelectError> {
    check_inputs(answers.len(), scores)?;
    let groups = group_by_key(answers, key);
    let sums: Vec<f64> = groups
        .iter()
        .map(|members| members.iter().fold(0.0, |acc, &i| acc + scores[i]))
        .collect();
    Ok(groups[first_max(&sums)][0])
}

/// Majority vote (`find_majority_answer`): the largest group wins, ties going to the group seen first;
/// the result is the group's first answer.
pub fn majority_vote<K: Eq + Hash>(
    answers: &[impl AsRef<str>],
    key: impl Fn(&str) -> K,
) -> Result<usize, SelectError> {
    if answers.is_empty() {
        return Err(SelectError::Empty);
    }
    let groups = group_by_key(answers, key);
    let sizes: Vec<f64> = groups.iter().map(|g| g.len() as f64).collect();
    Ok(groups[first_max(&sizes)][0])
}

/// Naive best-of-N (`compute_naive_pred`): the highest score; a stable descending sort gives ties to
/// the earliest answer.
pub fn naive_best_of_n(scores: &[f64]) -> Result<usize, SelectError> {
    check_inputs(scores.len(), scores)?;
    Ok(first_max(scores))
}

fn check_inputs(answers: usize, scores: &[f64]) -> Result<(), SelectError> {
    if answers == 0 || scores.is_empty() {
        return Err(SelectError::Empty);
    }
    if answers != scores.len() {
        return Err(SelectError::LengthMismatch {
            answers,
            scores: scores.len(),
        });
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(SelectError::NonFiniteScore {
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

/// Indices of the answers per group, groups in order of first appearance.
fn group_by_key<K: Eq + Hash>(
    answers: &[impl AsRef<str>],
    key: impl Fn(&str) -> K,
) -> Vec<Vec<usize>> {
    let mut slot_of: HashMap<K, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let slot = *slot_of.entry(key(answer.as_ref())).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push(i);
    }
    groups
}

/// Index of the first maximum (strictly greater replaces), as Python's `max` keeps the first.
fn first_max(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_rules() {
        let answers = ["5", "7", "5.0", "7", "9"];
        let scores = [0.2, 0.3, 0.2, 0.1, 0.5];
        // groups: 5 -> 0.4, 7 -> 0.4 (tie, 5 first), 9 -> 0.5
        assert_eq!(weighted_best_of_n(&answers, &scores, canonical_key), Ok(4));
        assert_eq!(majority_vote(&answers, canonical_key), Ok(0));
        assert_eq!(naive_best_of_n(&[0.5, 0.9, 0.9]), Ok(1));
        assert_eq!(naive_best_of_n(&[]), Err(SelectError::Empty));
        assert!(matches!(
            weighted_best_of_n(&answers, &[0.1], canonical_key),
            Err(SelectError::LengthMismatch { .. })
        ));
        assert!(matches!(
            naive_best_of_n(&[f64::NAN]),
            Err(SelectError::NonFiniteScore { .. })
        ));
    }

    #[test]
    fn aggregation_and_pass_at_k() {
        let steps = [0.9, 0.5, 0.8];
        assert_eq!(aggregate_scores(&steps, Aggregation::Last), Some(0.8));
        assert_eq!(aggregate_scores(&steps, Aggregation::Min), Some(0.5));
        assert!((aggregate_scores(&steps, Aggregation::Prod).unwrap() - 0.36).abs() < 1e-12);
        assert_eq!(aggregate_scores(&[], Aggregation::Last), None);
        // pass@1 is the fraction correct: 1 - (3/4)(4/5) = 0.4 = 2/5.
        assert!((pass_at_k(5, 2, 1).unwrap() - 0.4).abs() < 1e-12);
        // pass@2 with 1 of 4 correct: 1 - C(3,2)/C(4,2) = 1 - 3/6.
        assert!((pass_at_k(4, 1, 2).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 3, 2), Some(1.0));
        assert_eq!(pass_at_k(2, 3, 1), None);
    }

    #[test]
    fn symbolic_key_merges_equal_values() {
        let answers = ["0.5", "3", "\\frac{1}{2}", "3"];
        let scores = [0.3, 0.35, 0.3, 0.2];
        // Under strip_string the 3s win (0.55); by value 0.5 and 1/2 form one group (0.6).
        assert_eq!(weighted_best_of_n(&answers, &scores, canonical_key), Ok(1));
        assert_eq!(weighted_best_of_n(&answers, &scores, symbolic_key), Ok(0));
        assert_eq!(symbolic_key("x+1"), symbolic_key("1+x"));
        assert_ne!(symbolic_key("x+1"), symbolic_key("y+1"));
        assert_eq!(
            symbolic_key("(1,2)"),
            format!("s:{}", canonical_key("(1,2)"))
        );
    }
}
