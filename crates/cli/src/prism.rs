//! `assay prism ...`: the clap arguments of the PRISM pipeline, turned into
//! [`assay_prism::runner::RunConfig`] / [`assay_prism::CheckSettings`] and handed to the library.

use std::path::PathBuf;

use anyhow::{Context, bail};
use assay_prism::corpus::{self, SourcePin};
use assay_prism::distributed::Policy;
use assay_prism::leaderboard::State;
use assay_prism::runner::{self, RunConfig};
use assay_prism::score::{Budgets, StopReason};
use assay_prism::{CheckSettings, Event, RunReport, check_bundle_with, load_bundle, run_bundle};
use clap::{Args, Subcommand, ValueEnum};

use crate::progress::Progress;

/// `--distributed-policy`: what a training script that breaks the multi-GPU contract gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Refused before any run (PRISM's default).
    Reject,
    /// Run, with the findings recorded as flags.
    Flag,
    /// Not checked.
    Off,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Reject => Policy::Reject,
            PolicyArg::Flag => Policy::Flag,
            PolicyArg::Off => Policy::Off,
        }
    }
}

/// The static-gate flags shared by `check` and `run`.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// What a training script that breaks the multi-GPU contract (init_process_group, device
    /// binding, DDP/FSDP, per-rank sharding, rank-0 write guard, destroy_process_group) gets.
    #[arg(long, value_enum, default_value_t = PolicyArg::Reject)]
    pub distributed_policy: PolicyArg,
    /// GPUs the submission asks for (more than 8 is refused).
    #[arg(long)]
    pub gpu_count: Option<u32>,
    /// Nodes the submission asks for (more than 1 is refused).
    #[arg(long)]
    pub num_nodes: Option<u32>,
}

impl GateArgs {
    fn settings(&self) -> CheckSettings {
        CheckSettings {
            distributed_policy: self.distributed_policy.into(),
            gpu_count: self.gpu_count,
            num_nodes: self.num_nodes,
        }
    }
}

/// `assay prism check`: static checks of a bundle.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  assay prism check my_bundle/\n  assay prism check submission.zip --json\n  assay prism check            # the embedded example bundle\n\nEach finding prints as FILE:LINE:COL RULE MESSAGE; the exit status is non-zero when any is found.\nWith --json, stdout holds only the JSON report (the verdict is its exit status)."
)]
pub struct CheckArgs {
    /// Bundle folder or .zip (default: the embedded example bundle).
    pub bundle: Option<PathBuf>,
    /// Print the full report as JSON (and nothing else) on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Runs `assay prism check`.
pub fn run_check(args: CheckArgs) -> anyhow::Result<()> {
    let bundle = load_bundle(args.bundle.as_deref())?;
    let report = check_bundle_with(&bundle, &args.gate.settings());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for finding in report.findings.iter().chain(&report.flags) {
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
    if !args.json {
        println!(
            "ok: {} Python file(s) pass the PRISM sandbox",
            bundle.python_paths().count()
        );
    }
    Ok(())
}

/// `assay prism run`: train and score a bundle.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  assay prism run --step-budget 40                 # example bundle on the pydoc corpus\n  assay prism run my_bundle/ --data corpus/ --budget-seconds 600\n  assay prism run sub.zip --data corpus/ --gpus 1 --memory-mb 0   # the host's second GPU\n  assay prism run sub.zip --data corpus/ --state prism_state.json --hotkey 5F... --accepted-at 1730000000\n\nThe interpreter needs torch: --python or ASSAY_PRISM_PYTHON (default python3). The data folder holds\ntrain/train-*.jsonl and val/val-*.jsonl with a `text` field; a MANIFEST.json (prism_locked_data.v1) there\nis verified shard by shard before the run. Without --data the corpus is built from the interpreter's\npydoc_data.topics into a temp folder (see `assay prism corpus`). The miner's code picks its own device\nand dtype (ctx.device says where torch found a GPU); --gpus decides which GPUs it may see."
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
    /// GPUs the runner may see, as CUDA_VISIBLE_DEVICES: `none` (CPU only), `0`, `1`, `0,1`, ...
    /// Default: the variable is not set and torch uses the host's first GPU, if any. The value
    /// and the GPU's name are recorded in the report.
    #[arg(long)]
    pub gpus: Option<String>,
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
    /// Parameter cap (every tensor reachable from the model counts).
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
    #[command(flatten)]
    pub gate: GateArgs,
    /// Checkpoint the training stage into this folder (crash recovery). Run the same command
    /// again with the same folder after a crash: it resumes from the last good checkpoint and
    /// ends with the score the uninterrupted run would have had.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Seconds between checkpoints (PRISM: 3600), with --checkpoint-dir.
    #[arg(long, requires = "checkpoint_dir", default_value_t = assay_prism::checkpoint::PRISM_CADENCE_SECONDS)]
    pub checkpoint_every_seconds: f64,
    /// Also checkpoint every this many batches, with --checkpoint-dir.
    #[arg(long, requires = "checkpoint_dir")]
    pub checkpoint_every_batches: Option<u64>,
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
        config.check = self.gate.settings();
        config.cuda_visible_devices = self.gpus.as_ref().map(|g| match g.as_str() {
            "none" | "cpu" => String::new(),
            other => other.to_string(),
        });
        config.checkpoint = self.checkpoint_dir.as_ref().map(|dir| {
            let mut ck = assay_prism::checkpoint::CheckpointConfig::hourly(dir.clone());
            ck.every_seconds = Some(self.checkpoint_every_seconds);
            ck.every_batches = self.checkpoint_every_batches;
            ck
        });
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
            assay_prism::build_corpus(&config.python, temp.path())?;
            temp.path().to_path_buf()
        }
    };
    let mut state = match &args.state {
        Some(path) => State::load(path)?,
        None => State::default(),
    };
    let mut bar = Progress::spinner("prism");
    let mut progress = |event: Event| match event {
        Event::Stage(stage) => bar.set_message(stage),
        Event::Batch {
            index,
            loss,
            covered_bytes,
        } => {
            bar.set_message(format!(
                "batch {index}: loss {loss:.3} nats, {covered_bytes} bytes"
            ));
            bar.set_position(index);
        }
    };
    let priors: Vec<_> = state.priors().collect();
    let report = run_bundle(&bundle, &data, &config, priors, &mut progress);
    bar.finish();
    let report = report?;
    print_report(&report);
    if let Some(path) = &args.report {
        report.write(path)?;
    }
    if let (Some(path), Some(hotkey)) = (&args.state, &args.hotkey) {
        let id = state.record(report.submission(hotkey, args.accepted_at));
        state.save(path)?;
        println!("recorded as submission {id} in {}", path.display());
    }
    Ok(())
}

fn print_report(r: &RunReport) {
    let t = &r.train;
    let p = &t.prequential;
    if let Some((torch, device)) = &t.torch {
        let gpu = t
            .gpu_name
            .as_ref()
            .map(|g| format!(" ({g})"))
            .unwrap_or_default();
        let visible = t
            .cuda_visible_devices
            .as_ref()
            .map(|v| format!(", CUDA_VISIBLE_DEVICES={v:?}"))
            .unwrap_or_default();
        println!(
            "torch {torch} on {device}{gpu}{visible}; build_model params {}",
            r.instantiation_params
        );
    }
    let stopped = match t.stopped_reason {
        Some(StopReason::TokenBudget) => "token budget",
        Some(StopReason::StepBudget) => "step budget",
        Some(StopReason::WallClock) => "wall clock",
        Some(StopReason::DataExhausted) => "data exhausted",
        None => "not reported",
    };
    println!(
        "batches {} ({} bytes, {} docs), stopped: {stopped}",
        p.online_loss.len(),
        p.covered_bytes_int(),
        t.consumed_documents,
    );
    println!(
        "first loss {:.4} nats (ln V = {:.4})",
        p.online_loss.first().copied().unwrap_or(f64::NAN),
        p.baseline_nats
    );
    println!("prequential bpb {:.6}", r.score.bpb);
    if let Some(h) = &r.heldout {
        let gap = match (h.train_heldout_gap, &h.gap_basis) {
            (Some(gap), Some(basis)) => format!("{gap:.6} ({basis})"),
            (Some(gap), None) => format!("{gap:.6}"),
            (None, _) => "none (no train bpb to compare)".into(),
        };
        println!(
            "held-out: val bpb trained {:.6}, twin {:.6}, delta {:.6}, gap {gap}",
            h.val_bpb_trained, h.val_bpb_random_init, h.heldout_delta,
        );
    } else {
        println!("held-out: skipped (no val split or no trained state)");
    }
    let s = &r.score;
    println!(
        "final_score {:.9} (base {:.9} x pen {} + tie {:.3e}) x anti-cheat {}; near-dup x{} (max sim {:.3}, structural {:.3}) => stored {:.9}",
        s.final_score,
        s.base,
        s.memorization_penalty,
        s.tie_break,
        s.anti_cheat_multiplier,
        s.near_duplicate_multiplier,
        r.max_similarity,
        r.max_structural_similarity,
        s.stored_score
    );
    if !s.flags.is_empty() {
        println!("flags: {}", s.flags.join(", "));
    }
    for flag in &r.check.flags {
        println!("flag: {flag}");
    }
    let l = &t.limits;
    println!(
        "limits: AS {}, CPU {} s, files {}, fsize {} MiB, nproc {}, own group, no_new_privs, network isolated: {}",
        if l.memory_bytes == u64::MAX {
            "none".to_string()
        } else {
            format!("{} MiB", l.memory_bytes >> 20)
        },
        l.cpu_seconds,
        l.open_files,
        l.file_bytes >> 20,
        l.processes,
        match l.network_isolated {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    );
    for note in l.not_enforced.iter().chain(&t.notes) {
        println!("note: {note}");
    }
}

/// `assay prism corpus`: build the default locked corpus.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  assay prism corpus --out corpus/ --python /usr/bin/python3\n\nReads pydoc_data.topics from the interpreter (it ships with CPython), cuts topics into paragraphs\nand locks them as PRISM does: SHA-256 hash partition into train/val/test, dedup, sorted by id,\nJSONL shards of 1,024 documents, MANIFEST.json (prism_locked_data.v1). The same interpreter\nversion gives byte-identical shards."
)]
pub struct CorpusArgs {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Python interpreter (torch not needed).
    #[arg(long, env = "ASSAY_PRISM_PYTHON")]
    pub python: Option<PathBuf>,
}

/// Runs `assay prism corpus`.
pub fn run_corpus(args: CorpusArgs) -> anyhow::Result<()> {
    let python = runner::resolve_python(args.python.as_deref());
    let manifest = assay_prism::build_corpus(&python, &args.out)?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

/// `assay prism lock`: lock any local corpus (FineWeb-edu's Parquet files, JSONL).
#[derive(Debug, Args)]
#[command(
    after_help = "Example (FineWeb-edu at PRISM's pin, downloaded beforehand):\n  assay prism lock --out fineweb-locked/ --source HuggingFaceFW/fineweb-edu \\\n      --revision 87f09149ef4734204d70ed1d046ddc9ca3f2b8f9 sample/10BT/000_00000.parquet ...\n\nEach row needs `id` and `text`. Writes train/val/test JSONL shards of 1,024 documents (SHA-256\nhash partition, dedup, sorted by id) and MANIFEST.json with the pin and each shard's SHA-256."
)]
pub struct LockArgs {
    /// JSONL or Parquet files with `id` and `text` columns.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Source name recorded in the manifest.
    #[arg(long, default_value = corpus::FINEWEB_EDU.0)]
    pub source: String,
    /// Source revision (commit) recorded in the manifest.
    #[arg(long, default_value = corpus::FINEWEB_EDU.1)]
    pub revision: String,
}

/// Runs `assay prism lock`.
pub fn run_lock(args: LockArgs) -> anyhow::Result<()> {
    let docs = corpus::read_documents(&args.inputs)?;
    let pin = SourcePin {
        name: args.source,
        revision: args.revision,
    };
    let manifest = corpus::lock_corpus(docs, pin, &args.out)
        .with_context(|| format!("locking into {}", args.out.display()))?;
    println!(
        "locked {} documents in {} shards into {} ({} duplicates dropped)",
        manifest.documents.values().sum::<usize>(),
        manifest.shards.len(),
        args.out.display(),
        manifest.duplicates_dropped.values().sum::<usize>()
    );
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
    let state = State::load_existing(&args.state)?;
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

/// `assay prism <check|run|leaderboard|corpus|lock>`, nested as one subcommand of the binary.
#[derive(Debug, Subcommand)]
pub enum PrismCommand {
    /// Static checks: intake limits, two-script contract, PRISM's AST sandbox, multi-GPU contract.
    Check(CheckArgs),
    /// Train a bundle under the sandbox and score it (prequential bpb, held-out delta).
    Run(Box<RunArgs>),
    /// Leaderboard and two-tier crown weights from a state file.
    Leaderboard(LeaderboardArgs),
    /// Build and lock the default byte corpus from pydoc_data.topics.
    Corpus(CorpusArgs),
    /// Lock a local corpus (FineWeb-edu Parquet, JSONL) into PRISM's data layout.
    Lock(LockArgs),
}

/// Dispatches a [`PrismCommand`].
pub fn run_prism(command: PrismCommand) -> anyhow::Result<()> {
    match command {
        PrismCommand::Check(args) => run_check(args),
        PrismCommand::Run(args) => run_run(*args),
        PrismCommand::Leaderboard(args) => run_leaderboard(args),
        PrismCommand::Corpus(args) => run_corpus(args),
        PrismCommand::Lock(args) => run_lock(args),
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
            "--gpus",
            "none",
            "--distributed-policy",
            "flag",
            "--checkpoint-dir",
            "ck",
            "--checkpoint-every-batches",
            "3",
        ])
        .unwrap();
        let PrismCommand::Run(args) = root.command else {
            panic!("not run")
        };
        assert_eq!(args.step_budget, Some(5));
        let config = args.config();
        assert_eq!(config.cuda_visible_devices.as_deref(), Some(""));
        assert_eq!(config.check.distributed_policy, Policy::Flag);
        let ck = config.checkpoint.unwrap();
        assert_eq!(ck.dir, PathBuf::from("ck"));
        assert_eq!(
            (ck.every_seconds, ck.every_batches),
            (Some(3600.0), Some(3))
        );
        assert!(
            Root::try_parse_from(["assay", "run", "--checkpoint-every-batches", "3"]).is_err(),
            "a cadence needs a folder"
        );
        assert!(
            Root::try_parse_from(["assay", "run", "--state", "s.json"]).is_err(),
            "--state needs --hotkey"
        );
    }

    #[test]
    fn check_fails_on_a_refused_bundle_and_passes_the_example() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in assay_prism::EXAMPLE_BUNDLE {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        let args = |json| CheckArgs {
            bundle: Some(dir.path().into()),
            json,
            gate: GateArgs {
                distributed_policy: PolicyArg::Reject,
                gpu_count: None,
                num_nodes: None,
            },
        };
        run_check(args(false)).unwrap();
        std::fs::write(dir.path().join("helpers.py"), "import socket\n").unwrap();
        assert!(run_check(args(true)).is_err());
    }
}
