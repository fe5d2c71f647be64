//! NOT YET WIRED: registered in main.rs by the lead after `cargo check -p assay-cli` (see the
//! service helper's report); needs assay-service, assay-store, assay-errors and tokio in
//! crates/cli/Cargo.toml.
//!
//! `assay worker`: claims jobs from the validator's database and runs each in a child process
//! (`assay job-child`, hidden) with the pipelines' job handlers.
//!
//! The handlers are the one place that adapts the service to the pipelines' library entry
//! points; each implements [`JobHandler`] for one job kind.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use anyhow::Context as _;
use assay_errors::Blame;
use assay_service::handler::{
    Handlers, JobFailure, JobHandler, JobInput, JobOutput, child_main, decode_base64,
};
use assay_service::worker::{WorkerSettings, run_worker};
use assay_store::{Store, StoreOptions, SubmissionUpdate};
use serde_json::json;

use crate::common::DeviceArgs;

/// `assay worker` arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay worker --db postgres://postgres@db:5432/assay --device cuda:0   # one worker per GPU
  assay worker --db sqlite:./assay-data/assay.sqlite3 --drain           # run what is queued, exit

Each job runs in its own process, killed at the job's wall-clock limit (or --memory-gb). SIGTERM
(or Ctrl-C) stops claiming; the job in hand finishes (or is released after --drain-timeout-secs).
Workers on other machines coordinate only through the database (PostgreSQL for several hosts).")]
pub struct WorkerArgs {
    /// The validator's database: `sqlite:PATH` or `postgres://user@host:port/db` (as `assay serve`).
    #[arg(long, env = "ASSAY_DB")]
    pub db: String,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// How long a claimed job stays ours without a heartbeat (heartbeats every third of it).
    #[arg(long, default_value_t = 60)]
    pub lease_secs: u64,
    /// Address-space limit of each job process, GiB (none by default; CUDA needs a large one).
    #[arg(long)]
    pub memory_gb: Option<f64>,
    /// This worker's name in leases and results (default host:pid).
    #[arg(long)]
    pub id: Option<String>,
    /// Exit once the queue is empty instead of waiting for more jobs.
    #[arg(long)]
    pub drain: bool,
    /// After SIGTERM, how long the job in hand may still run before it is released.
    #[arg(long, default_value_t = 3600)]
    pub drain_timeout_secs: u64,
}

/// Runs the worker until SIGTERM / Ctrl-C (or, with `--drain`, an empty queue).
pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Store::connect(&StoreOptions::new(&args.db)).await?;
        let exe: OsString = std::env::current_exe()
            .context("cannot find the assay executable")?
            .into();
        let mut settings = WorkerSettings::new(vec![exe, "job-child".into()]);
        settings.lease = Duration::from_secs(args.lease_secs.max(3));
        settings.heartbeat = settings.lease / 3;
        settings.memory_limit = args.memory_gb.map(|gb| (gb * (1u64 << 30) as f64) as u64);
        settings.device = Some(args.device.device.to_string());
        settings.exit_when_idle = args.drain;
        settings.drain_timeout = Duration::from_secs(args.drain_timeout_secs);
        if let Some(id) = args.id {
            settings.id = id;
        }
        let shutdown = shutdown_signal();
        let report = run_worker(&store, &settings, shutdown).await?;
        eprintln!(
            "worker {}: {} done, {} failed, {} lost leases, {} released",
            settings.id, report.completed, report.failed, report.lease_lost, report.released
        );
        Ok(())
    })
}

/// A receiver that turns true on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: no new jobs");
        let _ = tx.send(true);
    });
    rx
}

/// The hidden `assay job-child`: one job from stdin, its outcome on stdout.
pub fn run_child() -> ! {
    std::process::exit(child_main(&handlers()))
}

/// The built-in handlers plus the pipelines'.
pub fn handlers() -> Handlers {
    let mut handlers = Handlers::builtin();
    handlers.add(PrismBundle);
    handlers
}

/// `prism.bundle`: PRISM's static gates on the submitted bundle, then, when a data folder is
/// configured (`ASSAY_PRISM_DATA`, Python with torch in `ASSAY_PRISM_PYTHON`, default `python3`),
/// the sandboxed training run and PRISM's score.
pub struct PrismBundle;

impl JobHandler for PrismBundle {
    fn kind(&self) -> &'static str {
        "prism.bundle"
    }

    fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure> {
        use assay_prism::bundle::{Bundle, Limits};
        let code = input
            .submission_body
            .as_deref()
            .ok_or_else(|| JobFailure::new("the job has no submission to evaluate", Blame::Bug))?;
        let filename = input.submission_filename.as_deref().unwrap_or("model.py");
        let limits = Limits::default();
        let bundle = if filename.ends_with(".zip") {
            let bytes = decode_base64(code)?;
            Bundle::from_zip_bytes(filename, &bytes, &limits)
                .map_err(|e| JobFailure::new(assay_errors::chain(&e), Blame::Miner))?
        } else {
            Bundle {
                files: BTreeMap::from([(filename.to_string(), code.to_string())]),
            }
        };
        let check = assay_prism::check_bundle(&bundle);
        if !check.passed() {
            let mut reasons: Vec<String> = check.findings.iter().map(|f| f.to_string()).collect();
            if let Err(contract) = &check.contract {
                reasons.insert(0, format!("contract: {contract}"));
            }
            return Err(JobFailure::new(
                format!("rejected by PRISM's static gates: {}", reasons.join("; ")),
                Blame::Miner,
            ));
        }
        let Some(data) = std::env::var_os("ASSAY_PRISM_DATA") else {
            return Err(JobFailure::new(
                "the bundle passed the static gates, but this worker has no PRISM data folder for \
                 the training run: set ASSAY_PRISM_DATA (a folder with train/ and val/) and \
                 ASSAY_PRISM_PYTHON (a Python with torch)",
                Blame::Operator,
            ));
        };
        let python = std::env::var_os("ASSAY_PRISM_PYTHON").unwrap_or_else(|| "python3".into());
        let config = assay_prism::runner::RunConfig::new(python.into());
        let report = assay_prism::run_bundle(
            &bundle,
            std::path::Path::new(&data),
            &config,
            [],
            &mut |_| {},
        )
        .map_err(|e| JobFailure::new(assay_errors::chain(&e), pipeline_blame(&e)))?;
        let score = &report.score;
        let pre = &report.train.prequential;
        let result = json!({
            "final_score": score.stored_score,
            "anti_cheat_multiplier": score.anti_cheat_multiplier,
            "penalty": score.memorization_penalty,
            "prequential_bpb": score.bpb,
            "bits_per_byte": score.bpb,
            "flags": score.flags,
            "curve": {
                "online_loss": pre.online_loss,
                "covered_bytes_cumulative": pre.covered_bytes_cumulative,
                "baseline_nats": pre.baseline_nats,
            },
            "compute": {
                "device": input.device,
                "model_params": report.instantiation_params,
                "tokens_consumed": report.train.consumed_tokens,
                "peak_rss_bytes": report.train.peak_rss_bytes,
            },
        });
        Ok(JobOutput {
            output: json!({ "score": score }),
            submission: Some(SubmissionUpdate {
                status: "completed".into(),
                final_score: Some(score.stored_score),
                error: None,
                result: Some(result),
            }),
            weights: None,
        })
    }
}

/// Whose fault a PRISM run's failure is (until the prism crate implements `Diagnose`): the
/// bundle's own faults are the miner's; a runner failure may pass (retried).
fn pipeline_blame(e: &assay_prism::PipelineError) -> Blame {
    use assay_prism::PipelineError as P;
    match e {
        P::Bundle(_) | P::Contract(_) | P::Sandbox(_) | P::Score(_) => Blame::Miner,
        _ => Blame::Transient,
    }
}
