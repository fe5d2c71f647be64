//! Command-line front end: `assay bon` and `assay prm train|score` (clap types, progress bars, files).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use assay_engine::candle_core::DType;
use assay_engine::{LoadOptions, ModelSource, load};
use assay_eval::math::select::Aggregation;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::output::{Provenance, write_all};
use crate::pipeline::{self, BonConfig, Event, SYSTEM_PROMPT};
use crate::prm::{HEAD_FILE, PRM_MANIFEST, PrmManifest, RewardKind, RewardModel};
use crate::problems::{self, LevelRange, MathProblem};
use crate::train::{HeadTrainConfig, train_head};

/// Where the problems come from.
#[derive(Debug, Clone, clap::Args)]
pub struct ProblemArgs {
    /// MATH-500-format JSONL (problem, solution, answer, subject, level, unique_id).
    #[arg(long, conflicts_with = "arithmetic_seed")]
    pub problems: Option<PathBuf>,
    /// Instead of a file: seeded verifiable arithmetic word problems from this generator seed.
    #[arg(long)]
    pub arithmetic_seed: Option<u64>,
    /// Style of generated problems: `word` (multi-step word problems) or `bare` (`What is 23 + 7?`).
    #[arg(long, default_value = "word")]
    pub arithmetic_style: String,
    /// Keep only these levels, e.g. `1-3`.
    #[arg(long)]
    pub levels: Option<LevelRange>,
    /// How many problems (a seeded subset of a file; the first ones of the generator).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Seed of the subset and of sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl ProblemArgs {
    /// The problems, and a description for the dataset card.
    pub fn load(&self) -> anyhow::Result<(Vec<MathProblem>, String)> {
        let (all, what) = match (&self.problems, self.arithmetic_seed) {
            (Some(path), _) => (problems::read_jsonl(path)?, format!("`{}`", path.display())),
            (None, Some(seed)) if self.arithmetic_style == "word" => (
                problems::arithmetic_problems(seed, self.count as u64),
                format!("the arithmetic word-problem generator (assay-eval gsm) with seed {seed}"),
            ),
            (None, Some(seed)) if self.arithmetic_style == "bare" => (
                problems::bare_arithmetic_problems(seed, self.count as u64),
                format!("the bare arithmetic generator (assay-bon) with seed {seed}"),
            ),
            (None, Some(_)) => bail!(
                "unknown --arithmetic-style `{}`: use word or bare",
                self.arithmetic_style
            ),
            (None, None) => bail!("give --problems FILE or --arithmetic-seed S"),
        };
        let chosen = problems::seeded_subset(all, self.levels, Some(self.count), self.seed);
        if chosen.is_empty() {
            bail!("no problems left after the level filter");
        }
        let levels = self.levels.map_or("all levels".into(), |l| {
            format!("levels {}-{}", l.low, l.high)
        });
        Ok((
            chosen,
            format!("{what}, {levels}, subset seed {}", self.seed),
        ))
    }
}

/// Device and dtype.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs a build with the engine's `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl DeviceArgs {
    /// Load options: f32 on the CPU, bf16 on CUDA.
    pub fn options(&self) -> anyhow::Result<LoadOptions> {
        let device = assay_engine::open_device(&self.device)?;
        let dtype = if device.is_cpu() {
            DType::F32
        } else {
            DType::BF16
        };
        Ok(LoadOptions { device, dtype })
    }
}

/// `assay bon`: best-of-N with a reward model.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  assay bon --prm runs/prm --arithmetic-seed 7 --count 30 --n 16 --out runs/bon
  assay bon --generator Qwen/Qwen2.5-1.5B-Instruct --prm Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B \\
      --problems math500.jsonl --levels 1-3 --count 20 --seed 0 --n 16 --temperature 0.8 \\
      --temperatures 0.4,1.2 --out runs/bon-math
Then upload: huggingface-cli upload <user>/<name> runs/bon . --repo-type dataset")]
pub struct BonArgs {
    /// Generator: a model folder, a .gguf file or `org/name[@rev]` in the HF cache (default SmolLM2-135M-Instruct).
    #[arg(long)]
    pub generator: Option<String>,
    /// Reward model: a Skywork-layout folder, a HF cache id, or a `prm.json` folder from `assay prm train`.
    #[arg(long)]
    pub prm: String,
    /// Read rewards per step (process) or once at the end (outcome); default from the reward model.
    #[arg(long, value_enum)]
    pub prm_kind: Option<RewardKind>,
    /// Problems.
    #[command(flatten)]
    pub problems: ProblemArgs,
    /// Samples per problem (the largest budget).
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// System message (default: search-and-learn's MATH prompt).
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// Further temperatures for the sweep, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub temperatures: Vec<f32>,
    /// Nucleus threshold.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Most new tokens per solution.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// Step aggregation: last, min or prod.
    #[arg(long, default_value = "last", value_parser = parse_aggregation)]
    pub aggregation: Aggregation,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_rows: usize,
    /// Sequences scored together by the reward model.
    #[arg(long, default_value_t = 8)]
    pub prm_batch: usize,
    /// Device.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Output folder (dataset, plots, analysis).
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_aggregation(s: &str) -> Result<Aggregation, String> {
    match s {
        "last" => Ok(Aggregation::Last),
        "min" => Ok(Aggregation::Min),
        "prod" => Ok(Aggregation::Prod),
        _ => Err(format!("unknown aggregation `{s}`: use last, min or prod")),
    }
}

/// A progress bar driven by pipeline events.
fn progress_bar() -> (ProgressBar, impl FnMut(Event)) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    let b = bar.clone();
    let on_event = move |e: Event| match e {
        Event::Stage { name, total } => {
            b.set_message(name);
            b.set_length(total);
            b.set_position(0);
        }
        Event::Advance(k) => b.inc(k),
    };
    (bar, on_event)
}

/// Runs `assay bon`.
pub fn run_bon(args: &BonArgs) -> anyhow::Result<()> {
    let options = args.device.options()?;
    let (problems, described) = args.problems.load()?;
    let source = ModelSource::resolve(args.generator.as_deref())?;
    let generator = load(&source, &options).context("cannot load the generator")?;
    let prm = RewardModel::load(&args.prm, args.prm_kind, &options)
        .with_context(|| format!("cannot load the reward model `{}`", args.prm))?;
    let config = BonConfig {
        system_prompt: args.system_prompt.clone().unwrap_or(SYSTEM_PROMPT.into()),
        n: args.n,
        temperature: args.temperature,
        sweep_temperatures: args.temperatures.clone(),
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        seed: args.problems.seed,
        aggregation: args.aggregation,
        batch_rows: args.batch_rows,
        prm_batch: args.prm_batch,
    };
    let (bar, mut on_event) = progress_bar();
    let report = pipeline::run(&generator, &prm, &problems, &config, &mut on_event)?;
    bar.finish_and_clear();
    let provenance = Provenance {
        generator: args
            .generator
            .clone()
            .unwrap_or("SmolLM2-135M-Instruct (default)".into()),
        prm: args.prm.clone(),
        problems: described,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    write_all(&args.out, &report, &provenance)?;
    let last = report.runs[0]
        .curve
        .last()
        .expect("n >= 1 gives one budget");
    println!(
        "greedy {:.1}%  weighted@{n} {:.1}%  majority@{n} {:.1}%  naive@{n} {:.1}%  pass@{n} {:.1}%  -> {}",
        report.greedy_accuracy * 100.0,
        last.weighted * 100.0,
        last.majority * 100.0,
        last.naive * 100.0,
        last.pass * 100.0,
        args.out.display(),
        n = last.n,
    );
    Ok(())
}

/// `assay prm ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PrmCommand {
    /// Train a value head on a backbone from its own sampled solutions, labelled by correctness.
    Train(PrmTrainArgs),
    /// Score (problem, response) pairs with a reward model: step rewards per response.
    Score(PrmScoreArgs),
}

/// `assay prm train`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:
  assay prm train --arithmetic-seed 1 --count 64 --n 8 --out runs/prm
  assay bon --prm runs/prm --arithmetic-seed 2 --count 30 --n 16 --out runs/bon")]
pub struct PrmTrainArgs {
    /// Backbone (and generator of the training solutions); default SmolLM2-135M-Instruct.
    #[arg(long)]
    pub model: Option<String>,
    /// Problems (use a different seed from the evaluation problems).
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
    /// Device.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Output folder: prm.json, value_head.safetensors, training.json, solutions.jsonl.
    #[arg(long)]
    pub out: PathBuf,
}

/// `assay prm score`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:
  echo '{\"problem\": \"1+1?\", \"response\": \"1+1=2\\nThe answer is \\\\boxed{2}\"}' > pairs.jsonl
  assay prm score --prm runs/prm --input pairs.jsonl")]
pub struct PrmScoreArgs {
    /// Reward model (as for `assay bon --prm`).
    #[arg(long)]
    pub prm: String,
    /// Process or outcome reading; default from the model.
    #[arg(long, value_enum)]
    pub prm_kind: Option<RewardKind>,
    /// JSONL of `{"problem": ..., "response": ...}`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL (default: stdout).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Device.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs `assay prm ...`.
pub fn run_prm(command: &PrmCommand) -> anyhow::Result<()> {
    match command {
        PrmCommand::Train(args) => run_train(args),
        PrmCommand::Score(args) => run_score(args),
    }
}

fn run_train(args: &PrmTrainArgs) -> anyhow::Result<()> {
    let options = args.device.options()?;
    let (problems, described) = args.problems.load()?;
    let source = ModelSource::resolve(args.model.as_deref())?;
    let backbone = load(&source, &options).context("cannot load the backbone")?;
    let config = HeadTrainConfig {
        system_prompt: args.system_prompt.clone().unwrap_or(SYSTEM_PROMPT.into()),
        n: args.n,
        temperature: args.temperature,
        max_new_tokens: args.max_new_tokens,
        seed: args.problems.seed,
        steps: args.steps,
        lr: args.lr,
        weight_decay: args.weight_decay,
        validation_fraction: args.validation_fraction,
        batch_rows: args.batch_rows,
        feature_batch: 8,
        dump_solutions: Some(args.out.join("solutions.jsonl")),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (bar, mut on_event) = progress_bar();
    let (prm, report, _) = train_head(backbone, &problems, &config, &mut on_event)?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    prm.head.save(&args.out.join(HEAD_FILE))?;
    let manifest = PrmManifest {
        backbone: args.model.clone(),
        kind: RewardKind::Process,
        notes: serde_json::json!({ "problems": described, "training": &report }),
    };
    write_json(&args.out.join(PRM_MANIFEST), &manifest)?;
    write_json(&args.out.join("training.json"), &report)?;
    println!(
        "trained on {} correct / {} incorrect solutions; loss {:.4} -> {:.4}; validation AUC {}",
        report.train_correct,
        report.train_incorrect,
        report.loss_first,
        report.loss_last,
        report
            .validation_auc
            .map_or("n/a (one class)".into(), |a| format!("{a:.3}"))
    );
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).expect("plain data serialises");
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[derive(Debug, Deserialize)]
struct ScoreRow {
    problem: String,
    response: String,
}

fn run_score(args: &PrmScoreArgs) -> anyhow::Result<()> {
    let options = args.device.options()?;
    let prm = RewardModel::load(&args.prm, args.prm_kind, &options)?;
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let mut out = String::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: ScoreRow = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", args.input.display(), i + 1))?;
        let steps = prm.score(&row.problem, std::slice::from_ref(&row.response), 1)?;
        out += &format!("{}\n", serde_json::json!({"step_scores": steps[0]}));
    }
    match &args.output {
        Some(p) => {
            std::fs::write(p, out).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{out}"),
    }
    Ok(())
}
