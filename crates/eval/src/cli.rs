//! `assay eval`: run registered tasks (or task files) on a model, write the results JSON in
//! lm-evaluation-harness's layout and print a table; `assay eval --list` shows the registry.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::docs::load_docs;
use crate::engine_lm::EngineLm;
use crate::registry::Registry;
use crate::results::{EvalResults, RunConfig};
use crate::runner::run_task;
use crate::task_def::TaskDef;

const EXAMPLES: &str = "Examples:
  assay eval --list
  assay eval --task sn37_word_sorting --limit 20                # the default model (SmolLM2-135M-Instruct)
  assay eval --model ./my-model --task arc_easy --data arc_easy_test.jsonl --out out/arc.json
  assay eval --model ./my-model --task my_task.toml,sn37_word_sorting --seed 7
--task takes registry names or TOML task files, comma separated. --data replaces the task's own
documents with a JSON-lines file (one object a line); Hugging Face sources need it.";

/// Arguments of `assay eval`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct EvalArgs {
    /// List the registered tasks and exit.
    #[arg(long)]
    pub list: bool,
    /// Model: folder, .gguf file or org/name[@rev] in the HF cache (default SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<String>,
    /// Tasks: registry names or TOML task files, comma separated.
    #[arg(long, required_unless_present = "list")]
    pub task: Option<String>,
    /// JSON-lines documents to use instead of the task's own source.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluate at most this many documents per task (overrides the task's limit).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of generated tasks (overrides the task's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the results JSON.
    #[arg(long, default_value = "out/eval-results.json")]
    pub out: PathBuf,
    /// Longest scored sequence in tokens (default: the model's context).
    #[arg(long)]
    pub max_length: Option<usize>,
}

/// Runs `assay eval`.
pub fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    let mut registry = Registry::builtin()?;
    if args.list {
        print!("{}", registry_table(&registry));
        return Ok(());
    }
    let spec = args.task.as_deref().unwrap_or_default();
    let tasks = resolve_tasks(&mut registry, spec, args)?;
    let source = assay_engine::ModelSource::resolve(args.model.as_deref())?;
    let loaded =
        assay_engine::load(&source, &assay_engine::LoadOptions::default()).with_context(|| {
            format!(
                "loading model {}",
                args.model.as_deref().unwrap_or("(default)")
            )
        })?;
    let mut model = EngineLm::new(loaded);
    model.max_length = args.max_length;
    let seed = tasks.first().map_or(0, |t| t.seed);
    let mut results = EvalResults {
        config: RunConfig {
            model: args
                .model
                .clone()
                .unwrap_or_else(|| "SmolLM2-135M-Instruct".into()),
            seed,
            limit: args.limit,
        },
        ..EvalResults::default()
    };
    for task in &tasks {
        let docs = load_docs(task, args.data.as_deref(), task.seed)?;
        let (task_results, counts) = run_task(task, &docs, &model)?;
        results.add_task(task, counts, task_results);
    }
    write_results(&args.out, &results)?;
    print!("{}", results_table(&results));
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// The tasks named in `spec` (comma separated names or TOML files), with the command-line
/// limit and seed applied.
fn resolve_tasks(
    registry: &mut Registry,
    spec: &str,
    args: &EvalArgs,
) -> anyhow::Result<Vec<TaskDef>> {
    let mut tasks = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = if item.ends_with(".toml") || Path::new(item).is_file() {
            registry.load_file(Path::new(item))?
        } else {
            item.to_owned()
        };
        let Some(task) = registry.get(&name) else {
            let known: Vec<&str> = registry.names().collect();
            bail!(
                "unknown task {name:?}; registered tasks: {}",
                known.join(", ")
            );
        };
        let mut task = task.clone();
        task.limit = args.limit.or(task.limit);
        task.seed = args.seed.unwrap_or(task.seed);
        tasks.push(task);
    }
    if tasks.is_empty() {
        bail!("--task names no task; see `assay eval --list`");
    }
    Ok(tasks)
}

fn write_results(path: &Path, results: &EvalResults) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
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
            crate::task_def::DataSource::Jsonl { path } => format!("jsonl {path}"),
            crate::task_def::DataSource::HuggingFace { dataset, .. } => format!("hf {dataset}"),
            crate::task_def::DataSource::Generated { generator } => {
                format!("generated {generator}")
            }
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
