//! The cached label scorer agrees with the engine's reference scorer (`score_completions`).

use std::path::PathBuf;

use assay_engine::{BatchLimits, LoadOptions, ModelSource, load, score_completions};
use assay_ftchallenge::prompt::PromptFormat;
use assay_ftchallenge::runner::score_labels;

#[test]
fn cached_label_scores_match_score_completions() {
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/tiny-qwen2");
    let lm = load(&ModelSource::HfFolder(tiny), &LoadOptions::default()).unwrap();
    let format = PromptFormat::new(&lm.tokenizer);
    let prompt = format
        .prompt_ids("My invoice is wrong, and the seat count too.")
        .unwrap();
    let labels: Vec<Vec<u32>> = ["billing.invoice_request", "account.sso_setup", "a.b"]
        .iter()
        .map(|l| format.intent_ids(l).unwrap())
        .collect();
    assert!(
        labels
            .iter()
            .map(Vec::len)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "labels of several lengths"
    );
    let got = score_labels(&lm.model, &prompt, &labels).unwrap();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> =
        labels.iter().map(|l| (prompt.clone(), l.clone())).collect();
    let want = score_completions(&lm.model, &pairs, BatchLimits::default(), |_| {}).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w.sum_logprob).abs() < 1e-3 * w.sum_logprob.abs().max(1.0),
            "{g} vs {}",
            w.sum_logprob
        );
    }
}
