//! Error messages as the `assay` binary prints them for typical bad inputs of each command (a
//! missing file, a malformed JSONL row or manifest, an unknown flag value): the cause chain, the
//! hint and whose fault it is, locked by insta snapshots (one per command). Temporary and
//! repository paths are replaced by `TMP` and `REPO`; log lines are off (`RUST_LOG=off`), so
//! only what a failed command prints is compared. Every case fails before any real work (the
//! models named are the tiny fixtures; the model cache is empty and nothing can be fetched). Review a change with `cargo insta review` (or
//! `INSTA_UPDATE=always` and `git diff`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn tiny() -> String {
    repo()
        .join("crates/engine/fixtures/tiny-qwen2")
        .display()
        .to_string()
}

/// Runs `assay args...`, which must fail, and returns `$ assay ...` and what it printed, with
/// paths redacted.
fn failure(tmp: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(tmp)
        .env("COLUMNS", "100")
        .env("RUST_LOG", "off")
        // An empty model cache and no Python to fetch with: a command that would download or
        // load a model before finding the bad input fails differently, so the snapshots catch
        // work done before the checks (and never depend on what this machine has cached).
        .env("ASSAY_CACHE_DIR", tmp.join("empty-cache"))
        .env("ASSAY_PYTHON", "/nonexistent/python3")
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_PRISM_PYTHON")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "assay {} should fail; stdout:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    let redact = |text: &str| {
        text.replace(&tmp.display().to_string(), "TMP")
            .replace(&repo().display().to_string(), "REPO")
    };
    format!(
        "$ assay {}\nexit code {}\n{}",
        redact(&args.join(" ")),
        out.status.code().unwrap_or(-1),
        redact(&String::from_utf8_lossy(&out.stderr))
    )
}

/// A temp folder with `bad.jsonl` (a good row, then a broken one) and `empty.txt`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"prompt\": \"2 + 2 =\", \"completion\": \" 4\"}\n{\"prompt\": \"3 + 3 =\", \n",
    )
    .unwrap();
    dir
}

fn snapshot(name: &str, cases: &[&[&str]]) {
    let dir = workspace();
    let tmp = dir.path().canonicalize().unwrap();
    let texts: Vec<String> = cases.iter().map(|args| failure(&tmp, args)).collect();
    insta::assert_snapshot!(name, texts.join("\n"));
}

#[test]
fn generate_errors() {
    let tiny = tiny();
    snapshot(
        "generate",
        &[
            &["generate", "--model", &tiny, "--input", "missing.jsonl"],
            &["generate", "--model", &tiny, "--input", "bad.jsonl"],
            &["generate", "--model", &tiny, "--device", "tpu", "hello"],
            &["generate", "--model", "no/such/model/folder", "hello"],
        ],
    );
}

#[test]
fn score_errors() {
    let tiny = tiny();
    snapshot(
        "score",
        &[
            &["score", "--model", &tiny, "--input", "missing.jsonl"],
            &["score", "--model", &tiny, "--input", "bad.jsonl"],
            &[
                "score",
                "--model",
                &tiny,
                "--input",
                "bad.jsonl",
                "--text-prefix",
                "bos",
            ],
        ],
    );
}

#[test]
fn train_errors() {
    let tiny = tiny();
    snapshot(
        "train",
        &[
            &[
                "train",
                "--model",
                &tiny,
                "--data",
                "missing.jsonl",
                "--out",
                "out",
            ],
            &[
                "train",
                "--model",
                &tiny,
                "--data",
                "bad.jsonl",
                "--out",
                "out",
            ],
            &[
                "train",
                "--model",
                &tiny,
                "--data",
                "bad.jsonl",
                "--out",
                "out",
                "--dtype",
                "f8",
            ],
        ],
    );
}

#[test]
fn eval_errors() {
    let tiny = tiny();
    snapshot(
        "eval",
        &[
            &["eval", "--model", &tiny, "--task", "no_such_task"],
            &[
                "eval",
                "--model",
                &tiny,
                "--task",
                "arc_easy",
                "--data",
                "missing.jsonl",
            ],
            &[
                "eval",
                "--model",
                &tiny,
                "--task",
                "arc_easy",
                "--data",
                "bad.jsonl",
            ],
        ],
    );
}

#[test]
fn datacomp_errors() {
    let dir = workspace();
    let tmp = dir.path().canonicalize().unwrap();
    std::fs::create_dir(tmp.join("round")).unwrap();
    let mut texts = vec![failure(
        &tmp,
        &["datacomp", "run", "--submissions", "round", "--out", "out"],
    )];
    std::fs::write(tmp.join("round/round.json"), "{\"miners\": [\n").unwrap();
    texts.push(failure(
        &tmp,
        &["datacomp", "run", "--submissions", "round", "--out", "out"],
    ));
    texts.push(failure(
        &tmp,
        &[
            "datacomp",
            "run",
            "--submissions",
            "round",
            "--out",
            "out",
            "--device",
            "gpu",
        ],
    ));
    insta::assert_snapshot!("datacomp", texts.join("\n"));
}

#[test]
fn ft_challenge_errors() {
    let examples = repo().join("examples/ft-challenge");
    let labels = examples.join("labels.jsonl").display().to_string();
    snapshot(
        "ft_challenge",
        &[
            &[
                "ft-challenge",
                "grade",
                "--results",
                "missing.json",
                "--labels",
                &labels,
            ],
            &[
                "ft-challenge",
                "grade",
                "--results",
                "bad.jsonl",
                "--labels",
                &labels,
            ],
            &[
                "ft-challenge",
                "run",
                "--train",
                "missing.jsonl",
                "--val",
                "bad.jsonl",
                "--weights",
                "w",
                "--output",
                "results.json",
            ],
        ],
    );
}

#[test]
fn bon_and_prm_errors() {
    let tiny = tiny();
    snapshot(
        "bon_prm",
        &[
            &[
                "bon",
                "--model",
                &tiny,
                "--prm",
                "no-prm",
                "--problems",
                "missing.jsonl",
                "--out",
                "o",
            ],
            &[
                "bon",
                "--model",
                &tiny,
                "--prm",
                "no-prm",
                "--problems",
                "bad.jsonl",
                "--out",
                "o",
            ],
            &["bon", "--prm", "p", "--out", "o", "--aggregation", "mean"],
            &[
                "prm",
                "score",
                "--prm",
                "no-prm",
                "--input",
                "missing.jsonl",
            ],
        ],
    );
}

#[test]
fn prism_errors() {
    let dir = workspace();
    let tmp = dir.path().canonicalize().unwrap();
    std::fs::write(tmp.join("state.json"), "{\"schema\": \n").unwrap();
    let texts = [
        failure(&tmp, &["prism", "check", "missing-bundle"]),
        failure(&tmp, &["prism", "leaderboard", "--state", "state.json"]),
        failure(&tmp, &["prism", "leaderboard", "--state", "missing.json"]),
    ];
    insta::assert_snapshot!("prism", texts.join("\n"));
}

#[test]
fn sn37_errors() {
    let examples = repo().join("examples/sn37");
    let models = examples.join("models").display().to_string();
    let data = examples.join("data").display().to_string();
    snapshot(
        "sn37",
        &[
            &[
                "sn37",
                "round",
                "--competition",
                "NO_SUCH",
                "--models",
                &models,
                "--data",
                &data,
                "--block",
                "2000",
                "--out",
                "out",
            ],
            &[
                "sn37",
                "round",
                "--competition",
                "TINY_DEMO",
                "--models",
                "missing",
                "--data",
                &data,
                "--block",
                "2000",
                "--out",
                "out",
            ],
            &["sn37", "hash", "missing"],
            &[
                "sn37",
                "round",
                "--competition",
                "TINY_DEMO",
                "--models",
                &models,
                "--block",
                "x",
            ],
        ],
    );
}
