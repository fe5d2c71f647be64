//! The worker loop: sweep expired leases, claim a job, run it in a child process under a
//! wall-clock TTL and a memory limit while heartbeating its lease, and write the outcome.
//!
//! The child is killed (its whole process group, SIGKILL) when the TTL passes or the lease is
//! lost, and dies with the worker (`PR_SET_PDEATHSIG`) if the worker is killed. On shutdown
//! (SIGTERM) the worker claims nothing more; the job in hand finishes, or is released if the
//! drain deadline passes first.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use assay_errors::Blame;
use assay_store::{Claimed, FinishOutcome, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::ServiceError;
use crate::handler::{JobFailure, JobInput, JobOutput, PeerSubmission};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This worker's name in leases and results (host:pid by default).
    pub id: String,
    /// How long a claim is held without a heartbeat.
    pub lease: Duration,
    /// How often the lease is extended while a job runs (a third of the lease by default).
    pub heartbeat: Duration,
    /// How long to wait when the queue is empty.
    pub poll: Duration,
    /// Address-space limit of each child (`setrlimit(RLIMIT_AS)`), bytes; `None`: none.
    pub memory_limit: Option<u64>,
    /// The child command: program and arguments; it reads the job on stdin.
    pub command: Vec<OsString>,
    /// The device handed to jobs (`cuda:0`, `cpu`).
    pub device: Option<String>,
    /// Extra environment of each child (a demo's model and data folders).
    pub env: Vec<(OsString, OsString)>,
    /// Delay before a transiently failed job may be claimed again.
    pub retry_delay: Duration,
    /// Stop after this many jobs (tests, benchmarks); `None`: run until shut down.
    pub max_jobs: Option<usize>,
    /// Stop when the queue is empty (tests, `--drain`).
    pub exit_when_idle: bool,
    /// On shutdown, how long the job in hand may still run before it is released.
    pub drain_timeout: Duration,
}

impl WorkerSettings {
    /// Defaults around a child command: a 60 s lease, 20 s heartbeats, 500 ms polls.
    pub fn new(command: Vec<OsString>) -> Self {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        Self {
            id: format!("{}:{}", host.trim(), std::process::id()),
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(20),
            poll: Duration::from_millis(500),
            memory_limit: None,
            command,
            device: None,
            env: Vec::new(),
            retry_delay: Duration::from_secs(5),
            max_jobs: None,
            exit_when_idle: false,
            drain_timeout: Duration::from_secs(3600),
        }
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Jobs finished with a result.
    pub completed: usize,
    /// Attempts that failed (retried or not).
    pub failed: usize,
    /// Attempts whose lease was lost (nothing written).
    pub lease_lost: usize,
    /// Jobs given back on shutdown.
    pub released: usize,
}

/// How one attempt ended, seen from the worker.
enum Attempt {
    Done(Box<JobOutput>),
    Failed(JobFailure),
    LeaseLost,
    Drained,
}

/// Runs the worker loop until `shutdown` turns true (or the settings' limits say stop).
pub async fn run_worker(
    store: &Store,
    settings: &WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<WorkerReport, ServiceError> {
    if settings.command.is_empty() {
        return Err(ServiceError::Config(
            "the worker's child command is empty".into(),
        ));
    }
    let mut report = WorkerReport::default();
    let mut jobs = 0usize;
    tracing::info!(worker = %settings.id, device = ?settings.device, "worker started");
    loop {
        if *shutdown.borrow() || settings.max_jobs.is_some_and(|max| jobs >= max) {
            break;
        }
        store.requeue_expired().await?;
        let Some(job) = store.claim(&settings.id, settings.lease).await? else {
            if settings.exit_when_idle {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        jobs += 1;
        let started = Instant::now();
        tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempt, "job claimed");
        let attempt = run_attempt(store, settings, &job, shutdown.clone()).await?;
        let elapsed = started.elapsed().as_millis() as i64;
        match attempt {
            Attempt::Done(output) => {
                match store
                    .complete_with(
                        &job,
                        &output.output,
                        elapsed,
                        output.submission.as_ref(),
                        &output.others,
                    )
                    .await?
                {
                    FinishOutcome::Recorded => {
                        report.completed += 1;
                        if let Some(w) = &output.weights {
                            let value = serde_json::to_value(&w.weights).unwrap_or_default();
                            store.put_weights(&w.pipeline, w.epoch_id, &value).await?;
                        }
                        tracing::info!(job = job.id, ms = elapsed, "job done");
                    }
                    _ => {
                        report.lease_lost += 1;
                        tracing::warn!(job = job.id, "result dropped: the lease was lost");
                    }
                }
            }
            Attempt::Failed(failure) => {
                let retryable = failure.blame == Blame::Transient;
                let outcome = store
                    .fail(&job, &failure.error, retryable, settings.retry_delay)
                    .await?;
                if outcome == FinishOutcome::LeaseLost {
                    report.lease_lost += 1;
                } else {
                    report.failed += 1;
                }
                tracing::warn!(job = job.id, blame = %failure.blame, error = %failure.error, ?outcome, "job failed");
            }
            Attempt::LeaseLost => {
                report.lease_lost += 1;
                tracing::warn!(job = job.id, "lease lost while running; child killed");
            }
            Attempt::Drained => {
                store.release(&job).await?;
                report.released += 1;
                tracing::info!(job = job.id, "job released on shutdown");
            }
        }
    }
    tracing::info!(worker = %settings.id, ?report, "worker stopped");
    Ok(report)
}

/// The round's submissions when the payload asks for them (`"peers": {"pipeline", "epoch_id"}`).
async fn peers(
    store: &Store,
    payload: &serde_json::Value,
) -> Result<Vec<PeerSubmission>, ServiceError> {
    let Some(ask) = payload.get("peers") else {
        return Ok(Vec::new());
    };
    let (Some(pipeline), Some(epoch_id)) = (
        ask.get("pipeline").and_then(serde_json::Value::as_str),
        ask.get("epoch_id").and_then(serde_json::Value::as_i64),
    ) else {
        return Err(ServiceError::Config(format!(
            "a job's `peers` must be {{\"pipeline\": P, \"epoch_id\": N}}, not {ask}"
        )));
    };
    let mut peers = Vec::new();
    for row in store.submissions_in(pipeline, epoch_id, None).await? {
        let Some(body) = store.submission_body(&row.id).await? else {
            continue;
        };
        peers.push(PeerSubmission {
            block: row
                .metadata
                .get("block")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
            received_ms: row.created_at,
            id: row.id,
            hotkey: row.hotkey,
            body,
            filename: row.filename,
        });
    }
    Ok(peers)
}

fn spawn_child(settings: &WorkerSettings) -> std::io::Result<tokio::process::Child> {
    let mut command = tokio::process::Command::new(&settings.command[0]);
    command
        .args(&settings.command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(device) = &settings.device {
        command.env("ASSAY_JOB_DEVICE", device);
    }
    command.envs(settings.env.iter().map(|(k, v)| (k, v)));
    let memory_limit = settings.memory_limit;
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (setpgid, prctl, setrlimit), touching no memory shared with the parent.
    unsafe {
        command.pre_exec(move || {
            // Own process group, so a kill reaches the job's own children too.
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Die with the worker: a `kill -9` of the worker leaves no orphan running the job.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(bytes) = memory_limit {
                let limit = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn()
}

fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: plain syscall; the negative pid names the child's own process group.
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    }
}

async fn run_attempt(
    store: &Store,
    settings: &WorkerSettings,
    job: &Claimed,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Attempt, ServiceError> {
    let (submission_body, submission_filename) = match &job.submission_id {
        Some(id) => (
            store.submission_body(id).await?,
            store.submission(id).await?.and_then(|s| s.filename),
        ),
        None => (None, None),
    };
    let peers = peers(store, &job.payload).await?;
    let input = JobInput {
        job_id: job.id,
        kind: job.kind.clone(),
        payload: job.payload.clone(),
        attempt: job.attempt,
        device: settings.device.clone(),
        submission_body,
        submission_filename,
        peers,
    };
    let mut child = match spawn_child(settings) {
        Ok(child) => child,
        Err(e) => {
            let program = settings.command[0].to_string_lossy();
            return Ok(Attempt::Failed(JobFailure::new(
                format!("cannot start the job process {program}: {e}"),
                Blame::Transient,
            )));
        }
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let text = serde_json::to_vec(&input).unwrap_or_default();
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&text).await;
        let _ = stdin.shutdown().await;
    });
    let out_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf
    });
    let err_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    let deadline = tokio::time::Instant::now() + Duration::from_millis(job.ttl_ms.max(1) as u64);
    let mut beat = tokio::time::interval(settings.heartbeat);
    beat.tick().await;
    let mut draining_until: Option<tokio::time::Instant> = None;
    let status = loop {
        let drain_sleep = async {
            match draining_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => break status,
            _ = tokio::time::sleep_until(deadline) => {
                kill_group(&child);
                let _ = child.wait().await;
                feed.abort();
                return Ok(Attempt::Failed(JobFailure::new(
                    format!("the job ran past its wall-clock limit of {:.1} s and was killed",
                        job.ttl_ms as f64 / 1000.0),
                    Blame::Transient,
                )));
            }
            _ = beat.tick() => {
                match store.heartbeat(job, settings.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        kill_group(&child);
                        let _ = child.wait().await;
                        return Ok(Attempt::LeaseLost);
                    }
                    // A lost connection: keep running; the next beat may get through.
                    Err(e) => tracing::warn!(job = job.id, error = %e, "heartbeat failed"),
                }
            }
            changed = shutdown.changed(), if draining_until.is_none() => {
                if changed.is_err() || *shutdown.borrow() {
                    tracing::info!(job = job.id, "shutdown: finishing the job in hand");
                    draining_until = Some(tokio::time::Instant::now() + settings.drain_timeout);
                }
            }
            _ = drain_sleep => {
                kill_group(&child);
                let _ = child.wait().await;
                return Ok(Attempt::Drained);
            }
        }
    };
    let stdout = out_task.await.unwrap_or_default();
    let stderr = err_task.await.unwrap_or_default();
    let status = status.map_err(|e| ServiceError::Io {
        what: "waiting for the job process".into(),
        source: e,
    })?;
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        let start = text.len().saturating_sub(2000);
        let start = (start..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    };
    let last_line = String::from_utf8_lossy(&stdout)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    if status.success() {
        return Ok(match serde_json::from_str::<JobOutput>(&last_line) {
            Ok(output) => Attempt::Done(Box::new(output)),
            Err(e) => Attempt::Failed(JobFailure::new(
                format!(
                    "the job process exited 0 but its output is not a job result ({e}): {}",
                    tail(&stdout)
                ),
                Blame::Bug,
            )),
        });
    }
    if let Ok(failure) = serde_json::from_str::<JobFailure>(&last_line) {
        return Ok(Attempt::Failed(failure));
    }
    use std::os::unix::process::ExitStatusExt as _;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended abnormally".to_string(),
    };
    Ok(Attempt::Failed(JobFailure::new(
        format!("the job process {how}: {}", tail(&stderr)),
        Blame::Transient,
    )))
}
