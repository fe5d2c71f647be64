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
use crate::task::{Problem, protected_items, target_text};

/// `round.json` in the submissions folder: who submitted which file, and when the chain (or the
/// validator) saw it. Priority comes only from here, never from the miners' files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// A name for the round.
    #[serde(default)]
    pub round: Option<String>,
    /// The hash of the block that closed the round's commitments (hex). The round's evaluation set
    /// is derived from it when present, so nobody can know it before the round.
    #[serde(default)]
    pub block_hash: Option<String>,
    /// An explicit evaluation seed (used when there is no block hash).
    #[serde(default)]
    pub seed: Option<u64>,
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
    /// Block of the miner's commitment as the miner reported it.
    pub block: u64,
    /// Block of the commitment as read from the chain by the validator. When present, priority
    /// uses only this block, and a reported block that differs is a finding.
    #[serde(default)]
    pub verified_block: Option<u64>,
    /// The coldkey owning the hotkey: several hotkeys of one coldkey share one miner's credit.
    #[serde(default)]
    pub coldkey: Option<String>,
    /// Validator receipt time (ms), breaking ties within a block.
    #[serde(default)]
    pub receipt_ms: u64,
}

impl ManifestEntry {
    /// The block priority is decided on: the chain-verified one when known.
    pub fn priority_block(&self) -> u64 {
        self.verified_block.unwrap_or(self.block)
    }
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
        Self::parse(&text, &path)
    }

    /// Parses a manifest's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, DatacompError> {
        let value = assay_tables::parse_strict(assay_tables::strip_bom(text)).map_err(|e| {
            DatacompError::BadInput {
                what: path.display().to_string(),
                message: format!("not a valid round manifest: {e}"),
            }
        })?;
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| DatacompError::BadInput {
                what: path.display().to_string(),
                message: format!("not a valid round manifest: {e}"),
            })?;
        if manifest.miners.is_empty() {
            return Err(DatacompError::BadInput {
                what: path.display().to_string(),
                message: "lists no miners; there is nothing to score".into(),
            });
        }
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

    /// The seed of this round's evaluation set and where it came from: the block hash when there
    /// is one (its SHA-256, first 8 bytes), else the manifest's `seed`, else `None`.
    pub fn eval_seed(&self) -> Option<(u64, String)> {
        if let Some(hash) = &self.block_hash {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(hash.trim().to_ascii_lowercase().as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            return Some((u64::from_le_bytes(first), format!("block hash {hash}")));
        }
        self.seed.map(|s| (s, "round.json seed".to_string()))
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
    /// Where the fine-tunes and evaluations ran.
    #[serde(default)]
    pub placement: assay_engine::Placement,
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

/// Progress of a round, for the front end's bars or log lines.
#[derive(Debug, Clone)]
pub enum RoundEvent {
    /// The base model is loading.
    Loading {
        /// The model.
        model: String,
        /// Where it runs.
        placement: String,
    },
    /// The outputs are being written.
    Writing,
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
    /// The block priority was decided on (chain-verified when known).
    pub block: u64,
    /// The block the miner reported.
    pub reported_block: u64,
    /// The miner's coldkey, when the manifest gives it.
    pub coldkey: Option<String>,
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
    /// Completion tokens of the kept rows (T in the score formula).
    pub kept_tokens: usize,
    /// log2(1 + T / token budget): pays for more distinct verified rows.
    pub volume: f64,
    /// max(0, Δ) × penalty × volume (see [`crate::report::SCORE_FORMULA`]).
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
    /// The training loss of each optimizer step (on the step's batch, before its update), for
    /// the loss chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<f64>,
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

/// The integrity stage of a round, without any model work: reads `dir/round.json` and every
/// miner's file, and runs the row checks (schema, duplicates, same-problem copies, wrong answers,
/// contamination against `problems`, each question also protected on its own) with priority from
/// the chain-verified blocks.
pub fn integrity_stage(
    dir: &Path,
    problems: &[Problem],
    policy: &Policy,
) -> Result<(Manifest, assay_integrity::round::RoundOutcome), DatacompError> {
    let manifest = Manifest::read(dir)?;
    let submissions: Vec<MinerSubmission> = manifest
        .miners
        .iter()
        .map(|m| MinerSubmission {
            miner: m.hotkey.clone(),
            priority: Priority {
                block: m.priority_block(),
                receipt_ms: m.receipt_ms,
            },
            intake: read_submission(&dir.join(&m.file), &policy.limits),
        })
        .collect();
    let questions: Vec<(String, String)> = problems
        .iter()
        .map(|p| (p.id.clone(), p.prompt.clone()))
        .collect();
    let index = ContaminationIndex::new(&protected_items(problems), &policy.contamination)
        .map_err(|e| DatacompError::Policy(e.to_string()))?
        .with_questions(&questions);
    let outcome = check_round(&submissions, Some(&index), policy)
        .map_err(|e| DatacompError::Policy(e.to_string()))?;
    Ok((manifest, outcome))
}

/// Wall time and peak memory of one stage of a round (written to `timings.json` and the report's
/// stage table; not part of the results, which stay bit-identical run to run on the CPU).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage: `load`, `integrity`, `base evaluation`, or a miner's hotkey (its fine-tune and
    /// evaluation).
    pub stage: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The most memory in use while the stage ran, in bytes: the GPU's memory in use on CUDA, the
    /// process's resident memory on the CPU (see [`assay_engine::PeakMemory`]); `None` when it
    /// could not be read.
    pub peak_memory_bytes: Option<u64>,
}

impl StageTiming {
    /// Runs `stage` on `device`, recording its wall time and peak memory into `timings`.
    pub fn record<T>(
        timings: &mut Vec<StageTiming>,
        name: &str,
        device: &assay_engine::candle_core::Device,
        stage: impl FnOnce() -> T,
    ) -> T {
        let started = std::time::Instant::now();
        let memory = assay_engine::PeakMemory::watch(device);
        let out = stage();
        timings.push(StageTiming {
            stage: name.to_string(),
            seconds: started.elapsed().as_secs_f64(),
            peak_memory_bytes: memory.finish(),
        });
        out
    }
}

/// Runs a round on the submissions in `dir` (see [`Manifest`]). Adapters are written to
/// `adapters_dir/<hotkey>` in PEFT format when given; `timings` receives each stage's wall clock
/// and peak memory.
pub fn run_round(
    model: &mut LoadedModel,
    dir: &Path,
    problems: &[Problem],
    config: &RoundConfig,
    adapters_dir: Option<&Path>,
    timings: &mut Vec<StageTiming>,
    progress: impl FnMut(RoundEvent),
) -> Result<RoundResults, DatacompError> {
    run_round_for(
        model,
        dir,
        problems,
        config,
        None,
        adapters_dir,
        timings,
        progress,
    )
}

/// [`run_round`], fine-tuning only the miner `only` when given (the validator service runs one
/// job per miner): the integrity checks still see the whole round, so cross-miner copies and
/// priority are judged as in a full round, and that miner's score is the one a full round gives
/// it. The other miners come back untrained with score 0.
#[allow(clippy::too_many_arguments)]
pub fn run_round_for(
    model: &mut LoadedModel,
    dir: &Path,
    problems: &[Problem],
    config: &RoundConfig,
    only: Option<&str>,
    adapters_dir: Option<&Path>,
    timings: &mut Vec<StageTiming>,
    mut progress: impl FnMut(RoundEvent),
) -> Result<RoundResults, DatacompError> {
    let device = model.model.device().clone();
    let (manifest, outcome) = StageTiming::record(timings, "integrity", &device, || {
        integrity_stage(dir, problems, &config.policy)
    })?;
    progress(RoundEvent::Checked);
    let base = StageTiming::record(timings, "base evaluation", &device, || {
        evaluate(model, problems, &config.eval)
    })?;
    progress(RoundEvent::BaseEvaluated);
    let mut results = Vec::new();
    let selected = |miner: &str| only.is_none_or(|h| h == miner);
    let trainable = outcome
        .kept
        .iter()
        .zip(&outcome.report.miners)
        .filter(|(k, r)| selected(&r.miner) && !cot_rows(&k.rows).is_empty())
        .count();
    let mut trained_so_far = 0;
    for (report, kept) in outcome.report.miners.iter().zip(&outcome.kept) {
        let rows = cot_rows(&kept.rows);
        let mut result = miner_result(report, kept.rows.len() - rows.len());
        if !selected(&report.miner) {
            result
                .reasons
                .push("not trained: another miner's job".into());
        } else if rows.is_empty() || result.disqualified {
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
            let save = |m: &mut LoadedModel| save_adapter(m, config, adapters_dir, &report.miner);
            let score = StageTiming::record(timings, &report.miner, &device, || {
                validate_and_score(model, &rows, problems, &base, config, save)
            })?;
            result.kept_tokens = completion_tokens(model, &rows)?;
            let budget = config
                .plan
                .train
                .token_budget
                .unwrap_or(result.kept_tokens)
                .max(1);
            result.volume = (1.0 + result.kept_tokens as f64 / budget as f64).log2();
            result.score =
                score.improvement.combined.max(0.0) * result.penalty_multiplier * result.volume;
            result.trained = Some(summary(score));
        }
        progress(RoundEvent::Scored {
            miner: report.miner.clone(),
        });
        results.push(result);
    }
    for result in &mut results {
        if let Some(entry) = manifest.miners.iter().find(|m| m.hotkey == result.hotkey) {
            result.reported_block = entry.block;
            result.coldkey = entry.coldkey.clone();
            match entry.verified_block {
                Some(v) if v != entry.block => result.reasons.push(format!(
                    "finding: reported block {} differs from the chain-verified block {v}; \
                     priority uses the verified block",
                    entry.block
                )),
                Some(_) => {}
                None => result
                    .reasons
                    .push("priority from the reported block (not chain-verified)".into()),
            }
        }
    }
    share_coldkey_credit(&mut results);
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

/// Completion tokens of `rows` as they are trained on.
fn completion_tokens(model: &LoadedModel, rows: &[CotRow]) -> Result<usize, DatacompError> {
    let mut total = 0;
    for r in rows {
        total += model
            .tokenizer
            .encode(&target_text(&r.chain_of_thought, &r.final_answer), false)?
            .len();
    }
    Ok(total)
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
                RejectReason::SameProblem { .. } => "same_problem",
                RejectReason::WrongAnswer { .. } => "wrong_answer",
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
        reported_block: report.priority.block,
        coldkey: None,
        rows: report.counts.rows,
        kept_rows: report.kept_lines.len() - wrong_shape,
        rejected,
        penalty_multiplier: report.penalty.multiplier as f64,
        disqualified: report.penalty.disqualified,
        reasons,
        trained: None,
        kept_tokens: 0,
        volume: 0.0,
        score: 0.0,
        weight: 0.0,
        weight_u16: 0,
    }
}

fn summary(score: MinerScore) -> TrainedSummary {
    TrainedSummary {
        loss_curve: score.training.history.iter().map(|s| s.loss).collect(),
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

/// Several hotkeys of one coldkey are one miner: together they get the credit of their best
/// hotkey, split in proportion to their scores (splitting a dataset across hotkeys earns nothing).
pub fn share_coldkey_credit(results: &mut [MinerResult]) {
    let mut groups: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, r) in results.iter().enumerate() {
        if let Some(c) = &r.coldkey {
            groups.entry(c.clone()).or_default().push(i);
        }
    }
    for (coldkey, members) in groups.into_iter().filter(|(_, m)| m.len() > 1) {
        let total: f64 = members.iter().map(|&i| results[i].score).sum();
        let best = members
            .iter()
            .map(|&i| results[i].score)
            .fold(0.0f64, f64::max);
        let names: Vec<String> = members.iter().map(|&i| results[i].hotkey.clone()).collect();
        for &i in &members {
            if total > 0.0 {
                results[i].score *= best / total;
            }
            results[i].reasons.push(format!(
                "sybil group: hotkeys {} share coldkey {coldkey} and one miner's credit",
                names.join(", ")
            ));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn result(hotkey: &str, coldkey: Option<&str>, score: f64) -> MinerResult {
        MinerResult {
            hotkey: hotkey.into(),
            block: 0,
            reported_block: 0,
            coldkey: coldkey.map(str::to_string),
            rows: 1,
            kept_rows: 1,
            rejected: Default::default(),
            penalty_multiplier: 1.0,
            disqualified: false,
            reasons: Vec::new(),
            trained: None,
            kept_tokens: 0,
            volume: 1.0,
            score,
            weight: 0.0,
            weight_u16: 0,
        }
    }

    #[test]
    fn hotkeys_of_one_coldkey_share_one_miners_credit() {
        let mut results = vec![
            result("a1", Some("ck-a"), 0.3),
            result("a2", Some("ck-a"), 0.1),
            result("b", Some("ck-b"), 0.3),
            result("c", None, 0.2),
        ];
        share_coldkey_credit(&mut results);
        let group: f64 = results[0].score + results[1].score;
        assert!((group - 0.3).abs() < 1e-12, "{group}");
        assert!((results[0].score / results[1].score - 3.0).abs() < 1e-9);
        assert_eq!(results[2].score, 0.3);
        assert_eq!(results[3].score, 0.2);
        assert!(results[0].reasons[0].contains("sybil"));
        assert!(results[2].reasons.is_empty());
    }

    #[test]
    fn manifests_derive_the_eval_seed_from_the_block_hash() {
        let parse = |text: &str| Manifest::parse(text, Path::new("round.json"));
        let miners = r#""miners": [{"hotkey": "a", "file": "a.jsonl", "block": 1}]"#;
        let by_hash = parse(&format!(r#"{{"block_hash": "0xABcd", {miners}}}"#)).unwrap();
        let same = parse(&format!(
            r#"{{"block_hash": "0xabcd", "seed": 5, {miners}}}"#
        ))
        .unwrap();
        let other = parse(&format!(r#"{{"block_hash": "0xabce", {miners}}}"#)).unwrap();
        assert_eq!(by_hash.eval_seed().unwrap().0, same.eval_seed().unwrap().0);
        assert_ne!(by_hash.eval_seed().unwrap().0, other.eval_seed().unwrap().0);
        let seeded = parse(&format!(r#"{{"seed": 5, {miners}}}"#)).unwrap();
        assert_eq!(seeded.eval_seed().unwrap().0, 5);
        assert!(
            parse(&format!("{{{miners}}}"))
                .unwrap()
                .eval_seed()
                .is_none()
        );
        let entry = r#"{"hotkey": "a", "file": "a.jsonl", "block": 1, "verified_block": 9}"#;
        let verified = parse(&format!(r#"{{"miners": [{entry}]}}"#)).unwrap();
        assert_eq!(verified.miners[0].priority_block(), 9);
        assert!(
            parse("\u{feff}{\"miners\": [{\"hotkey\": \"a\", \"file\": \"a\", \"block\": 1}]}")
                .is_ok()
        );
    }
}
