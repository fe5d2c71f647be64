//! `eval` as a library call: plain settings in, an lm-evaluation-harness results file out. The
//! CLI (`assay eval`), the validator service and the Python bindings all call [`run`].
//!
//! Everything that can be checked before the model is loaded is: the task names, the data files
//! and the output folder; then the model is loaded once on the settings' placement and every
//! task runs on it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assay_engine::Placement;
use assay_errors::{Blame, Diagnose};
use serde::{Deserialize, Serialize};

use crate::docs::{DocsError, load_docs};
use crate::engine_lm::EngineLm;
use crate::registry::{Registry, RegistryError};
use crate::results::{EvalResults, RunConfig};
use crate::runner::{RunError, run_task};
use crate::task_def::{DataSource, TaskDef};

/// The model named in results when none is given (the engine's embedded default).
pub const DEFAULT_MODEL_NAME: &str = "SmolLM2-135M-Instruct";

/// What one evaluation run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// Model: folder, .gguf file or `org/name[@rev]` in the HF cache (`None`: the default).
    #[serde(default)]
    pub model: Option<String>,
    /// Where the model runs (device and dtype).
    #[serde(default)]
    pub placement: Placement,
    /// Registry names or TOML task files.
    pub tasks: Vec<String>,
    /// JSON-lines documents to use instead of each task's own source.
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// At most this many documents per task (overrides the tasks' limits).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Seed of generated tasks (overrides the tasks' seeds).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Where the results JSON is written.
    pub out: PathBuf,
    /// Longest scored sequence in tokens (`None`: the model's context).
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// Progress of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalEvent {
    /// The model is being loaded.
    LoadingModel {
        /// The model as given.
        model: String,
        /// Where it goes.
        placement: Placement,
    },
    /// A task starts.
    TaskStarted {
        /// Its name.
        task: String,
        /// Documents it will evaluate.
        docs: usize,
    },
    /// A task is done.
    TaskFinished {
        /// Its name.
        task: String,
    },
}

/// Why an evaluation run failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A task file or the built-in registry is invalid.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A task name is not registered.
    #[error("unknown task {name:?}; registered tasks: {}", known.join(", "))]
    UnknownTask {
        /// The name given.
        name: String,
        /// The registered names.
        known: Vec<String>,
    },
    /// No task was named.
    #[error("--task names no task; see `assay eval --list`")]
    NoTask,
    /// A task's documents could not be had.
    #[error(transparent)]
    Docs(#[from] DocsError),
    /// The model could not be loaded.
    #[error("cannot load the model {model}: {source}")]
    Model {
        /// The model as given.
        model: String,
        /// The engine's error.
        #[source]
        source: assay_engine::EngineError,
    },
    /// A task failed while running.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The results file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for EvalError {
    fn blame(&self) -> Blame {
        match self {
            Self::Registry(error) => error.blame(),
            Self::UnknownTask { .. } | Self::NoTask => Blame::Operator,
            Self::Docs(error) => error.blame(),
            Self::Model { source, .. } => source.blame(),
            Self::Run(error) => error.blame(),
            Self::Write { source, .. } => assay_errors::io_blame(source),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownTask { .. } | Self::NoTask => {
                Some("`assay eval --list` shows the registered tasks".into())
            }
            Self::Docs(error) => error.hint(),
            Self::Model { source, .. } => source.hint(),
            Self::Write { .. } => Some("pass --out a path in a writable folder".into()),
            _ => None,
        }
    }
}

/// Runs the settings' tasks on their model and writes the results (atomically) to
/// `settings.out`; returns them too.
pub fn run(
    settings: &EvalSettings,
    mut on_event: impl FnMut(EvalEvent),
) -> Result<EvalResults, EvalError> {
    let date = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut registry = Registry::builtin()?;
    let tasks = resolve_tasks(&mut registry, settings)?;
    check_writable(&settings.out)?;
    let mut task_docs = Vec::with_capacity(tasks.len());
    for task in &tasks {
        task_docs.push(load_docs(task, settings.data.as_deref(), task.seed)?);
    }
    let model_name = settings
        .model
        .clone()
        .unwrap_or_else(|| DEFAULT_MODEL_NAME.into());
    on_event(EvalEvent::LoadingModel {
        model: model_name.clone(),
        placement: settings.placement,
    });
    let model_error = |source| EvalError::Model {
        model: model_name.clone(),
        source,
    };
    let source =
        assay_engine::ModelSource::resolve(settings.model.as_deref()).map_err(model_error)?;
    let options = settings.placement.load_options().map_err(model_error)?;
    let loaded = assay_engine::load(&source, &options).map_err(model_error)?;
    let mut model = EngineLm::new(loaded);
    model.max_length = settings.max_length;
    let mut results = EvalResults {
        config: RunConfig {
            model: model_name,
            seed: tasks.first().map_or(0, |t| t.seed),
            limit: settings.limit,
        },
        git_hash: git_describe(),
        date,
        ..EvalResults::default()
    };
    for (task, docs) in tasks.iter().zip(&task_docs) {
        on_event(EvalEvent::TaskStarted {
            task: task.name.clone(),
            docs: task.limit.map_or(docs.len(), |l| l.min(docs.len())),
        });
        let (task_results, counts) = run_task(task, docs, &model)?;
        results.add_task(task, counts, task_results);
        on_event(EvalEvent::TaskFinished {
            task: task.name.clone(),
        });
    }
    write_results(&settings.out, &results)?;
    Ok(results)
}

/// The tasks named in the settings (names or TOML files), with the settings' limit and seed.
fn resolve_tasks(
    registry: &mut Registry,
    settings: &EvalSettings,
) -> Result<Vec<TaskDef>, EvalError> {
    let mut tasks = Vec::new();
    for item in settings
        .tasks
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let name = if item.ends_with(".toml") || Path::new(item).is_file() {
            registry.load_file(Path::new(item))?
        } else {
            item.to_owned()
        };
        let Some(task) = registry.get(&name) else {
            return Err(EvalError::UnknownTask {
                name,
                known: registry.names().map(str::to_owned).collect(),
            });
        };
        let mut task = task.clone();
        task.limit = settings.limit.or(task.limit);
        task.seed = settings.seed.unwrap_or(task.seed);
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(EvalError::NoTask);
    }
    Ok(tasks)
}

/// `git describe --always` in the working folder, as lm-eval records it (`None` when it fails).
fn git_describe() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["describe", "--always"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// Checks, before any work, that the results file's folder can be created and written.
fn check_writable(out: &Path) -> Result<(), EvalError> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write = |source: std::io::Error| EvalError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let probe = dir.join(format!(".assay-write-check.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(write)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes the results as pretty JSON through a temporary file, fsync and rename, so a crash
/// never leaves half a results file.
fn write_results(path: &Path, results: &EvalResults) -> Result<(), EvalError> {
    let write = |source: std::io::Error| EvalError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut json = serde_json::to_string_pretty(results).map_err(|e| write(e.into()))?;
    json.push('\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(json.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(write)
}

/// The registry as a Markdown table: name, request type, metrics, source, description.
pub fn registry_table(registry: &Registry) -> String {
    let mut out = String::from("| task | request | metrics | source | description |\n");
    out.push_str("|---|---|---|---|---|\n");
    for name in registry.names() {
        let Some(task) = registry.get(name) else {
            continue;
        };
        let source = match &task.source {
            DataSource::Jsonl { path } => format!("jsonl {path}"),
            DataSource::HuggingFace { dataset, .. } => format!("hf {dataset}"),
            DataSource::Generated { generator } => format!("generated {generator}"),
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {source} | {} |\n",
            request_name(task.request_type),
            task.metrics.join(", "),
            task.description.as_deref().unwrap_or("")
        ));
    }
    out
}

/// The request type as task files spell it (`multiple_choice`, ...).
fn request_name(request: crate::task_def::RequestType) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// lm-evaluation-harness's results table: one row per task and metric.
pub fn results_table(results: &EvalResults) -> String {
    let mut out =
        String::from("| Tasks | Version | Filter | n-shot | Metric | Value | | Stderr |\n");
    out.push_str("|---|---:|---|---:|---|---:|---|---:|\n");
    for (name, task) in &results.results {
        let version = results.versions.get(name).copied().unwrap_or_default();
        let shots = results.configs.get(name).map_or(0, |c| c.few_shot);
        for (key, value) in &task.metrics {
            let Some((metric, filter)) = key.split_once(',') else {
                continue;
            };
            if metric.ends_with("_stderr") {
                continue;
            }
            let stderr = task
                .metrics
                .get(&format!("{metric}_stderr,{filter}"))
                .map_or("N/A".into(), |v| {
                    v.as_f64().map_or("N/A".into(), |e| format!("{e:.4}"))
                });
            let value = value.as_f64().map_or("N/A".into(), |v| format!("{v:.4}"));
            out.push_str(&format!(
                "| {name} | {version} | {filter} | {shots} | {metric} | {value} | ± | {stderr} |\n"
            ));
        }
    }
    out
}
