//! The red-team fixtures of `fixtures/redteam/` (made by `make_redteam.py`, verdicts in its
//! `manifest.json`): every attack caught with its rule, every clean bundle untouched. Static
//! cases need no torch; run cases train a few batches with `ASSAY_PRISM_PYTHON` (skipped with a
//! `SKIPPED` line without it, as in `e2e.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_prism::bundle::{Bundle, Limits};
use assay_prism::corpus::{self, SourcePin};
use assay_prism::runner::{self, RunConfig, RunError};
use assay_prism::score::{Budgets, ScoreError};
use assay_prism::{CheckReport, PipelineError, Prior, check_bundle, fingerprint, run_bundle};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/redteam")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bundle(name: &str) -> Bundle {
    Bundle::open(&root().join("bundles").join(name), &Limits::default()).unwrap()
}

fn verdict(case: &Value) -> &str {
    case["expected"]["verdict"].as_str().unwrap()
}

fn checks() -> BTreeMap<String, CheckReport> {
    manifest()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            let report = check_bundle(&bundle(&name));
            (name, report)
        })
        .collect()
}

#[test]
fn static_attacks_are_caught_with_their_rule_and_run_cases_pass_the_static_gates() {
    let checks = checks();
    let mut caught = 0;
    for case in manifest() {
        let name = case["name"].as_str().unwrap();
        let report = &checks[name];
        match verdict(&case) {
            "rule" => {
                let rule = case["expected"]["rule"].as_str().unwrap();
                assert!(
                    report.findings.iter().any(|f| f.rule == rule),
                    "{name}: expected {rule}, got {:#?}",
                    report.findings
                );
                assert!(
                    report.findings.iter().all(|f| f.message.len() < 400),
                    "{name}: messages stay short"
                );
                caught += 1;
            }
            _ => assert!(
                report.passed() && report.flags.is_empty(),
                "{name} must pass every static gate: {:#?}",
                report.findings
            ),
        }
    }
    assert!(caught >= 19, "{caught}");
}

#[test]
fn renamed_copies_are_near_duplicates_and_honest_bundles_are_not() {
    let checks = checks();
    let prior = |name: &str| Prior {
        fingerprint: &checks[name].fingerprint,
        structure: &checks[name].structure,
    };
    let clean: Vec<String> = manifest()
        .iter()
        .filter(|c| verdict(c) == "clean")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for case in manifest().iter().filter(|c| verdict(c) == "near_duplicate") {
        let name = case["name"].as_str().unwrap();
        let of = case["expected"]["of"].as_str().unwrap();
        let current = &checks[name];
        let plain = fingerprint::jaccard(&current.fingerprint, &checks[of].fingerprint);
        let (multiplier, _, structural) =
            fingerprint::near_duplicate(&current.fingerprint, &current.structure, [prior(of)]);
        assert!(
            plain < fingerprint::NEAR_DUPLICATE_SIMILARITY,
            "{name}: PRISM's fingerprint alone misses the renamed copy ({plain:.3})"
        );
        assert!(structural > 0.99, "{name}: structural {structural:.3}");
        assert_eq!(
            multiplier,
            1.0 - fingerprint::NEAR_DUPLICATE_SEVERITY,
            "{name}"
        );
        // Against the other honest bundles it is no duplicate.
        let others = clean.iter().filter(|c| c.as_str() != of).map(|c| prior(c));
        let (m, _, s) =
            fingerprint::near_duplicate(&current.fingerprint, &current.structure, others);
        assert_eq!(m, 1.0, "{name} vs others: structural {s:.3}");
    }
    // Honest bundles, pairwise and against the example bundle: far from duplicates.
    let example = check_bundle(&assay_prism::example_bundle());
    for (i, a) in clean.iter().enumerate() {
        let others: Vec<Prior> = clean[i + 1..]
            .iter()
            .map(|b| prior(b))
            .chain([Prior {
                fingerprint: &example.fingerprint,
                structure: &example.structure,
            }])
            .collect();
        let (m, ast, s) =
            fingerprint::near_duplicate(&checks[a].fingerprint, &checks[a].structure, others);
        assert_eq!(m, 1.0, "{a}: ast {ast:.3}, structural {s:.3}");
        assert!(
            s < 0.6,
            "{a}: structural {s:.3} is too close to an honest bundle"
        );
    }
}

fn python_with_torch() -> Option<PathBuf> {
    static CHOICE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    CHOICE
        .get_or_init(|| match std::env::var_os(runner::PYTHON_ENV) {
            Some(named) => {
                let named = PathBuf::from(named);
                assert!(
                    runner::has_torch(&named),
                    "{} cannot import torch",
                    named.display()
                );
                Some(named)
            }
            None => {
                let fallback = PathBuf::from("python3");
                runner::has_torch(&fallback).then_some(fallback)
            }
        })
        .clone()
}

fn skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: no Python with torch (set {})",
        runner::PYTHON_ENV
    );
}

/// Varied text, locked with a val split (so the held-out step runs).
fn locked_corpus() -> tempfile::TempDir {
    let words = [
        "river", "stone", "light", "quiet", "number", "garden", "signal", "paper", "window",
        "orbit", "copper", "lesson", "market", "thread", "winter", "engine", "violet", "harbor",
    ];
    let mut state = 7u64;
    let docs = (0..600).map(|i| {
        let text: Vec<&str> = (0..40)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                words[(state >> 33) as usize % words.len()]
            })
            .collect();
        (format!("doc-{i:04}"), format!("{}.", text.join(" ")))
    });
    let dir = tempfile::tempdir().unwrap();
    let pin = SourcePin {
        name: "redteam synthetic".into(),
        revision: "1".into(),
    };
    let manifest = corpus::lock_corpus(docs, pin, dir.path()).unwrap();
    assert!(manifest.documents.get("val").copied().unwrap_or(0) > 0);
    dir
}

fn run_case(name: &str) -> Option<Result<assay_prism::RunReport, PipelineError>> {
    let python = python_with_torch()?;
    let data = locked_corpus();
    let mut config = RunConfig::new(python);
    config.threads = 1;
    config.vocab_size = 256;
    config.max_parameters = 200_000;
    config.heldout_byte_budget = 2_048;
    config.budgets = Budgets {
        step_budget: Some(6),
        ..Budgets::default()
    };
    Some(run_bundle(
        &bundle(name),
        data.path(),
        &config,
        [],
        &mut |_| {},
    ))
}

fn run_cases(verdicts: &[&str], test: &str) {
    for case in manifest()
        .iter()
        .filter(|c| c["stage"] == "run" && verdicts.contains(&verdict(c)))
    {
        let name = case["name"].as_str().unwrap();
        let Some(result) = run_case(name) else {
            skipped(test);
            return;
        };
        let expected = &case["expected"];
        match verdict(case) {
            "clean" => {
                let report = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    report.score.flags.is_empty(),
                    "{name}: {:?}",
                    report.score.flags
                );
                assert!(report.score.stored_score > 0.0, "{name}");
                assert!(!report.train.no_learning, "{name}");
                let heldout = report.heldout.as_ref().expect("a val split is there");
                assert_ne!(heldout.heldout_delta, 0.0, "{name}");
            }
            "param_cap" => {
                let stage = expected["stage"].as_str().unwrap();
                match result {
                    Err(PipelineError::Run(RunError::ParamCap {
                        stage: s,
                        count,
                        cap,
                    })) => {
                        assert_eq!(s, stage, "{name}: counted {count} over {cap}");
                    }
                    other => panic!("{name}: expected the cap at {stage}, got {other:?}"),
                }
            }
            "flag" => {
                let flag = expected["flag"].as_str().unwrap();
                let report = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    report.score.flags.iter().any(|f| f == flag),
                    "{name}: {:?}",
                    report.score.flags
                );
                assert_eq!(report.score.stored_score, 0.0, "{name}");
            }
            "step0_anomaly" => match result {
                Err(PipelineError::Score(ScoreError::Step0Anomaly { first_loss, .. })) => {
                    assert!(first_loss < 1e-3, "{name}: {first_loss}")
                }
                other => panic!("{name}: expected the step-0 anomaly, got {other:?}"),
            },
            other => panic!("{name}: unknown verdict {other}"),
        }
    }
}

#[test]
fn clean_bundles_train_and_score_without_any_flag() {
    run_cases(&["clean"], "clean runs");
}

#[test]
fn parameter_cap_evasions_are_refused_where_they_happen() {
    run_cases(&["param_cap"], "param-cap runs");
}

#[test]
fn noop_training_and_step0_anomalies_are_found() {
    run_cases(&["flag", "step0_anomaly"], "no-op and step-0 runs");
}
