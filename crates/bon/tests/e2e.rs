//! A tiny end-to-end run: tiny Qwen2 as generator and reward backbone (random head), 3 problems,
//! n = 4, 16 new tokens; then the files it writes, and the selection rules on hand-made samples.

use std::path::PathBuf;

use assay_bon::output::{Provenance, write_all};
use assay_bon::pipeline::{self, BonConfig, Sample, budgets, select_first_n};
use assay_bon::prm::RewardModel;
use assay_bon::problems::{LevelRange, arithmetic_problems, seeded_subset};
use assay_bon::train::{HeadTrainConfig, auc, train_head};
use assay_engine::{LoadOptions, ModelSource, load};
use assay_eval::math::select::Aggregation;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn config() -> BonConfig {
    BonConfig {
        // The tiny model's context is 256 tokens: a short system prompt.
        system_prompt: "Answer in \\boxed{}.".into(),
        n: 4,
        temperature: 0.8,
        sweep_temperatures: vec![1.2],
        top_p: 1.0,
        max_new_tokens: 16,
        seed: 3,
        aggregation: Aggregation::Last,
        batch_rows: 8,
        prm_batch: 4,
    }
}

#[test]
fn tiny_run_writes_a_dataset_plots_and_analysis() {
    let generator = load(
        &ModelSource::HfFolder(fixture("../engine/fixtures/tiny-qwen2")),
        &LoadOptions::default(),
    )
    .unwrap();
    let prm_dir = fixture("fixtures/tiny-prm");
    let prm = RewardModel::load(prm_dir.to_str().unwrap(), None, &LoadOptions::default()).unwrap();
    let problems = seeded_subset(arithmetic_problems(5, 6), None, Some(3), 1);
    let mut events = 0;
    let report =
        pipeline::run(&generator, &prm, &problems, &config(), &mut |_| events += 1).unwrap();
    assert!(events > 0);
    assert_eq!(report.runs.len(), 2);
    let main = &report.runs[0];
    assert_eq!(
        main.curve.iter().map(|c| c.n).collect::<Vec<_>>(),
        vec![1, 2, 4]
    );
    // At n = 1 every rule picks the first sample.
    let first = pipeline::mean(main.samples.iter().map(|s| s[0].correct));
    let c1 = &main.curve[0];
    assert_eq!(
        (c1.weighted, c1.majority, c1.naive, c1.pass),
        (first, first, first, first)
    );
    for s in main.samples.iter().flatten() {
        assert!(s.tokens <= 16 && !s.step_scores.is_empty());
        assert_eq!(s.score, *s.step_scores.last().unwrap());
        assert!(s.score > 0.0 && s.score < 1.0);
    }

    let dir = tempfile::tempdir().unwrap();
    let provenance = Provenance {
        generator: "tiny-qwen2".into(),
        prm: "tiny-prm".into(),
        problems: "arithmetic seed 5".into(),
        command: "test".into(),
        placement: "cpu (f32)".into(),
    };
    write_all(dir.path(), &report, &provenance).unwrap();
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    let card = read("README.md");
    let yaml = card
        .strip_prefix("---\n")
        .unwrap()
        .split_once("\n---\n")
        .unwrap()
        .0;
    for key in [
        "license:",
        "configs:",
        "path: data/problems.jsonl",
        "path: data/samples.jsonl",
    ] {
        assert!(yaml.contains(key), "card YAML lacks {key}");
    }
    assert!(card.contains(&problems[0].unique_id));
    let rows: Vec<serde_json::Value> = read("data/problems.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for key in [
        "problem",
        "solution",
        "answer",
        "subject",
        "level",
        "unique_id",
        "greedy_solution",
        "best_of_n_solution",
    ] {
        assert!(rows[0].get(key).is_some(), "row lacks {key}");
    }
    assert_eq!(rows[0]["samples"].as_array().unwrap().len(), 4);
    assert_eq!(read("data/samples.jsonl").lines().count(), 3 * 4 * 2);
    for stem in ["plots/accuracy_vs_n", "plots/accuracy_vs_temperature"] {
        let svg = read(&format!("{stem}.svg"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let png = std::fs::read(dir.path().join(format!("{stem}.png"))).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let info = decoder.read_info().unwrap().info().clone();
        // The PNG is drawn at twice the SVG's 720 × 460 units so its bitmap text stays crisp.
        assert_eq!((info.width, info.height), (1440, 920));
    }
    assert!(read("analysis.md").contains("## Solved by weighted best-of-N, not by greedy"));
    let results: serde_json::Value = serde_json::from_str(&read("results.json")).unwrap();
    assert!((results["runs"][1]["temperature"].as_f64().unwrap() - 1.2).abs() < 1e-6);
}

fn sample(pred: &str, score: f64, correct: bool) -> Sample {
    Sample {
        text: format!("\\boxed{{{pred}}}"),
        pred: pred.into(),
        correct,
        step_scores: vec![score],
        score,
        tokens: 1,
    }
}

#[test]
fn weighted_majority_and_naive_differ_as_expected() {
    // Two low-reward "3"s outvote one "5" in majority, but "5" has the larger reward sum and the top score.
    let samples = vec![
        sample("3", 0.2, false),
        sample("3", 0.2, false),
        sample("5", 0.9, true),
    ];
    let s = select_first_n(&samples, 3, "5").unwrap();
    assert_eq!(
        (s.weighted.index, s.majority.index, s.naive.index),
        (2, 0, 2)
    );
    assert!(s.weighted.correct && !s.majority.correct && s.naive.correct);
    // Three "3"s at 0.4 sum to 1.2 > 0.9: weighted follows them, naive does not.
    let mut more = samples.clone();
    more.push(sample("3", 0.8, false));
    let s = select_first_n(&more, 4, "5").unwrap();
    assert_eq!((s.weighted.pred.as_str(), s.naive.index), ("3", 2));
    // `0.5` and `\frac{1}{2}` are one group (symbolic key), as in the reference's canonical form.
    let halves = vec![
        sample("0.5", 0.3, true),
        sample("\\frac{1}{2}", 0.3, true),
        sample("2", 0.5, false),
    ];
    assert_eq!(select_first_n(&halves, 3, "0.5").unwrap().weighted.index, 0);
}

#[test]
fn budgets_subsets_and_auc() {
    assert_eq!(budgets(16), vec![1, 2, 4, 8, 16]);
    assert_eq!(budgets(6), vec![1, 2, 4, 6]);
    let all = arithmetic_problems(9, 40);
    let a = seeded_subset(
        all.clone(),
        Some("2-3".parse::<LevelRange>().unwrap()),
        Some(5),
        4,
    );
    assert_eq!(
        a,
        seeded_subset(all.clone(), Some("2-3".parse().unwrap()), Some(5), 4)
    );
    assert!(a.iter().all(|p| (2..=3).contains(&p.level)));
    assert_ne!(
        a,
        seeded_subset(all, Some("2-3".parse().unwrap()), Some(5), 5)
    );
    assert!("3-1".parse::<LevelRange>().is_err() && "x".parse::<LevelRange>().is_err());
    assert!(!arithmetic_problems(1, 1)[0].solution.contains("<<"));
    assert_eq!(auc(&[0.9, 0.8], &[0.1, 0.85]), Some(0.75));
    assert_eq!(auc(&[0.9], &[]), None);
}

#[test]
fn head_training_needs_both_classes() {
    let backbone = load(
        &ModelSource::HfFolder(fixture("fixtures/tiny-prm")),
        &LoadOptions::default(),
    )
    .unwrap();
    let problems = arithmetic_problems(2, 3);
    let config = HeadTrainConfig {
        system_prompt: "Answer in \\boxed{}.".into(),
        n: 2,
        temperature: 1.0,
        max_new_tokens: 8,
        seed: 0,
        steps: 5,
        lr: 1e-2,
        weight_decay: 0.0,
        validation_fraction: 0.34,
        batch_rows: 8,
        feature_batch: 4,
        dump_solutions: None,
    };
    // A random tiny model never answers correctly: the error says what to change.
    let err = train_head(backbone, &problems, &config, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("both classes are needed"), "{err}");
}
