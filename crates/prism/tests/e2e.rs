//! End to end: the example bundle trains on the pydoc corpus and is scored. Needs a Python with
//! torch (`ASSAY_PRISM_PYTHON`, else /work/pyref/bin/python, else python3); skips with a message
//! when there is none.

use std::path::PathBuf;

use assay_prism::cli::example_bundle;
use assay_prism::runner::{self, RunConfig};
use assay_prism::score::{Budgets, StopReason};
use assay_prism::{corpus, run_bundle};

fn python_with_torch() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os(runner::PYTHON_ENV).map(PathBuf::from),
        Some(PathBuf::from("/work/pyref/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| runner::has_torch(p))
}

#[test]
fn example_bundle_trains_and_scores() {
    let Some(python) = python_with_torch() else {
        eprintln!(
            "SKIPPED example_bundle_trains_and_scores: no Python with torch (set ASSAY_PRISM_PYTHON)"
        );
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let topics = runner::pydoc_topics(&python).unwrap();
    corpus::write_corpus(&topics, "test", data.path()).unwrap();
    let mut config = RunConfig::new(python);
    config.budgets = Budgets {
        step_budget: Some(12),
        ..Budgets::default()
    };
    config.heldout_byte_budget = 8_192;
    config.threads = 2;
    let report = run_bundle(&example_bundle(), data.path(), &config, [], &mut |_| {}).unwrap();
    let preq = &report.train.prequential;
    assert_eq!(preq.online_loss.len(), 12);
    assert_eq!(report.train.stopped_reason, Some(StopReason::StepBudget));
    assert_eq!(preq.covered_bytes_int(), 12 * 8 * 128);
    // Random init over 4096 ids starts near ln 4096 and the model learns something.
    assert!(
        (preq.online_loss[0] - 4096f64.ln()).abs() < 0.5,
        "{:?}",
        preq.online_loss
    );
    assert!(
        preq.online_loss[11] < preq.online_loss[0] - 1.0,
        "{:?}",
        preq.online_loss
    );
    // bpb recomputed by hand from the recorded losses and byte counts.
    let hand: f64 = preq
        .online_loss
        .iter()
        .map(|l| l * (8.0 * 127.0))
        .sum::<f64>()
        / std::f64::consts::LN_2
        / (12.0 * 1024.0);
    assert!((report.score.bpb - hand).abs() < 1e-12);
    let heldout = report.heldout.expect("val split present");
    assert!(heldout.heldout_delta > 0.0, "{heldout:?}");
    assert!(report.score.final_score > 0.0);
    assert!(report.train.limits.memory_bytes > 0);
    println!("{}", serde_json::to_string_pretty(&report.score).unwrap());
}
