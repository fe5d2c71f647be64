//! `assay eval` end to end on the tiny fixture model: the registry listing, a task file with
//! `--data`, the results JSON layout, the table, and precise errors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

fn repo_path(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

fn stdout_of(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of_failure(out: Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8(out.stderr).unwrap()
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
fn list_shows_the_registry() {
    let out = stdout_of(assay().args(["eval", "--list"]).output().unwrap());
    for name in [
        "arc_easy",
        "sn37_word_sorting",
        "multiple_choice",
        "acc_norm",
    ] {
        assert!(out.contains(name), "{name} missing from\n{out}");
    }
}

#[test]
fn a_task_file_with_data_writes_lm_eval_results_and_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("mini.toml");
    std::fs::write(&task, TASK).unwrap();
    let results = dir.path().join("nested/results.json");
    let out = stdout_of(
        assay()
            .args(["eval", "--model", &repo_path("engine/fixtures/tiny-qwen2")])
            .args(["--task", &task.display().to_string()])
            .args([
                "--data",
                &repo_path("eval/fixtures/lmeval/mmlu_items.jsonl"),
            ])
            .args(["--limit", "4", "--seed", "9", "--out"])
            .arg(&results)
            .output()
            .unwrap(),
    );
    assert!(
        out.contains("| mini_mc |") && out.contains("acc_norm"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let metrics = &json["results"]["mini_mc"];
    assert_eq!(metrics["alias"], "mini_mc");
    for key in ["acc,none", "acc_stderr,none", "acc_norm,none"] {
        let value = metrics[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&value), "{key} = {value}");
    }
    assert_eq!(json["n-samples"]["mini_mc"]["original"], 10);
    assert_eq!(json["n-samples"]["mini_mc"]["effective"], 4);
    assert_eq!(json["config"]["limit"], 4);
    assert_eq!(json["config"]["seed"], 9);
    assert_eq!(
        json["configs"]["mini_mc"]["request_type"],
        "multiple_choice"
    );
}

#[test]
fn unknown_tasks_and_missing_data_are_explained() {
    let tiny = repo_path("engine/fixtures/tiny-qwen2");
    let err = stderr_of_failure(
        assay()
            .args(["eval", "--model", &tiny, "--task", "no_such_task"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("unknown task \"no_such_task\"") && err.contains("arc_easy"),
        "{err}"
    );
    let err = stderr_of_failure(
        assay()
            .args(["eval", "--model", &tiny, "--task", "arc_easy"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("--data"), "{err}");
    let err = stderr_of_failure(assay().args(["eval"]).output().unwrap());
    assert!(err.contains("--task"), "{err}");
}
