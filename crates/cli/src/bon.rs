//! `assay bon` and `assay prm train|score`: the flags, turned into `assay_bon`'s settings; the
//! pipeline's events drive the progress bars (or log lines without a terminal).

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use assay_bon::pipeline::{BonConfig, Event, SYSTEM_PROMPT};
use assay_bon::prm::RewardKind;
use assay_bon::run::{self as bon_run, BonSettings, PrmScoreSettings, PrmTrainSettings};
use assay_bon::train::HeadTrainConfig;
use assay_bon::{ArithmeticStyle, LevelRange, ProblemSettings, ProblemSource};
use assay_eval::math::select::Aggregation;

use crate::common::{DeviceArgs, ModelArgs};
use crate::progress::Progress;

/// Where the problems come from.
#[derive(Debug, Clone, clap::Args)]
pub struct ProblemArgs {
    /// MATH-500-format JSONL or Parquet (problem, solution, answer, subject, level, unique_id).
    #[arg(long, conflicts_with = "arithmetic_seed")]
    pub problems: Option<PathBuf>,
    /// Instead of a file: seeded verifiable arithmetic problems from this generator seed.
    #[arg(long)]
    pub arithmetic_seed: Option<u64>,
    /// Wording of generated problems.
    #[arg(long, value_enum, default_value_t = StyleArg::Word)]
    pub arithmetic_style: StyleArg,
    /// Keep only these levels, e.g. `1-3` or `2`.
    #[arg(long)]
    pub levels: Option<LevelRange>,
    /// How many problems (a seeded subset of a file; the first ones of the generator).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Seed of the subset, of sampling and (for `prm train`) of the train/validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `--arithmetic-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StyleArg {
    /// Multi-step word problems.
    Word,
    /// Bare sums and products (`What is $23 + 7$?`).
    Bare,
}

impl ProblemArgs {
    /// The library's problem settings.
    pub fn settings(&self) -> anyhow::Result<ProblemSettings> {
        let source = match (&self.problems, self.arithmetic_seed) {
            (Some(path), _) => ProblemSource::File(path.clone()),
            (None, Some(seed)) => ProblemSource::Arithmetic {
                seed,
                style: match self.arithmetic_style {
                    StyleArg::Word => ArithmeticStyle::Word,
                    StyleArg::Bare => ArithmeticStyle::Bare,
                },
            },
            (None, None) => bail!("give --problems FILE or --arithmetic-seed S"),
        };
        Ok(ProblemSettings {
            source,
            levels: self.levels,
            count: self.count,
            seed: self.seed,
        })
    }
}

/// `--prm-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrmKindArg {
    /// One reward per response line (Skywork's recipe).
    Process,
    /// One reward for the whole response, at its last token.
    Outcome,
}

impl From<PrmKindArg> for RewardKind {
    fn from(kind: PrmKindArg) -> Self {
        match kind {
            PrmKindArg::Process => RewardKind::Process,
            PrmKindArg::Outcome => RewardKind::Outcome,
        }
    }
}

/// `--aggregation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AggregationArg {
    /// The last step's reward (search-and-learn's default).
    Last,
    /// The smallest step reward.
    Min,
    /// The product of the step rewards.
    Prod,
}

impl From<AggregationArg> for Aggregation {
    fn from(a: AggregationArg) -> Self {
        match a {
            AggregationArg::Last => Aggregation::Last,
            AggregationArg::Min => Aggregation::Min,
            AggregationArg::Prod => Aggregation::Prod,
        }
    }
}

/// `assay bon`: best-of-N with a reward model.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  assay prm train --arithmetic-seed 1 --count 64 --n 8 --out runs/prm
  assay bon --prm runs/prm --arithmetic-seed 7 --count 30 --n 16 --out runs/bon
  assay bon --model Qwen/Qwen2.5-1.5B-Instruct --prm Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B \\
      --problems math500.jsonl --levels 1-3 --count 20 --seed 0 --n 16 --temperature 0.8 \\
      --temperatures 0.4,1.2 --device cuda --out runs/bon-math

--model is the generator; both it and the reward model run on --device in --dtype. The output
folder is a Hub dataset (data/*.jsonl and *.parquet, README.md card), with results.json,
analysis.md (which states how every figure is computed) and plots/. Then upload:
  huggingface-cli upload <user>/<name> runs/bon . --repo-type dataset")]
pub struct BonArgs {
    /// The generator, and where both models run.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Reward model: a Skywork-layout folder, a HF cache id, or a folder from `assay prm train`.
    #[arg(long)]
    pub prm: String,
    /// Read rewards per step (process) or once at the end (outcome); default: the model's own.
    #[arg(long, value_enum)]
    pub prm_kind: Option<PrmKindArg>,
    /// Problems.
    #[command(flatten)]
    pub problems: ProblemArgs,
    /// Samples per problem (the largest budget; accuracies are reported at 1, 2, 4, ..., n).
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Further temperatures for the sweep, comma separated (each sampled with --n).
    #[arg(long, value_delimiter = ',')]
    pub temperatures: Vec<f32>,
    /// System message (default: search-and-learn's MATH prompt).
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// Nucleus threshold (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Most new tokens per solution.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// How step rewards become a sample's score.
    #[arg(long, value_enum, default_value_t = AggregationArg::Last)]
    pub aggregation: AggregationArg,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_rows: usize,
    /// Sequences scored together by the reward model.
    #[arg(long, default_value_t = 8)]
    pub prm_batch: usize,
    /// Output folder (dataset, plots, analysis).
    #[arg(long)]
    pub out: PathBuf,
}

impl BonArgs {
    /// The library's settings.
    pub fn settings(&self) -> anyhow::Result<BonSettings> {
        Ok(BonSettings {
            model: self.model.model.clone(),
            prm: self.prm.clone(),
            prm_kind: self.prm_kind.map(RewardKind::from),
            problems: self.problems.settings()?,
            sampling: BonConfig {
                system_prompt: self
                    .system_prompt
                    .clone()
                    .unwrap_or_else(|| SYSTEM_PROMPT.into()),
                n: self.n,
                temperature: self.temperature,
                sweep_temperatures: self.temperatures.clone(),
                top_p: self.top_p,
                max_new_tokens: self.max_new_tokens,
                seed: self.problems.seed,
                aggregation: self.aggregation.into(),
                batch_rows: self.batch_rows,
                prm_batch: self.prm_batch,
            },
            placement: self.model.device.placement(),
            out: self.out.clone(),
            command: command_line(),
        })
    }
}

/// Runs `assay bon`.
pub fn run_bon(args: &BonArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let mut progress = EventProgress::default();
    let report = bon_run::run(&settings, |e| progress.on(e));
    progress.finish();
    let report = report?;
    print_line(&format!(
        "{}  -> {}",
        bon_run::summary(&report),
        settings.out.display()
    ));
    Ok(())
}

/// `assay prm ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PrmCommand {
    /// Train a value head on a backbone from its own sampled solutions, labelled by correctness.
    Train(Box<PrmTrainArgs>),
    /// Score (problem, response) pairs with a reward model: step rewards per response.
    Score(PrmScoreArgs),
}

/// `assay prm train`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  assay prm train --arithmetic-seed 1 --count 64 --n 8 --out runs/prm
  assay bon --prm runs/prm --arithmetic-seed 2 --count 30 --n 16 --out runs/bon

--model is the backbone and the generator of the training solutions (default SmolLM2-135M-Instruct);
sampling and features run on --device in --dtype, the head is fitted on the CPU. Writes prm.json,
value_head.safetensors, training.json and solutions.jsonl.")]
pub struct PrmTrainArgs {
    /// The backbone, and where it runs.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Problems (use another seed than the evaluation problems').
    #[command(flatten)]
    pub problems: ProblemArgs,
    /// Solutions sampled per problem.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// System message (default: search-and-learn's MATH prompt).
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// Most new tokens per solution.
    #[arg(long, default_value_t = 384)]
    pub max_new_tokens: usize,
    /// Full-batch optimisation steps of the head.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f64,
    /// Weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Fraction of problems held out for validation.
    #[arg(long, default_value_t = 0.25)]
    pub validation_fraction: f64,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_rows: usize,
    /// Output folder: prm.json, value_head.safetensors, training.json, solutions.jsonl.
    #[arg(long)]
    pub out: PathBuf,
}

impl PrmTrainArgs {
    /// The library's settings.
    pub fn settings(&self) -> anyhow::Result<PrmTrainSettings> {
        Ok(PrmTrainSettings {
            model: self.model.model.clone(),
            problems: self.problems.settings()?,
            training: HeadTrainConfig {
                system_prompt: self
                    .system_prompt
                    .clone()
                    .unwrap_or_else(|| SYSTEM_PROMPT.into()),
                n: self.n,
                temperature: self.temperature,
                max_new_tokens: self.max_new_tokens,
                seed: self.problems.seed,
                steps: self.steps,
                lr: self.lr,
                weight_decay: self.weight_decay,
                validation_fraction: self.validation_fraction,
                batch_rows: self.batch_rows,
                feature_batch: 8,
                dump_solutions: None,
            },
            placement: self.model.device.placement(),
            out: self.out.clone(),
        })
    }
}

/// `assay prm score`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Example:
  echo '{\"problem\": \"1+1?\", \"response\": \"1+1=2\\nThe answer is \\\\boxed{2}\"}' > pairs.jsonl
  assay prm score --prm runs/prm --input pairs.jsonl

Writes one {\"step_scores\": [...]} line per input row, in order.")]
pub struct PrmScoreArgs {
    /// Reward model (as for `assay bon --prm`).
    #[arg(long)]
    pub prm: String,
    /// Process or outcome reading; default: the model's own.
    #[arg(long, value_enum)]
    pub prm_kind: Option<PrmKindArg>,
    /// JSONL (or Parquet) of `{"problem": ..., "response": ...}`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL (default: stdout).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Where the reward model runs.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs `assay prm ...`.
pub fn run_prm(command: &PrmCommand) -> anyhow::Result<()> {
    match command {
        PrmCommand::Train(args) => {
            let settings = args.settings()?;
            let mut progress = EventProgress::default();
            let report = bon_run::train_prm(&settings, |e| progress.on(e));
            progress.finish();
            print_line(&format!(
                "{}  -> {}",
                bon_run::train_summary(&report?),
                settings.out.display()
            ));
            Ok(())
        }
        PrmCommand::Score(args) => {
            let settings = PrmScoreSettings {
                prm: args.prm.clone(),
                prm_kind: args.prm_kind.map(RewardKind::from),
                input: args.input.clone(),
                placement: args.device.placement(),
            };
            if let Some(path) = &args.output {
                // Fail on an unwritable output before the model is loaded.
                std::fs::File::create(path)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            let mut progress = EventProgress::default();
            let scores = bon_run::score_pairs(&settings, |e| progress.on(e));
            progress.finish();
            let scores = scores?;
            match &args.output {
                Some(path) => bon_run::write_scores(path, &scores)?,
                None => {
                    let mut out = std::io::stdout().lock();
                    for s in &scores {
                        let line = serde_json::to_string(s)?;
                        if writeln!(out, "{line}").is_err() {
                            // A closed pipe (`| head -1`): the reader has what it wanted.
                            break;
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Turns the pipeline's events into one [`Progress`] per stage.
#[derive(Default)]
struct EventProgress {
    current: Option<Progress>,
}

impl EventProgress {
    fn on(&mut self, event: Event) {
        match event {
            Event::Loading { what } => {
                self.finish();
                self.current = Some(Progress::spinner(format!("loading {what}")));
            }
            Event::Stage { name, total } => {
                self.finish();
                let unit = if name.starts_with("sampling") || name.starts_with("greedy") {
                    "tokens"
                } else if name.starts_with("training") {
                    "steps"
                } else {
                    "solutions"
                };
                self.current = Some(Progress::new(name, total, unit));
            }
            Event::Advance(k) => {
                if let Some(p) = &mut self.current {
                    p.inc(k);
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(p) = self.current.take() {
            p.finish();
        }
    }
}

/// The command line as typed, for the dataset card.
fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Prints a line to stdout; a closed pipe is not an error.
fn print_line(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}
