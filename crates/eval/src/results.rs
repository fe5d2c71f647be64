//! The results file layout of lm-evaluation-harness, as serde types.
//!
//! ```json
//! { "results": { "arc_easy": { "alias": "arc_easy", "acc,none": 0.8, "acc_stderr,none": 0.01 } },
//!   "configs": { "arc_easy": { ...task definition... } },
//!   "versions": { "arc_easy": 1 },
//!   "n-shot": { "arc_easy": 0 },
//!   "higher_is_better": { "arc_easy": { "acc": true } },
//!   "n-samples": { "arc_easy": { "original": 2376, "effective": 100 } },
//!   "config": { "model": "...", "seed": 1234, "limit": 100 },
//!   "git_hash": "1a2b3c4", "date": 1767225600.0 }
//! ```
//!
//! `git_hash` is what lm-eval records the same way: `git describe --always` in the working
//! folder, or null outside a repository; `date` is the UNIX time the run started.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::task_def::TaskDef;

/// The filter name lm-evaluation-harness writes when no filter is applied.
pub const NO_FILTER: &str = "none";

/// One task's metrics, keyed `"<metric>,<filter>"` and `"<metric>_stderr,<filter>"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResults {
    /// Display name of the task.
    pub alias: String,
    /// Metric values by `"<metric>,<filter>"` key.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Value>,
}

impl TaskResults {
    /// Empty results for the task `alias`.
    pub fn new(alias: &str) -> Self {
        Self {
            alias: alias.to_owned(),
            metrics: BTreeMap::new(),
        }
    }

    /// Records a metric and its standard error (`"N/A"` when there is none, as lm-eval).
    pub fn insert(&mut self, metric: &str, filter: &str, value: f64, stderr: Option<f64>) {
        self.metrics
            .insert(format!("{metric},{filter}"), Value::from(value));
        let stderr = stderr.map_or_else(|| Value::from("N/A"), Value::from);
        self.metrics
            .insert(format!("{metric}_stderr,{filter}"), stderr);
    }

    /// The value of `metric` under `filter`, if recorded as a number.
    pub fn get(&self, metric: &str, filter: &str) -> Option<f64> {
        self.metrics
            .get(&format!("{metric},{filter}"))
            .and_then(Value::as_f64)
    }
}

/// Document counts of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleCounts {
    /// Documents in the source.
    pub original: usize,
    /// Documents evaluated (after `limit`).
    pub effective: usize,
}

/// Settings of the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Model identifier.
    pub model: String,
    /// The seed the run used.
    pub seed: u64,
    /// Document limit applied to every task, if any.
    pub limit: Option<usize>,
}

/// A complete results file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    /// Metrics by task name.
    pub results: BTreeMap<String, TaskResults>,
    /// The task definitions used, by task name.
    pub configs: BTreeMap<String, TaskDef>,
    /// Task definition versions, by task name.
    pub versions: BTreeMap<String, u32>,
    /// Few-shot examples per prompt, by task name.
    #[serde(rename = "n-shot", default)]
    pub n_shot: BTreeMap<String, usize>,
    /// For each task, whether a larger value of each metric is better.
    #[serde(default)]
    pub higher_is_better: BTreeMap<String, BTreeMap<String, bool>>,
    /// Document counts, by task name.
    #[serde(rename = "n-samples")]
    pub n_samples: BTreeMap<String, SampleCounts>,
    /// Run settings.
    pub config: RunConfig,
    /// `git describe --always` of the working folder when the run started (lm-eval's
    /// `git_hash`), `None` outside a git repository.
    #[serde(default)]
    pub git_hash: Option<String>,
    /// UNIX time the run started, in seconds.
    #[serde(default)]
    pub date: f64,
}

/// Whether a larger value of `metric` is better, as lm-eval's metric registry says (losses and
/// perplexities are lower-is-better; accuracies, matches and similarities higher).
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(
        metric,
        "perplexity"
            | "word_perplexity"
            | "byte_perplexity"
            | "bits_per_byte"
            | "reference_loss"
            | "text_loss"
            | "loss"
    )
}

impl EvalResults {
    /// Adds one task's definition, counts and metrics.
    pub fn add_task(&mut self, task: &TaskDef, counts: SampleCounts, results: TaskResults) {
        self.results.insert(task.name.clone(), results);
        self.configs.insert(task.name.clone(), task.clone());
        self.versions.insert(task.name.clone(), task.version);
        self.n_shot.insert(task.name.clone(), task.few_shot);
        self.higher_is_better.insert(
            task.name.clone(),
            task.metrics
                .iter()
                .map(|metric| (metric.clone(), higher_is_better(metric)))
                .collect(),
        );
        self.n_samples.insert(task.name.clone(), counts);
    }
}
