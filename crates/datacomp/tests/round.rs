//! Datacomp end to end on the real default model (SmolLM2-135M-Instruct), reduced for CI.

use std::path::{Path, PathBuf};

use assay_datacomp::round::default_policy;
use assay_datacomp::task::generated_problems;
use assay_datacomp::{
    EvalOptions, RoundConfig, RoundResults, ScoreWeights, TrainingPlan, run_round,
};
use assay_engine::train::{AdamWConfig, LoraConfig, Schedule, TrainConfig};
use assay_engine::{LoadedModel, ModelSource, Placement, load};

fn smollm2() -> LoadedModel {
    load(
        &ModelSource::resolve(None).unwrap(),
        &Placement::cpu().load_options().unwrap(),
    )
    .unwrap()
}

/// The CLI's defaults, shrunk: top 2 layers, a small token budget, reference loss only on
/// `problems` generated problems.
fn reduced_config(token_budget: usize, problems: usize) -> RoundConfig {
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
                token_budget: Some(token_budget),
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
        eval_source: format!("seed:20261122:{problems}"),
    }
}

fn run(model: &mut LoadedModel, dir: &Path, config: &RoundConfig, problems: usize) -> RoundResults {
    let problems = generated_problems(20261122, problems);
    run_round(model, dir, &problems, config, None, &mut Vec::new(), |_| {}).unwrap()
}

fn miner<'a>(r: &'a RoundResults, name: &str) -> &'a assay_datacomp::MinerResult {
    r.miners.iter().find(|m| m.hotkey == name).unwrap()
}

#[test]
fn example_round_ranks_honest_data_first_and_zeroes_the_cheaters() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/datacomp");
    let mut model = smollm2();
    let r = run(&mut model, &dir, &reduced_config(500, 12), 12);
    let honest = miner(&r, "honest");
    assert_eq!(
        r.miners[0].hotkey,
        "honest",
        "{:#?}",
        r.miners
            .iter()
            .map(|m| (&m.hotkey, m.score))
            .collect::<Vec<_>>()
    );
    // The improvement is real: the gold solutions of problems nobody trained on got more likely.
    let trained = honest.trained.as_ref().unwrap();
    assert!(
        trained.improvement.reference_loss > 0.05,
        "honest Δ loss {}",
        trained.improvement.reference_loss
    );
    assert!(honest.score > miner(&r, "low_quality").score);
    let spammer = miner(&r, "spammer");
    assert!(
        spammer
            .rejected
            .get("exact_duplicate")
            .copied()
            .unwrap_or(0)
            >= 20,
        "{:?}",
        spammer.rejected
    );
    assert!(spammer.score < 0.5 * honest.score);
    let cheater = miner(&r, "cheater");
    assert!(cheater.disqualified && cheater.score == 0.0);
    assert!(
        cheater
            .reasons
            .iter()
            .any(|x| x.contains("evaluation data")),
        "{:?}",
        cheater.reasons
    );
    let copier = miner(&r, "copier");
    assert!(copier.disqualified && copier.score == 0.0);
    assert!(
        copier
            .reasons
            .iter()
            .any(|x| x.contains("copy other miners")),
        "{:?}",
        copier.reasons
    );
    let total: f64 = r.miners.iter().map(|m| m.weight).sum();
    assert!((total - 1.0).abs() < 1e-9);
    assert_eq!(r.miners.iter().map(|m| m.weight_u16).max(), Some(65535));
}

/// A round of one honest miner and every kind of broken file: all reported, none fatal, and the
/// same round twice gives bit-identical results.
#[test]
fn broken_submissions_are_reported_and_rounds_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let honest = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/datacomp/honest.jsonl"),
    )
    .unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    write(
        "honest.jsonl",
        honest
            .lines()
            .take(6)
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    );
    write("empty.jsonl", b"");
    write(
        "broken.jsonl",
        b"{\"prompt\": \"a\", \"chain_of_thought\": \n not json at all\n",
    );
    let huge = format!(
        "{{\"prompt\": \"{}\", \"chain_of_thought\": \"x\", \"final_answer\": \"1\"}}\n",
        "a".repeat(3_000_000)
    );
    write("huge.jsonl", huge.as_bytes());
    write("fields.jsonl", b"{\"question\": \"2+2?\", \"answer\": 4}\n{\"prompt\": 7, \"chain_of_thought\": [], \"final_answer\": null}\n");
    write(
        "junk.jsonl",
        &[0xff, 0xfe, 0x00, 0x01, 0x9c, 0x80, b'\n', 0xc3],
    );
    let miners = [
        "honest", "empty", "broken", "huge", "fields", "junk", "missing",
    ];
    let entries: Vec<String> = miners
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "{{\"hotkey\": \"{m}\", \"file\": \"{m}.jsonl\", \"block\": {}}}",
                10 + i
            )
        })
        .collect();
    write(
        "round.json",
        format!("{{\"miners\": [{}]}}", entries.join(",")).as_bytes(),
    );
    let mut model = smollm2();
    // Four problems are enough here: what is checked is the handling of broken files and that
    // a rerun is bit-identical, not the size of an improvement.
    let config = reduced_config(120, 4);
    let first = run(&mut model, dir.path(), &config, 4);
    assert_eq!(first.miners.len(), miners.len());
    assert_eq!(first.miners[0].hotkey, "honest");
    assert!(first.miners[0].score > 0.0);
    for m in &first.miners[1..] {
        assert_eq!(m.score, 0.0, "{}", m.hotkey);
        assert!(
            !m.reasons.is_empty() && m.trained.is_none(),
            "{}: {:?}",
            m.hotkey,
            m.reasons
        );
    }
    let second = run(&mut model, dir.path(), &config, 4);
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
}
