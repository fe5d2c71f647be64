//! Readers, seeds, competitions and answer parsing.

use assay_sn37::competition::{Competition, builtin_competitions, find_competition};
use assay_sn37::data::{
    DataError, code_output_reference, math_reference, read_source_rows, sample_in_order,
};
use assay_sn37::evaluate::first_choice_letter;
use assay_sn37::seed::{GENESIS_BLOCK, seed_from_block_hash, sync_block, task_seed};
use assay_tables::TableError;
use serde::Deserialize;

#[derive(Deserialize)]
struct ParseCase {
    message: String,
    reference: String,
}

#[derive(Deserialize)]
struct ParseGolden {
    math: Vec<ParseCase>,
    code: Vec<ParseCase>,
}

#[test]
fn synthetic1_references_match_reference_parser() {
    let golden: ParseGolden =
        serde_json::from_str(include_str!("fixtures/synthetic1_parse.json")).unwrap();
    for case in &golden.math {
        assert_eq!(
            math_reference(&case.message),
            case.reference,
            "{:?}",
            case.message
        );
    }
    for case in &golden.code {
        assert_eq!(
            code_output_reference(&case.message),
            case.reference,
            "{:?}",
            case.message
        );
    }
}

#[test]
fn builtin_competitions_are_as_scheduled() {
    let all = builtin_competitions();
    let instruct = all.iter().find(|c| c.id == 3).unwrap();
    assert_eq!(instruct.name, "INSTRUCT_8B");
    assert_eq!(instruct.constraints.max_params, 8_100_000_000);
    let weights: Vec<f64> = instruct.tasks.iter().map(|t| t.weight).collect();
    assert_eq!(weights, [0.30, 0.05, 0.35, 0.30]);
    let reasoning = find_competition("distilled_reasoning_3b").unwrap();
    assert_eq!(reasoning.constraints.min_params, 3_200_000_000);
    assert_eq!(reasoning.constraints.sequence_length, 16_384);
    assert!((reasoning.epsilon.epsilon(7_200, 0) - 0.05 + 7_200.0 / 21_600.0 * 0.04).abs() < 1e-15);
    assert!(find_competition("100").is_ok());
    assert!(find_competition("NOPE").is_err());
}

#[test]
fn competition_errors_name_the_field() {
    let text = include_str!("../competitions/tiny.toml").replace("weight = 0.2", "weight = 0.3");
    let error = Competition::from_toml(&text, "mine.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("mine.toml") && error.contains("tasks.weight") && error.contains("sum"),
        "{error}"
    );
    let text = include_str!("../competitions/tiny.toml")
        .replace("reward_share = 1.0", "reward_share = 1.0\nbogus = 1");
    let error = Competition::from_toml(&text, "mine.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("bogus"), "{error}");
}

#[test]
fn sync_blocks_and_seeds() {
    assert_eq!(sync_block(GENESIS_BLOCK + 719), GENESIS_BLOCK + 360);
    assert_eq!(sync_block(GENESIS_BLOCK + 720), GENESIS_BLOCK + 720);
    assert_eq!(sync_block(5), 5);
    // SHA-256("abc") starts ba7816bf8f01cfea.
    assert_eq!(seed_from_block_hash("abc"), 0xba78_16bf_8f01_cfea);
    assert_ne!(task_seed(1, "A"), task_seed(1, "B"));
    assert_ne!(task_seed(1, "A"), task_seed(2, "A"));
}

#[test]
fn sampling_is_seeded_and_keeps_file_order() {
    let items: Vec<u32> = (0..100).collect();
    let a = sample_in_order(&items, 10, 7);
    assert_eq!(a, sample_in_order(&items, 10, 7));
    assert_ne!(a, sample_in_order(&items, 10, 8));
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(sample_in_order(&items[..3], 10, 7), vec![0, 1, 2]);
}

#[test]
fn jsonl_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.jsonl");
    std::fs::write(&path, "{\"a\": 1}\n\n[1, 2]\n").unwrap();
    match read_source_rows(&path) {
        Err(DataError::Table(TableError::BadLine { line, reason, .. })) => {
            assert_eq!(line, 3);
            assert!(reason.contains("object"));
        }
        other => panic!("expected a bad row, got {other:?}"),
    }
}

#[test]
fn multiple_choice_takes_the_first_standalone_letter() {
    assert_eq!(first_choice_letter("The answer is B."), Some("B"));
    assert_eq!(first_choice_letter("A) because... C"), Some("A"));
    assert_eq!(first_choice_letter("Both BC and AD"), None);
    assert_eq!(
        first_choice_letter("d (lower case does not count) then D"),
        Some("D")
    );
}

#[test]
fn competitions_round_trip_through_toml() {
    for competition in builtin_competitions() {
        let text = toml::to_string_pretty(&competition).unwrap();
        let back = Competition::from_toml(&text, "round-trip").unwrap();
        assert_eq!(back, competition);
    }
}
