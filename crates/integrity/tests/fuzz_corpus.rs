//! Replays the committed fuzz corpus and seeds (`fuzz/corpus/<target>`, `fuzz/seeds/<target>`)
//! through the entry points and properties of the cargo-fuzz targets, so every input that once
//! found new code paths keeps being checked by plain `cargo test`, without nightly or libFuzzer.

use std::path::Path;

use assay_integrity::canonical::canonical_form;
use assay_integrity::models::{ModelRules, check_config, check_safetensors_header};
use assay_integrity::schema::{Limits, read_submission_bytes};

/// Every input of one target's corpus and seeds.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "seeds"] {
        for entry in std::fs::read_dir(fuzz.join(dir).join(target)).unwrap() {
            out.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    assert!(out.len() > 2, "{target}: the corpus is missing");
    out
}

#[test]
fn jsonl_corpus_keeps_only_problem_free_rows() {
    // The fuzz target's limits, so that its corpus reaches the same branches here.
    let limits = Limits {
        max_field_chars: 4096,
        max_line_bytes: 16 * 1024,
        max_rows: 1000,
        ..Limits::default()
    };
    let mut kept = 0;
    for input in inputs("jsonl_intake") {
        let intake = read_submission_bytes("fuzz.jsonl", &input, &limits);
        kept += intake.rows.len();
        for row in &intake.rows {
            assert!(!intake.problems.iter().any(|p| p.line == Some(row.line)));
            for (_, text) in row.content.text_fields() {
                let once = canonical_form(text);
                assert_eq!(canonical_form(&once), once);
            }
        }
    }
    assert!(kept > 0, "no corpus input has a valid row");
}

#[test]
fn config_corpus_only_accepts_whitelisted_architectures() {
    let rules = ModelRules::default();
    let mut accepted = 0;
    for input in inputs("model_config") {
        if let Ok(architecture) = check_config(&input, &rules) {
            assert!(rules.architectures.contains(&architecture));
            accepted += 1;
        }
    }
    assert!(accepted > 0, "no corpus input is an accepted config");
}

#[test]
fn safetensors_corpus_views_match_their_shapes() {
    let rules = ModelRules::default();
    let mut accepted = 0;
    for input in inputs("safetensors_header") {
        if let Ok(parsed) = check_safetensors_header("fuzz", &input, &rules) {
            accepted += 1;
            for (_, view) in parsed.iter() {
                let elements: usize = view.shape().iter().product();
                assert_eq!(elements * view.dtype().bitsize() / 8, view.data().len());
            }
        }
    }
    assert!(accepted > 0, "no corpus input is a valid safetensors file");
}
