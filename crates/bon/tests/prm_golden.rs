//! The reward model against transformers (fixtures/make_prm_fixtures.py): Skywork's input ids and
//! reward positions on 300 synthetic pairs, and step rewards of a tiny random Qwen2 + value head.

use std::path::PathBuf;

use assay_bon::prm::{RewardKind, RewardModel, process_input};
use assay_engine::LoadOptions;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn golden() -> Value {
    let text = std::fs::read_to_string(fixtures().join("prm-golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tiny_prm() -> RewardModel {
    let dir = fixtures().join("tiny-prm");
    RewardModel::load(dir.to_str().unwrap(), None, &LoadOptions::default()).unwrap()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn input_ids_and_step_positions_match_the_reference_recipe() {
    let prm = tiny_prm();
    assert_eq!(prm.kind, RewardKind::Process);
    assert_eq!(prm.bos, "<|endoftext|>");
    let g = golden();
    let cases = g["inputs"].as_array().unwrap();
    assert!(cases.len() >= 300);
    for (i, case) in cases.iter().enumerate() {
        let got = process_input(
            &prm.backbone.tokenizer,
            &prm.bos,
            prm.newline_id,
            case["problem"].as_str().unwrap(),
            case["response"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(got.input_ids, u32s(&case["input_ids"]), "case {i}: ids");
        let want: Vec<usize> = u32s(&case["reward_positions"])
            .iter()
            .map(|&p| p as usize)
            .collect();
        assert_eq!(got.reward_positions, want, "case {i}: positions");
    }
}

#[test]
fn step_rewards_match_transformers() {
    let prm = tiny_prm();
    let g = golden();
    let cases = g["rewards"].as_array().unwrap();
    // Score in batches of 3, unlike the reference's 4, so right-padding must not matter.
    for chunk in cases.chunks(3) {
        let problem = chunk[0]["problem"].as_str().unwrap();
        for case in chunk {
            let response = case["response"].as_str().unwrap().to_string();
            let got = prm
                .score(case["problem"].as_str().unwrap(), &[response], 3)
                .unwrap();
            let want: Vec<f64> = case["step_rewards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(got[0].len(), want.len());
            for (a, b) in got[0].iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{problem}: {a} vs {b}");
            }
        }
    }
    // A padded batch of several responses gives each the same rewards as alone.
    let problem = cases[0]["problem"].as_str().unwrap();
    let responses: Vec<String> = cases[..5]
        .iter()
        .map(|c| c["response"].as_str().unwrap().to_string())
        .collect();
    let batched = prm.score(problem, &responses, 5).unwrap();
    for (k, r) in responses.iter().enumerate() {
        let alone = prm.score(problem, std::slice::from_ref(r), 1).unwrap();
        for (a, b) in batched[k].iter().zip(&alone[0]) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

#[test]
fn outcome_model_reads_one_reward_at_the_last_token() {
    let dir = fixtures().join("tiny-prm");
    let orm = RewardModel::load(
        dir.to_str().unwrap(),
        Some(RewardKind::Outcome),
        &LoadOptions::default(),
    )
    .unwrap();
    let input = orm.input("1+1?", "2\nso \\boxed{2}").unwrap();
    assert_eq!(input.reward_positions, vec![input.input_ids.len() - 1]);
    let scores = orm
        .score("1+1?", &["2\nso \\boxed{2}".to_string()], 1)
        .unwrap();
    assert_eq!(scores[0].len(), 1);
    assert!(scores[0][0] > 0.0 && scores[0][0] < 1.0);
}

#[test]
fn a_checkpoint_without_a_value_head_is_refused() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/tiny-qwen2");
    let err = RewardModel::load(dir.to_str().unwrap(), None, &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("v_head.summary.weight"), "{err}");
}
