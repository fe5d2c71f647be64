//! `assay sn37`: the arguments of its subcommands, turned into [`assay_sn37::run::RoundSettings`].

use std::path::PathBuf;

use assay_sn37::competition::{builtin_competitions, find_competition};
use assay_sn37::round::{RoundEvent, RoundPolicy};
use assay_sn37::run::RoundSettings;

use crate::common::DeviceArgs;
use crate::diagnosis::explain;
use crate::progress::Progress;

/// Run one SN37 round for one competition.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Each folder under --models is one submission (a symbolic link to a folder is followed; a broken
link is rejected with the reason): a Hugging Face model folder (config.json, *.safetensors,
tokenizer.json) plus sn37.json with the chain metadata:
  {\"hotkey\": \"5F...\", \"commit_block\": 1000, \"content_hash\": \"<hex>\", \"competition_id\": 100}
content_hash is the weights' hash printed by `assay sn37 hash DIR`.

Models are loaded one at a time (load, evaluate, free, next), on --device in --dtype (default
f32 on the CPU, bf16 on CUDA), so peak memory is one model's.

A round whose tasks cannot all be evaluated (a data file missing from --data) is refused before
any model is loaded; --allow-missing-tasks scores on the tasks that load instead, their weights
renormalised to sum 1 as SN37 does, and results.json says so.

Writes to --out: results.json, leaderboard.md, weights.json; the moving average goes to --state
(default OUT/ema_state.json) and is read back by the next round. Every file is written atomically
(temporary file, fsync, rename). A rerun for the same --block replaces that block's step instead
of applying the moving average twice; an older block than the state's last is refused.

Examples:
  assay sn37 round --competition TINY_DEMO --models examples/sn37/models \\
      --data examples/sn37/data --block 2000 --out /tmp/sn37-round
  assay sn37 round --competition my_competition.toml --models subs/ --data data/ \\
      --block 5200000 --block-hash 0xabc... --state state/sn37.json --out out/ --device cuda")]
pub struct RoundArgs {
    /// Competition: a built-in name or id (see `assay sn37 competitions`) or a TOML file.
    #[arg(long)]
    pub competition: String,
    /// Folder with one sub-folder per submitted model.
    #[arg(long)]
    pub models: PathBuf,
    /// Current block; sets the sync block, commit ages and epsilon.
    #[arg(long)]
    pub block: u64,
    /// Hash of the sync block (the data seed); default: a stand-in derived from the block.
    #[arg(long)]
    pub block_hash: Option<String>,
    /// Folder with the data files the competition's tasks read.
    #[arg(long, default_value = ".")]
    pub data: PathBuf,
    /// Moving-average state to continue from and update (default: OUT/ema_state.json).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Score on the tasks that load when some cannot (weights renormalised, as SN37 does)
    /// instead of refusing the round.
    #[arg(long)]
    pub allow_missing_tasks: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl RoundArgs {
    /// The library settings these arguments stand for.
    pub fn settings(&self) -> RoundSettings {
        RoundSettings {
            competition: self.competition.clone(),
            models: self.models.clone(),
            block: self.block,
            block_hash: self.block_hash.clone(),
            data: self.data.clone(),
            state: self.state.clone(),
            out: self.out.clone(),
            placement: self.device.placement(),
            policy: RoundPolicy {
                allow_missing_tasks: self.allow_missing_tasks,
            },
        }
    }
}

/// List the competitions built in.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  assay sn37 competitions
  assay sn37 competitions --show INSTRUCT_8B   # the full definition as TOML")]
pub struct CompetitionsArgs {
    /// Print this competition's full definition as TOML.
    #[arg(long)]
    pub show: Option<String>,
}

/// Print the weights' content hash of a model folder (the `content_hash` of `sn37.json`).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  assay sn37 hash examples/sn37/models/alice")]
pub struct HashArgs {
    /// The model folder.
    pub dir: PathBuf,
}

/// The `assay sn37` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Sn37Command {
    /// Evaluate a round of submitted models and turn their scores into weights (EMA state persisted).
    Round(Box<RoundArgs>),
    /// List the built-in competitions, or show one.
    Competitions(CompetitionsArgs),
    /// Print the content hash of a model folder, for its `sn37.json`.
    Hash(HashArgs),
}

/// Runs an `assay sn37` subcommand.
pub fn run(command: Sn37Command) -> anyhow::Result<()> {
    match command {
        Sn37Command::Round(args) => run_round(&args),
        Sn37Command::Competitions(args) => {
            if let Some(spec) = args.show {
                let competition = find_competition(&spec).map_err(|e| explain(&e))?;
                print!("{}", competition.to_toml());
            } else {
                for competition in builtin_competitions() {
                    println!("{}", competition.summary_line());
                }
            }
            Ok(())
        }
        Sn37Command::Hash(args) => {
            let hash = assay_sn37::submission::content_hash(&args.dir).map_err(|e| explain(&e))?;
            println!("{hash}");
            Ok(())
        }
    }
}

/// `assay sn37 round`.
fn run_round(args: &RoundArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    let mut stage: Option<Progress> = None;
    let output = assay_sn37::run::run(&settings, |event| match event {
        RoundEvent::Submissions(n) => {
            stage = Some(Progress::new("checking submissions", n as u64, "models"));
        }
        RoundEvent::Checked(hotkey) => {
            if let Some(progress) = stage.as_mut() {
                progress.set_message(hotkey);
                progress.inc(1);
            }
        }
        RoundEvent::EvaluationStarts { models, tasks } => {
            if let Some(done) = stage.take() {
                done.finish();
            }
            stage = Some(Progress::new(
                format!("evaluating on {}", settings.placement),
                (models * tasks) as u64,
                "tasks",
            ));
        }
        RoundEvent::TaskScored { hotkey, task } => {
            if let Some(progress) = stage.as_mut() {
                progress.set_message(format!("{hotkey}: {task}"));
                progress.inc(1);
            }
        }
        RoundEvent::ModelEvaluated {
            hotkey,
            load_seconds,
            task_seconds,
            peak_memory_bytes,
        } => {
            let tasks: f64 = task_seconds.iter().map(|(_, s)| s).sum();
            let memory = peak_memory_bytes
                .map_or("-".into(), |b| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64));
            tracing::info!(
                "{hotkey}: loaded in {load_seconds:.1} s, evaluated in {tasks:.1} s, peak memory {memory}"
            );
        }
    })
    .map_err(|e| explain(&e))?;
    if let Some(done) = stage.take() {
        done.finish();
    }
    for note in &output.results.notes {
        eprintln!("note: {note}");
    }
    print!("{}", output.leaderboard);
    println!(
        "\nWrote {} and state {}",
        settings.out.display(),
        output.state_path.display()
    );
    Ok(())
}
