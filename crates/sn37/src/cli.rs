//! Command-line entry points (wired into `assay sn37 ...` by the CLI crate).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::competition::{builtin_competitions, find_competition};
use crate::engine_loader::EngineLoader;
use crate::report::{leaderboard_markdown, weight_vector};
use crate::round::{RoundEvent, RoundInputs};
use crate::tracker::EmaState;

/// Run one SN37 round for one competition.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Each folder under --models is one submission: a Hugging Face model folder (config.json,
*.safetensors, tokenizer.json) plus sn37.json with the chain metadata:
  {\"hotkey\": \"5F...\", \"commit_block\": 1000, \"content_hash\": \"<hex>\", \"competition_id\": 100}
content_hash is the weights' hash printed by `assay sn37 hash DIR`.

Writes to --out: results.json, leaderboard.md, weights.json; the moving average goes to --state
(default OUT/ema_state.json) and is read back by the next round.

Examples:
  assay sn37 round --competition TINY_DEMO --models examples/sn37/models \\
      --data examples/sn37/data --block 2000 --out /tmp/sn37-round
  assay sn37 round --competition my_competition.toml --models subs/ --data data/ \\
      --block 5200000 --block-hash 0xabc... --state state/sn37.json --out out/")]
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
}

/// List the competitions built in.
#[derive(Debug, Clone, Args)]
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
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  assay sn37 hash examples/sn37/models/alice")]
pub struct HashArgs {
    /// The model folder.
    pub dir: PathBuf,
}

/// `assay sn37 competitions`.
pub fn run_list(args: CompetitionsArgs) -> anyhow::Result<()> {
    if let Some(spec) = args.show {
        let competition = find_competition(&spec)?;
        print!("{}", toml::to_string_pretty(&competition)?);
        return Ok(());
    }
    for c in builtin_competitions() {
        let tasks: Vec<String> = c
            .tasks
            .iter()
            .map(|t| format!("{} {}", t.name, t.weight))
            .collect();
        println!(
            "{:>4}  {:<24} reward {:.2}  params {}..={}  tasks: {}",
            c.id,
            c.name,
            c.reward_share,
            c.constraints.min_params,
            c.constraints.max_params,
            tasks.join(", ")
        );
    }
    Ok(())
}

/// `assay sn37 hash DIR`.
pub fn run_hash(args: HashArgs) -> anyhow::Result<()> {
    let rules = assay_integrity::models::ModelRules {
        architectures: Vec::new(),
        max_params: u64::MAX,
        ..Default::default()
    };
    let report = assay_integrity::models::check_model_folder(&args.dir, &rules);
    anyhow::ensure!(
        !report.content_hash.is_empty(),
        "{}: no readable weights",
        args.dir.display()
    );
    println!("{}", report.content_hash);
    Ok(())
}

fn read_state(path: &Path) -> anyhow::Result<EmaState> {
    if !path.exists() {
        return Ok(EmaState::default());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not an SN37 moving-average state; delete it to start afresh",
            path.display()
        )
    })
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// `assay sn37 round`.
pub fn run_round(args: RoundArgs) -> anyhow::Result<()> {
    let competition = find_competition(&args.competition)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| args.out.join("ema_state.json"));
    let mut state = read_state(&state_path)?;
    let inputs = RoundInputs {
        competition,
        models_dir: args.models.clone(),
        data_dir: args.data.clone(),
        block: args.block,
        block_hash: args.block_hash.clone(),
    };
    let bar = progress_bar();
    let mut on_event = |event: RoundEvent| match event {
        RoundEvent::Submissions(n) => {
            bar.set_length(n as u64);
            bar.set_message("checking submissions");
        }
        RoundEvent::Checked(_) => bar.inc(1),
        RoundEvent::EvaluationStarts { models, tasks } => {
            bar.set_position(0);
            bar.set_length((models * tasks) as u64);
            bar.set_message("evaluating");
        }
        RoundEvent::TaskScored { hotkey, task } => {
            bar.set_message(format!("{hotkey}: {task}"));
            bar.inc(1);
        }
    };
    let results =
        crate::round::run_round(&inputs, &mut state, &EngineLoader::default(), &mut on_event)?;
    bar.finish_and_clear();
    write_json(&args.out.join("results.json"), &results)?;
    write_json(&args.out.join("weights.json"), &weight_vector(&results))?;
    let leaderboard = leaderboard_markdown(&results);
    std::fs::write(args.out.join("leaderboard.md"), &leaderboard)?;
    if let Some(parent) = state_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    write_json(&state_path, &state)?;
    print!("{leaderboard}");
    println!(
        "\nWrote {} and state {}",
        args.out.display(),
        state_path.display()
    );
    Ok(())
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
pub fn run_sn37(command: Sn37Command) -> anyhow::Result<()> {
    match command {
        Sn37Command::Round(args) => run_round(*args),
        Sn37Command::Competitions(args) => run_list(args),
        Sn37Command::Hash(args) => run_hash(args),
    }
}
