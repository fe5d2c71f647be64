//! `assay bon` and `assay prm`: the one spelling `--model` (not `--generator`), and a tiny run
//! through the binary on the fixture models. (Their `--help` is locked with every other command's
//! in `help.rs`.)

use std::path::PathBuf;
use std::process::{Command, Output};

fn assay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env("COLUMNS", "100")
        .output()
        .unwrap()
}

fn fixture(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn one_spelling_for_the_model() {
    let out = assay(&["bon", "--generator", "x", "--prm", "p", "--out", "o"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--generator'"));
}

#[test]
fn a_tiny_run_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("bon");
    let out = assay(&[
        "bon",
        "--model",
        &fixture("../engine/fixtures/tiny-qwen2"),
        "--device",
        "cpu",
        "--dtype",
        "f32",
        "--prm",
        &fixture("../bon/fixtures/tiny-prm"),
        "--arithmetic-seed",
        "5",
        "--arithmetic-style",
        "bare",
        "--count",
        "2",
        "--n",
        "2",
        "--max-new-tokens",
        "6",
        "--aggregation",
        "min",
        "--system-prompt",
        "Answer in \\boxed{}.",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("greedy ") && stdout.contains("weighted@2"),
        "{stdout}"
    );
    let card = std::fs::read_to_string(out_dir.join("README.md")).unwrap();
    assert!(
        card.contains("- Device: cpu (f32)") && card.contains("aggregation `min`"),
        "{card}"
    );
    let analysis = std::fs::read_to_string(out_dir.join("analysis.md")).unwrap();
    assert!(
        analysis.contains("## How the scores are computed"),
        "{analysis}"
    );
    // Without a terminal, progress goes to the log as lines, never as bars.
    assert!(stderr.contains("stage") || stderr.is_empty(), "{stderr}");
}
