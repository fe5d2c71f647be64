//! A graded-miner round on the CPU default model: the ranking must follow the grades.
//!
//! Miners differ in one thing at a time: correctness (all correct / half wrong / all wrong), style
//! (the evaluation set's own phrasing or another), size (4 / 24 / 96 distinct rows), duplicates,
//! copies and paraphrase copies. This is the one default-model round of the graded tests (CI time);
//! the model-free parts (verification, copies) are also tested in assay-integrity.

use std::path::Path;

use assay_datacomp::graded::{GradedRow, Style, jsonl, paraphrase, rows};
use assay_datacomp::round::default_policy;
use assay_datacomp::task::generated_problems;
use assay_datacomp::{
    EvalOptions, MinerResult, RoundConfig, RoundResults, ScoreWeights, TrainingPlan, run_round,
};
use assay_engine::train::{AdamWConfig, LoraConfig, Schedule, TrainConfig};
use assay_engine::{ModelSource, Placement, load};

const EVAL_SEED: u64 = 77;
const EVAL_COUNT: usize = 8;

fn write_round(dir: &Path, miners: &[(&str, Vec<GradedRow>)]) {
    let mut entries = Vec::new();
    for (i, (name, rows)) in miners.iter().enumerate() {
        std::fs::write(dir.join(format!("{name}.jsonl")), jsonl(rows)).unwrap();
        entries.push(serde_json::json!({
            "hotkey": name, "file": format!("{name}.jsonl"), "block": 100 + i as u64,
        }));
    }
    let manifest = serde_json::json!({"round": "graded", "seed": EVAL_SEED, "miners": entries});
    std::fs::write(dir.join("round.json"), manifest.to_string()).unwrap();
}

/// The CPU default's recipe (top 2 layers, rank 8), answer loss only (generation off for CI time).
fn config() -> RoundConfig {
    RoundConfig {
        base_model: "SmolLM2-135M-Instruct".into(),
        placement: Placement::cpu(),
        plan: TrainingPlan {
            lora: LoraConfig {
                rank: 8,
                alpha: 16.0,
                layers: Some(vec![28, 29]),
                ..Default::default()
            },
            train: TrainConfig {
                optimizer: AdamWConfig {
                    lr: 3e-3,
                    weight_decay: 0.0,
                    ..Default::default()
                },
                schedule: Schedule::Constant,
                batch_tokens: 1024,
                token_budget: Some(800),
                ..Default::default()
            },
            max_len: 1024,
        },
        eval: EvalOptions {
            max_new_tokens: 0,
            batch_rows: 8,
            generate: false,
        },
        weights: ScoreWeights::default(),
        policy: default_policy(),
        eval_source: format!("seed:{EVAL_SEED}:{EVAL_COUNT}"),
    }
}

fn score(r: &RoundResults, name: &str) -> f64 {
    miner(r, name).score
}

fn miner<'a>(r: &'a RoundResults, name: &str) -> &'a MinerResult {
    r.miners.iter().find(|m| m.hotkey == name).unwrap()
}

#[test]
#[ignore = "passes (run 2026-12-07 with --include-ignored: 555 s in the debug test build on the shared, \
            loaded 2-core machine); kept out of the default run for CI time; run with --ignored"]
fn the_ranking_follows_the_grades() {
    let half = |i: usize| i % 2 == 1;
    let house_correct = rows(1001, 24, Style::House, |_| false);
    let steps_correct = rows(1002, 24, Style::Steps, |_| false);
    let four = rows(1009, 4, Style::House, |_| false);
    let duplicates: Vec<GradedRow> = (0..24).map(|i| four[i % 4].clone()).collect();
    let miners = vec![
        ("house_correct", house_correct.clone()),
        ("steps_correct", steps_correct.clone()),
        ("house_half_wrong", rows(1003, 24, Style::House, half)),
        ("steps_half_wrong", rows(1004, 24, Style::Steps, half)),
        ("house_wrong", rows(1005, 24, Style::House, |_| true)),
        ("steps_wrong", rows(1006, 24, Style::Steps, |_| true)),
        ("distinct_4", rows(1007, 4, Style::House, |_| false)),
        ("distinct_96", rows(1008, 96, Style::House, |_| false)),
        ("duplicates", duplicates),
        ("copier", house_correct.clone()),
        ("paraphraser", paraphrase(&steps_correct, 5)),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_round(dir.path(), &miners);
    let mut model = load(
        &ModelSource::resolve(None).unwrap(),
        &Placement::cpu().load_options().unwrap(),
    )
    .unwrap();
    let problems = generated_problems(EVAL_SEED, EVAL_COUNT);
    let mut timings = Vec::new();
    let r = run_round(
        &mut model,
        dir.path(),
        &problems,
        &config(),
        None,
        &mut timings,
        |_| {},
    )
    .unwrap();
    eprintln!("stage timings (s): {timings:?}");
    let table: Vec<(String, f64, f64)> = r
        .miners
        .iter()
        .map(|m| {
            let d = m.trained.as_ref().map_or(0.0, |t| t.improvement.combined);
            (m.hotkey.clone(), d, m.score)
        })
        .collect();
    let s = |name: &str| score(&r, name);
    // Correctness decides, in either style.
    assert!(s("house_correct") > s("house_half_wrong"), "{table:#?}");
    assert!(s("house_half_wrong") > s("house_wrong"), "{table:#?}");
    assert!(s("steps_correct") > s("steps_half_wrong"), "{table:#?}");
    assert!(s("steps_half_wrong") > s("steps_wrong"), "{table:#?}");
    // The evaluation set's house style does not rescue wrong data.
    assert!(s("steps_correct") > s("house_half_wrong"), "{table:#?}");
    assert!(s("steps_half_wrong") > s("house_wrong"), "{table:#?}");
    assert_eq!(s("house_wrong"), 0.0);
    assert_eq!(s("steps_wrong"), 0.0);
    assert_eq!(
        miner(&r, "house_wrong").rejected.get("wrong_answer"),
        Some(&24)
    );
    // More distinct correct problems beat fewer.
    assert!(s("distinct_96") > s("house_correct"), "{table:#?}");
    assert!(s("house_correct") > s("distinct_4"), "{table:#?}");
    assert!(s("distinct_4") > 0.0, "{table:#?}");
    // Duplicates earn what their distinct rows earn, less the penalty; copies earn nothing.
    assert!(s("duplicates") < s("house_correct"), "{table:#?}");
    assert_eq!(
        miner(&r, "duplicates").rejected.get("exact_duplicate"),
        Some(&20)
    );
    for copier in ["copier", "paraphraser"] {
        let m = miner(&r, copier);
        assert!(
            m.disqualified && m.score == 0.0,
            "{copier}: {:?}",
            m.reasons
        );
    }
    let total: f64 = r.miners.iter().map(|m| m.weight).sum();
    assert!((total - 1.0).abs() < 1e-9);
}
