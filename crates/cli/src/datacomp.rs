//! `assay datacomp run`: the arguments of a Datacomp round, turned into
//! [`assay_datacomp::RoundSettings`], with progress bars (or log lines without a terminal).

use std::path::PathBuf;

use anyhow::Context;
use assay_datacomp::round::RoundEvent;
use assay_datacomp::{EvalSet, RoundResults, RoundSettings};
use assay_errors::Diagnose;

use crate::common::ModelArgs;
use crate::progress::Progress;

/// `assay datacomp` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DatacompCommand {
    /// Score one round of miners' chain-of-thought data by fine-tuning on it.
    Run(Box<RunArgs>),
    /// Write a round folder of graded miners (distinct, correct rows each) for benchmarks and
    /// hardware sizing: `datacomp run` on it costs one full fine-tune and evaluation per miner.
    GradedRound(GradedRoundArgs),
}

/// Arguments of `assay datacomp graded-round`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  assay datacomp graded-round --out rounds/bench8 --miners 8
  assay datacomp run --model ./Qwen2.5-1.5B-Instruct --device cuda --submissions rounds/bench8 --out out/bench8")]
pub struct GradedRoundArgs {
    /// Folder to write round.json and the miners' JSONL files into (created if absent).
    #[arg(long)]
    out: PathBuf,
    /// Number of miners.
    #[arg(long, default_value_t = 8)]
    miners: usize,
    /// Distinct problems per miner.
    #[arg(long, default_value_t = 24)]
    rows: usize,
}

/// Arguments of `assay datacomp run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay datacomp run --submissions examples/datacomp --out out/datacomp      # SmolLM2 on the CPU, ~8 problems
  assay datacomp run --model ./Qwen2.5-0.5B-Instruct --device cuda --submissions round7 --out out/r7 --token-budget 20000

The submissions folder holds one JSONL per miner ({\"prompt\", \"chain_of_thought\", \"final_answer\"} rows) and
round.json: {\"round\": \"r1\", \"block_hash\": \"0x..\", \"miners\": [{\"hotkey\": \"5F..\", \"coldkey\": \"5C..\",
\"file\": \"a.jsonl\", \"block\": 4012345, \"verified_block\": 4012345}]}. The round's evaluation set is generated
fresh from the block hash (or round.json's \"seed\", or --eval-seed) and published in eval_set.jsonl.
Priority for duplicates comes from the chain-verified block (then receipt_ms), never from the files.
Every miner gets the same LoRA fine-tune (same seed and token budget, on a seeded sample of its rows).
All model work runs on --device in --dtype (f32 on the CPU, bf16 on CUDA by default).
score = max(0, Δaccuracy + Δanswer-loss) × integrity penalty × log2(1 + kept tokens / budget); report.md
states it in full. Writes results.json (bit-identical for the same round on the CPU), report.md,
eval_set.jsonl, scores.svg/.png, timings.json and adapters/<hotkey>/ (PEFT format) into --out, all at once
when the round is complete.")]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Folder with round.json and the miners' JSONL files.
    #[arg(long)]
    submissions: PathBuf,
    /// Output folder (must not hold a finished round unless --overwrite).
    #[arg(long)]
    out: PathBuf,
    /// Replace an output folder that already holds a finished round.
    #[arg(long)]
    overwrite: bool,
    /// Evaluation problems (JSONL or Parquet of prompt/chain_of_thought/final_answer) instead of a
    /// generated set.
    #[arg(long, conflicts_with = "eval_seed")]
    eval: Option<PathBuf>,
    /// Seed of the generated evaluation set (default: derived from round.json's block_hash or seed).
    #[arg(long)]
    eval_seed: Option<u64>,
    /// Problems in the generated evaluation set.
    #[arg(long, default_value_t = 8)]
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
    #[arg(long, default_value_t = 2)]
    top_layers: usize,
    /// Padded tokens per micro-batch.
    #[arg(long, default_value_t = 1024)]
    batch_tokens: usize,
    /// Greedy tokens per evaluation answer (enough to reach the `####` answer).
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Skip generation (answer loss only: faster, but accuracy is not measured).
    #[arg(long)]
    no_generate: bool,
    /// Integrity policy (JSON; only the values to change); defaults are used when absent.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Training seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl RunArgs {
    /// The library settings these arguments stand for (reads the policy file).
    fn settings(&self) -> anyhow::Result<RoundSettings> {
        let policy = match &self.policy {
            Some(p) => Some(
                serde_json::from_str::<assay_integrity::policy::Policy>(
                    &std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                )
                .with_context(|| format!("{} is not a valid integrity policy", p.display()))?,
            ),
            None => None,
        };
        Ok(RoundSettings {
            model: self.model.model.clone(),
            placement: self.model.device.placement(),
            submissions: self.submissions.clone(),
            out: self.out.clone(),
            eval: match &self.eval {
                Some(path) => EvalSet::File(path.clone()),
                None => EvalSet::Generated {
                    seed: self.eval_seed,
                    count: self.eval_count,
                },
            },
            token_budget: self.token_budget,
            lr: self.lr,
            rank: self.rank,
            top_layers: self.top_layers,
            batch_tokens: self.batch_tokens,
            max_new_tokens: self.max_new_tokens,
            generate: !self.no_generate,
            policy,
            seed: self.seed,
            overwrite: self.overwrite,
        })
    }
}

/// Runs an `assay datacomp` subcommand.
pub fn run_datacomp(command: DatacompCommand) -> anyhow::Result<()> {
    match command {
        DatacompCommand::Run(args) => run(&args),
        DatacompCommand::GradedRound(args) => {
            assay_datacomp::graded_round::write_graded_round(&args.out, args.miners, args.rows)?;
            println!(
                "Wrote {} miners x {} rows to {}",
                args.miners,
                args.rows,
                args.out.display()
            );
            Ok(())
        }
    }
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let mut stage: Option<Progress> = None;
    let results = assay_datacomp::run(&settings, |event| match event {
        RoundEvent::Loading { model, placement } => {
            stage = Some(Progress::spinner(format!("loading {model} on {placement}")));
        }
        RoundEvent::Checked => {
            if let Some(p) = stage.take() {
                p.finish();
            }
            stage = Some(Progress::spinner("evaluating the base model"));
        }
        RoundEvent::BaseEvaluated => {
            if let Some(p) = stage.take() {
                p.finish();
            }
            stage = Some(Progress::new("fine-tuning", 0, "miners"));
        }
        RoundEvent::Training {
            miner,
            index,
            total,
        } => {
            if let Some(p) = stage.as_mut() {
                p.set_length(total as u64);
                p.set_position(index as u64);
                p.set_message(format!("fine-tuning and evaluating {miner}"));
            }
        }
        RoundEvent::Scored { .. } => {}
        RoundEvent::Writing => {
            if let Some(p) = stage.take() {
                p.finish();
            }
        }
    })
    .map_err(|e| {
        let hint = e
            .hint()
            .map(|h| format!("\n  hint: {h}"))
            .unwrap_or_default();
        anyhow::anyhow!("{}{hint}", assay_errors::chain(&e))
    })?;
    print!("{}", leaderboard(&results));
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn leaderboard(results: &RoundResults) -> String {
    assay_datacomp::report::leaderboard(results)
}
