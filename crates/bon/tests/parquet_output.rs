//! The dataset folder's Parquet files hold the same rows as its JSON-lines files (read back with
//! `assay-tables`), after a tiny run of the pipeline.

use std::path::PathBuf;

use assay_bon::output::{Provenance, write_all};
use assay_bon::pipeline::{self, BonConfig};
use assay_bon::prm::RewardModel;
use assay_bon::problems::{arithmetic_problems, seeded_subset};
use assay_engine::{LoadOptions, ModelSource, load};
use assay_eval::math::select::Aggregation;
use assay_tables::read_rows;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn parquet_files_hold_the_jsonl_rows() {
    let generator = load(
        &ModelSource::HfFolder(fixture("../engine/fixtures/tiny-qwen2")),
        &LoadOptions::default(),
    )
    .unwrap();
    let prm = RewardModel::load(
        fixture("fixtures/tiny-prm").to_str().unwrap(),
        None,
        &LoadOptions::default(),
    )
    .unwrap();
    let problems = seeded_subset(arithmetic_problems(7, 6), None, Some(2), 1);
    let config = BonConfig {
        system_prompt: "Answer in \\boxed{}.".into(),
        n: 2,
        temperature: 0.8,
        sweep_temperatures: vec![],
        top_p: 1.0,
        max_new_tokens: 8,
        seed: 4,
        aggregation: Aggregation::Min,
        batch_rows: 4,
        prm_batch: 4,
    };
    let report = pipeline::run(&generator, &prm, &problems, &config, &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provenance = Provenance {
        generator: "tiny-qwen2".into(),
        prm: "tiny-prm".into(),
        problems: "arithmetic seed 7".into(),
        command: "test".into(),
        placement: "cpu (f32)".into(),
    };
    write_all(dir.path(), &report, &provenance).unwrap();
    let data = dir.path().join("data");
    for (name, count) in [("problems", 2), ("samples", 4)] {
        let jsonl = read_rows(&data.join(format!("{name}.jsonl"))).unwrap();
        let parquet = read_rows(&data.join(format!("{name}.parquet"))).unwrap();
        assert_eq!(jsonl.len(), count, "{name}");
        assert_eq!(parquet, jsonl, "{name}");
    }
    let problems = read_rows(&data.join("problems.parquet")).unwrap();
    assert_eq!(
        problems[0]["sample_step_scores"].as_array().unwrap().len(),
        2
    );
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(card.contains("`data/problems.parquet`") && card.contains("`data/samples.parquet`"));
}
