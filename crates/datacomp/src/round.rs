//! One round of Datacomp: integrity checks, a fine-tune per miner, held-out evaluation, weights.

use std::path::{Path, PathBuf};

use assay_engine::LoadedModel;
use assay_integrity::contamination::ContaminationIndex;
use assay_integrity::policy::Policy;
use assay_integrity::report::{IntegrityReport, Priority, RejectReason};
use assay_integrity::round::{MinerSubmission, check_round};
use assay_integrity::schema::{RowContent, read_submission};
use serde::{Deserialize, Serialize};

use crate::error::DatacompError;
use crate::score::{
    CotRow, EvalOptions, MinerScore, ModelEval, ScoreWeights, TrainingPlan, evaluate,
    validate_and_score,
};
use crate::task::{Problem, protected_items};

/// `round.json` in the submissions folder: who submitted which file, and when the chain (or the
/// validator) saw it. Priority comes only from here, never from the miners' files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// A name for the round.
    #[serde(default)]
    pub round: Option<String>,
    /// One entry per miner.
    pub miners: Vec<ManifestEntry>,
}

/// One miner's submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// The miner's hotkey (or name).
    pub hotkey: String,
    /// Its JSONL file, relative to the submissions folder.
    pub file: String,
    /// Block of the miner's on-chain commitment.
    pub block: u64,
    /// Validator receipt time (ms), breaking ties within a block.
    #[serde(default)]
    pub receipt_ms: u64,
}

impl Manifest {
    /// Reads `dir/round.json`.
    pub fn read(dir: &Path) -> Result<Self, DatacompError> {
        let path = dir.join("round.json");
        let text = std::fs::read_to_string(&path).map_err(|e| DatacompError::BadInput {
            what: path.display().to_string(),
            message: format!(
                "cannot read the round manifest ({e}); it lists {{\"miners\": [{{\"hotkey\", \"file\", \"block\"}}]}}"
            ),
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| DatacompError::BadInput {
                what: path.display().to_string(),
                message: format!("not a valid round manifest: {e}"),
            })?;
        let mut seen = std::collections::HashSet::new();
        for m in &manifest.miners {
            if !seen.insert(&m.hotkey) {
                return Err(DatacompError::BadInput {
                    what: path.display().to_string(),
                    message: format!("hotkey `{}` is listed twice", m.hotkey),
                });
            }
            if Path::new(&m.file)
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(DatacompError::BadInput {
                    what: path.display().to_string(),
                    message: format!(
                        "file `{}` must be a plain relative path inside the folder",
                        m.file
                    ),
                });
            }
        }
        Ok(manifest)
    }
}

/// The integrity policy Datacomp uses unless told otherwise: the defaults, except that a row must
/// contain at least half of an evaluation item's 13-grams to count as contaminated. Generated
/// evaluation problems share their templates' phrasing with honest data of the same kind; copying
/// an item (even with a few words changed) covers far more than half of it.
pub fn default_policy() -> Policy {
    let mut policy = Policy::default();
    policy.contamination.min_item_coverage = 0.5;
    policy
}

/// Everything that defines a round besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundConfig {
    /// The base model, as given by the user (for the record).
    pub base_model: String,
    /// The fine-tune every miner gets.
    pub plan: TrainingPlan,
    /// How models are evaluated.
    pub eval: EvalOptions,
    /// How the measures combine.
    pub weights: ScoreWeights,
    /// Integrity thresholds and penalties.
    pub policy: Policy,
    /// Where the evaluation set came from (`seed:S:N` or a file path).
    pub eval_source: String,
}

/// Progress of a round, for the CLI's bars.
#[derive(Debug, Clone)]
pub enum RoundEvent {
    /// Integrity checks finished.
    Checked,
    /// The base model was evaluated.
    BaseEvaluated,
    /// Fine-tuning of miner `index` of `total` started.
    Training {
        /// The miner.
        miner: String,
        /// 0-based.
        index: usize,
        /// Miners with rows to train on.
        total: usize,
    },
    /// Miner finished.
    Scored {
        /// The miner.
        miner: String,
    },
}

/// One miner's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerResult {
    /// The miner.
    pub hotkey: String,
    /// Its commitment block.
    pub block: u64,
    /// Rows in the file.
    pub rows: usize,
    /// Rows kept for training.
    pub kept_rows: usize,
    /// Rejections by kind (`schema`, `exact_duplicate`, `near_duplicate`, `contaminated`, `wrong_shape`).
    pub rejected: std::collections::BTreeMap<String, usize>,
    /// Integrity multiplier in [0, 1].
    pub penalty_multiplier: f64,
    /// Disqualified by the integrity policy.
    pub disqualified: bool,
    /// Why: the integrity explanation, or why no training happened.
    pub reasons: Vec<String>,
    /// Training summary and held-out results, when the miner was trained.
    pub trained: Option<TrainedSummary>,
    /// max(0, improvement) × penalty.
    pub score: f64,
    /// Share of the weights (sums to 1 over miners).
    pub weight: f64,
    /// On-chain u16 weight.
    pub weight_u16: u16,
}

/// The deterministic part of a miner's fine-tune and evaluation (timings live in `timings.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedSummary {
    /// Optimizer steps.
    pub steps: usize,
    /// Completion tokens trained on.
    pub tokens: usize,
    /// Final training loss (mean of the last steps).
    pub train_loss: f64,
    /// Why training stopped.
    pub stopped_by: String,
    /// Held-out reference loss.
    pub reference_loss: f64,
    /// Held-out accuracy.
    pub accuracy: f64,
    /// Held-out word recall.
    pub word_recall: f64,
    /// The improvement over the base.
    pub improvement: crate::score::Improvement,
    /// Per problem.
    pub problems: Vec<crate::score::ProblemResult>,
}

/// The round's results: deterministic, the same bits for the same round and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResults {
    /// The round's name.
    pub round: Option<String>,
    /// The configuration.
    pub config: RoundConfig,
    /// Identifiers of the evaluation problems.
    pub eval_ids: Vec<String>,
    /// The base model's held-out results.
    pub base: ModelEval,
    /// Miners, best first.
    pub miners: Vec<MinerResult>,
    /// The integrity report (row by row).
    pub integrity: IntegrityReport,
}

/// Runs a round on the submissions in `dir` (see [`Manifest`]). Adapters are written to
/// `adapters_dir/<hotkey>` in PEFT format when given; `timings` receives each miner's wall clock.
pub fn run_round(
    model: &mut LoadedModel,
    dir: &Path,
    problems: &[Problem],
    config: &RoundConfig,
    adapters_dir: Option<&Path>,
    timings: &mut Vec<(String, f64)>,
    mut progress: impl FnMut(RoundEvent),
) -> Result<RoundResults, DatacompError> {
    let manifest = Manifest::read(dir)?;
    let submissions: Vec<MinerSubmission> = manifest
        .miners
        .iter()
        .map(|m| MinerSubmission {
            miner: m.hotkey.clone(),
            priority: Priority {
                block: m.block,
                receipt_ms: m.receipt_ms,
            },
            intake: read_submission(&dir.join(&m.file), &config.policy.limits),
        })
        .collect();
    let index = ContaminationIndex::new(&protected_items(problems), &config.policy.contamination)
        .map_err(|e| DatacompError::Policy(e.to_string()))?;
    let outcome = check_round(&submissions, Some(&index), &config.policy)
        .map_err(|e| DatacompError::Policy(e.to_string()))?;
    progress(RoundEvent::Checked);
    let started = std::time::Instant::now();
    let base = evaluate(model, problems, &config.eval)?;
    timings.push(("base evaluation".into(), started.elapsed().as_secs_f64()));
    progress(RoundEvent::BaseEvaluated);
    let mut results = Vec::new();
    let trainable = outcome
        .kept
        .iter()
        .filter(|k| !cot_rows(&k.rows).is_empty())
        .count();
    let mut trained_so_far = 0;
    for (report, kept) in outcome.report.miners.iter().zip(&outcome.kept) {
        let rows = cot_rows(&kept.rows);
        let mut result = miner_result(report, kept.rows.len() - rows.len());
        if rows.is_empty() || result.disqualified {
            result.reasons.push(if result.disqualified {
                "not trained: disqualified by the integrity policy".into()
            } else {
                "not trained: no usable rows".into()
            });
        } else {
            progress(RoundEvent::Training {
                miner: report.miner.clone(),
                index: trained_so_far,
                total: trainable,
            });
            trained_so_far += 1;
            let started = std::time::Instant::now();
            let save = |m: &mut LoadedModel| save_adapter(m, config, adapters_dir, &report.miner);
            let score = validate_and_score(model, &rows, problems, &base, config, save)?;
            timings.push((report.miner.clone(), started.elapsed().as_secs_f64()));
            result.score = score.improvement.combined.max(0.0) * result.penalty_multiplier;
            result.trained = Some(summary(score));
        }
        progress(RoundEvent::Scored {
            miner: report.miner.clone(),
        });
        results.push(result);
    }
    assign_weights(&mut results);
    Ok(RoundResults {
        round: manifest.round,
        config: config.clone(),
        eval_ids: problems.iter().map(|p| p.id.clone()).collect(),
        base,
        miners: results,
        integrity: outcome.report,
    })
}

fn cot_rows(rows: &[assay_integrity::schema::Row]) -> Vec<CotRow> {
    rows.iter()
        .filter_map(|r| match &r.content {
            RowContent::ChainOfThought {
                prompt,
                chain_of_thought,
                final_answer,
            } => Some(CotRow {
                prompt: prompt.clone(),
                chain_of_thought: chain_of_thought.clone(),
                final_answer: final_answer.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn miner_result(report: &assay_integrity::report::MinerReport, wrong_shape: usize) -> MinerResult {
    let mut rejected = std::collections::BTreeMap::new();
    for row in &report.rejected {
        for reason in &row.reasons {
            let kind = match reason {
                RejectReason::Schema { .. } => "schema",
                RejectReason::ExactDuplicate { .. } => "exact_duplicate",
                RejectReason::NearDuplicate { .. } => "near_duplicate",
                RejectReason::Contaminated { .. } => "contaminated",
            };
            *rejected.entry(kind.to_string()).or_insert(0) += 1;
        }
    }
    if wrong_shape > 0 {
        rejected.insert("wrong_shape".into(), wrong_shape);
    }
    let mut reasons = vec![report.penalty.explanation.clone()];
    reasons.extend(report.file_problems.iter().map(|p| p.message.clone()));
    MinerResult {
        hotkey: report.miner.clone(),
        block: report.priority.block,
        rows: report.counts.rows,
        kept_rows: report.kept_lines.len() - wrong_shape,
        rejected,
        penalty_multiplier: report.penalty.multiplier as f64,
        disqualified: report.penalty.disqualified,
        reasons,
        trained: None,
        score: 0.0,
        weight: 0.0,
        weight_u16: 0,
    }
}

fn summary(score: MinerScore) -> TrainedSummary {
    TrainedSummary {
        steps: score.training.steps,
        tokens: score.training.tokens,
        train_loss: score.training.train_loss,
        stopped_by: score.training.stopped_by,
        reference_loss: score.eval.reference_loss,
        accuracy: score.eval.accuracy,
        word_recall: score.eval.word_recall,
        improvement: score.improvement,
        problems: score.eval.problems,
    }
}

fn save_adapter(
    model: &mut LoadedModel,
    config: &RoundConfig,
    dir: Option<&Path>,
    miner: &str,
) -> Result<(), DatacompError> {
    let Some(dir) = dir else { return Ok(()) };
    let safe: String = miner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out: PathBuf = dir.join(safe);
    assay_engine::train::peft::save_adapter(
        &mut model.model,
        &config.plan.lora,
        &config.base_model,
        &out,
    )?;
    Ok(())
}

/// Normalises scores into weights, and sorts miners best first (ties: earlier block first).
fn assign_weights(results: &mut [MinerResult]) {
    let scores: Vec<f64> = results.iter().map(|r| r.score).collect();
    let weights = assay_weights::normalize(&scores);
    let u16s = assay_weights::to_u16(&scores);
    for ((r, w), u) in results.iter_mut().zip(weights).zip(u16s) {
        r.weight = w;
        r.weight_u16 = u;
    }
    results.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.block.cmp(&b.block))
            .then(a.hotkey.cmp(&b.hotkey))
    });
}
