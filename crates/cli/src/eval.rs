//! `assay eval`: the arguments, turned into [`assay_eval::run::EvalSettings`].

use std::path::PathBuf;

use assay_eval::registry::Registry;
use assay_eval::run::{EvalEvent, EvalSettings, registry_table, results_table};

use crate::common::ModelArgs;
use crate::progress::Progress;

const EXAMPLES: &str = "Examples:
  assay eval --list
  assay eval --task sn37_word_sorting --limit 20                # the default model (SmolLM2-135M-Instruct)
  assay eval --model ./my-model --task arc_easy --data arc_easy_test.jsonl --out out/arc.json
  assay eval --model ./my-model --task my_task.toml,sn37_word_sorting --seed 7
  assay eval --model ./my-model --device cuda --task sn37_word_sorting   # bf16 on GPU 0
--task takes registry names or TOML task files, comma separated. --data replaces the task's own
documents with a JSON-lines file (one object a line); Hugging Face sources need it.
The results JSON has lm-evaluation-harness's layout (results, configs, versions, n-shot,
higher_is_better, n-samples, config, git_hash, date).";

/// Arguments of `assay eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct EvalArgs {
    /// List the registered tasks and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Tasks: registry names or TOML task files, comma separated.
    #[arg(long, required_unless_present = "list", value_delimiter = ',')]
    pub task: Vec<String>,
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

impl EvalArgs {
    /// The library settings these arguments stand for.
    pub fn settings(&self) -> EvalSettings {
        EvalSettings {
            model: self.model.model.clone(),
            placement: self.model.device.placement(),
            tasks: self.task.clone(),
            data: self.data.clone(),
            limit: self.limit,
            seed: self.seed,
            out: self.out.clone(),
            max_length: self.max_length,
        }
    }
}

use crate::diagnosis::explain;

/// Runs `assay eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    if args.list {
        let registry = Registry::builtin().map_err(|e| explain(&e))?;
        print!("{}", registry_table(&registry));
        return Ok(());
    }
    let settings = args.settings();
    let mut stage: Option<Progress> = None;
    let results = assay_eval::run::run(&settings, |event| match event {
        EvalEvent::LoadingModel { model, placement } => {
            stage = Some(Progress::spinner(format!("loading {model} on {placement}")));
        }
        EvalEvent::TaskStarted { task, docs } => {
            if let Some(done) = stage.take() {
                done.finish();
            }
            let mut progress = Progress::new(format!("task {task}"), docs as u64, "docs");
            progress.set_message(format!("{docs} documents"));
            stage = Some(progress);
        }
        EvalEvent::TaskFinished { .. } => {
            if let Some(done) = stage.take() {
                done.finish();
            }
        }
    })
    .map_err(|e| explain(&e))?;
    print!("{}", results_table(&results));
    eprintln!("wrote {}", settings.out.display());
    Ok(())
}
