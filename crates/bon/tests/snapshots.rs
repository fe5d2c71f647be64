//! Text people read, locked by insta snapshots: the analysis (its tables and the stated score
//! formula) and the dataset card of a hand-made report, and error messages with their blame and
//! hint. Review a change with `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

use assay_bon::output::{Provenance, analysis, card};
use assay_bon::pipeline::{BonConfig, BonReport, Sample, evaluate, mean};
use assay_bon::problems::bare_arithmetic_problems;
use assay_bon::{ArithmeticStyle, LevelRange, ProblemSettings, ProblemSource};
use assay_errors::{Diagnose, chain};
use assay_eval::math::extract_answer;
use assay_eval::math::select::Aggregation;

fn sample(pred: &str, gold: &str, score: f64) -> Sample {
    Sample {
        text: format!("Step 1\nso $\\boxed{{{pred}}}$"),
        pred: pred.into(),
        correct: pred == gold,
        step_scores: vec![0.5, score],
        score,
        tokens: 12,
    }
}

/// Three problems, four samples each at two temperatures, with rewards chosen so that weighted,
/// majority and naive selection disagree somewhere.
fn report() -> BonReport {
    let problems = bare_arithmetic_problems(3, 3);
    let gold: Vec<String> = problems
        .iter()
        .map(|p| extract_answer(&p.solution))
        .collect();
    let runs = [(0.8f32, 0.0), (1.2, 0.05)]
        .into_iter()
        .map(|(t, shift)| {
            let samples = vec![
                // Right answer in the minority with the larger reward sum: weighted wins, majority loses.
                vec![
                    sample("1", &gold[0], 0.2),
                    sample("1", &gold[0], 0.2),
                    sample(&gold[0], &gold[0], 0.9 - shift),
                    sample("1", &gold[0], 0.1),
                ],
                // Right answer everywhere.
                vec![sample(&gold[1], &gold[1], 0.7); 4],
                // A wrong answer with the single highest reward: naive loses, the others win.
                vec![
                    sample(&gold[2], &gold[2], 0.6),
                    sample("0", &gold[2], 0.95),
                    sample(&gold[2], &gold[2], 0.5 + shift),
                    sample(&gold[2], &gold[2], 0.4),
                ],
            ];
            evaluate(t, samples, &gold, 4).unwrap()
        })
        .collect();
    let greedy = vec![
        sample("1", &gold[0], 0.3),
        sample(&gold[1], &gold[1], 0.8),
        sample("0", &gold[2], 0.4),
    ];
    BonReport {
        config: BonConfig {
            system_prompt: "Answer in \\boxed{}.".into(),
            n: 4,
            sweep_temperatures: vec![1.2],
            seed: 3,
            aggregation: Aggregation::Last,
            ..BonConfig::default()
        },
        greedy_accuracy: mean(greedy.iter().map(|s| s.correct)),
        problems,
        gold,
        greedy,
        runs,
    }
}

#[test]
fn analysis_tables_and_formula() {
    insta::assert_snapshot!(analysis(&report()));
}

#[test]
fn dataset_card() {
    let provenance = Provenance {
        generator: "tiny-qwen2".into(),
        prm: "runs/prm".into(),
        problems:
            "the bare arithmetic generator (assay-bon) with seed 3, all levels, subset seed 0"
                .into(),
        command: "assay bon --prm runs/prm --arithmetic-seed 3 --n 4".into(),
        placement: "cpu (f32)".into(),
    };
    let text = card(&report(), &provenance);
    assert!(!text.contains("Some(") && !text.contains("Last"), "{text}");
    insta::assert_snapshot!(text);
}

fn described(e: &impl Diagnose) -> String {
    format!(
        "{}\nblame: {}\nhint: {}",
        chain(e),
        e.blame(),
        e.hint().unwrap_or_else(|| "-".into())
    )
}

#[test]
fn error_messages() {
    let missing = ProblemSettings {
        source: ProblemSource::File("no/such/problems.jsonl".into()),
        ..ProblemSettings::default()
    };
    let none_left = ProblemSettings {
        source: ProblemSource::Arithmetic {
            seed: 1,
            style: ArithmeticStyle::Bare,
        },
        levels: Some("7-9".parse::<LevelRange>().unwrap()),
        count: 5,
        seed: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("problems.jsonl");
    std::fs::write(&bad, "{\"problem\": \"1+1?\"}\n").unwrap();
    let bad_row = ProblemSettings {
        source: ProblemSource::File(bad.clone()),
        ..ProblemSettings::default()
    };
    let text = [
        described(&missing.load().unwrap_err()),
        described(&none_left.load().unwrap_err()),
        described(&bad_row.load().unwrap_err()).replace(&dir.path().display().to_string(), "TMP"),
        "7-x".parse::<LevelRange>().unwrap_err(),
    ]
    .join("\n\n");
    insta::assert_snapshot!(text);
}
