//! What commands print for people, locked by insta snapshots: `assay eval`'s results table (a
//! task file on the tiny fixture model; accuracies over 4 documents are exact fractions, so the
//! table is the same on every CPU), `assay prism check` on a passing and a refused bundle,
//! `assay prism leaderboard` on a state file, and `assay sn37 competitions`. Review a change with
//! `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assay_prism::leaderboard::{ScoredSubmission, State};

fn assay() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_assay"));
    command.env("COLUMNS", "100");
    command
}

fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn stdout_of(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const TASK: &str = r#"
name = "mini_mc"
request_type = "multiple_choice"
prompt = "Question: {{question}}\nAnswer:"
target = "answer"
choices = "choices"
metrics = ["acc", "acc_norm"]
[source]
kind = "jsonl"
path = "not-used-when-data-is-given.jsonl"
"#;

#[test]
fn eval_results_table() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("mini.toml");
    std::fs::write(&task, TASK).unwrap();
    let out = assay()
        .arg("eval")
        .arg("--model")
        .arg(repo_path("engine/fixtures/tiny-qwen2"))
        .arg("--task")
        .arg(&task)
        .arg("--data")
        .arg(repo_path("eval/fixtures/lmeval/mmlu_items.jsonl"))
        .args(["--limit", "4", "--seed", "9", "--out"])
        .arg(dir.path().join("results.json"))
        .output()
        .unwrap();
    insta::assert_snapshot!(stdout_of(out));
}

fn example_bundle(dir: &Path) {
    for (path, text) in assay_prism::EXAMPLE_BUNDLE {
        std::fs::write(dir.join(path), text).unwrap();
    }
}

#[test]
fn prism_check_text() {
    let dir = tempfile::tempdir().unwrap();
    example_bundle(dir.path());
    let passed = stdout_of(
        assay()
            .args(["prism", "check"])
            .arg(dir.path())
            .output()
            .unwrap(),
    );
    insta::assert_snapshot!("prism_check_passed", passed);
    std::fs::write(dir.path().join("helpers.py"), "import socket\n").unwrap();
    let out = assay()
        .args(["prism", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a refused bundle exits non-zero");
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .replace(&dir.path().display().to_string(), "TMP");
    insta::assert_snapshot!("prism_check_refused", text);
}

fn scored(hotkey: &str, at: u64, score: f64, family: &str, training: &str) -> ScoredSubmission {
    ScoredSubmission {
        hotkey: hotkey.into(),
        accepted_at: at,
        score,
        bpb: 1.0 / score - 1.0,
        family_hash: family.into(),
        training_hash: training.into(),
        fingerprint: Default::default(),
        structure: Default::default(),
        architecture_name: Some(format!("{family} net")),
    }
}

#[test]
fn prism_leaderboard_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut state = State::default();
    state.record(scored("5Farch", 10, 0.25, "f1", "t1"));
    state.record(scored("5Ftrainer", 20, 0.3125, "f1", "t2"));
    state.record(scored("5Fother", 30, 0.2, "f2", "t3"));
    state.save(&path).unwrap();
    let text = stdout_of(
        assay()
            .args(["prism", "leaderboard", "--state"])
            .arg(&path)
            .output()
            .unwrap(),
    );
    insta::assert_snapshot!("prism_leaderboard", text);
    let empty = dir.path().join("empty.json");
    State::default().save(&empty).unwrap();
    let text = stdout_of(
        assay()
            .args(["prism", "leaderboard", "--state"])
            .arg(&empty)
            .output()
            .unwrap(),
    );
    insta::assert_snapshot!("prism_leaderboard_empty", text);
}

#[test]
fn sn37_competitions_listing() {
    insta::assert_snapshot!(stdout_of(
        assay().args(["sn37", "competitions"]).output().unwrap()
    ));
}
