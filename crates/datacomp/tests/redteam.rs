//! The red-team round of `fixtures/redteam/` (written by `examples/make_redteam.rs`): every attack
//! caught with the right rule, every honest miner untouched, exactly as `expected.json` says.

use std::collections::BTreeMap;
use std::path::PathBuf;

use assay_datacomp::round::{Manifest, default_policy, integrity_stage};
use assay_datacomp::task::generated_problems;
use assay_integrity::report::RejectReason;

/// The rule a rejection belongs to. The three copy rules (exact, near-duplicate, same problem
/// with aligned reasoning) are one verdict: which of them sees a given paraphrased row first
/// depends on how many words the paraphrase happened to change.
fn kind(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::Schema { .. } => "schema",
        RejectReason::ExactDuplicate { .. }
        | RejectReason::NearDuplicate { .. }
        | RejectReason::SameProblem { .. } => "copy",
        RejectReason::Contaminated { .. } => "contaminated",
        RejectReason::WrongAnswer { .. } => "wrong_answer",
    }
}

#[test]
fn every_attack_is_caught_and_honest_miners_are_untouched() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/redteam");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let manifest = Manifest::read(&dir).unwrap();
    let (seed, _) = manifest.eval_seed().unwrap();
    let count = expected["eval_count"].as_u64().unwrap() as usize;
    let problems = generated_problems(seed, count);
    let (_, outcome) = integrity_stage(&dir, &problems, &default_policy()).unwrap();
    let miners = expected["miners"].as_object().unwrap();
    assert_eq!(outcome.report.miners.len(), miners.len());
    let mut failures = Vec::new();
    for report in &outcome.report.miners {
        let want = &miners[&report.miner];
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        for row in &report.rejected {
            for reason in &row.reasons {
                *rejected.entry(kind(reason).to_string()).or_default() += 1;
            }
        }
        let want_rejected: BTreeMap<String, u64> = want["rejected"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        let got = (
            report.kept_lines.len() as u64,
            rejected,
            report.penalty.disqualified,
        );
        let wanted = (
            want["kept"].as_u64().unwrap(),
            want_rejected,
            want["disqualified"].as_bool().unwrap(),
        );
        if got != wanted {
            failures.push(format!(
                "{}: got {got:?}, expected {wanted:?}\n  {}",
                report.miner,
                report
                    .rejected
                    .iter()
                    .flat_map(|r| r.reasons.iter().map(move |x| format!(
                        "{}: {}",
                        r.line,
                        x.describe()
                    )))
                    .take(4)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The liar reported block 1 but the chain says 21: priority went to the verified block.
    let liar = manifest
        .miners
        .iter()
        .find(|m| m.hotkey == "block_liar")
        .unwrap();
    assert_eq!(liar.priority_block(), 21);
}

/// Penalties are proportional below the disqualification limit: one caught train-on-test row of
/// forty costs its own weight, not the whole score.
#[test]
fn caught_train_on_test_costs_in_proportion() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/redteam");
    let manifest = Manifest::read(&dir).unwrap();
    let (seed, _) = manifest.eval_seed().unwrap();
    let (_, outcome) =
        integrity_stage(&dir, &generated_problems(seed, 8), &default_policy()).unwrap();
    let m = outcome
        .report
        .miners
        .iter()
        .find(|m| m.miner == "one_word_test")
        .unwrap();
    assert_eq!(m.counts.contaminated, 1);
    assert!(!m.penalty.disqualified);
    let c = &m.counts;
    let expected = 1.0
        - (3.0 * c.contaminated as f32
            + c.duplicate as f32
            + c.wrong as f32
            + 0.5 * c.invalid as f32)
            / c.rows as f32;
    assert!(
        (m.penalty.multiplier - expected).abs() < 1e-6,
        "{}",
        m.penalty.multiplier
    );
}
