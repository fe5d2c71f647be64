//! Intent classification metrics: exact match after normalisation with a synonym table, accuracy,
//! per-intent precision / recall / F1, macro and support-weighted averages, and a confusion matrix.
//!
//! Conventions follow scikit-learn's `classification_report` with `zero_division=0`: the label set is
//! the sorted union of gold and predicted labels (after normalisation), a label never predicted has
//! precision 0, a label never in gold has recall 0, and macro averages are plain means over that set.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why intent metrics cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IntentError {
    /// Gold and predicted lists differ in length.
    #[error("{gold} gold labels but {predicted} predictions; pass one prediction per example")]
    LengthMismatch {
        /// Gold labels.
        gold: usize,
        /// Predictions.
        predicted: usize,
    },
    /// No examples.
    #[error("no examples to score; pass at least one (gold, prediction) pair")]
    Empty,
}

/// Label normalisation: trimmed, lower-cased, inner whitespace runs collapsed to one space, then mapped
/// through the synonym table (normalised label -> canonical label).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynonymTable {
    map: BTreeMap<String, String>,
}

impl SynonymTable {
    /// A table from (synonym, canonical) pairs; both sides are normalised.
    pub fn new<A: AsRef<str>, B: AsRef<str>>(pairs: impl IntoIterator<Item = (A, B)>) -> Self {
        let map = pairs
            .into_iter()
            .map(|(s, c)| (normalize_label(s.as_ref()), normalize_label(c.as_ref())))
            .collect();
        Self { map }
    }

    /// The canonical form of `label`.
    pub fn canonical(&self, label: &str) -> String {
        let norm = normalize_label(label);
        self.map.get(&norm).cloned().unwrap_or(norm)
    }
}

/// Trims, lower-cases and collapses inner whitespace to single spaces.
pub fn normalize_label(label: &str) -> String {
    label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Precision, recall, F1 and support of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScores {
    /// Correct predictions of the label / all predictions of it (0 if never predicted).
    pub precision: f64,
    /// Correct predictions of the label / its gold occurrences (0 if never in gold).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 if both are 0).
    pub f1: f64,
    /// Gold occurrences.
    pub support: u64,
}

/// Averages of precision, recall and F1 over labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// Mean precision.
    pub precision: f64,
    /// Mean recall.
    pub recall: f64,
    /// Mean F1.
    pub f1: f64,
}

/// The full report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentReport {
    /// Number of examples.
    pub n: u64,
    /// Fraction of exact matches after normalisation.
    pub accuracy: f64,
    /// Labels in matrix order: the sorted union of canonical gold and predicted labels.
    pub labels: Vec<String>,
    /// Scores per label.
    pub per_label: BTreeMap<String, LabelScores>,
    /// Unweighted mean over `labels`; `macro_avg.f1` is the macro-F1.
    pub macro_avg: Averages,
    /// Mean over `labels` weighted by support.
    pub weighted_avg: Averages,
    /// `confusion[g][p]`: examples with gold `labels[g]` predicted as `labels[p]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Scores predictions against gold labels; both go through `synonyms` first.
pub fn evaluate<G: AsRef<str>, P: AsRef<str>>(
    gold: &[G],
    predicted: &[P],
    synonyms: &SynonymTable,
) -> Result<IntentReport, IntentError> {
    if gold.len() != predicted.len() {
        return Err(IntentError::LengthMismatch {
            gold: gold.len(),
            predicted: predicted.len(),
        });
    }
    if gold.is_empty() {
        return Err(IntentError::Empty);
    }
    let gold: Vec<String> = gold
        .iter()
        .map(|g| synonyms.canonical(g.as_ref()))
        .collect();
    let predicted: Vec<String> = predicted
        .iter()
        .map(|p| synonyms.canonical(p.as_ref()))
        .collect();
    let labels: Vec<String> = gold
        .iter()
        .chain(&predicted)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let confusion = confusion_matrix(&labels, &gold, &predicted);
    let per_label: BTreeMap<String, LabelScores> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| (label.clone(), label_scores(&confusion, i)))
        .collect();
    let correct = gold.iter().zip(&predicted).filter(|(g, p)| g == p).count();
    Ok(IntentReport {
        n: gold.len() as u64,
        accuracy: correct as f64 / gold.len() as f64,
        macro_avg: average(per_label.values(), |_| 1.0),
        weighted_avg: average(per_label.values(), |s| s.support as f64),
        labels,
        per_label,
        confusion,
    })
}

fn confusion_matrix(labels: &[String], gold: &[String], predicted: &[String]) -> Vec<Vec<u64>> {
    let index: BTreeMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut m = vec![vec![0u64; labels.len()]; labels.len()];
    for (g, p) in gold.iter().zip(predicted) {
        m[index[g.as_str()]][index[p.as_str()]] += 1;
    }
    m
}

fn label_scores(confusion: &[Vec<u64>], i: usize) -> LabelScores {
    let tp = confusion[i][i] as f64;
    let support: u64 = confusion[i].iter().sum();
    let predicted: u64 = confusion.iter().map(|row| row[i]).sum();
    let ratio = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
    let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    LabelScores {
        precision,
        recall,
        f1,
        support,
    }
}

fn average<'a>(
    scores: impl Iterator<Item = &'a LabelScores>,
    weight: impl Fn(&LabelScores) -> f64,
) -> Averages {
    let (mut p, mut r, mut f, mut total) = (0.0, 0.0, 0.0, 0.0);
    for s in scores {
        let w = weight(s);
        p += w * s.precision;
        r += w * s.recall;
        f += w * s.f1;
        total += w;
    }
    let mean = |x: f64| if total == 0.0 { 0.0 } else { x / total };
    Averages {
        precision: mean(p),
        recall: mean(r),
        f1: mean(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_report() {
        let synonyms = SynonymTable::new([("refund", "billing.refund")]);
        let gold = [
            "billing.refund",
            "billing.refund",
            "account.login",
            "account.login",
        ];
        let pred = [
            "Refund ",
            "account.login",
            "account.login",
            "BILLING.REFUND",
        ];
        let r = evaluate(&gold, &pred, &synonyms).unwrap();
        assert_eq!(r.labels, ["account.login", "billing.refund"]);
        assert_eq!(r.accuracy, 0.5);
        assert_eq!(r.confusion, vec![vec![1, 1], vec![1, 1]]);
        let refund = &r.per_label["billing.refund"];
        assert_eq!(
            (refund.precision, refund.recall, refund.f1, refund.support),
            (0.5, 0.5, 0.5, 2)
        );
        assert_eq!(r.macro_avg.f1, 0.5);
        assert!(matches!(
            evaluate(&gold, &pred[..1], &synonyms),
            Err(IntentError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn never_predicted_label_scores_zero() {
        let r = evaluate(&["a", "b"], &["a", "a"], &SynonymTable::default()).unwrap();
        let b = &r.per_label["b"];
        assert_eq!((b.precision, b.recall, b.f1), (0.0, 0.0, 0.0));
        let a = &r.per_label["a"];
        assert_eq!((a.precision, a.recall), (0.5, 1.0));
        assert!((r.macro_avg.f1 - (2.0 / 3.0) / 2.0).abs() < 1e-12);
    }
}
