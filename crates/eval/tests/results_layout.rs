//! The results file carries lm-evaluation-harness's `n-shot`, `higher_is_better`, `git_hash` and
//! `date` keys (issue 25 item 5).

use assay_eval::registry::Registry;
use assay_eval::results::{EvalResults, SampleCounts, TaskResults, higher_is_better};
use serde_json::json;

#[test]
fn results_have_lm_eval_run_metadata() {
    let registry = Registry::builtin().unwrap();
    let mut results = EvalResults {
        git_hash: Some("1a2b3c4".into()),
        date: 1_767_225_600.5,
        ..EvalResults::default()
    };
    for name in ["arc_easy", "sn37_word_sorting"] {
        let task = registry.get(name).unwrap();
        let counts = SampleCounts {
            original: 2,
            effective: 2,
        };
        results.add_task(task, counts, TaskResults::new(name));
    }
    let value = serde_json::to_value(&results).unwrap();
    assert_eq!(
        value["n-shot"],
        json!({"arc_easy": 0, "sn37_word_sorting": 0})
    );
    assert_eq!(value["higher_is_better"]["arc_easy"]["acc"], json!(true));
    assert_eq!(
        value["higher_is_better"]["arc_easy"]["acc_norm"],
        json!(true)
    );
    assert_eq!(
        value["higher_is_better"]["sn37_word_sorting"],
        json!({"reference_loss": false})
    );
    assert_eq!(value["git_hash"], json!("1a2b3c4"));
    assert_eq!(value["date"], json!(1_767_225_600.5));
    let back: EvalResults = serde_json::from_value(value).unwrap();
    assert_eq!(back, results);
    assert!(!higher_is_better("perplexity") && higher_is_better("exact_match"));
}
