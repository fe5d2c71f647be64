//! SN37 normalisation against taoverse's `normalize_score` (golden fixture) and the
//! weighted combination rules of `score_model`.

use assay_eval::sn37::normalize::{
    Normalization, NormalizeError, TaskRawScore, combine_task_scores, normalize,
};
use serde_json::Value;

#[test]
fn normalization_matches_taoverse() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/ifeval/normalization.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let method = match row["method"].as_str().unwrap() {
            "none" => Normalization::None,
            _ => Normalization::InverseExponential {
                ceiling: row["ceiling"].as_f64().unwrap(),
            },
        };
        let raw = row["raw"].as_f64().unwrap();
        assert_eq!(
            normalize(raw, method),
            row["normalized"].as_f64().unwrap(),
            "{row}"
        );
    }
}

#[test]
fn failed_task_normalizes_to_worst() {
    let method = Normalization::InverseExponential { ceiling: 20.0 };
    assert_eq!(normalize(f64::INFINITY, method), 1.0);
}

fn task(name: &str, raw: f64, weight: f64, ceiling: Option<f64>) -> TaskRawScore {
    let normalization = ceiling.map_or(Normalization::None, |ceiling| {
        Normalization::InverseExponential { ceiling }
    });
    TaskRawScore {
        name: name.into(),
        raw,
        weight,
        normalization,
    }
}

#[test]
fn weights_summing_to_one_are_used_as_given() {
    let tasks = [task("a", 0.2, 0.25, None), task("b", 0.4, 0.75, None)];
    let score = combine_task_scores(&tasks).unwrap();
    assert_eq!(score.tasks[0].weighted, 0.2 * 0.25);
    assert_eq!(score.total, 0.2 * 0.25 + 0.4 * 0.75);
}

#[test]
fn weights_of_remaining_tasks_are_renormalized() {
    // One of three 1/3 tasks failed to load: the two left count half each.
    let tasks = [task("a", 0.2, 0.5, None), task("b", 0.6, 0.25, None)];
    let score = combine_task_scores(&tasks).unwrap();
    assert_eq!(score.tasks[0].weighted, 0.2 * (0.5 / 0.75));
    assert_eq!(score.tasks[1].weighted, 0.6 * (0.25 / 0.75));
}

#[test]
fn ceiling_and_weight_are_validated() {
    assert!(matches!(
        combine_task_scores(&[]),
        Err(NormalizeError::NoTasks)
    ));
    let bad_ceiling = [task("x", 1.0, 1.0, Some(0.0))];
    assert!(matches!(
        combine_task_scores(&bad_ceiling),
        Err(NormalizeError::BadCeiling { .. })
    ));
    let bad_weight = [task("x", 1.0, -1.0, None)];
    assert!(matches!(
        combine_task_scores(&bad_weight),
        Err(NormalizeError::BadWeight { .. })
    ));
}
