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
    handlers.add(DatacompMiner);
    handlers.add(Sn37Eval);
    handlers
}

/// Where a job's model work runs: the worker's `--device` (CPU when none).
fn job_placement(input: &JobInput) -> Result<assay_engine::Placement, JobFailure> {
    let device = input.device.as_deref().unwrap_or("cpu");
    let device = device.parse::<assay_engine::DeviceSpec>().map_err(|e| {
        JobFailure::new(
            format!("the worker's device {device:?} is not a device: {e}"),
            Blame::Operator,
        )
    })?;
    Ok(assay_engine::Placement {
        device,
        dtype: None,
    })
}

/// A file or folder name made of a hotkey (SS58 is already safe; anything else is replaced).
fn safe_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn operator_io(what: String) -> impl FnOnce(std::io::Error) -> JobFailure {
    move |e| JobFailure::new(format!("{what}: {e}"), assay_errors::io_blame(&e))
}

/// `datacomp.miner`: one miner's fine-tune and held-out evaluation within its round, through
/// [`assay_datacomp::score_miner`]. The job sees every submission of the round (`peers`): they
/// are written out as the round folder `assay datacomp run` reads (each hotkey's latest
/// submission, priority from the block the validator received it at), so the integrity checks
/// (duplicates, cross-miner copies with first-submitter priority, contamination) judge the
/// miner against the whole round. The evaluation set comes from the closing block's hash. The
/// base model is `ASSAY_DATACOMP_MODEL` (default: the embedded SmolLM2-135M-Instruct).
pub struct DatacompMiner;

impl JobHandler for DatacompMiner {
    fn kind(&self) -> &'static str {
        "datacomp.miner"
    }

    fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure> {
        #[derive(serde::Deserialize)]
        struct Payload {
            submission_id: String,
            round: i64,
            block_hash: Option<String>,
            #[serde(default)]
            settings: assay_service::schedule::DatacompJobSettings,
        }
        let payload: Payload = serde_json::from_value(input.payload.clone()).map_err(|e| {
            JobFailure::new(
                format!("datacomp.miner payload is malformed: {e}"),
                Blame::Bug,
            )
        })?;
        let Some(block_hash) = payload.block_hash.filter(|h| !h.is_empty()) else {
            return Err(JobFailure::new(
                format!(
                    "Datacomp round {} has no closing block hash to draw its evaluation set                      from; post the deadline block to /internal/v1/chain/blocks",
                    payload.round
                ),
                Blame::Operator,
            ));
        };
        // Each hotkey's latest submission stands for it in the round.
        let mut latest: BTreeMap<&str, &assay_service::handler::PeerSubmission> = BTreeMap::new();
        for peer in &input.peers {
            latest
                .entry(peer.hotkey.as_str())
                .and_modify(|p| {
                    if (peer.received_ms, &peer.id) > (p.received_ms, &p.id) {
                        *p = peer;
                    }
                })
                .or_insert(peer);
        }
        let Some(me) = input.peers.iter().find(|p| p.id == payload.submission_id) else {
            return Err(JobFailure::new(
                format!(
                    "submission {} is not among its round's submissions",
                    payload.submission_id
                ),
                Blame::Bug,
            ));
        };
        if latest.get(me.hotkey.as_str()).map(|p| &p.id) != Some(&me.id) {
            return Err(JobFailure::new(
                "superseded: the same hotkey submitted again in this round, and only its latest                  submission is scored",
                Blame::Miner,
            ));
        }
        let dir = tempfile::tempdir()
            .map_err(operator_io("cannot create a folder for the round".into()))?;
        let mut miners = Vec::new();
        for (n, peer) in latest.values().enumerate() {
            let file = format!("{n:04}-{}.jsonl", safe_name(&peer.hotkey));
            std::fs::write(dir.path().join(&file), &peer.body)
                .map_err(operator_io(format!("cannot write {file}")))?;
            let block = peer.block.max(0) as u64;
            miners.push(json!({
                "hotkey": peer.hotkey, "file": file, "block": block,
                "verified_block": block, "receipt_ms": peer.received_ms.max(0),
            }));
        }
        let manifest = json!({
            "round": format!("round-{}", payload.round),
            "block_hash": block_hash,
            "miners": miners,
        });
        std::fs::write(dir.path().join("round.json"), manifest.to_string())
            .map_err(operator_io("cannot write round.json".into()))?;
        let settings = assay_datacomp::RoundSettings {
            model: std::env::var("ASSAY_DATACOMP_MODEL").ok(),
            placement: job_placement(input)?,
            submissions: dir.path().to_path_buf(),
            out: dir.path().join("out"),
            eval: assay_datacomp::EvalSet::Generated {
                seed: None,
                count: payload.settings.eval_problems.max(1),
            },
            token_budget: payload.settings.token_budget.max(1),
            max_new_tokens: payload.settings.max_new_tokens,
            generate: payload.settings.generate,
            ..Default::default()
        };
        let results = assay_datacomp::score_miner(&settings, &me.hotkey, |_| {})
            .map_err(|e| JobFailure::from_diagnose(&e))?;
        let Some(mine) = results.miners.iter().find(|m| m.hotkey == me.hotkey) else {
            return Err(JobFailure::new(
                "the round's results do not list this miner",
                Blame::Bug,
            ));
        };
        let mut result = json!({
            "final_score": mine.score,
            "rows": mine.rows,
            "kept_rows": mine.kept_rows,
            "penalty_multiplier": mine.penalty_multiplier,
            "volume": mine.volume,
            "details": {
                "rejected_rows": mine.rejected,
                "reasons": mine.reasons,
                "eval_source": results.config.eval_source,
                "base_reference_loss": results.base.reference_loss,
                "base_accuracy": results.base.accuracy,
            },
        });
        if let Some(t) = &mine.trained {
            result["tasks"] = json!({
                "reference_loss": { "score": t.reference_loss },
                "accuracy": { "score": t.accuracy },
                "word_recall": { "score": t.word_recall },
                "improvement": { "score": t.improvement.combined },
            });
            result["curve"] = json!({ "online_loss": t.loss_curve });
        }
        let update = if mine.disqualified {
            SubmissionUpdate {
                status: "rejected".into(),
                final_score: Some(0.0),
                error: Some(format!(
                    "rejected by the integrity checks: {}",
                    mine.reasons.join("; ")
                )),
                result: Some(result),
            }
        } else {
            SubmissionUpdate {
                status: "completed".into(),
                final_score: Some(mine.score),
                error: None,
                result: Some(result),
            }
        };
        Ok(JobOutput {
            output: json!({ "hotkey": mine.hotkey, "score": mine.score, "disqualified": mine.disqualified }),
            submission: Some(update),
            weights: None,
            others: Vec::new(),
        })
    }
}

/// `sn37.eval`: one competition's evaluation at a sync block, through
/// [`assay_sn37::run::run`]. Each committed model (`repo`) is looked up on this worker under
/// `ASSAY_SN37_MODELS` (`ROOT/org/name`, else `ROOT/name`: the chain is not reachable here, so
/// the operator syncs the repositories), given the commitment's metadata (hotkey, commit block,
/// hash: weights that do not hash to the commitment are rejected by the round), and evaluated
/// on the data in `ASSAY_SN37_DATA`. The moving average continues from
/// `ASSAY_SN37_STATE/ema_<competition>.json` (default folder `assay-data/sn37-state`). Every
/// model's submission gets its outcome, and the round's weights are recorded.
pub struct Sn37Eval;

impl JobHandler for Sn37Eval {
    fn kind(&self) -> &'static str {
        "sn37.eval"
    }

    fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure> {
        #[derive(serde::Deserialize)]
        struct Entrant {
            hotkey: String,
            block: i64,
            commitment: serde_json::Value,
            submission_id: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Payload {
            competition_id: i64,
            sync_block: i64,
            block_hash: Option<String>,
            models: Vec<Entrant>,
        }
        let payload: Payload = serde_json::from_value(input.payload.clone()).map_err(|e| {
            JobFailure::new(format!("sn37.eval payload is malformed: {e}"), Blame::Bug)
        })?;
        let env_dir = |name: &str| -> Result<std::path::PathBuf, JobFailure> {
            std::env::var_os(name).map(Into::into).ok_or_else(|| {
                JobFailure::new(
                    format!(
                        "this worker has no {name}: set ASSAY_SN37_MODELS (the synced model                          repositories, ROOT/org/name) and ASSAY_SN37_DATA (the competition's                          data files)"
                    ),
                    Blame::Operator,
                )
            })
        };
        let root = env_dir("ASSAY_SN37_MODELS")?;
        let data = env_dir("ASSAY_SN37_DATA")?;
        let state_dir: std::path::PathBuf = std::env::var_os("ASSAY_SN37_STATE")
            .map_or_else(|| "assay-data/sn37-state".into(), Into::into);
        std::fs::create_dir_all(&state_dir).map_err(operator_io(format!(
            "cannot create {}",
            state_dir.display()
        )))?;
        let dir = tempfile::tempdir()
            .map_err(operator_io("cannot create a folder for the round".into()))?;
        let models = dir.path().join("models");
        std::fs::create_dir(&models).map_err(operator_io("cannot create models/".into()))?;
        let mut submission_of = BTreeMap::new();
        let mut others = Vec::new();
        for m in &payload.models {
            let text = |k: &str| m.commitment.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let repo = text("repo");
            // Only `org/name` of plain names: a repo never reaches outside the models root.
            let plain = |part: &str| {
                !part.is_empty() && part != "." && part != ".." && !part.contains(['/', '\\'])
            };
            let found = repo
                .split_once('/')
                .filter(|(org, name)| plain(org) && plain(name))
                .map(|(org, name)| [root.join(org).join(name), root.join(name)])
                .into_iter()
                .flatten()
                .find(|p| p.is_dir());
            let Some(found) = found else {
                if let Some(id) = &m.submission_id {
                    others.push((
                        id.clone(),
                        SubmissionUpdate {
                            status: "failed".into(),
                            error: Some(format!(
                                "model repository {repo} is not synced on the worker"
                            )),
                            ..Default::default()
                        },
                    ));
                }
                continue;
            };
            let folder = models.join(safe_name(&m.hotkey));
            std::fs::create_dir(&folder)
                .map_err(operator_io(format!("cannot create {}", folder.display())))?;
            let entries = std::fs::read_dir(&found)
                .map_err(operator_io(format!("cannot list the model {repo}")))?;
            for entry in entries {
                let entry = entry.map_err(operator_io(format!("cannot list the model {repo}")))?;
                if entry.file_name() == "sn37.json" {
                    continue;
                }
                std::os::unix::fs::symlink(entry.path(), folder.join(entry.file_name()))
                    .map_err(operator_io(format!("cannot link the model {repo}")))?;
            }
            // The chain's word, not the repository's: hotkey, commit block, hash, competition.
            let metadata = json!({
                "hotkey": m.hotkey,
                "commit_block": m.block.max(0),
                "content_hash": text("hash"),
                "competition_id": payload.competition_id,
            });
            std::fs::write(folder.join("sn37.json"), metadata.to_string())
                .map_err(operator_io("cannot write sn37.json".into()))?;
            if let Some(id) = &m.submission_id {
                submission_of.insert(m.hotkey.clone(), id.clone());
            }
        }
        let settings = assay_sn37::run::RoundSettings {
            competition: payload.competition_id.to_string(),
            models,
            block: payload.sync_block.max(0) as u64,
            block_hash: payload.block_hash.clone(),
            data,
            state: Some(state_dir.join(format!("ema_{}.json", payload.competition_id))),
            out: dir.path().join("out"),
            placement: job_placement(input)?,
            policy: Default::default(),
        };
        let output =
            assay_sn37::run::run(&settings, |_| {}).map_err(|e| JobFailure::from_diagnose(&e))?;
        let results = &output.results;
        for model in &results.models {
            let Some(id) = submission_of.get(&model.hotkey) else {
                continue;
            };
            use assay_sn37::round::Status;
            let tasks: serde_json::Map<String, serde_json::Value> = model
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        json!({ "score": t.normalized, "raw": t.raw }),
                    )
                })
                .collect();
            let weight = results.competition_weights.get(&model.hotkey).copied();
            let result = json!({
                "final_score": model.score,
                "tasks": tasks,
                "details": {
                    "sync_block": results.sync_block, "seed": results.seed,
                    "wins": model.wins, "win_rate": model.win_rate,
                    "competition_weight": weight, "reasons": model.reasons,
                },
            });
            let reasons = model.reasons.join("; ");
            let update = match model.status {
                Status::Evaluated => SubmissionUpdate {
                    status: "completed".into(),
                    final_score: model.score,
                    error: None,
                    result: Some(result),
                },
                Status::Rejected => SubmissionUpdate {
                    status: "rejected".into(),
                    final_score: None,
                    error: Some(format!("rejected by SN37's model checks: {reasons}")),
                    result: Some(result),
                },
                Status::Failed => SubmissionUpdate {
                    status: "failed".into(),
                    final_score: None,
                    error: Some(format!("evaluation failed: {reasons}")),
                    result: Some(result),
                },
                // Committed too recently: a later sync block evaluates it.
                Status::Waiting => continue,
            };
            others.push((id.clone(), update));
        }
        let weights: BTreeMap<String, f64> = results
            .weights
            .iter()
            .map(|w| (w.hotkey.clone(), w.weight))
            .collect();
        Ok(JobOutput {
            output: json!({
                "competition_id": payload.competition_id, "sync_block": results.sync_block,
                "seed": results.seed, "weights": weights,
            }),
            submission: None,
            weights: Some(assay_service::handler::WeightsOutput {
                pipeline: "sn37".into(),
                epoch_id: payload.sync_block,
                weights,
            }),
            others,
        })
    }
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
            others: Vec::new(),
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
