//! The integrity report: per miner, which rows were kept, which were rejected and exactly why, and
//! the penalty; per model, the violations. Serialises to JSON and renders as a readable table.

use crate::contamination::ContaminationMatch;
use crate::models::ModelViolation;
use crate::policy::{Penalty, RowCounts};
use crate::schema::Problem;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// When a submission arrived, as recorded by the chain or the validator (never by the miner's file).
/// Earlier sorts first: by block, then by receipt time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Priority {
    /// Chain block of the miner's commitment.
    pub block: u64,
    /// Validator receipt time in milliseconds since the Unix epoch; breaks ties within a block.
    pub receipt_ms: u64,
}

/// A row of one miner, for pointing at the original of a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRef {
    /// The miner (hotkey or name).
    pub miner: String,
    /// 1-based line in that miner's file.
    pub line: usize,
}

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// The line failed a schema check.
    Schema {
        /// The problem, with file, line and field.
        problem: Problem,
    },
    /// Same canonical text as an earlier row.
    ExactDuplicate {
        /// The earlier row.
        of: RowRef,
    },
    /// Estimated Jaccard similarity with an earlier row at or above the threshold.
    NearDuplicate {
        /// The earlier row.
        of: RowRef,
        /// Estimated Jaccard similarity.
        jaccard: f32,
    },
    /// The row overlaps an evaluation item.
    Contaminated {
        /// The evaluation item and the evidence.
        evidence: ContaminationMatch,
    },
    /// The row copies an earlier row's problem: the same numbers in the question and the same
    /// equations in the reasoning, and reasoning whose wording lines up with the earlier row's
    /// (a paraphrase copy; see [`crate::alignment`]).
    SameProblem {
        /// The earlier row.
        of: RowRef,
        /// The shared numbers-and-equations signature.
        signature: String,
        /// Word alignment of the two reasonings, in [0, 1].
        #[serde(default)]
        alignment: f32,
    },
    /// The row's arithmetic or final answer is wrong by its own reasoning.
    WrongAnswer {
        /// What is wrong.
        error: crate::arithmetic::ArithmeticError,
    },
}

impl RejectReason {
    /// One line of text for the table.
    pub fn describe(&self) -> String {
        match self {
            RejectReason::Schema { problem } => match &problem.field {
                Some(field) => format!("schema: `{field}`: {}", problem.message),
                None => format!("schema: {}", problem.message),
            },
            RejectReason::ExactDuplicate { of } => {
                format!("exact duplicate of {}:{}", of.miner, of.line)
            }
            RejectReason::NearDuplicate { of, jaccard } => {
                format!(
                    "near duplicate (Jaccard {jaccard:.2}) of {}:{}",
                    of.miner, of.line
                )
            }
            RejectReason::Contaminated { evidence } => match evidence.jaccard {
                Some(j) => format!(
                    "contaminated: `{}` near-duplicates eval item {} (Jaccard {j:.2})",
                    evidence.field, evidence.eval_id
                ),
                None => format!(
                    "contaminated: `{}` shares {} n-gram(s) with eval item {}",
                    evidence.field, evidence.ngram_hits, evidence.eval_id
                ),
            },
            RejectReason::SameProblem {
                of,
                signature,
                alignment,
            } => format!(
                "paraphrase copy of {}:{}: same numbers and equations ({signature}) and \
                 reasoning whose words align at {alignment:.2}",
                of.miner, of.line
            ),
            RejectReason::WrongAnswer { error } => error.describe(),
        }
    }
}

/// One rejected line with every reason found for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// 1-based line in the miner's file.
    pub line: usize,
    /// All reasons, schema problems first.
    pub reasons: Vec<RejectReason>,
}

/// The outcome for one miner's data submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerReport {
    /// The miner (hotkey or name).
    pub miner: String,
    /// When the submission arrived.
    pub priority: Priority,
    /// Row counts by outcome.
    pub counts: RowCounts,
    /// Lines of the rows kept.
    pub kept_lines: Vec<usize>,
    /// Rejected lines with reasons, in line order.
    pub rejected: Vec<RejectedRow>,
    /// Problems with the whole file (unreadable, too large, too many rows).
    pub file_problems: Vec<Problem>,
    /// The resulting penalty.
    pub penalty: Penalty,
}

/// The outcome for one model submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVerdict {
    /// The miner (hotkey or name).
    pub miner: String,
    /// When the submission arrived.
    pub priority: Priority,
    /// Parameter count.
    pub parameters: u64,
    /// Content hash of the weights.
    pub content_hash: String,
    /// Rule violations of the model itself.
    pub violations: Vec<ModelViolation>,
    /// The earlier miner this model copies, with the fingerprint similarity (1.0 for an exact copy).
    pub copy_of: Option<(String, f32)>,
}

impl ModelVerdict {
    /// True when the model breaks no rule and copies no earlier model.
    pub fn accepted(&self) -> bool {
        self.violations.is_empty() && self.copy_of.is_none()
    }
}

/// The full report of a round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Data submissions, in priority order.
    pub miners: Vec<MinerReport>,
    /// Model submissions, in priority order.
    pub models: Vec<ModelVerdict>,
}

impl IntegrityReport {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A plain-text table: one summary line per miner or model, then one line per rejection reason.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if !self.miners.is_empty() {
            let _ = writeln!(
                out,
                "{:<24} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>10}",
                "miner", "block", "rows", "kept", "inval", "dup", "contam", "multiplier"
            );
            for miner in &self.miners {
                let c = &miner.counts;
                let _ = writeln!(
                    out,
                    "{:<24} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>10.3}{}",
                    truncate(&miner.miner, 24),
                    miner.priority.block,
                    c.rows,
                    miner.kept_lines.len(),
                    c.invalid,
                    c.duplicate,
                    c.contaminated,
                    miner.penalty.multiplier,
                    if miner.penalty.disqualified {
                        "  DISQUALIFIED"
                    } else {
                        ""
                    }
                );
            }
            for miner in &self.miners {
                write_rejections(&mut out, miner);
            }
        }
        if !self.models.is_empty() {
            let _ = writeln!(
                out,
                "{:<24} {:>8} {:>14} {:<10} reason",
                "model of", "block", "parameters", "verdict"
            );
            for model in &self.models {
                let verdict = if model.accepted() {
                    "accepted"
                } else {
                    "rejected"
                };
                let mut reasons: Vec<String> =
                    model.violations.iter().map(ToString::to_string).collect();
                if let Some((original, similarity)) = &model.copy_of {
                    reasons.push(format!("copy of {original} (similarity {similarity:.4})"));
                }
                let _ = writeln!(
                    out,
                    "{:<24} {:>8} {:>14} {:<10} {}",
                    truncate(&model.miner, 24),
                    model.priority.block,
                    model.parameters,
                    verdict,
                    reasons.join("; ")
                );
            }
        }
        out
    }
}

fn write_rejections(out: &mut String, miner: &MinerReport) {
    if miner.rejected.is_empty() && miner.file_problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{} ({})", miner.miner, miner.penalty.explanation);
    for problem in &miner.file_problems {
        let _ = writeln!(out, "  file: {}", problem.message);
    }
    for row in &miner.rejected {
        for reason in &row.reasons {
            let _ = writeln!(out, "  line {:>6}: {}", row.line, reason.describe());
        }
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut short: String = text.chars().take(width - 1).collect();
    short.push('…');
    short
}
