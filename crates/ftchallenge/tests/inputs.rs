//! Bad inputs get precise errors naming the file, line and field; good ones read back exactly.

use std::path::{Path, PathBuf};

use assay_ftchallenge::data::{LabelRow, TrainTicket, ValTicket, read_rows};
use assay_ftchallenge::grade::{GradeInputs, Similarity, grade_files};
use assay_ftchallenge::results::{Prediction, Results, TrainingSummary};
use assay_ftchallenge::taxonomy::Taxonomy;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn err_of<T: std::fmt::Debug>(r: assay_ftchallenge::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn a_missing_field_names_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "train.jsonl",
        "{\"id\":\"a\",\"ticket\":\"t\",\"intent\":\"x.y\",\"ideal_reply\":\"r\"}\n\n{\"id\":\"b\",\"ticket\":\"t\",\"ideal_reply\":\"r\"}\n",
    );
    let err = err_of(read_rows::<TrainTicket>(&path));
    assert!(err.contains("train.jsonl:3:"), "{err}");
    assert!(err.contains("missing field `intent`"), "{err}");
}

#[test]
fn an_empty_field_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "val.jsonl",
        "{\"id\":\"v1\",\"ticket\":\"  \"}\n",
    );
    let err = err_of(read_rows::<ValTicket>(&path));
    assert!(
        err.contains("val.jsonl:1:") && err.contains("`ticket` is empty"),
        "{err}"
    );
}

#[test]
fn an_empty_val_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "val.jsonl", "\n  \n");
    let err = err_of(read_rows::<ValTicket>(&path));
    assert!(
        err.contains("val.jsonl") && err.contains("holds no validation ticket rows"),
        "{err}"
    );
}

#[test]
fn duplicate_ids_name_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "val.jsonl",
        "{\"id\":\"v1\",\"ticket\":\"a\"}\n{\"id\":\"v2\",\"ticket\":\"b\"}\n{\"id\":\"v1\",\"ticket\":\"c\"}\n",
    );
    let err = err_of(read_rows::<ValTicket>(&path));
    assert!(
        err.contains("val.jsonl:3:") && err.contains("duplicate id `v1` (first on line 1)"),
        "{err}"
    );
}

#[test]
fn a_non_json_line_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "labels.jsonl",
        "{\"id\":\"v1\",\"intent\":\"a.b\",\"ideal_reply\":\"r\"}\nnot json\n",
    );
    let err = err_of(read_rows::<LabelRow>(&path));
    assert!(
        err.contains("labels.jsonl:2:") && err.contains("not a label"),
        "{err}"
    );
}

#[test]
fn the_example_files_read_back() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/ft-challenge");
    let train = read_rows::<TrainTicket>(&dir.join("train.jsonl"))
        .unwrap()
        .rows;
    let val = read_rows::<ValTicket>(&dir.join("val.jsonl")).unwrap().rows;
    let labels = read_rows::<LabelRow>(&dir.join("labels.jsonl"))
        .unwrap()
        .rows;
    let intents: std::collections::BTreeSet<&str> =
        train.iter().map(|r| r.intent.as_str()).collect();
    assert!(train.len() >= 30 && intents.len() >= 8 && val.len() >= 20);
    assert!(
        intents.iter().all(|i| i.contains('.')),
        "intents are dotted"
    );
    assert_eq!(
        val.iter().map(|v| &v.id).collect::<Vec<_>>(),
        labels.iter().map(|l| &l.id).collect::<Vec<_>>()
    );
    assert!(labels.iter().any(|l| l.probe) && labels.iter().all(|l| !l.must_mention.is_empty()));
    let taxonomy = Taxonomy::from_file(&dir.join("taxonomy.json")).unwrap();
    assert!(labels.iter().all(|l| taxonomy.contains(&l.intent)));
    assert_eq!(taxonomy.canonical("Billing.Seats"), "billing.seat_question");
}

#[test]
fn a_synonym_to_an_unknown_intent_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "t.json",
        "{\"intents\":[\"a.b\"],\"synonyms\":{\"ab\":\"a.c\"}}",
    );
    let err = err_of(Taxonomy::from_file(&path));
    assert!(
        err.contains("t.json") && err.contains("`a.c`, which is not among the intents"),
        "{err}"
    );
}

fn results_with(ids: &[&str]) -> Results {
    Results {
        training: TrainingSummary {
            steps: 1,
            train_loss: Some(1.0),
            val_loss: None,
            wall_clock_s: 10.0,
        },
        predictions: ids
            .iter()
            .map(|id| Prediction {
                id: id.to_string(),
                prediction: "reply".into(),
                predicted_intent: "a.b".into(),
                latency_ms: 1,
                tokens_used: 1,
            })
            .collect(),
    }
}

fn grade_err(ids: &[&str], labels: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    results_with(ids).write(&results).unwrap();
    let labels = write(dir.path(), "labels.jsonl", labels);
    err_of(grade_files(
        &GradeInputs {
            results,
            labels,
            taxonomy: None,
        },
        Similarity::default(),
    ))
}

const TWO_LABELS: &str = "{\"id\":\"v1\",\"intent\":\"a.b\",\"ideal_reply\":\"r\"}\n{\"id\":\"v2\",\"intent\":\"a.b\",\"ideal_reply\":\"r\"}\n";

#[test]
fn a_label_without_a_prediction_names_its_line() {
    let err = grade_err(&["v1"], TWO_LABELS);
    assert!(
        err.contains("labels.jsonl:2:") && err.contains("id `v2` has no prediction"),
        "{err}"
    );
}

#[test]
fn a_prediction_with_an_unknown_id_is_an_error() {
    let err = grade_err(&["v1", "v2", "zz"], TWO_LABELS);
    assert!(err.contains("predictions[2]: unknown id `zz`"), "{err}");
}

#[test]
fn duplicate_prediction_ids_are_an_error() {
    let err = grade_err(&["v1", "v2", "v1"], TWO_LABELS);
    assert!(
        err.contains("predictions[2]: duplicate id `v1` (first at predictions[0])"),
        "{err}"
    );
}

#[test]
fn a_results_file_missing_a_field_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "results.json",
        "{\"training\":{\"steps\":1,\"train_loss\":1,\"val_loss\":null},\"predictions\":[]}",
    );
    let err = err_of(Results::read(&path));
    assert!(
        err.contains("results.json") && err.contains("missing field `wall_clock_s`"),
        "{err}"
    );
}
