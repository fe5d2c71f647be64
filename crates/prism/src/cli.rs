//! `assay prism ...`: clap argument structs and their entry points, wired by the `assay` binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::bundle::{Bundle, Limits};
use crate::leaderboard::{ScoredSubmission, State};
use crate::runner::{self, Progress, RunConfig};
use crate::score::Budgets;
use crate::{RunReport, check_bundle, corpus, run_bundle};

/// The example bundle shipped with assay (`examples/prism/bundle/`).
pub const EXAMPLE_BUNDLE: &[(&str, &str)] = &[
    (
        "architecture.py",
        include_str!("../../../examples/prism/bundle/architecture.py"),
    ),
    (
        "training.py",
        include_str!("../../../examples/prism/bundle/training.py"),
    ),
    (
        "prism.yaml",
        include_str!("../../../examples/prism/bundle/prism.yaml"),
    ),
];

/// The embedded example bundle.
pub fn example_bundle() -> Bundle {
    Bundle {
        files: EXAMPLE_BUNDLE
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    }
}

fn load_bundle(path: Option<&Path>) -> anyhow::Result<Bundle> {
    match path {
        None => Ok(example_bundle()),
        Some(p) => Bundle::open(p, &Limits::default())
            .with_context(|| format!("reading bundle {}", p.display())),
    }
}

/// `assay prism check`: static checks of a bundle.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  assay prism check my_bundle/\n  assay prism check submission.zip --json\n  assay prism check            # the embedded example bundle\n\nEach finding prints as FILE:LINE:COL RULE MESSAGE; the exit status is non-zero when any is found."
)]
pub struct CheckArgs {
    /// Bundle folder or .zip (default: the embedded example bundle).
    pub bundle: Option<PathBuf>,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `assay prism check`.
pub fn run_check(args: CheckArgs) -> anyhow::Result<()> {
    let bundle = load_bundle(args.bundle.as_deref())?;
    let report = check_bundle(&bundle);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for finding in &report.findings {
            let tag = if finding.extension {
                " [assay extension]"
            } else {
                ""
            };
            println!("{finding}{tag}");
        }
        match &report.contract {
            Ok(c) => println!(
                "contract: {} ({}) + {} ({})",
                c.architecture_entrypoint,
                c.build_model_symbol,
                c.training_entrypoint,
                c.train_symbol
            ),
            Err(e) => println!("contract: FAILED: {e}"),
        }
    }
    if !report.passed() {
        bail!(
            "{} finding(s); the bundle would be rejected",
            report.findings.len().max(1)
        );
    }
    println!(
        "ok: {} Python file(s) pass the PRISM sandbox",
        bundle.python_paths().count()
    );
    Ok(())
}

/// `assay prism run`: train and score a bundle.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  assay prism run --step-budget 40                 # example bundle on the pydoc corpus\n  assay prism run my_bundle/ --data corpus/ --budget-seconds 600\n  assay prism run sub.zip --data corpus/ --state prism_state.json --hotkey 5F... --accepted-at 1730000000\n\nThe interpreter needs torch: --python or ASSAY_PRISM_PYTHON (default python3). The data folder holds\ntrain/train-*.jsonl and val/val-*.jsonl with a `text` field; without --data the corpus is built from the\ninterpreter's pydoc_data.topics into a temp folder (see `assay prism corpus`)."
)]
pub struct RunArgs {
    /// Bundle folder or .zip (default: the embedded example bundle).
    pub bundle: Option<PathBuf>,
    /// Corpus folder (default: build the pydoc corpus in a temp folder).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Python interpreter with torch.
    #[arg(long, env = "ASSAY_PRISM_PYTHON")]
    pub python: Option<PathBuf>,
    /// Forced seed.
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Vocabulary size in the context.
    #[arg(long, default_value_t = 4096)]
    pub vocab_size: u32,
    /// Sequence length in the context.
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// Stop after this many batches.
    #[arg(long)]
    pub step_budget: Option<u64>,
    /// Stop after this many tokens (bytes).
    #[arg(long)]
    pub token_budget: Option<u64>,
    /// Graceful wall-clock stop in seconds (PRISM: 1200).
    #[arg(long)]
    pub budget_seconds: Option<f64>,
    /// Parameter cap.
    #[arg(long, default_value_t = 150_000_000)]
    pub max_params: u64,
    /// Address-space cap of the runner, MiB; 0 = none. CUDA reserves far more address space
    /// than it uses: a GPU run needs 0 or a large value (it falls back to CPU otherwise, and
    /// the report's device shows it).
    #[arg(long, default_value_t = 12 * 1024)]
    pub memory_mb: u64,
    /// Torch threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the full run report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Leaderboard state file to record the score in.
    #[arg(long, requires = "hotkey")]
    pub state: Option<PathBuf>,
    /// Miner hotkey (with --state).
    #[arg(long)]
    pub hotkey: Option<String>,
    /// Commit time or block of the submission (with --state; default: now, unix seconds).
    #[arg(long)]
    pub accepted_at: Option<u64>,
}

impl RunArgs {
    fn config(&self) -> RunConfig {
        let mut config = RunConfig::new(runner::resolve_python(self.python.as_deref()));
        config.seed = self.seed;
        config.vocab_size = self.vocab_size;
        config.sequence_length = self.seq_len;
        config.max_parameters = self.max_params;
        config.budgets = Budgets {
            token_budget: self.token_budget,
            step_budget: self.step_budget,
            budget_seconds: self.budget_seconds,
        };
        config.limits.memory_bytes = self.memory_mb << 20;
        if let Some(t) = self.threads {
            config.threads = t;
        }
        config
    }
}

/// Runs `assay prism run`.
pub fn run_run(args: RunArgs) -> anyhow::Result<()> {
    let bundle = load_bundle(args.bundle.as_deref())?;
    let config = args.config();
    let temp;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            build_corpus(&config.python, temp.path())?;
            temp.path().to_path_buf()
        }
    };
    let mut state = match &args.state {
        Some(path) => State::load(path)?,
        None => State::default(),
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
    let mut progress = |p: Progress| match p {
        Progress::Stage(s) => bar.set_message(s.to_string()),
        Progress::Batch {
            index,
            loss,
            covered_bytes,
        } => {
            bar.set_message(format!(
                "batch {index}: loss {loss:.3} nats, {covered_bytes} bytes"
            ));
            bar.tick();
        }
    };
    let previous: Vec<_> = state.fingerprints().cloned().collect();
    let report = run_bundle(&bundle, &data, &config, &previous, &mut progress);
    bar.finish_and_clear();
    let report = report?;
    print_report(&report);
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    if let (Some(path), Some(hotkey)) = (&args.state, &args.hotkey) {
        let id = state.record(new_submission(&report, hotkey, args.accepted_at));
        state.save(path)?;
        println!("recorded as submission {id} in {}", path.display());
    }
    Ok(())
}

fn new_submission(report: &RunReport, hotkey: &str, accepted_at: Option<u64>) -> ScoredSubmission {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ScoredSubmission {
        hotkey: hotkey.to_string(),
        accepted_at: accepted_at.unwrap_or(now),
        score: report.score.stored_score,
        bpb: report.score.bpb,
        family_hash: report.check.family_hash.clone().unwrap_or_default(),
        training_hash: report.check.training_hash.clone().unwrap_or_default(),
        fingerprint: report.check.fingerprint.clone(),
        architecture_name: report
            .check
            .contract
            .as_ref()
            .ok()
            .and_then(|c| c.architecture_name.clone()),
    }
}

fn print_report(r: &RunReport) {
    let t = &r.train;
    let p = &t.prequential;
    if let Some((torch, device)) = &t.torch {
        println!(
            "torch {torch} on {device}; build_model params {}",
            r.instantiation_params
        );
    }
    println!(
        "batches {} ({} bytes, {} docs), stopped: {:?}",
        p.online_loss.len(),
        p.covered_bytes_int(),
        t.consumed_documents,
        t.stopped_reason
    );
    println!(
        "first loss {:.4} nats (ln V = {:.4})",
        p.online_loss.first().copied().unwrap_or(f64::NAN),
        p.baseline_nats
    );
    println!("prequential bpb {:.6}", r.score.bpb);
    if let Some(h) = &r.heldout {
        println!(
            "held-out: val bpb trained {:.6}, twin {:.6}, delta {:.6}, gap {:?} ({:?})",
            h.val_bpb_trained,
            h.val_bpb_random_init,
            h.heldout_delta,
            h.train_heldout_gap,
            h.gap_basis
        );
    } else {
        println!("held-out: skipped (no val split or no trained state)");
    }
    let s = &r.score;
    println!(
        "final_score {:.9} (base {:.9} x pen {} + tie {:.3e}) x step0 {}; near-dup x{} (max sim {:.3}) => stored {:.9}",
        s.final_score,
        s.base,
        s.memorization_penalty,
        s.tie_break,
        s.anti_cheat_multiplier,
        s.near_duplicate_multiplier,
        r.max_similarity,
        s.stored_score
    );
    if !s.flags.is_empty() {
        println!("flags: {}", s.flags.join(", "));
    }
    let l = &t.limits;
    println!(
        "limits: AS {}, CPU {} s, files {}, fsize {} MiB, nproc {}, own group, no_new_privs, network isolated: {:?}",
        if l.memory_bytes == u64::MAX {
            "none".to_string()
        } else {
            format!("{} MiB", l.memory_bytes >> 20)
        },
        l.cpu_seconds,
        l.open_files,
        l.file_bytes >> 20,
        l.processes,
        l.network_isolated
    );
    for note in l.not_enforced.iter().chain(&t.notes) {
        println!("note: {note}");
    }
}

/// `assay prism corpus`: build the default byte corpus.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  assay prism corpus --out corpus/ --python /usr/bin/python3\n\nReads pydoc_data.topics from the interpreter (it ships with CPython), cuts topics into paragraphs\nand writes train/val/test JSONL shards by PRISM's SHA-256 hash partition, plus MANIFEST.json.\nThe same interpreter version gives byte-identical shards."
)]
pub struct CorpusArgs {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Python interpreter (torch not needed).
    #[arg(long, env = "ASSAY_PRISM_PYTHON")]
    pub python: Option<PathBuf>,
}

fn build_corpus(python: &Path, out: &Path) -> anyhow::Result<corpus::CorpusManifest> {
    let topics = runner::pydoc_topics(python).context("reading pydoc_data.topics")?;
    Ok(corpus::write_corpus(
        &topics,
        &format!("pydoc_data.topics of {}", python.display()),
        out,
    )?)
}

/// Runs `assay prism corpus`.
pub fn run_corpus(args: CorpusArgs) -> anyhow::Result<()> {
    let python = runner::resolve_python(args.python.as_deref());
    let manifest = build_corpus(&python, &args.out)?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

/// `assay prism leaderboard`: ranking and weights from a state file.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  assay prism leaderboard --state prism_state.json\n\nRows: one per hotkey (its best), ordered by score on a 1e-9 grid, then earliest commit.\nWeights: 0.6 to the owner of the best architecture family, 0.4 to the owner of its best training\nvariant, normalised; nothing (burn) while no family scored above 0."
)]
pub struct LeaderboardArgs {
    /// State file written by `assay prism run --state`.
    #[arg(long)]
    pub state: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `assay prism leaderboard`.
pub fn run_leaderboard(args: LeaderboardArgs) -> anyhow::Result<()> {
    let state = State::load(&args.state)?;
    let weights = state.weights();
    let hotkeys: Vec<&String> = weights.keys().collect();
    let values: Vec<f64> = weights.values().copied().collect();
    let u16s = assay_weights::to_u16(&values);
    if args.json {
        let rows = state.leaderboard();
        let out = serde_json::json!({
            "leaderboard": rows,
            "best_family": state.best_family(),
            "weights": weights,
            "weights_u16": hotkeys.iter().zip(&u16s).map(|(h, w)| (h.to_string(), *w)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:>4} {:<20} {:>14} {:>10} {:>12}",
        "rank", "hotkey", "score", "bpb", "accepted_at"
    );
    for (i, s) in state.leaderboard().iter().enumerate() {
        println!(
            "{:>4} {:<20} {:>14.9} {:>10.5} {:>12}",
            i + 1,
            s.scored.hotkey,
            s.scored.score,
            s.scored.bpb,
            s.scored.accepted_at
        );
    }
    for ((hotkey, w), u) in weights.iter().zip(&u16s) {
        println!("weight {hotkey}: {w:.4} (u16 {u})");
    }
    if weights.is_empty() {
        println!("weights: none (burn): no architecture has scored above 0");
    }
    Ok(())
}

/// `assay prism <check|run|leaderboard|corpus>`, for the binary to nest as one subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum PrismCommand {
    /// Static checks: intake limits, two-script contract, PRISM's AST sandbox.
    Check(CheckArgs),
    /// Train a bundle under the sandbox and score it (prequential bpb, held-out delta).
    Run(Box<RunArgs>),
    /// Leaderboard and two-tier crown weights from a state file.
    Leaderboard(LeaderboardArgs),
    /// Build the default byte corpus from pydoc_data.topics.
    Corpus(CorpusArgs),
}

/// Dispatches a [`PrismCommand`].
pub fn run_prism(command: PrismCommand) -> anyhow::Result<()> {
    match command {
        PrismCommand::Check(args) => run_check(args),
        PrismCommand::Run(args) => run_run(*args),
        PrismCommand::Leaderboard(args) => run_leaderboard(args),
        PrismCommand::Corpus(args) => run_corpus(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Root {
        #[command(subcommand)]
        command: PrismCommand,
    }

    #[test]
    fn arguments_are_consistent_and_parse() {
        Root::command().debug_assert();
        let root = Root::try_parse_from([
            "assay",
            "run",
            "b.zip",
            "--step-budget",
            "5",
            "--python",
            "/p",
        ])
        .unwrap();
        assert!(matches!(root.command, PrismCommand::Run(args) if args.step_budget == Some(5)));
        assert!(
            Root::try_parse_from(["assay", "run", "--state", "s.json"]).is_err(),
            "--state needs --hotkey"
        );
    }

    #[test]
    fn check_fails_on_a_refused_bundle_and_passes_the_example() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in EXAMPLE_BUNDLE {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        run_check(CheckArgs {
            bundle: Some(dir.path().into()),
            json: false,
        })
        .unwrap();
        std::fs::write(dir.path().join("helpers.py"), "import socket\n").unwrap();
        assert!(
            run_check(CheckArgs {
                bundle: Some(dir.path().into()),
                json: true
            })
            .is_err()
        );
    }
}
