//! The orchestrator around the trusted Python runner: it writes the runner and the bundle to a
//! private temp dir, starts the interpreter under [`crate::limits`], streams the locked train
//! split batch by batch, records the losses the runner sends back, enforces the budgets (graceful
//! stop, watchdog, hard cap, artifacts quota) and then runs the held-out step.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bundle::{Bundle, Contract};
use crate::checkpoint::{self, CheckpointConfig, CheckpointError, ResumeInfo};
use crate::data::{self, DataError, Documents};
use crate::limits::{self, AppliedLimits, ProcessLimits};
use crate::score::{self, Batch, Budgets, Heldout, Prequential, StopReason, TrainStream};

/// The trusted runner, embedded so the binary carries it.
pub const RUNNER_SOURCE: &str = include_str!("../runner/prism_runner.py");

/// Environment variable naming the Python interpreter (one with torch).
pub const PYTHON_ENV: &str = "ASSAY_PRISM_PYTHON";

/// How a run is configured. Defaults follow PRISM's settings (C.4, C.15) except the budgets,
/// which are unbounded as in PRISM's host context.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Python interpreter with torch.
    pub python: PathBuf,
    /// Forced seed.
    pub seed: u64,
    /// Vocabulary size in the context (byte ids are reduced mod this).
    pub vocab_size: u32,
    /// Default sequence length in the context.
    pub sequence_length: usize,
    /// Parameter cap.
    pub max_parameters: u64,
    /// Stream budgets.
    pub budgets: Budgets,
    /// Watchdog: the run is killed `budget_seconds + grace` after it starts.
    pub watchdog_grace_seconds: f64,
    /// Hard cap on the training process; `None` = `max(1800, budget + grace + 60)`.
    pub hard_cap_seconds: Option<f64>,
    /// Bound on the static instantiation child.
    pub instantiate_timeout_seconds: f64,
    /// Bound on the held-out child.
    pub heldout_timeout_seconds: f64,
    /// Quota of the artifacts folder in bytes.
    pub artifacts_quota_bytes: u64,
    /// Bytes of val (and train) used by the held-out step.
    pub heldout_byte_budget: usize,
    /// Torch threads in the runner.
    pub threads: usize,
    /// OS limits of the runner process.
    pub limits: ProcessLimits,
    /// Static-gate settings (multi-GPU contract policy, GPU and node requests).
    #[serde(default)]
    pub check: crate::CheckSettings,
    /// GPUs the runner may see, as `CUDA_VISIBLE_DEVICES` (`""`: none, so torch runs on the CPU;
    /// `"1"`: the host's second GPU, seen as `cuda:0`). `None` passes nothing: torch sees every
    /// GPU of the host and uses the first. The value and the GPU torch ran on are recorded.
    #[serde(default)]
    pub cuda_visible_devices: Option<String>,
    /// Crash recovery (C.18): where and how often the training stage checkpoints. `None`: no
    /// checkpoints. With a folder that already holds this run's checkpoints, the run resumes.
    #[serde(default)]
    pub checkpoint: Option<CheckpointConfig>,
}

impl RunConfig {
    /// Defaults with the given interpreter.
    pub fn new(python: PathBuf) -> Self {
        Self {
            python,
            seed: 1337,
            vocab_size: 4096,
            sequence_length: 128,
            max_parameters: 150_000_000,
            budgets: Budgets::default(),
            watchdog_grace_seconds: 120.0,
            hard_cap_seconds: None,
            instantiate_timeout_seconds: 30.0,
            heldout_timeout_seconds: 600.0,
            artifacts_quota_bytes: 2 << 30,
            heldout_byte_budget: score::HELDOUT_BYTE_BUDGET,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limits: ProcessLimits::default(),
            check: crate::CheckSettings::default(),
            cuda_visible_devices: None,
            checkpoint: None,
        }
    }

    fn hard_cap(&self) -> f64 {
        self.hard_cap_seconds.unwrap_or_else(|| {
            let budget = self.budgets.budget_seconds.unwrap_or(0.0);
            (budget + self.watchdog_grace_seconds + 60.0).max(1800.0)
        })
    }

    fn train_deadline(&self) -> (f64, &'static str) {
        let hard = self.hard_cap();
        match self.budgets.budget_seconds {
            Some(b) if b + self.watchdog_grace_seconds < hard => {
                (b + self.watchdog_grace_seconds, "watchdog (budget + grace)")
            }
            _ => (hard, "hard cap"),
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The runner's private folder could not be written.
    #[error("{path}: cannot write the runner workspace: {source}")]
    Workspace {
        /// What was being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter could not be started.
    #[error("cannot start the Python interpreter {python}: {source}")]
    Start {
        /// The interpreter.
        python: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the running interpreter failed.
    #[error("runner channel: {0}")]
    Channel(String),
    /// The runner broke the protocol.
    #[error("runner protocol: {0}")]
    Protocol(String),
    /// The runner reported a failure (miner exception, contract, cap...).
    #[error("runner failed in {stage} ({kind}): {message}\n--- runner log tail ---\n{log_tail}")]
    Runner {
        /// instantiate / train / heldout.
        stage: &'static str,
        /// Runner's failure kind, e.g. `miner_exception`, `param_cap`.
        kind: String,
        /// Its message.
        message: String,
        /// Last lines of its stderr.
        log_tail: String,
    },
    /// A stage ran past its time bound and was killed.
    #[error("{stage} killed by the {which} after {seconds:.0} s")]
    Timeout {
        /// Stage.
        stage: &'static str,
        /// Which bound fired.
        which: &'static str,
        /// The bound.
        seconds: f64,
    },
    /// A model over the parameter cap.
    #[error("{stage}: model has {count} parameters, over the cap of {cap}")]
    ParamCap {
        /// Where it was counted.
        stage: String,
        /// Count.
        count: u64,
        /// Cap.
        cap: u64,
    },
    /// The artifacts folder grew past its quota.
    #[error("artifacts folder exceeded its quota of {0} bytes")]
    ArtifactsQuota(u64),
    /// A checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint was good but the resumed run does not line up with it.
    #[error("cannot resume from checkpoint {index}: {reason}")]
    Resume {
        /// The checkpoint.
        index: u64,
        /// Why.
        reason: String,
    },
}

impl assay_errors::Diagnose for RunError {
    fn blame(&self) -> assay_errors::Blame {
        use assay_errors::Blame;
        match self {
            Self::Data(e) => e.blame(),
            Self::Workspace { source, .. } => assay_errors::io_blame(source),
            Self::Start { .. } => Blame::Operator,
            Self::Checkpoint(e) => e.blame(),
            // The stream and the record are ours and verified; a resumed run that asks for
            // another batch shape or cannot load its own state is the bundle's doing.
            Self::Resume { .. } => Blame::Miner,
            Self::Channel(_) => Blame::Transient,
            // The runner is ours and runs only the miner's code: a protocol break, a failure,
            // a timeout, the cap or the quota are the bundle's doing.
            Self::Protocol(_)
            | Self::Runner { .. }
            | Self::Timeout { .. }
            | Self::ParamCap { .. }
            | Self::ArtifactsQuota(_) => Blame::Miner,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Data(e) => e.hint(),
            Self::Start { .. } => Some(format!(
                "pass --python or set {PYTHON_ENV} to an interpreter with torch (scripts/prism-python.sh builds one)"
            )),
            Self::Workspace { .. } => Some("check the temp folder (TMPDIR) is writable and has room".into()),
            Self::Checkpoint(e) => e.hint(),
            Self::Resume { .. } => Some(
                "a resumable bundle keeps its training state in the model, its optimizers, LR schedulers and RNGs, and asks for the same batch shape on every run; or start afresh with an empty checkpoint folder".into(),
            ),
            Self::ParamCap { .. } => Some(
                "every tensor reachable from the model counts (parameters, floating-point buffers, tensors in attributes, lists and dicts), at every step and in the saved state".into(),
            ),
            Self::Runner { kind, .. } if kind == "param_cap" => Some(
                "every tensor reachable from the model counts (parameters, floating-point buffers, tensors in attributes, lists and dicts), at every step and in the saved state".into(),
            ),
            _ => None,
        }
    }
}

/// Messages from the runner.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromRunner {
    Hello {
        torch: String,
        device: String,
        netns: Option<String>,
        #[serde(default)]
        gpu_name: Option<String>,
    },
    Note {
        message: String,
    },
    Params {
        stage: String,
        count: u64,
    },
    Begin {
        batch_size: usize,
        seq_len: usize,
        tokenizer: bool,
    },
    Next,
    Loss {
        loss: Option<f64>,
    },
    Checkpointed,
    Done {
        trained_state: Option<String>,
        peak_rss_bytes: Option<u64>,
        #[serde(default)]
        no_learning: bool,
    },
    Instantiated {
        params: u64,
    },
    Heldout {
        twin_val: Vec<Option<f64>>,
        trained_val: Vec<Option<f64>>,
        trained_train: Vec<Option<f64>>,
    },
    Corpus {
        topics: BTreeMap<String, String>,
    },
    Gate {
        failure: Option<String>,
        ranks: Vec<Vec<serde_json::Value>>,
    },
    Error {
        kind: String,
        message: String,
    },
}

/// What the training stage produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// The prequential record.
    pub prequential: Prequential,
    /// Why the stream stopped.
    pub stopped_reason: Option<StopReason>,
    /// Tokens (bytes) taken from the split.
    pub consumed_tokens: u64,
    /// Documents opened.
    pub consumed_documents: u64,
    /// Batch shape the miner asked for.
    pub batch_shape: Option<(usize, usize)>,
    /// Parameter counts of the scored model, by stage.
    pub scored_model_params: BTreeMap<String, u64>,
    /// Where the runner saved the trained state.
    pub trained_state: Option<PathBuf>,
    /// Peak resident memory of the runner.
    pub peak_rss_bytes: Option<u64>,
    /// torch version and device.
    pub torch: Option<(String, String)>,
    /// The GPU torch ran on (its name), when it ran on one.
    #[serde(default)]
    pub gpu_name: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` the runner was given (`None`: not set).
    #[serde(default)]
    pub cuda_visible_devices: Option<String>,
    /// No tensor of the model changed between the first batch and the end of `train(ctx)`:
    /// a no-op training loop (finding `no_learning`; the score is zeroed).
    #[serde(default)]
    pub no_learning: bool,
    /// Things worth knowing (ignored tokenizer, tokenizer requests...).
    pub notes: Vec<String>,
    /// Limits the runner ran under.
    pub limits: AppliedLimits,
    /// With checkpoints on: how this run began (resumed from which checkpoint, which were
    /// refused).
    #[serde(default)]
    pub resume: Option<ResumeInfo>,
    /// Checkpoints this run wrote.
    #[serde(default)]
    pub checkpoints_written: u64,
    /// Seconds the training stage took.
    pub wall_seconds: f64,
}

/// Progress of a run, for a front end's bars or log lines.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stage begins.
    Stage(&'static str),
    /// A batch's loss was recorded.
    Batch {
        /// Batches so far.
        index: u64,
        /// Its loss in nats.
        loss: f64,
        /// Bytes covered so far.
        covered_bytes: u64,
    },
}

/// A private folder holding the runner, the bundle copy and the artifacts.
pub struct Workspace {
    dir: tempfile::TempDir,
    /// sha256 over the bundle's paths and texts, for the checkpoints' run key.
    bundle_digest: String,
}

impl Workspace {
    /// Writes the runner and the bundle's files.
    pub fn new(bundle: &Bundle) -> Result<Self, RunError> {
        let dir = tempfile::Builder::new()
            .prefix("assay-prism-")
            .tempdir()
            .map_err(|source| RunError::Workspace {
                path: std::env::temp_dir(),
                source,
            })?;
        let ws = |path: PathBuf| move |source| RunError::Workspace { path, source };
        let runner = dir.path().join("prism_runner.py");
        std::fs::write(&runner, RUNNER_SOURCE).map_err(ws(runner.clone()))?;
        for (path, text) in &bundle.files {
            let dest = dir.path().join("bundle").join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(ws(parent.to_path_buf()))?;
            }
            std::fs::write(&dest, text).map_err(ws(dest.clone()))?;
        }
        let artifacts = dir.path().join("artifacts");
        std::fs::create_dir_all(&artifacts).map_err(ws(artifacts.clone()))?;
        let mut parts: Vec<&[u8]> = Vec::new();
        for (path, text) in &bundle.files {
            parts.push(path.as_bytes());
            parts.push(text.as_bytes());
        }
        let bundle_digest = checkpoint::run_key(&parts);
        Ok(Self { dir, bundle_digest })
    }

    /// The workspace root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn artifacts(&self) -> PathBuf {
        self.path().join("artifacts")
    }
}

fn channel_err(e: impl std::fmt::Display) -> RunError {
    RunError::Channel(e.to_string())
}

struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    log: PathBuf,
    stage: &'static str,
    started: Instant,
    deadline: (f64, &'static str),
    limits: AppliedLimits,
    /// Dropping this stops the kill timer.
    _timer: std::sync::mpsc::Sender<()>,
}

impl Session {
    fn start(
        ws: &Workspace,
        config: &RunConfig,
        stage: &'static str,
        payload: serde_json::Value,
        deadline: (f64, &'static str),
    ) -> Result<Self, RunError> {
        let log = ws.path().join(format!("{stage}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| RunError::Workspace {
            path: log.clone(),
            source,
        })?;
        // Looked up in our PATH: the runner's environment is cleared to a fixed PATH, where a
        // bare `python3` would find a different interpreter (e.g. not the venv one with torch).
        let mut command = Command::new(locate_program(&config.python));
        command
            .arg("-s")
            .arg("-B")
            .arg(ws.path().join("prism_runner.py"))
            .current_dir(ws.artifacts())
            .env_clear()
            .envs(runner_env(config, ws))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let limits = limits::apply(&mut command, &config.limits, deadline.0);
        let mut child = command.spawn().map_err(|source| RunError::Start {
            python: config.python.clone(),
            source,
        })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| RunError::Channel("the child has no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| RunError::Channel("the child has no stdout".into()))?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let timer = kill_timer(child.id(), deadline.0);
        let mut session = Self {
            child,
            stdin: Some(stdin),
            lines: rx,
            log,
            stage,
            started: Instant::now(),
            deadline,
            limits,
            _timer: timer,
        };
        session.send(&payload)?;
        Ok(session)
    }

    fn send(&mut self, value: &serde_json::Value) -> Result<(), RunError> {
        let mut line = serde_json::to_vec(value).map_err(channel_err)?;
        line.push(b'\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(RunError::Protocol("write after close".into()));
        };
        let written = stdin.write_all(&line).and_then(|_| stdin.flush());
        written.map_err(|e| self.died(format!("write failed: {e}")))
    }

    fn died(&mut self, why: String) -> RunError {
        if self.started.elapsed().as_secs_f64() >= self.deadline.0 {
            let _ = self.child.wait();
            return RunError::Timeout {
                stage: self.stage,
                which: self.deadline.1,
                seconds: self.deadline.0,
            };
        }
        let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
        RunError::Runner {
            stage: self.stage,
            kind: "exited".into(),
            message: format!("{why} ({status})"),
            log_tail: log_tail(&self.log),
        }
    }

    fn recv(
        &mut self,
        poll: &mut dyn FnMut() -> Result<(), RunError>,
    ) -> Result<FromRunner, RunError> {
        loop {
            let elapsed = self.started.elapsed().as_secs_f64();
            if elapsed >= self.deadline.0 {
                self.kill();
                return Err(RunError::Timeout {
                    stage: self.stage,
                    which: self.deadline.1,
                    seconds: self.deadline.0,
                });
            }
            let wait = (self.deadline.0 - elapsed).clamp(0.001, 0.5);
            match self.lines.recv_timeout(Duration::from_secs_f64(wait)) {
                Ok(Ok(line)) => return self.parse(&line),
                Ok(Err(e)) => return Err(self.died(format!("read failed: {e}"))),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.died("the runner exited without finishing".into()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = poll() {
                        self.kill();
                        return Err(e);
                    }
                }
            }
        }
    }

    fn parse(&mut self, line: &str) -> Result<FromRunner, RunError> {
        let message: FromRunner = serde_json::from_str(line)
            .map_err(|e| RunError::Protocol(format!("{e} in {line:.200}")))?;
        match message {
            FromRunner::Error { kind, message } => {
                let _ = self.child.wait();
                Err(RunError::Runner {
                    stage: self.stage,
                    kind: crate::bounded(&kind, 60),
                    message: crate::bounded(&message, 1000),
                    log_tail: log_tail(&self.log),
                })
            }
            FromRunner::Hello { ref netns, .. } => {
                self.limits.network_isolated = netns
                    .as_ref()
                    .map(|n| Some(n.clone()) != limits::own_network_namespace());
                Ok(message)
            }
            other => Ok(other),
        }
    }

    fn kill(&mut self) {
        limits::kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn finish(mut self) -> Result<AppliedLimits, RunError> {
        self.stdin = None;
        let grace = Instant::now();
        loop {
            match self.child.try_wait().map_err(channel_err)? {
                Some(status) if status.success() => break,
                Some(status) => {
                    return Err(RunError::Runner {
                        stage: self.stage,
                        kind: "exit".into(),
                        message: status.to_string(),
                        log_tail: log_tail(&self.log),
                    });
                }
                None if grace.elapsed() > Duration::from_secs(10) => {
                    self.kill();
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let mut limits = self.limits.clone();
        if limits.network_isolated == Some(false) {
            limits
                .not_enforced
                .push("network: no network namespace could be created on this machine".into());
        }
        Ok(limits)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Kills the runner's group at the deadline even while the orchestrator is blocked writing to
/// it; dropping the returned sender disarms it.
fn kill_timer(pid: u32, seconds: f64) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs_f64(seconds)) {
            limits::kill_group(pid);
        }
    });
    tx
}

fn runner_env(config: &RunConfig, ws: &Workspace) -> Vec<(String, String)> {
    let threads = config.threads.max(1).to_string();
    let gpus = config
        .cuda_visible_devices
        .iter()
        .map(|v| ("CUDA_VISIBLE_DEVICES".to_string(), v.clone()));
    gpus.chain([
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("HOME".into(), ws.artifacts().display().to_string()),
        ("PYTHONHASHSEED".into(), config.seed.to_string()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("CUBLAS_WORKSPACE_CONFIG".into(), ":4096:8".into()),
        ("OMP_NUM_THREADS".into(), threads.clone()),
        ("MKL_NUM_THREADS".into(), threads),
        ("HF_HUB_OFFLINE".into(), "1".into()),
        ("TRANSFORMERS_OFFLINE".into(), "1".into()),
        (
            "TORCH_HOME".into(),
            ws.artifacts().join(".torch").display().to_string(),
        ),
    ])
    .collect()
}

/// The last 20 lines of a runner log, each cut to 300 characters: a miner's exception text
/// can be any size (a 100 KB syntax error line), the report stays small.
fn log_tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(64 << 10)..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| crate::bounded(l, 300))
        .collect::<Vec<_>>()
        .join("\n")
}

fn base_payload(
    config: &RunConfig,
    ws: &Workspace,
    contract: &Contract,
    mode: &str,
) -> serde_json::Value {
    json!({
        "mode": mode,
        "threads": config.threads,
        "bundle_dir": ws.path().join("bundle"),
        "architecture_entrypoint": contract.architecture_entrypoint,
        "training_entrypoint": contract.training_entrypoint,
        "build_model_symbol": contract.build_model_symbol,
        "train_symbol": contract.train_symbol,
        "context": {
            "seed": config.seed,
            "vocab_size": config.vocab_size,
            "sequence_length": config.sequence_length,
            "max_parameters": config.max_parameters,
            "artifacts_dir": ws.artifacts(),
            "data_dir": serde_json::Value::Null,
            "token_budget": config.budgets.token_budget,
            "step_budget": config.budgets.step_budget,
            "budget_seconds": config.budgets.budget_seconds,
        },
    })
}

fn no_poll() -> Result<(), RunError> {
    Ok(())
}

fn unexpected(stage: &str, message: &FromRunner) -> RunError {
    RunError::Protocol(format!("unexpected message during {stage}: {message:?}"))
}

/// Static instantiation gate: forced-seed `build_model` in a bounded child, one dummy forward to
/// materialise lazy parameters, then the cap.
pub fn instantiate(
    ws: &Workspace,
    contract: &Contract,
    config: &RunConfig,
) -> Result<u64, RunError> {
    let payload = base_payload(config, ws, contract, "instantiate");
    let deadline = (config.instantiate_timeout_seconds, "instantiation timeout");
    let mut session = Session::start(ws, config, "instantiate", payload, deadline)?;
    loop {
        match session.recv(&mut no_poll)? {
            FromRunner::Hello { .. } | FromRunner::Note { .. } => {}
            FromRunner::Instantiated { params } => {
                session.finish()?;
                if params > config.max_parameters {
                    return Err(RunError::ParamCap {
                        stage: "build_model".into(),
                        count: params,
                        cap: config.max_parameters,
                    });
                }
                return Ok(params);
            }
            other => return Err(unexpected("instantiation", &other)),
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Runs `train(ctx)`, streaming the train split of `data_dir` and recording the losses.
pub fn train(
    ws: &Workspace,
    contract: &Contract,
    config: &RunConfig,
    data_dir: &Path,
    progress: &mut dyn FnMut(Event),
) -> Result<TrainOutcome, RunError> {
    let shards = data::train_shards(data_dir)?;
    let key = run_key(ws, config, &shards);
    let docs = Documents::new(shards);
    let mut stream = TrainStream::new(docs, config.vocab_size, config.budgets);
    let mut payload = base_payload(config, ws, contract, "train");
    let mut out = TrainOutcome {
        prequential: Prequential::new(config.vocab_size),
        ..TrainOutcome::default()
    };
    let mut cadence = Cadence {
        index: 0,
        batches: 0,
        since: Instant::now(),
        shape: None,
    };
    let stage_file = ws.path().join("checkpoint-stage").join("state.pt");
    if let Some(ck) = &config.checkpoint {
        resume(
            ws,
            ck,
            &key,
            &mut stream,
            &mut payload,
            &mut out,
            &mut cadence,
        )?;
        let stage = ws.path().join("checkpoint-stage");
        std::fs::create_dir_all(&stage).map_err(|source| RunError::Workspace {
            path: stage.clone(),
            source,
        })?;
        payload["checkpoint_file"] = json!(stage_file);
    }
    let mut session = Session::start(ws, config, "train", payload, config.train_deadline())?;
    let artifacts = ws.artifacts();
    let quota = config.artifacts_quota_bytes;
    let mut poll = move || {
        if dir_bytes(&artifacts) > quota {
            Err(RunError::ArtifactsQuota(quota))
        } else {
            Ok(())
        }
    };
    let mut pending: Option<Batch> = None;
    loop {
        match session.recv(&mut poll)? {
            FromRunner::Hello {
                torch,
                device,
                gpu_name,
                ..
            } => {
                out.torch = Some((torch, device));
                out.gpu_name = gpu_name;
                out.cuda_visible_devices = config.cuda_visible_devices.clone();
            }
            FromRunner::Note { message } => out.notes.push(message),
            FromRunner::Params { stage, count } => {
                if count > config.max_parameters {
                    return Err(RunError::ParamCap {
                        stage,
                        count,
                        cap: config.max_parameters,
                    });
                }
                out.scored_model_params.insert(stage, count);
            }
            FromRunner::Begin {
                batch_size,
                seq_len,
                tokenizer,
            } => {
                if tokenizer {
                    out.notes.push("the miner passed a tokenizer to iter_train_batches; it is ignored and the stream stays byte-level".into());
                }
                let shape = (batch_size.max(1), seq_len.max(2));
                if let Some(recorded) = cadence.shape
                    && recorded != shape
                {
                    return Err(RunError::Resume {
                        index: cadence.index,
                        reason: format!(
                            "the resumed run asks for batches of {shape:?}, the checkpointed run took {recorded:?}"
                        ),
                    });
                }
                out.batch_shape = Some(shape);
            }
            FromRunner::Next => {
                let (rows, cols) = out
                    .batch_shape
                    .ok_or_else(|| RunError::Protocol("`next` before `begin`".into()))?;
                if let Some(ck) = &config.checkpoint {
                    let batches = out.prequential.online_loss.len() as u64;
                    let since = cadence.since.elapsed().as_secs_f64();
                    if stream.stopped_reason.is_none() && ck.due(batches - cadence.batches, since) {
                        session.send(&json!({"type": "checkpoint"}))?;
                        loop {
                            match session.recv(&mut poll)? {
                                FromRunner::Note { message } => out.notes.push(message),
                                FromRunner::Checkpointed => break,
                                other => return Err(unexpected("checkpoint", &other)),
                            }
                        }
                        cadence.index += 1;
                        let record = checkpoint::Record {
                            schema: checkpoint::SCHEMA.into(),
                            index: cadence.index,
                            run_key: key.clone(),
                            prequential: out.prequential.clone(),
                            consumed_tokens: stream.consumed_tokens,
                            consumed_documents: stream.consumed_documents,
                            elapsed_seconds: stream.elapsed_seconds(),
                            batch_shape: (rows, cols),
                            scored_model_params: out.scored_model_params.clone(),
                            state_file: String::new(),
                            state_sha256: String::new(),
                            state_bytes: 0,
                        };
                        checkpoint::write(ck, &stage_file, record)?;
                        let _ = std::fs::remove_file(&stage_file);
                        out.checkpoints_written += 1;
                        cadence.batches = batches;
                        cadence.since = Instant::now();
                    }
                }
                match stream.next_batch(rows, cols)? {
                    Some(batch) => {
                        session.send(&json!({"type": "batch", "rows": batch.rows, "cols": batch.cols, "tokens": batch.tokens}))?;
                        pending = Some(batch);
                    }
                    None => {
                        session.send(&json!({"type": "stop", "reason": stream.stopped_reason}))?
                    }
                }
            }
            FromRunner::Loss { loss } => {
                let batch = pending
                    .take()
                    .ok_or_else(|| RunError::Protocol("`loss` without a batch".into()))?;
                out.prequential.record(batch.rows, batch.cols, loss);
                checkpoint::crash_point("batch", out.prequential.online_loss.len() as u64);
                progress(Event::Batch {
                    index: out.prequential.online_loss.len() as u64,
                    loss: *out.prequential.online_loss.last().unwrap_or(&f64::NAN),
                    covered_bytes: out.prequential.covered_bytes_int(),
                });
            }
            FromRunner::Done {
                trained_state,
                peak_rss_bytes,
                no_learning,
            } => {
                out.trained_state = trained_state.map(PathBuf::from);
                out.peak_rss_bytes = peak_rss_bytes;
                out.no_learning = no_learning;
                break;
            }
            other => return Err(unexpected("training", &other)),
        }
    }
    out.wall_seconds = session.started.elapsed().as_secs_f64();
    out.limits = session.finish()?;
    out.stopped_reason = stream.stopped_reason;
    out.consumed_tokens = stream.consumed_tokens;
    out.consumed_documents = stream.consumed_documents;
    Ok(out)
}

/// Where the checkpoint cadence stands.
struct Cadence {
    /// The last checkpoint written or resumed from (0: none).
    index: u64,
    /// Batches recorded at that checkpoint.
    batches: u64,
    /// When it was written (or the run began).
    since: Instant,
    /// The batch shape a resumed run must ask for again.
    shape: Option<(usize, usize)>,
}

/// The checkpoints' run key: the bundle, the runner, the context and budgets, and the train
/// shards (names and sizes).
fn run_key(ws: &Workspace, config: &RunConfig, shards: &[PathBuf]) -> String {
    let context = json!({
        "seed": config.seed,
        "vocab_size": config.vocab_size,
        "sequence_length": config.sequence_length,
        "max_parameters": config.max_parameters,
        "budgets": config.budgets,
        "shards": shards.iter().map(|p| json!([
            p.file_name().map(|n| n.to_string_lossy().into_owned()),
            p.metadata().map_or(0, |m| m.len()),
        ])).collect::<Vec<_>>(),
    })
    .to_string();
    checkpoint::run_key(&[
        ws.bundle_digest.as_bytes(),
        RUNNER_SOURCE.as_bytes(),
        context.as_bytes(),
    ])
}

/// Resumes from the newest good checkpoint of the run, if any: the stream is fast-forwarded, the
/// prequential record restored, and the runner told to load the state (a verified copy in the
/// workspace).
fn resume(
    ws: &Workspace,
    ck: &CheckpointConfig,
    key: &str,
    stream: &mut TrainStream,
    payload: &mut serde_json::Value,
    out: &mut TrainOutcome,
    cadence: &mut Cadence,
) -> Result<(), RunError> {
    let (good, refused) = checkpoint::latest_good(&ck.dir, key);
    out.notes.extend(refused.iter().cloned());
    let mut info = ResumeInfo {
        refused,
        ..ResumeInfo::default()
    };
    if let Some(record) = good {
        let index = record.index;
        let fail = |reason: &str| RunError::Resume {
            index,
            reason: reason.into(),
        };
        let replayed = stream.replay(&record.prequential.batch_shapes, record.elapsed_seconds)?;
        if !replayed
            || stream.consumed_tokens != record.consumed_tokens
            || stream.consumed_documents != record.consumed_documents
        {
            return Err(fail(
                "the train split no longer yields the recorded batches (the data changed)",
            ));
        }
        let staged = ws.path().join("resume-state.pt");
        std::fs::copy(checkpoint::state_path(&ck.dir, &record), &staged).map_err(|source| {
            RunError::Workspace {
                path: staged.clone(),
                source,
            }
        })?;
        let (sha, _) = checkpoint::file_sha256(&staged).map_err(|source| RunError::Workspace {
            path: staged.clone(),
            source,
        })?;
        if sha != record.state_sha256 {
            return Err(fail("the state file changed while it was copied"));
        }
        payload["resume"] = json!({"state": staged, "attempt": index + 1});
        out.notes.push(format!(
            "resumed from checkpoint {index} after {} batches",
            record.batches()
        ));
        info.from_checkpoint = Some(index);
        info.restored_batches = record.batches();
        cadence.index = index;
        cadence.batches = record.batches();
        cadence.shape = Some(record.batch_shape);
        out.scored_model_params = record.scored_model_params;
        out.prequential = record.prequential;
    }
    out.resume = Some(info);
    Ok(())
}

fn chunks_json(chunks: &[Batch]) -> serde_json::Value {
    chunks
        .iter()
        .map(|c| json!({"rows": c.rows, "cols": c.cols, "tokens": c.tokens}))
        .collect()
}

/// Held-out step: the random-init twin and the trained model on a fixed val prefix, and the
/// trained model on a train prefix (converged train bpb). `Ok(None)` when it must be skipped.
pub fn heldout(
    ws: &Workspace,
    contract: &Contract,
    config: &RunConfig,
    data_dir: &Path,
    trained: &TrainOutcome,
) -> Result<Option<Heldout>, RunError> {
    let Some(state) = &trained.trained_state else {
        return Ok(None);
    };
    let Ok(val) = data::val_shards(data_dir) else {
        return Ok(None);
    };
    let val_texts = data::prefix_texts(val, config.heldout_byte_budget)?;
    let train_texts =
        data::prefix_texts(data::train_shards(data_dir)?, config.heldout_byte_budget)?;
    let (v, t, b) = (
        config.vocab_size,
        config.sequence_length,
        score::HELDOUT_BATCH_SIZE,
    );
    let val_chunks = score::heldout_chunks(&val_texts, v, t, b);
    let train_chunks = score::heldout_chunks(&train_texts, v, t, b);
    let mut payload = base_payload(config, ws, contract, "heldout");
    payload["trained_state"] = json!(state);
    let deadline = (config.heldout_timeout_seconds, "held-out timeout");
    let mut session = Session::start(ws, config, "heldout", payload, deadline)?;
    session.send(&json!({"val": chunks_json(&val_chunks), "train": chunks_json(&train_chunks)}))?;
    loop {
        match session.recv(&mut no_poll)? {
            FromRunner::Hello { .. } | FromRunner::Note { .. } => {}
            FromRunner::Heldout {
                twin_val,
                trained_val,
                trained_train,
            } => {
                session.finish()?;
                let twin = score::fixed_model_bpb(&val_chunks, &twin_val, v);
                let trained_bpb = score::fixed_model_bpb(&val_chunks, &trained_val, v);
                let converged = score::fixed_model_bpb(&train_chunks, &trained_train, v);
                let covered = val_texts.iter().map(|t| t.len() as u64).sum();
                return Ok(match (twin, trained_bpb) {
                    (Some(twin), Some(tr)) => Some(Heldout::new(
                        twin,
                        tr,
                        converged,
                        trained.prequential.bpb(),
                        covered,
                    )),
                    _ => None,
                });
            }
            other => return Err(unexpected("held-out", &other)),
        }
    }
}

/// `pydoc_data.topics` of the interpreter, for the default corpus.
pub fn pydoc_topics(python: &Path) -> Result<BTreeMap<String, String>, RunError> {
    let ws = Workspace::new(&Bundle::default())?;
    let mut config = RunConfig::new(python.to_path_buf());
    config.limits.isolate_network = true;
    let mut session = Session::start(
        &ws,
        &config,
        "corpus",
        json!({"mode": "corpus"}),
        (60.0, "corpus timeout"),
    )?;
    match session.recv(&mut no_poll)? {
        FromRunner::Corpus { topics } => {
            session.finish()?;
            Ok(topics)
        }
        other => Err(unexpected("corpus", &other)),
    }
}

/// Finds an interpreter: the explicit one, then `$ASSAY_PRISM_PYTHON`, then `python3` on PATH.
pub fn resolve_python(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(PYTHON_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// `program` as an absolute path when it is a bare name found on this process's `PATH`;
/// anything else (a path, or a name not found) is returned as given.
pub fn locate_program(program: &Path) -> PathBuf {
    if program.components().count() != 1 || program.is_absolute() {
        return program.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate.metadata().is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
        .unwrap_or_else(|| program.to_path_buf())
}

/// True when `python` can import torch (used to skip end-to-end tests with a message).
pub fn has_torch(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import torch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// PRISM's Gate B (gloo_functional.py): the training script under
/// `torchrun --standalone --nnodes=1 --nproc-per-node=N` on the CPU with gloo, every rank given
/// the same synthetic batches; the losses must fall and the ranks' parameters stay identical.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateReport {
    /// Ranks launched.
    pub world_size: u32,
    /// Each rank's batch losses (nats; `None` where not finite).
    pub losses: Vec<Vec<Option<f64>>>,
    /// Every rank's last loss is below its first.
    pub loss_decreased: bool,
    /// Every rank ended with the same parameters (per-tensor f64 sums and sums of squares).
    pub parameters_identical: bool,
}

impl GateReport {
    /// Both conditions hold.
    pub fn passed(&self) -> bool {
        self.loss_decreased && self.parameters_identical
    }
}

/// Runs Gate B with `world_size` ranks for `steps` batches of the bundle's own batch shape,
/// over byte tokens of `text` (repeated as needed). The ranks run under the same limits as a
/// scored run except one: torchrun's rendezvous and gloo need the loopback device, which a
/// private network namespace lacks (an unprivileged runner cannot raise it), so the gate runs in
/// the host's network namespace; the static sandbox still refuses every network API.
pub fn distributed_gate(
    ws: &Workspace,
    contract: &Contract,
    config: &RunConfig,
    world_size: u32,
    steps: u32,
    text: &str,
) -> Result<GateReport, RunError> {
    let gate_dir = ws.path().join("gate");
    std::fs::create_dir_all(&gate_dir).map_err(|source| RunError::Workspace {
        path: gate_dir.clone(),
        source,
    })?;
    let bytes: Vec<u32> = text
        .bytes()
        .cycle()
        .take(text.len().max(1) * 4 + 4 * 8 * 1024)
        .map(|b| u32::from(b) % config.vocab_size.max(1))
        .collect();
    let mut rank_payload = base_payload(config, ws, contract, "gate_rank");
    rank_payload["gate_tokens"] = json!(bytes);
    rank_payload["gate_steps"] = json!(steps);
    let payload_file = gate_dir.join("payload.json");
    let line = serde_json::to_string(&rank_payload).map_err(channel_err)? + "\n";
    std::fs::write(&payload_file, line).map_err(|source| RunError::Workspace {
        path: payload_file.clone(),
        source,
    })?;
    let payload = json!({"mode": "gate", "payload_file": payload_file, "nproc": world_size});
    let deadline = (config.heldout_timeout_seconds, "distributed gate timeout");
    let mut config = config.clone();
    config.limits.isolate_network = false;
    let mut session = Session::start(ws, &config, "gate", payload, deadline)?;
    let (failure, ranks) = loop {
        match session.recv(&mut no_poll)? {
            FromRunner::Note { .. } | FromRunner::Hello { .. } => {}
            FromRunner::Gate { failure, ranks } => break (failure, ranks),
            other => return Err(unexpected("distributed gate", &other)),
        }
    };
    session.finish()?;
    let gate_failed = |message: String| RunError::Runner {
        stage: "gate",
        kind: "gate_failed".into(),
        message: crate::bounded(&message, 1000),
        log_tail: log_tail(&ws.path().join("gate.log")),
    };
    let mut losses = Vec::new();
    let mut digests = Vec::new();
    for (rank, messages) in ranks.iter().enumerate() {
        if let Some(error) = messages.iter().find(|m| m["type"] == "error") {
            return Err(gate_failed(format!(
                "rank {rank}: {} ({})",
                error["message"].as_str().unwrap_or_default(),
                error["kind"].as_str().unwrap_or_default()
            )));
        }
        let Some(done) = messages.iter().find(|m| m["type"] == "gate_rank") else {
            return Err(gate_failed(format!(
                "rank {rank} did not finish: {}",
                failure.clone().unwrap_or_default()
            )));
        };
        let rank_losses: Vec<Option<f64>> =
            serde_json::from_value(done["losses"].clone()).map_err(channel_err)?;
        losses.push(rank_losses);
        digests.push(done["digest"].clone());
    }
    if losses.len() != world_size as usize {
        return Err(gate_failed(format!(
            "{} of {world_size} ranks reported",
            losses.len()
        )));
    }
    let loss_decreased = losses.iter().all(|l| {
        matches!((l.first(), l.last()), (Some(Some(first)), Some(Some(last))) if last < first)
            && l.len() >= 2
    });
    let parameters_identical = !digests[0].is_null() && digests.iter().all(|d| *d == digests[0]);
    Ok(GateReport {
        world_size,
        losses,
        loss_decreased,
        parameters_identical,
    })
}
