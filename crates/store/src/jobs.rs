//! The job queue: enqueue, claim with a lease, heartbeat, finish (result in the same
//! transaction), fail (retry or give up), release, and the sweeper for expired leases.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Store, StoreError};

/// The default number of times a job is tried before it fails for good.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;

/// A job to put in the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    /// Which handler runs it (`sim`, `prism.bundle`, `sn37.eval`, `datacomp.miner`, `weights`, …).
    pub kind: String,
    /// The handler's input.
    pub payload: Value,
    /// Higher runs first; ties run oldest first.
    pub priority: i64,
    /// Tries before the job fails for good (lease expiries and transient failures count).
    pub max_attempts: i64,
    /// Wall-clock limit of one attempt; the worker kills the child process past it.
    pub ttl_ms: i64,
    /// Not claimable before this Unix time (ms); `None`: at once.
    pub not_before_ms: Option<i64>,
    /// The submission the job evaluates; its status and score follow the job's.
    pub submission_id: Option<String>,
    /// At most one job ever exists per key (a schedule's `sn37:{comp}:{sync_block}`).
    pub dedupe_key: Option<String>,
}

impl JobSpec {
    /// A job of `kind` with `payload`, priority 0, 3 attempts and a 720 s TTL (SN37's).
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            ttl_ms: 720_000,
            not_before_ms: None,
            submission_id: None,
            dedupe_key: None,
        }
    }
}

/// A job's place in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease.
    Running,
    /// Finished with a result.
    Done,
    /// Gave up: a non-retryable failure or out of attempts.
    Failed,
}

impl JobState {
    /// Every state, in order.
    pub const ALL: [JobState; 4] = [Self::Queued, Self::Running, Self::Done, Self::Failed];

    /// The word stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            _ => Self::Failed,
        }
    }
}

/// A job a worker has claimed: what to run and the lease it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claimed {
    /// The job's id.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its input.
    pub payload: Value,
    /// This attempt's number (1 for the first try).
    pub attempt: i64,
    /// Tries allowed.
    pub max_attempts: i64,
    /// Wall-clock limit of this attempt.
    pub ttl_ms: i64,
    /// The worker holding the lease.
    pub owner: String,
    /// The submission it evaluates, if any.
    pub submission_id: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSummary {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Input.
    pub payload: Value,
    /// State.
    pub state: JobState,
    /// Attempts started.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// The worker holding the lease while running.
    pub lease_owner: Option<String>,
    /// The last failure's reason.
    pub error: Option<String>,
    /// The submission it evaluates.
    pub submission_id: Option<String>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last changed (Unix ms).
    pub updated_at: i64,
}

/// How a finished job changes its submission, written in the job's transaction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubmissionUpdate {
    /// New status (`completed`, `failed`, `rejected`, …).
    pub status: String,
    /// The score, if one was computed.
    pub final_score: Option<f64>,
    /// Why it failed or was rejected.
    pub error: Option<String>,
    /// The evaluation's JSON (scores per task, curve, findings).
    pub result: Option<Value>,
}

/// What became of a finish, fail or release call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishOutcome {
    /// Written: the caller held the lease of that attempt.
    Recorded,
    /// The job failed for good (no attempts left, or the failure cannot be retried).
    Failed,
    /// Put back in the queue for another attempt.
    Requeued,
    /// Nothing written: the lease had expired and the job belongs to another attempt now.
    LeaseLost,
}

const CLAIM_COLUMNS: &str = "id, kind, payload, attempts, max_attempts, ttl_ms, submission_id";

fn parse_payload(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        what: "job payload",
        source,
    })
}

fn job_from_row(row: &AnyRow) -> Result<JobSummary, StoreError> {
    let get = StoreError::read("job");
    let r = (|| -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<i64, _>("id")?,
            row.try_get::<String, _>("kind")?,
            row.try_get::<String, _>("payload")?,
            row.try_get::<String, _>("status")?,
            row.try_get::<i64, _>("attempts")?,
            row.try_get::<i64, _>("max_attempts")?,
            row.try_get::<Option<String>, _>("lease_owner")?,
            row.try_get::<Option<String>, _>("error")?,
            row.try_get::<Option<String>, _>("submission_id")?,
            row.try_get::<i64, _>("created_at")?,
            row.try_get::<i64, _>("updated_at")?,
        ))
    })()
    .map_err(get)?;
    Ok(JobSummary {
        id: r.0,
        kind: r.1,
        payload: parse_payload(&r.2)?,
        state: JobState::parse(&r.3),
        attempts: r.4,
        max_attempts: r.5,
        lease_owner: r.6,
        error: r.7,
        submission_id: r.8,
        created_at: r.9,
        updated_at: r.10,
    })
}

impl Store {
    /// Puts a job in the queue. Returns its id, or `None` when a job with the same
    /// [`JobSpec::dedupe_key`] already exists.
    pub async fn enqueue(&self, spec: &JobSpec) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::write("job"))?;
        let id = self.enqueue_in(&mut tx, spec).await?;
        tx.commit().await.map_err(StoreError::write("job"))?;
        Ok(id)
    }

    /// [`Store::enqueue`] inside a caller's transaction (a submission and its job commit
    /// together).
    pub async fn enqueue_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        spec: &JobSpec,
    ) -> Result<Option<i64>, StoreError> {
        let now = self.now_ms();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (kind, payload, priority, status, attempts, max_attempts, ttl_ms,
                not_before, submission_id, dedupe_key, created_at, updated_at)
             VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING id",
        )
        .bind(&spec.kind)
        .bind(spec.payload.to_string())
        .bind(spec.priority)
        .bind(spec.max_attempts.max(1))
        .bind(spec.ttl_ms.max(1))
        .bind(spec.not_before_ms.unwrap_or(now))
        .bind(spec.submission_id.as_deref())
        .bind(spec.dedupe_key.as_deref())
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::write("job"))?;
        if let Some(id) = id {
            insert_event(
                tx,
                now,
                "enqueued",
                Some(id),
                spec.submission_id.as_deref(),
                &spec.kind,
            )
            .await?;
        }
        Ok(id)
    }

    /// Claims the next due job (highest priority, then oldest) for `owner` with a lease of
    /// `lease`, starting its next attempt. `None` when nothing is due.
    ///
    /// PostgreSQL: the candidate is locked with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
    /// take different jobs without waiting. SQLite: one statement compare-and-swaps
    /// `status = 'queued'` (SQLite has one writer at a time).
    pub async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        let now = self.now_ms();
        // The one difference between the back ends: PostgreSQL locks the candidate and skips
        // rows other claimers hold; SQLite (one writer at a time) re-checks the status instead.
        let (lock, recheck) = match self.backend {
            Backend::Postgres => (" FOR UPDATE SKIP LOCKED", ""),
            Backend::Sqlite => ("", "\n                   AND status = 'queued'"),
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1,
                lease_expires_at = $2, updated_at = $3, started_at = $3
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND not_before <= $3
                         ORDER BY priority DESC, id ASC LIMIT 1{lock}){recheck}
             RETURNING {CLAIM_COLUMNS}"
        );
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::write("job claim"))?;
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::write("job claim"))?;
        let Some(row) = row else {
            tx.rollback()
                .await
                .map_err(StoreError::write("job claim"))?;
            return Ok(None);
        };
        let read = StoreError::read("claimed job");
        let claimed = (|| -> Result<_, sqlx::Error> {
            Ok(Claimed {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                payload: Value::Null,
                attempt: row.try_get("attempts")?,
                max_attempts: row.try_get("max_attempts")?,
                ttl_ms: row.try_get("ttl_ms")?,
                owner: owner.to_string(),
                submission_id: row.try_get("submission_id")?,
            })
        })()
        .map_err(read)?;
        let payload: String = row
            .try_get("payload")
            .map_err(StoreError::read("claimed job"))?;
        let claimed = Claimed {
            payload: parse_payload(&payload)?,
            ..claimed
        };
        if let Some(submission) = &claimed.submission_id {
            sqlx::query(
                "UPDATE submissions SET status = 'running', updated_at = $2
                 WHERE id = $1 AND status IN ('pending', 'running')",
            )
            .bind(submission)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write("submission status"))?;
        }
        let detail = format!("attempt {} by {owner}", claimed.attempt);
        insert_event(&mut tx, now, "claimed", Some(claimed.id), None, &detail).await?;
        tx.commit().await.map_err(StoreError::write("job claim"))?;
        Ok(Some(claimed))
    }

    /// Extends the lease of `job`'s current attempt. `false`: the lease is gone (it expired
    /// and the job was requeued or taken by another worker); the caller must stop the work.
    pub async fn heartbeat(&self, job: &Claimed, lease: Duration) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1, updated_at = $2
             WHERE id = $3 AND status = 'running' AND lease_owner = $4 AND attempts = $5",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(job.id)
        .bind(&job.owner)
        .bind(job.attempt)
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("job heartbeat"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks `job` done and writes its result, keyed by `(job, attempt)`, in one transaction,
    /// together with the submission's new state. Writes nothing (and returns
    /// [`FinishOutcome::LeaseLost`]) unless the caller still holds this attempt's lease.
    pub async fn complete(
        &self,
        job: &Claimed,
        output: &Value,
        duration_ms: i64,
        submission: Option<&SubmissionUpdate>,
    ) -> Result<FinishOutcome, StoreError> {
        self.complete_with(job, output, duration_ms, submission, &[])
            .await
    }

    /// [`Store::complete`], also updating other submissions the job scored in the same
    /// transaction (a round job that evaluates every model of a competition at once): they
    /// change with the job's result or not at all.
    pub async fn complete_with(
        &self,
        job: &Claimed,
        output: &Value,
        duration_ms: i64,
        submission: Option<&SubmissionUpdate>,
        others: &[(String, SubmissionUpdate)],
    ) -> Result<FinishOutcome, StoreError> {
        let now = self.now_ms();
        let Some(mut tx) = self
            .update_held(
                job,
                "status = 'done', lease_owner = NULL, lease_expires_at = NULL, error = NULL,
                 updated_at = $1, finished_at = $1",
                &[Arg::Int(now)],
                "job result",
            )
            .await?
        else {
            return Ok(FinishOutcome::LeaseLost);
        };
        sqlx::query(
            "INSERT INTO results (job_id, attempt, worker, output, duration_ms, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(&job.owner)
        .bind(output.to_string())
        .bind(duration_ms)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::write("job result"))?;
        if let (Some(id), Some(update)) = (&job.submission_id, submission) {
            update_submission(&mut tx, id, update, now).await?;
        }
        for (id, update) in others {
            update_submission(&mut tx, id, update, now).await?;
        }
        let detail = format!(
            "attempt {} by {} in {duration_ms} ms",
            job.attempt, job.owner
        );
        insert_event(
            &mut tx,
            now,
            "completed",
            Some(job.id),
            job.submission_id.as_deref(),
            &detail,
        )
        .await?;
        tx.commit().await.map_err(StoreError::write("job result"))?;
        Ok(FinishOutcome::Recorded)
    }

    /// Records a failed attempt. A `retryable` failure with attempts left goes back in the queue
    /// (claimable after `retry_delay`); otherwise the job fails for good and its submission
    /// becomes `failed` with `error` as the reason. Writes nothing without the lease.
    pub async fn fail(
        &self,
        job: &Claimed,
        error: &str,
        retryable: bool,
        retry_delay: Duration,
    ) -> Result<FinishOutcome, StoreError> {
        let now = self.now_ms();
        let requeue = retryable && job.attempt < job.max_attempts;
        let Some(mut tx) = self
            .update_held(
                job,
                "status = $1, lease_owner = NULL, lease_expires_at = NULL, error = $2,
                 not_before = $3, updated_at = $4, finished_at = $5",
                &[
                    Arg::Text(if requeue { "queued" } else { "failed" }),
                    Arg::Text(error),
                    Arg::Int(now + retry_delay.as_millis() as i64),
                    Arg::Int(now),
                    Arg::OptInt(if requeue { None } else { Some(now) }),
                ],
                "job failure",
            )
            .await?
        else {
            return Ok(FinishOutcome::LeaseLost);
        };
        if !requeue && let Some(id) = &job.submission_id {
            let status = if retryable { "failed" } else { "rejected" };
            let update = SubmissionUpdate {
                status: status.into(),
                error: Some(error.into()),
                ..Default::default()
            };
            update_submission(&mut tx, id, &update, now).await?;
        }
        let kind = if requeue { "retry" } else { "failed" };
        let detail = format!("attempt {} by {}: {error}", job.attempt, job.owner);
        insert_event(
            &mut tx,
            now,
            kind,
            Some(job.id),
            job.submission_id.as_deref(),
            &detail,
        )
        .await?;
        tx.commit()
            .await
            .map_err(StoreError::write("job failure"))?;
        Ok(if requeue {
            FinishOutcome::Requeued
        } else {
            FinishOutcome::Failed
        })
    }

    /// Gives a claimed job back without charging the attempt (a worker draining on SIGTERM).
    pub async fn release(&self, job: &Claimed) -> Result<FinishOutcome, StoreError> {
        let now = self.now_ms();
        let Some(mut tx) = self
            .update_held(
                job,
                "status = 'queued', attempts = attempts - 1, lease_owner = NULL,
                 lease_expires_at = NULL, updated_at = $1",
                &[Arg::Int(now)],
                "job release",
            )
            .await?
        else {
            return Ok(FinishOutcome::LeaseLost);
        };
        let detail = format!("attempt {} released by {}", job.attempt, job.owner);
        insert_event(&mut tx, now, "released", Some(job.id), None, &detail).await?;
        tx.commit()
            .await
            .map_err(StoreError::write("job release"))?;
        Ok(FinishOutcome::Requeued)
    }

    /// Puts running jobs whose lease has expired back in the queue, or fails them when they
    /// have used all their attempts. Returns `(requeued, failed)`.
    pub async fn requeue_expired(&self) -> Result<(u64, u64), StoreError> {
        let now = self.now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::write("lease sweep"))?;
        let failed_ids: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
            "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL,
                error = 'lease expired on the last attempt (' || attempts || ' of ' || max_attempts
                    || '): the worker stopped heartbeating (killed, crashed or cut off)',
                updated_at = $1, finished_at = $1
             WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts
             RETURNING id, submission_id, attempts",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::write("lease sweep"))?;
        let requeued: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                error = 'lease expired on attempt ' || attempts, updated_at = $1
             WHERE status = 'running' AND lease_expires_at < $1
             RETURNING id, attempts",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::write("lease sweep"))?;
        for (id, submission, attempts) in &failed_ids {
            if let Some(submission) = submission {
                let update = SubmissionUpdate {
                    status: "failed".into(),
                    error: Some(format!("evaluation lost its worker {attempts} times")),
                    ..Default::default()
                };
                update_submission(&mut tx, submission, &update, now).await?;
            }
            insert_event(
                &mut tx,
                now,
                "failed",
                Some(*id),
                submission.as_deref(),
                "lease expired",
            )
            .await?;
        }
        for (id, attempts) in &requeued {
            let detail = format!("lease of attempt {attempts} expired");
            insert_event(&mut tx, now, "requeued", Some(*id), None, &detail).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::write("lease sweep"))?;
        if !requeued.is_empty() || !failed_ids.is_empty() {
            tracing::warn!(
                requeued = requeued.len(),
                failed = failed_ids.len(),
                "expired leases swept"
            );
        }
        Ok((requeued.len() as u64, failed_ids.len() as u64))
    }

    /// One job by id.
    pub async fn job(&self, id: i64) -> Result<Option<JobSummary>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::read("job"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The most recent jobs, newest first.
    pub async fn recent_jobs(&self, limit: i64) -> Result<Vec<JobSummary>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::read("jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    /// How many jobs are in each state.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::read("job counts"))?;
        Ok(JobState::ALL
            .iter()
            .map(|state| {
                let n = rows
                    .iter()
                    .find(|(s, _)| s == state.as_str())
                    .map_or(0, |(_, n)| *n);
                (*state, n)
            })
            .collect())
    }

    /// Sum and count of finished attempts' durations (ms), for `/metrics`.
    pub async fn result_durations(&self) -> Result<(i64, i64), StoreError> {
        let row: (Option<i64>, i64) =
            sqlx::query_as("SELECT CAST(SUM(duration_ms) AS BIGINT), COUNT(*) FROM results")
                .fetch_one(&self.pool)
                .await
                .map_err(StoreError::read("result durations"))?;
        Ok((row.0.unwrap_or(0), row.1))
    }
}

/// A value bound to a statement [`Store::update_held`] runs.
enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
}

impl Store {
    /// Begins a transaction and applies `UPDATE jobs SET {set}` to `job`'s current attempt, only
    /// while the caller holds its lease (`running`, its owner, its attempt). `set` numbers its
    /// placeholders from `$1` for `args`. Returns the open transaction, or `None` (rolled back,
    /// nothing written) when the lease is gone: the job belongs to another attempt now.
    async fn update_held(
        &self,
        job: &Claimed,
        set: &str,
        args: &[Arg<'_>],
        what: &'static str,
    ) -> Result<Option<Transaction<'static, Any>>, StoreError> {
        let n = args.len();
        let sql = format!(
            "UPDATE jobs SET {set}
             WHERE id = ${} AND status = 'running' AND lease_owner = ${} AND attempts = ${}",
            n + 1,
            n + 2,
            n + 3
        );
        let mut tx = self.pool.begin().await.map_err(StoreError::write(what))?;
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::OptInt(v) => query.bind(*v),
                Arg::Text(v) => query.bind(*v),
            };
        }
        let held = query
            .bind(job.id)
            .bind(&job.owner)
            .bind(job.attempt)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::write(what))?;
        if held.rows_affected() != 1 {
            tx.rollback().await.map_err(StoreError::write(what))?;
            return Ok(None);
        }
        Ok(Some(tx))
    }
}

pub(crate) async fn update_submission(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    update: &SubmissionUpdate,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE submissions SET status = $1, final_score = $2, error = $3, result = $4,
            updated_at = $5 WHERE id = $6",
    )
    .bind(&update.status)
    .bind(update.final_score)
    .bind(update.error.as_deref())
    .bind(update.result.as_ref().map(Value::to_string))
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::write("submission status"))?;
    Ok(())
}

pub(crate) async fn insert_event(
    tx: &mut Transaction<'static, Any>,
    at: i64,
    kind: &str,
    job_id: Option<i64>,
    submission_id: Option<&str>,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (at, kind, job_id, submission_id, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(at)
    .bind(kind)
    .bind(job_id)
    .bind(submission_id)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::write("event"))?;
    Ok(())
}
