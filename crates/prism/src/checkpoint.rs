//! Runs that survive a crash (PRISM C.18): the training stage checkpoints on a cadence, and a
//! run killed at any point (kill -9, a lost machine) resumes from its last good checkpoint and
//! ends with the uninterrupted run's score.
//!
//! A checkpoint is two files in the operator's checkpoint folder, which the runner (and so the
//! miner's code) is never told about:
//! - `ckpt-NNNNNN.state`: the runner's torch state at a batch boundary (the model, its gradients,
//!   every optimizer and LR scheduler the bundle built, the RNG states), written by the runner
//!   into its workspace and copied here by the orchestrator;
//! - `ckpt-NNNNNN.json`: the orchestrator's record: the prequential record so far, the stream
//!   position, the state file's sha256, and a key naming the run (bundle, seed, shape, budgets,
//!   data). Its first line is the sha256 of the rest, so a torn or edited record is refused.
//!
//! Both are written atomically (temp file in the folder, fsync, rename), the state file first:
//! a record exists only once its state is complete. Resuming takes the newest checkpoint whose
//! record checksum, run key and state hash all check out; every one refused on the way is
//! reported with its reason. The prequential record is restored from the record, never from the
//! runner, so the losses already scored (and the step-0 check on the first of them) stand.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::score::Prequential;

/// The record's schema name.
pub const SCHEMA: &str = "assay_prism_checkpoint.v1";

/// PRISM's cadence: a checkpoint every hour (`checkpoint_cadence_seconds` 3600).
pub const PRISM_CADENCE_SECONDS: f64 = 3600.0;

/// Fault injection for the crash tests: `ASSAY_PRISM_CRASH_AT=<point>:<n>` makes the
/// orchestrator SIGKILL itself at that point. Points: `batch` (right after batch `n`'s loss is
/// recorded), `state` (checkpoint `n`'s state temp file written, before its rename), `record`
/// (checkpoint `n`'s record temp file written, before its rename).
pub const CRASH_ENV: &str = "ASSAY_PRISM_CRASH_AT";

/// Where and how often the training stage checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointConfig {
    /// The folder holding the checkpoints (created when missing). The same folder on a restart
    /// resumes the run.
    pub dir: PathBuf,
    /// A checkpoint once this many seconds passed since the last one (or the start).
    pub every_seconds: Option<f64>,
    /// A checkpoint once this many batches were recorded since the last one.
    pub every_batches: Option<u64>,
    /// Checkpoints kept (the newest ones; at least 2, so a corrupt newest one falls back).
    pub keep: usize,
}

impl CheckpointConfig {
    /// PRISM's hourly cadence in `dir`.
    pub fn hourly(dir: PathBuf) -> Self {
        Self {
            dir,
            every_seconds: Some(PRISM_CADENCE_SECONDS),
            every_batches: None,
            keep: 2,
        }
    }

    /// Whether a checkpoint is due, `batches` and `seconds` counted since the last one.
    pub fn due(&self, batches: u64, seconds: f64) -> bool {
        batches > 0
            && (self.every_batches.is_some_and(|n| batches >= n.max(1))
                || self.every_seconds.is_some_and(|s| seconds >= s))
    }
}

/// What the orchestrator knows of the run at a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// [`SCHEMA`].
    pub schema: String,
    /// 1, 2, ... in the order written.
    pub index: u64,
    /// Names the run: a checkpoint of another bundle, seed, shape, budgets or data is refused.
    pub run_key: String,
    /// The prequential record up to here.
    pub prequential: Prequential,
    /// Tokens taken from the split.
    pub consumed_tokens: u64,
    /// Documents opened.
    pub consumed_documents: u64,
    /// Seconds of the stream's clock (for the wall-clock budget).
    pub elapsed_seconds: f64,
    /// The batch shape the bundle asked for.
    pub batch_shape: (usize, usize),
    /// Parameter counts so far, by stage.
    pub scored_model_params: BTreeMap<String, u64>,
    /// The state file's name in the folder.
    pub state_file: String,
    /// Its sha256.
    pub state_sha256: String,
    /// Its size.
    pub state_bytes: u64,
}

impl Record {
    /// Batches recorded.
    pub fn batches(&self) -> u64 {
        self.prequential.online_loss.len() as u64
    }
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl assay_errors::Diagnose for CheckpointError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Io { source, .. } => assay_errors::io_blame(source),
        }
    }

    fn hint(&self) -> Option<String> {
        Some("check the checkpoint folder exists, is writable and has room".into())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SIGKILLs this process when [`CRASH_ENV`] names this point (tests only set it).
pub fn crash_point(point: &str, n: u64) {
    if let Ok(spec) = std::env::var(CRASH_ENV)
        && spec == format!("{point}:{n}")
    {
        // SAFETY: kill(2) on our own pid; the process ends here as with `kill -9`.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of a file, streamed.
pub fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

fn sync_dir(dir: &Path) {
    // Makes the renames durable; best effort (some filesystems refuse to fsync a folder).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn state_name(index: u64) -> String {
    format!("ckpt-{index:06}.state")
}

fn record_name(index: u64) -> String {
    format!("ckpt-{index:06}.json")
}

/// Copies the runner's staged state into the folder and writes the record, both atomically,
/// then keeps only the newest `config.keep` checkpoints. `record`'s state fields are filled in.
pub fn write(
    config: &CheckpointConfig,
    staged_state: &Path,
    mut record: Record,
) -> Result<Record, CheckpointError> {
    let dir = &config.dir;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let state_path = dir.join(state_name(record.index));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    {
        let mut source = std::fs::File::open(staged_state).map_err(io(staged_state))?;
        std::io::copy(&mut source, tmp.as_file_mut()).map_err(io(tmp.path()))?;
    }
    tmp.as_file().sync_all().map_err(io(tmp.path()))?;
    let (sha, bytes) = file_sha256(tmp.path()).map_err(io(tmp.path()))?;
    crash_point("state", record.index);
    tmp.persist(&state_path).map_err(|e| CheckpointError::Io {
        path: state_path.clone(),
        source: e.error,
    })?;
    record.state_file = state_name(record.index);
    record.state_sha256 = sha;
    record.state_bytes = bytes;
    let body = serde_json::to_string(&record).map_err(|e| CheckpointError::Io {
        path: dir.join(record_name(record.index)),
        source: std::io::Error::other(e),
    })?;
    let text = format!("{}\n{body}\n", hex(&Sha256::digest(body.as_bytes())));
    let record_path = dir.join(record_name(record.index));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(text.as_bytes()).map_err(io(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io(tmp.path()))?;
    crash_point("record", record.index);
    tmp.persist(&record_path).map_err(|e| CheckpointError::Io {
        path: record_path.clone(),
        source: e.error,
    })?;
    sync_dir(dir);
    prune(dir, record.index, config.keep.max(2));
    Ok(record)
}

fn indices(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<u64> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let digits = name.strip_prefix("ckpt-")?.strip_suffix(".json")?;
            (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())?
        })
        .collect();
    found.sort_unstable();
    found
}

fn prune(dir: &Path, newest: u64, keep: usize) {
    let all = indices(dir);
    let old = all
        .iter()
        .filter(|&&i| i <= newest)
        .count()
        .saturating_sub(keep);
    for index in all.into_iter().take(old) {
        // Record first: a state without its record is never used.
        let _ = std::fs::remove_file(dir.join(record_name(index)));
        let _ = std::fs::remove_file(dir.join(state_name(index)));
    }
}

/// Reads and verifies checkpoint `index`: the record's checksum, its schema, the run key and the
/// state file's hash. `Err` says why it is refused.
pub fn verify(dir: &Path, index: u64, run_key: &str) -> Result<Record, String> {
    let path = dir.join(record_name(index));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("record unreadable: {e}"))?;
    let (sum, body) = text
        .split_once('\n')
        .ok_or("record truncated: no checksum line")?;
    let body = body.strip_suffix('\n').unwrap_or(body);
    if hex(&Sha256::digest(body.as_bytes())) != sum {
        return Err("record checksum mismatch (torn or edited record)".into());
    }
    let record: Record =
        serde_json::from_str(body).map_err(|e| format!("record does not parse: {e}"))?;
    if record.schema != SCHEMA {
        return Err(format!("record schema {} is not {SCHEMA}", record.schema));
    }
    if record.index != index {
        return Err(format!(
            "record says index {}, file says {index}",
            record.index
        ));
    }
    if record.run_key != run_key {
        return Err("written by another run (bundle, seed, shape, budgets or data differ)".into());
    }
    if record.state_file != state_name(index) {
        return Err(format!("record names state file {:?}", record.state_file));
    }
    let state = dir.join(&record.state_file);
    let (sha, bytes) =
        file_sha256(&state).map_err(|e| format!("state file {}: {e}", record.state_file))?;
    if sha != record.state_sha256 || bytes != record.state_bytes {
        return Err(format!(
            "state file hash mismatch: {sha} ({bytes} bytes) on disk, {} ({} bytes) recorded",
            record.state_sha256, record.state_bytes
        ));
    }
    if record.prequential.batch_shapes.len() != record.prequential.online_loss.len() {
        return Err(
            "prequential record is inconsistent (shapes and losses differ in length)".into(),
        );
    }
    Ok(record)
}

/// The newest good checkpoint of the run in `dir` (`None` when there is none), and each newer
/// one refused, as `checkpoint N: reason`.
pub fn latest_good(dir: &Path, run_key: &str) -> (Option<Record>, Vec<String>) {
    let mut refused = Vec::new();
    for index in indices(dir).into_iter().rev() {
        match verify(dir, index, run_key) {
            Ok(record) => return (Some(record), refused),
            Err(why) => refused.push(format!("checkpoint {index} refused: {why}")),
        }
    }
    (None, refused)
}

/// The path of a record's state file.
pub fn state_path(dir: &Path, record: &Record) -> PathBuf {
    dir.join(&record.state_file)
}

/// How a resumed run began.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ResumeInfo {
    /// The checkpoint it resumed from (`None`: no good checkpoint, it started afresh).
    pub from_checkpoint: Option<u64>,
    /// Batches restored from the record.
    pub restored_batches: u64,
    /// Newer checkpoints refused, with their reasons.
    pub refused: Vec<String>,
}

/// Hashes the parts of a run a checkpoint must share with the run resuming it.
pub fn run_key(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex(&hasher.finalize())
}
