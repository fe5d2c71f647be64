//! SN37's IF-eval task score (`compute_if_eval` in `finetune/eval/method.py`). Lower is better.

use super::rule::{IfEvalRule, Rule, RuleError};
use super::similarity::similarity_ratio;

/// Two responses above this similarity count as a duplicate pair.
pub const DUPLICATE_SIMILARITY: f64 = 0.6;

/// The whole task scores 1 when more than this fraction of samples are duplicate pairs.
pub const DUPLICATE_SAMPLE_FRACTION: f64 = 0.1;

/// What the model produced for one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOutcome<'a> {
    /// The sample's rules.
    pub rules: &'a [Rule],
    /// The two responses, or `None` when generation failed (SN37's exception path).
    pub responses: Option<[&'a str; 2]>,
}

/// Score of one response: `1 - c^2` where `c` is the fraction of rules it satisfies.
pub fn response_score(rules: &[Rule], response: &str, index: usize) -> Result<f64, RuleError> {
    let mut satisfied = 0usize;
    for rule in rules {
        satisfied += usize::from(rule.matches(response, index)?);
    }
    let fraction = satisfied as f64 / rules.len() as f64;
    Ok(1.0 - fraction * fraction)
}

/// Appends one sample's values: each response's score once per rule; on failure (no
/// responses, a checker error, or no rules, SN37's division by zero) a 1 per rule and
/// response, after whatever the first response already added, as SN37 does.
fn push_sample_scores(outcome: &SampleOutcome<'_>, scores: &mut Vec<f64>) {
    let per_rule = outcome.rules.len();
    let failed = match outcome.responses {
        Some(responses) if per_rule > 0 => responses.iter().enumerate().any(|(index, response)| {
            match response_score(outcome.rules, response, index) {
                Ok(score) => {
                    scores.extend(std::iter::repeat_n(score, per_rule));
                    false
                }
                Err(_) => true,
            }
        }),
        _ => true,
    };
    if failed {
        scores.extend(std::iter::repeat_n(1.0, 2 * per_rule));
    }
}

/// Whether a sample's two responses are near-duplicates (SequenceMatcher ratio > 0.6).
pub fn is_duplicate_pair(first: &str, second: &str) -> bool {
    similarity_ratio(first, second) > DUPLICATE_SIMILARITY
}

/// The raw IF-eval task score: mean of the per-rule values, or 1 when more than 10% of the
/// samples are duplicate pairs, or 1 when nothing was scored.
pub fn if_eval_task_score(outcomes: &[SampleOutcome<'_>]) -> f64 {
    let mut scores = Vec::new();
    let mut duplicates = 0usize;
    for outcome in outcomes {
        if let Some([first, second]) = outcome.responses {
            duplicates += usize::from(is_duplicate_pair(first, second));
        }
        push_sample_scores(outcome, &mut scores);
    }
    if duplicates as f64 > outcomes.len() as f64 * DUPLICATE_SAMPLE_FRACTION || scores.is_empty() {
        return 1.0;
    }
    scores.iter().sum::<f64>() / scores.len() as f64
}
