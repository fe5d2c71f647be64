//! Multiple-choice acc / acc_norm / acc_bytes against lm-evaluation-harness itself, on the tiny
//! fixture models (golden file from `fixtures/lmeval/make_lmeval_fixtures.py`).

use std::path::PathBuf;

use assay_engine::{LoadOptions, ModelSource, load};
use assay_eval::docs::read_jsonl;
use assay_eval::engine_lm::EngineLm;
use assay_eval::registry::parse_task;
use assay_eval::runner::{LanguageModel, run_task};
use assay_eval::task_def::render_template;
use serde_json::Value;

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const TASK: &str = r#"
name = "assay_mmlu_mini"
request_type = "multiple_choice"
prompt = "Question: {{question}}\nAnswer:"
target = "answer"
choices = "choices"
metrics = ["acc", "acc_norm", "acc_bytes"]
[source]
kind = "jsonl"
path = "unused: the test passes the documents"
"#;

/// Log-likelihoods agree to this (f32 sums over a few tokens, values down to about -200).
const LOGPROB_TOLERANCE: f64 = 2e-3;

#[test]
fn multiple_choice_metrics_match_lm_eval() {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(here().join("fixtures/lmeval/mc-golden.json")).unwrap(),
    )
    .unwrap();
    let docs = read_jsonl(&here().join("fixtures/lmeval/mmlu_items.jsonl")).unwrap();
    let task = parse_task(TASK, "test").unwrap();
    assert_eq!(task.prompt, golden["prompt"].as_str().unwrap());
    for (name, want) in golden["models"].as_object().unwrap() {
        let dir = here().join("../engine/fixtures").join(name);
        let model =
            EngineLm::new(load(&ModelSource::HfFolder(dir), &LoadOptions::default()).unwrap());
        check_loglikelihoods(&model, &docs, &task.prompt, &want["docs"], name);
        let (results, counts) = run_task(&task, &docs, &model).unwrap();
        assert_eq!(counts.effective, docs.len());
        for metric in ["acc", "acc_norm", "acc_bytes"] {
            for key in [format!("{metric},none"), format!("{metric}_stderr,none")] {
                let expected = want["results"][&key].as_f64().unwrap();
                let got = results.metrics[&key].as_f64().unwrap();
                assert!(
                    (got - expected).abs() < 1e-12,
                    "{name} {key}: {got} vs {expected}"
                );
            }
        }
    }
}

/// Every choice's log-likelihood, as lm-eval's `hf` model computed it.
fn check_loglikelihoods(
    model: &EngineLm,
    docs: &[serde_json::Map<String, Value>],
    prompt: &str,
    want: &Value,
    name: &str,
) {
    for (doc, want) in docs.iter().zip(want.as_array().unwrap()) {
        let context = render_template(prompt, doc).unwrap();
        let requests: Vec<(String, String)> = doc["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (context.clone(), format!(" {}", c.as_str().unwrap())))
            .collect();
        let got = model.loglikelihood(&requests).unwrap();
        for ((logprob, _), expected) in got.iter().zip(want["loglikelihoods"].as_array().unwrap()) {
            let expected = expected.as_f64().unwrap();
            assert!(
                (logprob - expected).abs() < LOGPROB_TOLERANCE,
                "{name} {context:?}: {logprob} vs {expected}"
            );
        }
    }
}
