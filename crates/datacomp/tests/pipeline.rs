//! `assay_datacomp::run`: errors before any work, the right verb, and outputs that appear all at
//! once in a folder of their own.

use std::path::{Path, PathBuf};

use assay_datacomp::{DatacompError, EvalSet, RoundSettings, run};
use assay_errors::{Blame, Diagnose};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/datacomp")
        .join(name)
}

/// A tiny round: two miners, a small budget, two problems, no generation.
fn settings(submissions: &Path, out: &Path) -> RoundSettings {
    RoundSettings {
        submissions: submissions.to_path_buf(),
        out: out.to_path_buf(),
        eval: EvalSet::Generated {
            seed: Some(3),
            count: 2,
        },
        token_budget: 100,
        generate: false,
        ..Default::default()
    }
}

fn two_miners(dir: &Path) {
    let honest = std::fs::read_to_string(example("honest.jsonl")).unwrap();
    let rows: Vec<&str> = honest.lines().take(3).collect();
    std::fs::write(dir.join("a.jsonl"), rows.join("\n")).unwrap();
    std::fs::write(dir.join("b.jsonl"), rows[..1].join("\n")).unwrap();
    std::fs::write(
        dir.join("round.json"),
        r#"{"miners": [{"hotkey": "a", "file": "a.jsonl", "block": 1},
                       {"hotkey": "b", "file": "b.jsonl", "block": 2}]}"#,
    )
    .unwrap();
}

#[test]
fn input_errors_come_before_any_work_and_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // No miners: refused before the model loads, and nothing is created.
    std::fs::write(dir.path().join("round.json"), r#"{"miners": []}"#).unwrap();
    let err = run(&settings(dir.path(), &out), |_| {}).unwrap_err();
    assert!(err.to_string().contains("lists no miners"), "{err}");
    assert_eq!(err.blame(), Blame::Operator);
    assert!(!out.exists());
    // A manifest with a duplicate key is refused with the key's name.
    std::fs::write(
        dir.path().join("round.json"),
        r#"{"miners": [], "miners": [{"hotkey": "a", "file": "a.jsonl", "block": 1}]}"#,
    )
    .unwrap();
    let err = run(&settings(dir.path(), &out), |_| {}).unwrap_err();
    assert!(err.to_string().contains("duplicate key `miners`"), "{err}");
    // No seed anywhere: a fresh evaluation set cannot be derived, so the round is refused.
    two_miners(dir.path());
    let mut no_seed = settings(dir.path(), &out);
    no_seed.eval = EvalSet::Generated {
        seed: None,
        count: 2,
    };
    let err = run(&no_seed, |_| {}).unwrap_err();
    assert!(err.to_string().contains("block_hash"), "{err}");
    // An output path that is a file.
    let file = dir.path().join("taken");
    std::fs::write(&file, "x").unwrap();
    let err = run(&settings(dir.path(), &file), |_| {}).unwrap_err();
    assert!(err.to_string().contains("not a folder"), "{err}");
    // An output folder under a file cannot be created: a write error, not a read error.
    let err = run(&settings(dir.path(), &file.join("out")), |_| {}).unwrap_err();
    assert!(matches!(err, DatacompError::Write { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot write"), "{err}");
    assert!(err.hint().is_some());
    // A missing submissions folder.
    let err = run(&settings(&dir.path().join("nope"), &out), |_| {}).unwrap_err();
    assert!(err.to_string().contains("round.json"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_round_is_written_whole_and_is_not_overwritten_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    two_miners(dir.path());
    let out = dir.path().join("round-out");
    let results = run(&settings(dir.path(), &out), |_| {}).unwrap();
    for name in [
        "results.json",
        "report.md",
        "eval_set.jsonl",
        "timings.json",
        "scores.svg",
        "scores.png",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    assert!(out.join("adapters/a/adapter_config.json").is_file());
    let eval_set = std::fs::read_to_string(out.join("eval_set.jsonl")).unwrap();
    assert_eq!(eval_set.lines().count(), 2);
    assert!(results.config.eval_source.starts_with("seed:3:2"));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("score = max(0, Δ) × penalty × volume"),
        "{report}"
    );
    // Nothing partial is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
    // A second run into the finished folder is refused before any work...
    let err = run(&settings(dir.path(), &out), |_| {}).unwrap_err();
    assert!(matches!(err, DatacompError::OutputExists { .. }), "{err:?}");
    // ...and with overwrite the folder is replaced whole (an old stray file disappears).
    std::fs::write(out.join("stray.txt"), "old").unwrap();
    let mut again = settings(dir.path(), &out);
    again.overwrite = true;
    let second = run(&again, |_| {}).unwrap();
    assert!(!out.join("stray.txt").exists());
    assert_eq!(
        serde_json::to_string(&results).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
}
