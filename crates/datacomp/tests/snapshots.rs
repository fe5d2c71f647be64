//! Text people read, locked by insta snapshots: the round's report (the stated formula, the
//! leaderboard and the row-by-row integrity table) and typical errors with their blame and hint.
//! The integrity part is real (the checks run on `examples/datacomp`); the model part (held-out
//! losses, fine-tunes) is set by hand, so no model runs. Review a change with `cargo insta
//! review` (or `INSTA_UPDATE=always` and `git diff`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_datacomp::report::{leaderboard, report};
use assay_datacomp::round::{TrainedSummary, default_policy, integrity_stage};
use assay_datacomp::score::{Improvement, ModelEval};
use assay_datacomp::task::generated_problems;
use assay_datacomp::{
    EvalOptions, EvalSet, MinerResult, RoundConfig, RoundResults, RoundSettings, ScoreWeights,
    TrainingPlan, run,
};
use assay_engine::Placement;
use assay_engine::train::{LoraConfig, TrainConfig};
use assay_errors::{Diagnose, chain};
use assay_integrity::report::RejectReason;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/datacomp")
}

fn config() -> RoundConfig {
    RoundConfig {
        base_model: "SmolLM2-135M-Instruct (embedded default)".into(),
        placement: Placement::cpu(),
        plan: TrainingPlan {
            lora: LoraConfig::default(),
            train: TrainConfig::default(),
            max_len: 1024,
        },
        eval: EvalOptions::default(),
        weights: ScoreWeights::default(),
        policy: default_policy(),
        eval_source: "seed:20261122:8".into(),
    }
}

/// A trained miner's summary with the given improvements (no per-problem lines).
fn trained(answer_loss: f64, accuracy: f64) -> TrainedSummary {
    TrainedSummary {
        steps: 3,
        tokens: 1200,
        train_loss: 1.5,
        stopped_by: "token budget".into(),
        reference_loss: 1.2,
        accuracy: 0.25 + accuracy,
        word_recall: 0.5,
        improvement: Improvement {
            answer_loss,
            reference_loss: 0.01,
            accuracy,
            word_recall: 0.0,
            combined: answer_loss + accuracy,
        },
        problems: Vec::new(),
        loss_curve: Vec::new(),
    }
}

/// The example round's real integrity outcome, with hand-set training results for the miners
/// whose rows survive it.
fn results() -> RoundResults {
    let problems = generated_problems(20261122, 8);
    let (manifest, outcome) =
        integrity_stage(&examples(), &problems, &default_policy()).expect("integrity stage");
    let miners: Vec<MinerResult> = outcome
        .report
        .miners
        .iter()
        .map(|m| {
            let mut rejected = BTreeMap::new();
            for reason in m.rejected.iter().flat_map(|row| &row.reasons) {
                // The kinds the round's results count rejections by.
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
            let (score, trained) = match m.miner.as_str() {
                "honest" => (0.0625, Some(trained(0.05, 0.125))),
                "spammer" => (0.0, Some(trained(-0.02, 0.0))),
                _ => (0.0, None),
            };
            MinerResult {
                hotkey: m.miner.clone(),
                block: m.priority.block,
                reported_block: m.priority.block,
                coldkey: None,
                rows: m.counts.rows,
                kept_rows: m.kept_lines.len(),
                rejected,
                penalty_multiplier: f64::from(m.penalty.multiplier),
                disqualified: m.penalty.disqualified,
                reasons: vec![m.penalty.explanation.clone()],
                kept_tokens: if trained.is_some() { 1500 } else { 0 },
                volume: if trained.is_some() { 1.169925 } else { 0.0 },
                trained,
                score,
                weight: if score > 0.0 { 1.0 } else { 0.0 },
                weight_u16: if score > 0.0 { 65535 } else { 0 },
            }
        })
        .collect();
    RoundResults {
        round: manifest.round,
        config: config(),
        eval_ids: problems.iter().map(|p| p.id.clone()).collect(),
        base: ModelEval {
            reference_loss: 1.25,
            answer_loss: 2.5,
            accuracy: 0.125,
            word_recall: 0.375,
            problems: Vec::new(),
        },
        miners,
        integrity: outcome.report,
    }
}

#[test]
fn round_report() {
    let r = results();
    let text = report(&r);
    assert!(
        text.contains(&leaderboard(&r)),
        "the report holds the leaderboard"
    );
    assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
    insta::assert_snapshot!(text);
}

fn described(e: &impl Diagnose, tmp: &Path) -> String {
    format!(
        "{}\nblame: {}\nhint: {}",
        chain(e),
        e.blame(),
        e.hint().unwrap_or_else(|| "-".into())
    )
    .replace(&tmp.display().to_string(), "TMP")
}

/// Runs the pipeline on settings that fail before any model loads.
fn fails(settings: &RoundSettings) -> assay_datacomp::DatacompError {
    run(settings, |_| {}).expect_err("the inputs are bad")
}

#[test]
fn error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let base = RoundSettings {
        submissions: tmp.join("round"),
        out: tmp.join("out"),
        ..RoundSettings::default()
    };
    let mut texts = Vec::new();
    // No round.json.
    std::fs::create_dir(tmp.join("round")).unwrap();
    texts.push(described(&fails(&base), tmp));
    // A manifest that is not JSON.
    std::fs::write(tmp.join("round/round.json"), "{\"miners\": [\n").unwrap();
    texts.push(described(&fails(&base), tmp));
    // A manifest with no way to derive a fresh evaluation set.
    std::fs::write(
        tmp.join("round/round.json"),
        r#"{"miners": [{"hotkey": "a", "file": "a.jsonl", "block": 1}]}"#,
    )
    .unwrap();
    texts.push(described(&fails(&base), tmp));
    // An evaluation file that does not exist.
    let missing_eval = RoundSettings {
        eval: EvalSet::File(tmp.join("eval.jsonl")),
        ..base.clone()
    };
    texts.push(described(&fails(&missing_eval), tmp));
    // An evaluation file with a malformed row.
    std::fs::write(tmp.join("eval.jsonl"), "{\"prompt\": \"1+1\"}\n{not json\n").unwrap();
    texts.push(described(&fails(&missing_eval), tmp));
    insta::assert_snapshot!(texts.join("\n\n"));
}
