//! What runs inside a job's child process: one [`JobHandler`] per job kind.
//!
//! The worker starts the child with the job as JSON on stdin ([`JobInput`]); the child runs the
//! handler for its kind and prints one JSON object on stdout: a [`JobOutput`] (exit 0) or a
//! [`JobFailure`] (exit 1). A crash, a signal or the TTL is seen by the worker from outside.
//! Pipelines plug in by implementing [`JobHandler`] (the CLI registers PRISM, SN37, Datacomp and
//! weights handlers); [`SimHandler`] and [`WeightsHandler`] are built in.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use assay_errors::Blame;
use assay_store::SubmissionUpdate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A job as its child process receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobInput {
    /// The job's id.
    pub job_id: i64,
    /// Its kind.
    pub kind: String,
    /// Its input.
    pub payload: Value,
    /// This attempt (1 for the first).
    pub attempt: i64,
    /// The device the worker was given (`cuda:0`, `cpu`), if any.
    pub device: Option<String>,
    /// What the miner sent, for a job that evaluates a submission (PRISM: the code or base64
    /// ZIP; Datacomp: the JSONL; SN37: the commitment JSON).
    #[serde(default)]
    pub submission_body: Option<String>,
    /// The submission's file name, if it has one.
    #[serde(default)]
    pub submission_filename: Option<String>,
    /// Every submission of the round, this one included, when the payload asks for them with
    /// `"peers": {"pipeline": P, "epoch_id": N}` (Datacomp's cross-miner copy checks need the
    /// whole round's data; the child has no database connection).
    #[serde(default)]
    pub peers: Vec<PeerSubmission>,
}

/// One submission of a job's round, as [`JobInput::peers`] lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSubmission {
    /// Its id.
    pub id: String,
    /// The miner's hotkey.
    pub hotkey: String,
    /// What the miner sent.
    pub body: String,
    /// Its file name.
    pub filename: Option<String>,
    /// The block the validator saw it at (from its metadata; 0 when unknown).
    pub block: i64,
    /// When the validator received it (Unix ms): breaks ties within a block.
    pub received_ms: i64,
}

/// A handler's success.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobOutput {
    /// Stored as the job's result.
    pub output: Value,
    /// How the job's submission changes (score, status), written in the same transaction.
    pub submission: Option<SubmissionUpdate>,
    /// Weights to record for `(pipeline, epoch_id)`.
    pub weights: Option<WeightsOutput>,
    /// Other submissions the job scored (an SN37 round scores every model of a competition),
    /// by id, written in the same transaction as the job's result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<(String, SubmissionUpdate)>,
}

/// Weights a job computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsOutput {
    /// Pipeline.
    pub pipeline: String,
    /// Epoch/round.
    pub epoch_id: i64,
    /// Hotkey → weight (sums to 1 unless empty).
    pub weights: BTreeMap<String, f64>,
}

/// A handler's failure: what went wrong and whose fault it is (a [`Blame::Transient`] failure
/// is retried within the job's attempts; the others fail the job at once).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobFailure {
    /// The error chain, one line.
    pub error: String,
    /// Whose fault.
    pub blame: Blame,
}

impl JobFailure {
    /// A failure from any error that can say whose fault it is.
    pub fn from_diagnose(error: &dyn assay_errors::Diagnose) -> Self {
        let mut text = assay_errors::chain(error);
        if let Some(hint) = error.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        Self {
            error: text,
            blame: error.blame(),
        }
    }

    /// A failure with a message and a blame.
    pub fn new(error: impl Into<String>, blame: Blame) -> Self {
        Self {
            error: error.into(),
            blame,
        }
    }
}

/// Runs one kind of job, inside the child process.
pub trait JobHandler: Send + Sync {
    /// The job kind it runs (`prism.bundle`, `sn37.eval`, `datacomp.miner`, `weights`, `sim`).
    fn kind(&self) -> &'static str;
    /// Runs the job.
    fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure>;
}

/// The handlers a child process knows, by kind.
#[derive(Default)]
pub struct Handlers {
    map: BTreeMap<&'static str, Box<dyn JobHandler>>,
}

impl Handlers {
    /// The built-in handlers: [`SimHandler`] and [`WeightsHandler`].
    pub fn builtin() -> Self {
        let mut handlers = Self::default();
        handlers.add(SimHandler);
        handlers.add(WeightsHandler);
        handlers
    }

    /// Adds (or replaces) the handler of its kind.
    pub fn add(&mut self, handler: impl JobHandler + 'static) -> &mut Self {
        self.map.insert(handler.kind(), Box::new(handler));
        self
    }

    /// The kinds handled.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.map.keys().copied().collect()
    }

    /// Runs `input` with the handler of its kind.
    pub fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure> {
        match self.map.get(input.kind.as_str()) {
            Some(handler) => handler.run(input),
            None => Err(JobFailure::new(
                format!(
                    "no handler for job kind {:?} in this worker (it knows {:?}); run a worker \
                     built with that pipeline",
                    input.kind,
                    self.kinds()
                ),
                Blame::Operator,
            )),
        }
    }
}

/// Decodes a base64 submission (a ZIP bundle sent as JSON text); a bad encoding is the miner's.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, JobFailure> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| {
            JobFailure::new(
                format!("the submission is not valid base64: {e}"),
                Blame::Miner,
            )
        })
}

/// The child process's main: reads a [`JobInput`] from stdin, runs it, prints the outcome on
/// stdout. Returns the exit code (0 success, 1 handled failure, 2 unreadable input).
pub fn child_main(handlers: &Handlers) -> i32 {
    let mut text = String::new();
    let input: JobInput = match std::io::stdin().read_to_string(&mut text) {
        Ok(_) => match serde_json::from_str(&text) {
            Ok(input) => input,
            Err(e) => {
                eprintln!("job input on stdin is not a job: {e}");
                return 2;
            }
        },
        Err(e) => {
            eprintln!("cannot read the job from stdin: {e}");
            return 2;
        }
    };
    let (code, line) = match handlers.run(&input) {
        Ok(output) => (0, serde_json::to_string(&output)),
        Err(failure) => (1, serde_json::to_string(&failure)),
    };
    let mut stdout = std::io::stdout().lock();
    let written = line
        .map_err(std::io::Error::other)
        .and_then(|line| writeln!(stdout, "{line}"))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        eprintln!("cannot write the job's outcome to stdout: {e}");
        return 3;
    }
    code
}

/// A simulated job for scale and fault tests. Payload (all optional):
/// - `ms`: how long it runs (sleeps), default 0;
/// - `score`: the submission's score (the submission becomes `completed`);
/// - `fail`: `"miner"` or `"transient"`: fail with that blame;
/// - `fail_attempts`: fail (transient) only on attempts up to this number;
/// - `alloc_mb`: allocate and touch this much memory first (memory-limit tests);
/// - `marker`: a file to which one line `job_id attempt start` is appended when the job starts and
///   `job_id attempt end` when its sleep is over (a killed attempt has no `end`).
pub struct SimHandler;

impl JobHandler for SimHandler {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure> {
        let p = &input.payload;
        let mark = |what: &str| -> Result<(), JobFailure> {
            let Some(marker) = p.get("marker").and_then(Value::as_str) else {
                return Ok(());
            };
            let line = format!("{} {} {what}\n", input.job_id, input.attempt);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(marker)
                .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_all()))
                .map_err(|e| {
                    JobFailure::new(format!("cannot append to {marker}: {e}"), Blame::Operator)
                })
        };
        mark("start")?;
        if let Some(mb) = p.get("alloc_mb").and_then(Value::as_u64) {
            let bytes = (mb as usize).saturating_mul(1 << 20);
            let mut block: Vec<u8> = Vec::new();
            if block.try_reserve_exact(bytes).is_err() {
                return Err(JobFailure::new(
                    format!("cannot allocate {mb} MiB (memory limit)"),
                    Blame::Transient,
                ));
            }
            block.resize(bytes, 1);
            std::hint::black_box(&block);
        }
        if let Some(ms) = p.get("ms").and_then(Value::as_u64) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        mark("end")?;
        let fail_attempts = p.get("fail_attempts").and_then(Value::as_i64).unwrap_or(0);
        if input.attempt <= fail_attempts {
            return Err(JobFailure::new(
                format!("simulated transient failure on attempt {}", input.attempt),
                Blame::Transient,
            ));
        }
        match p.get("fail").and_then(Value::as_str) {
            Some("miner") => {
                return Err(JobFailure::new("simulated miner fault", Blame::Miner));
            }
            Some("transient") => {
                return Err(JobFailure::new(
                    "simulated transient failure",
                    Blame::Transient,
                ));
            }
            _ => {}
        }
        let score = p.get("score").and_then(Value::as_f64);
        Ok(JobOutput {
            output: json!({ "job_id": input.job_id, "attempt": input.attempt, "score": score }),
            submission: score.map(|score| SubmissionUpdate {
                status: "completed".into(),
                final_score: Some(score),
                error: None,
                result: Some(json!({ "final_score": score })),
            }),
            weights: None,
            others: Vec::new(),
        })
    }
}

/// Turns an epoch's scores into weights with `assay-weights` (normalised, non-negative).
/// Payload: `{"pipeline": "prism", "epoch_id": 3, "scores": {"hotkey": score, ...}}`.
pub struct WeightsHandler;

impl JobHandler for WeightsHandler {
    fn kind(&self) -> &'static str {
        "weights"
    }

    fn run(&self, input: &JobInput) -> Result<JobOutput, JobFailure> {
        #[derive(Deserialize)]
        struct Payload {
            pipeline: String,
            epoch_id: i64,
            scores: BTreeMap<String, f64>,
        }
        let payload: Payload = serde_json::from_value(input.payload.clone()).map_err(|e| {
            JobFailure::new(format!("weights job payload is malformed: {e}"), Blame::Bug)
        })?;
        let hotkeys: Vec<&String> = payload.scores.keys().collect();
        let scores: Vec<f64> = payload.scores.values().map(|s| s.max(0.0)).collect();
        let normalized = assay_weights::normalize(&scores);
        let weights: BTreeMap<String, f64> = hotkeys
            .into_iter()
            .cloned()
            .zip(normalized.iter().copied())
            .collect();
        let u16s = assay_weights::to_u16(&normalized);
        Ok(JobOutput {
            output: json!({ "weights": weights, "u16": u16s }),
            submission: None,
            weights: Some(WeightsOutput {
                pipeline: payload.pipeline,
                epoch_id: payload.epoch_id,
                weights,
            }),
            others: Vec::new(),
        })
    }
}
