//! `assay datacomp run`: a whole round from the command line, with progress bars and a report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use assay_engine::train::{AdamWConfig, LoraConfig, Schedule, TrainConfig};
use assay_engine::{LoadOptions, ModelSource, load};
use indicatif::{ProgressBar, ProgressStyle};

use crate::round::{RoundConfig, RoundEvent, RoundResults, run_round};
use crate::score::{EvalOptions, ScoreWeights, TrainingPlan};
use crate::task::{generated_problems, read_problems};

/// `assay datacomp` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DatacompCommand {
    /// Score one round of miners' chain-of-thought data by fine-tuning on it.
    Run(Box<RunArgs>),
}

/// Arguments of `assay datacomp run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay datacomp run --submissions examples/datacomp --out out/datacomp          # embedded SmolLM2, seeded eval set
  assay datacomp run --base ./Qwen2.5-0.5B-Instruct --submissions round7 --out out/r7 --eval-seed 7 --token-budget 20000

The submissions folder holds one JSONL per miner ({\"prompt\", \"chain_of_thought\", \"final_answer\"} rows) and
round.json: {\"round\": \"r1\", \"miners\": [{\"hotkey\": \"5F..\", \"file\": \"a.jsonl\", \"block\": 4012345}]}.
Priority for duplicates comes from the block (then receipt_ms), never from the files. Every miner gets the same
LoRA fine-tune (same seed and completion-token budget; small data repeats). Writes results.json (bit-identical for
the same round and seed), report.md, scores.svg/.png, timings.json and adapters/<hotkey>/ in PEFT format.")]
pub struct RunArgs {
    /// Base model: HF folder, .gguf, or org/name in the HF cache (default: SmolLM2-135M-Instruct).
    #[arg(long)]
    base: Option<String>,
    /// Folder with round.json and the miners' JSONL files.
    #[arg(long)]
    submissions: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Evaluation problems (JSONL of prompt/chain_of_thought/final_answer) instead of a generated set.
    #[arg(long, conflicts_with = "eval_seed")]
    eval: Option<PathBuf>,
    /// Seed of the fresh evaluation set generated for this round.
    #[arg(long, default_value_t = 20261122)]
    eval_seed: u64,
    /// Problems in the generated evaluation set.
    #[arg(long, default_value_t = 12)]
    eval_count: usize,
    /// Completion tokens each miner's fine-tune trains on.
    #[arg(long, default_value_t = 1200)]
    token_budget: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    rank: usize,
    /// Adapt only the top N layers (0: all). Fewer layers keep CPU rounds fast.
    #[arg(long, default_value_t = 4)]
    top_layers: usize,
    /// Padded tokens per micro-batch.
    #[arg(long, default_value_t = 1024)]
    batch_tokens: usize,
    /// Greedy tokens per evaluation answer.
    #[arg(long, default_value_t = 72)]
    max_new_tokens: usize,
    /// Skip generation (reference loss only: much faster).
    #[arg(long)]
    no_generate: bool,
    /// Integrity policy (JSON); defaults are used when absent.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Training seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs an `assay datacomp` subcommand.
pub fn run_datacomp(command: DatacompCommand) -> anyhow::Result<()> {
    match command {
        DatacompCommand::Run(args) => run(*args),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let spinner = ProgressBar::new_spinner().with_message("loading the base model");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut model = load(
        &ModelSource::resolve(args.base.as_deref())?,
        &LoadOptions::default(),
    )?;
    spinner.finish_and_clear();
    let (problems, eval_source) = match &args.eval {
        Some(path) => (read_problems(path)?, path.display().to_string()),
        None => (
            generated_problems(args.eval_seed, args.eval_count),
            format!("seed:{}:{}", args.eval_seed, args.eval_count),
        ),
    };
    let policy = match &args.policy {
        Some(p) => serde_json::from_str::<assay_integrity::policy::Policy>(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| format!("{} is not a valid integrity policy", p.display()))?,
        None => crate::round::default_policy(),
    };
    let layers = model.model.config().num_hidden_layers;
    let lora = LoraConfig {
        rank: args.rank,
        alpha: 2.0 * args.rank as f64,
        layers: (args.top_layers > 0)
            .then(|| (layers.saturating_sub(args.top_layers)..layers).collect()),
        ..Default::default()
    };
    let train = TrainConfig {
        optimizer: AdamWConfig {
            lr: args.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
        schedule: Schedule::Constant,
        batch_tokens: args.batch_tokens,
        token_budget: Some(args.token_budget),
        seed: args.seed,
        ..Default::default()
    };
    let config = RoundConfig {
        base_model: args
            .base
            .clone()
            .unwrap_or_else(|| "SmolLM2-135M-Instruct (embedded default)".into()),
        plan: TrainingPlan {
            lora,
            train,
            max_len: 1024,
        },
        eval: EvalOptions {
            max_new_tokens: args.max_new_tokens,
            batch_rows: 16,
            generate: !args.no_generate,
        },
        weights: ScoreWeights::default(),
        policy,
        eval_source,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} miners trained | {msg}",
    )?);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar.set_message("integrity checks");
    let mut timings = Vec::new();
    let results = run_round(
        &mut model,
        &args.submissions,
        &problems,
        &config,
        Some(&args.out.join("adapters")),
        &mut timings,
        |e| match e {
            RoundEvent::Checked => bar.set_message("evaluating the base model"),
            RoundEvent::BaseEvaluated => bar.set_message("fine-tuning"),
            RoundEvent::Training {
                miner,
                index,
                total,
            } => {
                bar.set_length(total as u64);
                bar.set_position(index as u64);
                bar.set_message(format!("fine-tuning and evaluating {miner}"));
            }
            RoundEvent::Scored { .. } => {}
        },
    )?;
    bar.finish_and_clear();
    write_outputs(&args.out, &results, &timings)?;
    print!("{}", leaderboard(&results));
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn write_outputs(
    out: &Path,
    results: &RoundResults,
    timings: &[(String, f64)],
) -> anyhow::Result<()> {
    let write = |name: &str, text: String| -> anyhow::Result<()> {
        let p = out.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    };
    write("results.json", serde_json::to_string_pretty(results)?)?;
    write("report.md", report(results))?;
    let timing: serde_json::Map<String, serde_json::Value> = timings
        .iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect();
    write("timings.json", serde_json::to_string_pretty(&timing)?)?;
    let bars: Vec<(String, f64)> = results
        .miners
        .iter()
        .map(|m| (m.hotkey.clone(), m.score))
        .collect();
    crate::plot::bar_chart(
        &bars,
        "Datacomp: score per miner (improvement x penalty)",
        &out.join("scores"),
    )?;
    Ok(())
}

/// The leaderboard as a Markdown table.
pub fn leaderboard(r: &RoundResults) -> String {
    let mut s = String::from(
        "| rank | miner | block | rows | kept | rejected | penalty | Δ ref loss | Δ accuracy | score | weight | u16 |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, m) in r.miners.iter().enumerate() {
        let rejected: Vec<String> = m.rejected.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let (dl, da) = m.trained.as_ref().map_or(("-".into(), "-".into()), |t| {
            (
                format!("{:+.4}", t.improvement.reference_loss),
                format!("{:+.3}", t.improvement.accuracy),
            )
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2}{} | {dl} | {da} | {:.4} | {:.3} | {} |",
            i + 1,
            m.hotkey,
            m.block,
            m.rows,
            m.kept_rows,
            if rejected.is_empty() {
                "-".into()
            } else {
                rejected.join(", ")
            },
            m.penalty_multiplier,
            if m.disqualified {
                " (disqualified)"
            } else {
                ""
            },
            m.score,
            m.weight,
            m.weight_u16
        );
    }
    s
}

fn report(r: &RoundResults) -> String {
    let mut s = format!(
        "# Datacomp round {}\n\nBase model: {}. Evaluation set: {} ({} problems). Base: reference loss {:.4}, \
         accuracy {:.3}, word recall {:.3}.\n\n## Leaderboard\n\n{}\n![scores](scores.png)\n\n## Why\n\n",
        r.round.as_deref().unwrap_or("(unnamed)"),
        r.config.base_model,
        r.config.eval_source,
        r.eval_ids.len(),
        r.base.reference_loss,
        r.base.accuracy,
        r.base.word_recall,
        leaderboard(r)
    );
    for m in &r.miners {
        let _ = writeln!(s, "- **{}**: {}", m.hotkey, m.reasons.join("; "));
    }
    let _ = write!(
        s,
        "\n## Integrity, row by row\n\n```\n{}\n```\n",
        r.integrity.to_table()
    );
    s
}
