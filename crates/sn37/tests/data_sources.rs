//! Data sources over JSON lines and Parquet: the same rows give the same samples in both
//! formats, a folder of shards reads like one file, and SN37's MMLU challenge parsing.

use std::path::{Path, PathBuf};

use assay_sn37::competition::SourceSpec;
use assay_sn37::data::{DataError, TaskData, load_task_data, mmlu_question_answer};
use assay_tables::{Location, ParquetOptions, Row, read_rows, write_jsonl, write_parquet};
use serde::Deserialize;

/// SYNTHETIC-1-shaped rows that pyarrow wrote (see crates/tables/fixtures/make_fixtures.py).
fn pyarrow_synthetic1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables/fixtures/synthetic1_snappy.parquet")
}

fn synthetic1(file: &str) -> SourceSpec {
    SourceSpec::Synthetic1 { file: file.into() }
}

#[test]
fn a_bad_message_is_reported_at_its_row_or_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(pyarrow_synthetic1(), dir.path().join("s.parquet")).unwrap();
    let rows = read_rows(&pyarrow_synthetic1()).unwrap();
    write_jsonl(&dir.path().join("s.jsonl"), &rows).unwrap();
    // Row 5 has a message whose role is null.
    for (file, at) in [
        ("s.parquet", Location::Row(5)),
        ("s.jsonl", Location::Line(5)),
    ] {
        match load_task_data(&synthetic1(file), 10, dir.path(), 1) {
            Err(DataError::BadRow {
                at: got, reason, ..
            }) => {
                assert_eq!(got, at);
                assert!(reason.contains("messages[1]"), "{reason}");
            }
            other => panic!("{file}: expected a bad row, got {other:?}"),
        }
    }
}

#[test]
fn parquet_shards_and_jsonl_give_the_same_samples() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<Row> = read_rows(&pyarrow_synthetic1()).unwrap();
    rows.pop(); // the row with a null role
    // Three copies with distinct ids, so sampling has something to choose from.
    let rows: Vec<Row> = (0..3)
        .flat_map(|copy| {
            rows.iter().cloned().map(move |mut row| {
                let id = format!("{}-{copy}", row["response_id"].as_str().unwrap());
                row.insert("response_id".into(), id.into());
                row
            })
        })
        .collect();
    write_jsonl(&dir.path().join("all.jsonl"), &rows).unwrap();
    let shards = dir.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    let options = ParquetOptions::default();
    write_parquet(
        &shards.join("train-00000-of-00002.parquet"),
        &rows[..5],
        &options,
    )
    .unwrap();
    write_parquet(
        &shards.join("train-00001-of-00002.parquet"),
        &rows[5..],
        &options,
    )
    .unwrap();
    std::fs::write(shards.join("README.md"), "not a table").unwrap();
    for samples in [3, 100] {
        let from_jsonl = load_task_data(&synthetic1("all.jsonl"), samples, dir.path(), 9).unwrap();
        let from_parquet = load_task_data(&synthetic1("shards"), samples, dir.path(), 9).unwrap();
        assert_eq!(from_jsonl, from_parquet);
        let TaskData::ReferencePairs(pairs) = from_parquet else {
            panic!("reference pairs expected")
        };
        // 2 usable rows (math and code prediction) per copy.
        assert_eq!(pairs.len(), samples.min(6));
        assert!(pairs.iter().all(|(_, reference)| {
            reference.ends_with("\\boxed{42}") || reference.ends_with("{\"output\": \"2\"}")
        }));
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        load_task_data(&synthetic1("empty"), 3, dir.path(), 9),
        Err(DataError::NoFiles { .. })
    ));
}

#[derive(Deserialize)]
struct MmluCase {
    challenge: String,
    reference: String,
    parsed: Option<(String, String)>,
    kept: bool,
}

fn mmlu_cases() -> Vec<MmluCase> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mmlu_parse.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn mmlu_challenges_parse_as_sn37_does() {
    for case in mmlu_cases() {
        let got = mmlu_question_answer(&case.challenge, &case.reference)
            .map(|qa| (qa.question, qa.answer));
        assert_eq!(got, case.parsed, "{:?}", case.challenge);
    }
}

#[test]
fn if_eval_reads_mmlu_rows_and_drops_one_word_answers() {
    let dir = tempfile::tempdir().unwrap();
    let cases = mmlu_cases();
    let rows: Vec<Row> = cases
        .iter()
        .map(|case| {
            let mut row = Row::new();
            row.insert("challenge".into(), case.challenge.clone().into());
            row.insert("reference".into(), case.reference.clone().into());
            row
        })
        .collect();
    write_parquet(
        &dir.path().join("mmlu.parquet"),
        &rows,
        &ParquetOptions::default(),
    )
    .unwrap();
    let kept: Vec<&MmluCase> = cases.iter().filter(|case| case.kept).collect();
    let source = SourceSpec::IfEval {
        questions: "mmlu.parquet".into(),
        version: assay_eval::ifeval::generate::IfEvalVersion::V2,
    };
    let TaskData::IfEval(samples) = load_task_data(&source, 10, dir.path(), 3).unwrap() else {
        panic!("if-eval samples expected")
    };
    // Consecutive questions are paired: n kept questions give n - 1 samples.
    assert_eq!(samples.len(), kept.len() - 1);
    for (sample, pair) in samples.iter().zip(kept.windows(2)) {
        let (first, second) = (
            pair[0].parsed.as_ref().unwrap(),
            pair[1].parsed.as_ref().unwrap(),
        );
        assert!(sample.prompts[0].contains(&format!("\"{}\"", first.0)));
        assert!(sample.prompts[1].contains(&format!("\"{}\"", second.0)));
    }
}
