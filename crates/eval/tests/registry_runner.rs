//! Registry loading, task-file errors, results layout and the generic runner against a
//! deterministic fake model.

use assay_eval::registry::{Registry, RegistryError, parse_task};
use assay_eval::results::{EvalResults, RunConfig};
use assay_eval::runner::{LanguageModel, ModelError, mean_and_stderr, run_task};
use assay_eval::task_def::{GenParams, RequestType};
use serde_json::{Map, Value, json};

/// Log-likelihood = -(number of characters of the continuation that are not 'x'); the
/// generated text echoes the context's last word; the reference loss is its length.
struct FakeModel;

impl LanguageModel for FakeModel {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        Ok(requests
            .iter()
            .map(|(_, cont)| {
                (
                    -(cont.chars().filter(|&c| c != 'x').count() as f64),
                    cont.contains('x'),
                )
            })
            .collect())
    }

    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        Ok(requests
            .iter()
            .map(|(ctx, _)| {
                format!(
                    "{}\nSTOP trailing",
                    ctx.split(' ').next_back().unwrap_or("")
                )
            })
            .collect())
    }

    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        Ok(requests
            .iter()
            .map(|(_, reference)| reference.len() as f64)
            .collect())
    }
}

fn docs(values: Value) -> Vec<Map<String, Value>> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc.as_object().unwrap().clone())
        .collect()
}

#[test]
fn builtin_tasks_load() {
    let registry = Registry::builtin().unwrap();
    let names: Vec<&str> = registry.names().collect();
    assert_eq!(
        names,
        [
            "arc_easy",
            "sn37_dyck",
            "sn37_if_eval",
            "sn37_text_loss",
            "sn37_word_sorting"
        ]
    );
    assert_eq!(
        registry.get("sn37_word_sorting").unwrap().request_type,
        RequestType::ReferenceLoss
    );
}

#[test]
fn task_file_errors_name_the_problem() {
    let unknown_field = "name='t'\nrequest_type='reference_loss'\nprompt='p'\ntarget='t'\nmetrics=['reference_loss']\ncolour=1\n[source]\nkind='jsonl'\npath='x'\n";
    let error = parse_task(unknown_field, "my.toml").unwrap_err();
    assert!(matches!(error, RegistryError::Parse { .. }));
    assert!(
        error.to_string().contains("my.toml") && error.to_string().contains("colour"),
        "{error}"
    );

    let bad_metric = unknown_field
        .replace("colour=1\n", "")
        .replace("['reference_loss']", "['acc']");
    let error = parse_task(&bad_metric, "my.toml").unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Invalid {
                field: "metrics",
                ..
            }
        ),
        "{error}"
    );

    let mut registry = Registry::builtin().unwrap();
    let duplicate = bad_metric
        .replace("['acc']", "['reference_loss']")
        .replace("name='t'", "name='arc_easy'");
    assert!(matches!(
        registry.add_toml(&duplicate, "dup.toml"),
        Err(RegistryError::Duplicate { .. })
    ));

    let missing = std::path::Path::new("/nonexistent/task.toml");
    assert!(matches!(
        registry.load_file(missing),
        Err(RegistryError::Io { .. })
    ));
}

#[test]
fn user_task_file_loads_from_disk() {
    let dir = std::env::temp_dir().join(format!("assay-eval-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mine.toml");
    std::fs::write(&path, "name='mine'\nrequest_type='generate_until'\nprompt='{{q}}'\ntarget='{{a}}'\nmetrics=['exact_match']\nlimit=2\n[source]\nkind='jsonl'\npath='d.jsonl'\n[generation]\nuntil=['STOP']\n").unwrap();
    let mut registry = Registry::new();
    assert_eq!(registry.load_file(&path).unwrap(), "mine");
    std::fs::remove_dir_all(&dir).unwrap();

    let task = registry.get("mine").unwrap();
    let data = docs(
        json!([{"q": "say cat", "a": "cat"}, {"q": "say dog", "a": "cow"}, {"q": "say x", "a": "x"}]),
    );
    let (results, counts) = run_task(task, &data, &FakeModel).unwrap();
    assert_eq!((counts.original, counts.effective), (3, 2));
    assert_eq!(results.get("exact_match", "none"), Some(0.5));
}

#[test]
fn multiple_choice_acc_and_acc_norm_follow_lm_eval() {
    let mut task = Registry::builtin()
        .unwrap()
        .get("arc_easy")
        .unwrap()
        .clone();
    task.prompt = "{{question}}".into();
    // Doc 0: "xxxxxxxx" has the best raw log-likelihood (-1 for the leading space) -> acc right.
    // Doc 1: raw picks "ab" (-3) over "abcdefgh" (-9); per character -1.5 vs -1.125 -> acc_norm picks index 1.
    let data = docs(json!([
        {"question": "q0", "choices": ["abc", "xxxxxxxx"], "answer_index": 1},
        {"question": "q1", "choices": ["ab", "abcdefgh"], "answer_index": "abcdefgh"}
    ]));
    let (results, _) = run_task(&task, &data, &FakeModel).unwrap();
    assert_eq!(results.get("acc", "none"), Some(0.5));
    assert_eq!(results.get("acc_norm", "none"), Some(1.0));
    let (_, stderr) = mean_and_stderr(&[1.0, 0.0]);
    assert_eq!(results.metrics["acc_stderr,none"], json!(stderr.unwrap()));

    let broken = docs(json!([{"question": "q", "choices": ["a"], "answer_index": 3}]));
    assert!(
        run_task(&task, &broken, &FakeModel)
            .unwrap_err()
            .to_string()
            .contains("answer_index")
    );
}

#[test]
fn reference_loss_is_mean_over_samples_and_results_serialize_like_lm_eval() {
    let task = Registry::builtin()
        .unwrap()
        .get("sn37_word_sorting")
        .unwrap()
        .clone();
    let data = docs(
        json!([{"challenge": "c", "reference": "ab"}, {"challenge": "c", "reference": "abcd"}]),
    );
    let (task_results, counts) = run_task(&task, &data, &FakeModel).unwrap();
    assert_eq!(task_results.get("reference_loss", "none"), Some(3.0));

    let mut all = EvalResults {
        config: RunConfig {
            model: "fake".into(),
            seed: 1234,
            limit: None,
        },
        ..Default::default()
    };
    all.add_task(&task, counts, task_results);
    let value = serde_json::to_value(&all).unwrap();
    assert_eq!(
        value["results"]["sn37_word_sorting"]["reference_loss,none"],
        json!(3.0)
    );
    assert!(value["results"]["sn37_word_sorting"]["reference_loss_stderr,none"].is_number());
    assert_eq!(
        value["n-samples"]["sn37_word_sorting"],
        json!({"original": 2, "effective": 2})
    );
    assert_eq!(value["versions"]["sn37_word_sorting"], json!(1));
    assert_eq!(value["config"]["seed"], json!(1234));
    let back: EvalResults = serde_json::from_value(value).unwrap();
    assert_eq!(back, all);
}
