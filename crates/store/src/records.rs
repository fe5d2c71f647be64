//! Submissions, nonces, epochs/rounds, chain blocks and commitments, weights history, events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::jobs::insert_event;
use crate::{JobSpec, Store, StoreError};

/// A submission to store, with the job that evaluates it.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    /// Its id (PRISM: a UUID-shaped string).
    pub id: String,
    /// `prism`, `sn37` or `datacomp`.
    pub pipeline: String,
    /// The miner's hotkey (SS58).
    pub hotkey: String,
    /// The epoch/round it belongs to.
    pub epoch_id: i64,
    /// SHA-256 of what was submitted, lowercase hex.
    pub code_hash: String,
    /// The file name the miner gave.
    pub filename: Option<String>,
    /// What the miner sent.
    pub body: String,
    /// The miner's metadata object.
    pub metadata: Value,
    /// The evaluation job (its `submission_id` is set to `id`); `None`: queued later (a round
    /// closed at its deadline block).
    pub job: Option<JobSpec>,
    /// The request's single-use nonce, spent in the same transaction (a reused one makes the
    /// whole insert fail with [`StoreError::Duplicate`] `nonce`).
    pub nonce: Option<String>,
}

/// A stored submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmissionRow {
    /// Id.
    pub id: String,
    /// Pipeline.
    pub pipeline: String,
    /// Miner hotkey.
    pub hotkey: String,
    /// Epoch/round.
    pub epoch_id: i64,
    /// `pending`, `running`, `completed`, `failed`, `rejected` or `held`.
    pub status: String,
    /// SHA-256 of the submission.
    pub code_hash: String,
    /// File name.
    pub filename: Option<String>,
    /// Metadata object.
    pub metadata: Value,
    /// Received (Unix ms).
    pub created_at: i64,
    /// Last changed (Unix ms).
    pub updated_at: i64,
    /// Score, once evaluated.
    pub final_score: Option<f64>,
    /// Why it failed or was rejected.
    pub error: Option<String>,
    /// The evaluation's JSON.
    pub result: Option<Value>,
}

/// A finished attempt's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultRow {
    /// The job.
    pub job_id: i64,
    /// Which attempt produced it.
    pub attempt: i64,
    /// The worker that ran it.
    pub worker: String,
    /// The handler's output.
    pub output: Value,
    /// How long the attempt ran (ms).
    pub duration_ms: i64,
}

/// An epoch, round or sync block of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRow {
    /// Pipeline.
    pub pipeline: String,
    /// Epoch id / round number / sync block.
    pub id: i64,
    /// Start (Unix ms).
    pub starts_at: i64,
    /// End (Unix ms; for block-driven rounds the time it closed, or 0 while open).
    pub ends_at: i64,
    /// `open`, `closed`, `scored`.
    pub status: String,
    /// The block the round closes at (Datacomp).
    pub deadline_block: Option<i64>,
    /// The seed its evaluations use (SN37: from the sync block's hash).
    pub seed: Option<String>,
}

/// A chain block the operator's chain client (or the block file) reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Block {
    /// Block number.
    pub number: i64,
    /// Block hash, `0x…`.
    pub hash: String,
}

/// A miner's chain commitment (SN37: repo, revision, hash; Datacomp: the data reference).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commitment {
    /// `sn37` or `datacomp`.
    pub pipeline: String,
    /// The miner's hotkey.
    pub hotkey: String,
    /// The block it was committed at.
    pub block: i64,
    /// The commitment's fields.
    pub data: Value,
}

/// Weights computed for an epoch/round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsRow {
    /// Pipeline.
    pub pipeline: String,
    /// Epoch/round.
    pub epoch_id: i64,
    /// Hotkey → weight.
    pub weights: Value,
    /// Computed (Unix ms).
    pub created_at: i64,
}

/// An event of the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRow {
    /// Sequence number.
    pub id: i64,
    /// When (Unix ms).
    pub at: i64,
    /// `enqueued`, `claimed`, `completed`, `retry`, `failed`, `requeued`, `released`, …
    pub kind: String,
    /// The job, if any.
    pub job_id: Option<i64>,
    /// The submission, if any.
    pub submission_id: Option<String>,
    /// Free text.
    pub detail: String,
}

fn json_column(row: &AnyRow, column: &'static str) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = row.try_get(column).map_err(StoreError::read(column))?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|source| StoreError::Corrupt {
            what: column,
            source,
        })
    })
    .transpose()
}

fn submission_from_row(row: &AnyRow) -> Result<SubmissionRow, StoreError> {
    let read = StoreError::read("submission");
    let base = (|| -> Result<_, sqlx::Error> {
        Ok(SubmissionRow {
            id: row.try_get("id")?,
            pipeline: row.try_get("pipeline")?,
            hotkey: row.try_get("hotkey")?,
            epoch_id: row.try_get("epoch_id")?,
            status: row.try_get("status")?,
            code_hash: row.try_get("code_hash")?,
            filename: row.try_get("filename")?,
            metadata: Value::Null,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            final_score: row.try_get("final_score")?,
            error: row.try_get("error")?,
            result: None,
        })
    })()
    .map_err(read)?;
    Ok(SubmissionRow {
        metadata: json_column(row, "metadata")?.unwrap_or(Value::Null),
        result: json_column(row, "result")?,
        ..base
    })
}

/// An `epochs` row as selected.
type EpochTuple = (String, i64, i64, i64, String, Option<i64>, Option<String>);
/// An `events` row as selected.
type EventTuple = (i64, i64, String, Option<i64>, Option<String>, String);

const SUBMISSION_COLUMNS: &str = "id, pipeline, hotkey, epoch_id, status, code_hash, filename, \
    metadata, created_at, updated_at, final_score, error, result";

impl Store {
    /// Records a nonce as used. [`StoreError::Duplicate`] if `(hotkey, nonce)` was seen before.
    pub async fn use_nonce(&self, hotkey: &str, nonce: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO nonces (hotkey, nonce, created_at) VALUES ($1, $2, $3)")
            .bind(hotkey)
            .bind(nonce)
            .bind(self.now_ms())
            .execute(&self.pool)
            .await
            .map_err(StoreError::write("nonce"))?;
        Ok(())
    }

    /// Whether `(hotkey, nonce)` was used before (a read; the insert that spends it is what
    /// decides a race).
    pub async fn nonce_used(&self, hotkey: &str, nonce: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM nonces WHERE hotkey = $1 AND nonce = $2")
                .bind(hotkey)
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::read("nonce"))?;
        Ok(found.is_some())
    }

    /// Forgets nonces older than `before_ms` (a signature older than its TTL is refused anyway).
    pub async fn prune_nonces(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM nonces WHERE created_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(StoreError::write("nonce pruning"))?;
        Ok(done.rows_affected())
    }

    /// Stores a submission and its evaluation job in one transaction: both or neither.
    pub async fn insert_submission(
        &self,
        new: &NewSubmission,
    ) -> Result<SubmissionRow, StoreError> {
        let now = self.now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::write("submission"))?;
        sqlx::query(
            "INSERT INTO submissions (id, pipeline, hotkey, epoch_id, status, code_hash, filename,
                body, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $9)",
        )
        .bind(&new.id)
        .bind(&new.pipeline)
        .bind(&new.hotkey)
        .bind(new.epoch_id)
        .bind(&new.code_hash)
        .bind(new.filename.as_deref())
        .bind(&new.body)
        .bind(new.metadata.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::write("submission"))?;
        insert_event(&mut tx, now, "submitted", None, Some(&new.id), &new.hotkey).await?;
        if let Some(job) = &new.job {
            let job = JobSpec {
                submission_id: Some(new.id.clone()),
                ..job.clone()
            };
            self.enqueue_in(&mut tx, &job).await?;
        }
        tx.commit().await.map_err(StoreError::write("submission"))?;
        Ok(SubmissionRow {
            id: new.id.clone(),
            pipeline: new.pipeline.clone(),
            hotkey: new.hotkey.clone(),
            epoch_id: new.epoch_id,
            status: "pending".into(),
            code_hash: new.code_hash.clone(),
            filename: new.filename.clone(),
            metadata: new.metadata.clone(),
            created_at: now,
            updated_at: now,
            final_score: None,
            error: None,
            result: None,
        })
    }

    /// One submission by id.
    pub async fn submission(&self, id: &str) -> Result<Option<SubmissionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::read("submission"))?;
        row.as_ref().map(submission_from_row).transpose()
    }

    /// The id of `hotkey`'s latest submission to `pipeline` with this content hash (an SN37
    /// model commitment's hash), if any.
    pub async fn submission_with_hash(
        &self,
        pipeline: &str,
        hotkey: &str,
        code_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM submissions WHERE pipeline = $1 AND hotkey = $2 AND code_hash = $3
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(pipeline)
        .bind(hotkey)
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::read("submission"))
    }

    /// The latest epoch/round of `pipeline` that holds a submission.
    pub async fn latest_submission_epoch(&self, pipeline: &str) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT MAX(epoch_id) FROM submissions WHERE pipeline = $1")
            .bind(pipeline)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::read("submissions"))
    }

    /// What a submission's miner sent.
    pub async fn submission_body(&self, id: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT body FROM submissions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::read("submission body"))
    }

    /// Submissions of a pipeline's epoch/round, oldest first (`status` filters when given).
    pub async fn submissions_in(
        &self,
        pipeline: &str,
        epoch_id: i64,
        status: Option<&str>,
    ) -> Result<Vec<SubmissionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions
             WHERE pipeline = $1 AND epoch_id = $2 AND ($3 IS NULL OR status = $3)
             ORDER BY created_at, id"
        ))
        .bind(pipeline)
        .bind(epoch_id)
        .bind(status)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("submissions"))?;
        rows.iter().map(submission_from_row).collect()
    }

    /// Completed submissions of an epoch, best first, one per hotkey (its best; ties: earlier
    /// first), at most `limit`: PRISM's leaderboard.
    pub async fn leaderboard(
        &self,
        pipeline: &str,
        epoch_id: i64,
        limit: usize,
    ) -> Result<Vec<SubmissionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions
             WHERE pipeline = $1 AND epoch_id = $2 AND status = 'completed'
               AND final_score IS NOT NULL
             ORDER BY final_score DESC, created_at ASC, id ASC"
        ))
        .bind(pipeline)
        .bind(epoch_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("leaderboard"))?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in &rows {
            let submission = submission_from_row(row)?;
            if seen.insert(submission.hotkey.clone()) {
                out.push(submission);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Creation times (Unix ms) of a pipeline's submissions since `since_ms`.
    pub async fn submission_times(
        &self,
        pipeline: &str,
        since_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT created_at FROM submissions WHERE pipeline = $1 AND created_at >= $2",
        )
        .bind(pipeline)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("submission history"))
    }

    /// How many submissions exist (all pipelines).
    pub async fn submission_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::read("submission count"))
    }

    /// Creates an epoch/round if it does not exist yet; returns whether it was new.
    pub async fn ensure_epoch(&self, epoch: &EpochRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO epochs (pipeline, id, starts_at, ends_at, status, deadline_block, seed)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (pipeline, id) DO NOTHING",
        )
        .bind(&epoch.pipeline)
        .bind(epoch.id)
        .bind(epoch.starts_at)
        .bind(epoch.ends_at)
        .bind(&epoch.status)
        .bind(epoch.deadline_block)
        .bind(epoch.seed.as_deref())
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("epoch"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets an epoch's seed once (a Datacomp round's closing block hash); a seed already set is
    /// kept, so every scheduler agrees on the first one.
    pub async fn set_epoch_seed(
        &self,
        pipeline: &str,
        id: i64,
        seed: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE epochs SET seed = $1 WHERE pipeline = $2 AND id = $3 AND seed IS NULL",
        )
        .bind(seed)
        .bind(pipeline)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("epoch seed"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves an epoch/round from `from` to `to` status; `false` if it was not in `from` (another
    /// scheduler got there first).
    pub async fn transition_epoch(
        &self,
        pipeline: &str,
        id: i64,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE epochs SET status = $1, ends_at = CASE WHEN ends_at = 0 THEN $2 ELSE ends_at END
             WHERE pipeline = $3 AND id = $4 AND status = $5",
        )
        .bind(to)
        .bind(self.now_ms())
        .bind(pipeline)
        .bind(id)
        .bind(from)
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("epoch status"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A pipeline's epochs/rounds, newest first.
    pub async fn epochs(&self, pipeline: &str, limit: i64) -> Result<Vec<EpochRow>, StoreError> {
        let rows: Vec<EpochTuple> = sqlx::query_as(
            "SELECT pipeline, id, starts_at, ends_at, status, deadline_block, seed FROM epochs
                 WHERE pipeline = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(pipeline)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("epochs"))?;
        Ok(rows
            .into_iter()
            .map(|r| EpochRow {
                pipeline: r.0,
                id: r.1,
                starts_at: r.2,
                ends_at: r.3,
                status: r.4,
                deadline_block: r.5,
                seed: r.6,
            })
            .collect())
    }

    /// Records a chain block; `false` if it was already known.
    pub async fn insert_block(&self, block: &Block) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO blocks (number, hash, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (number) DO NOTHING",
        )
        .bind(block.number)
        .bind(&block.hash)
        .bind(self.now_ms())
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("block"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The highest block known.
    pub async fn latest_block(&self) -> Result<Option<Block>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::read("latest block"))?;
        Ok(row.map(|(number, hash)| Block { number, hash }))
    }

    /// One block by number.
    pub async fn block(&self, number: i64) -> Result<Option<Block>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT number, hash FROM blocks WHERE number = $1")
                .bind(number)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::read("block"))?;
        Ok(row.map(|(number, hash)| Block { number, hash }))
    }

    /// Records a miner's commitment; `false` if that (pipeline, hotkey, block) was known.
    pub async fn insert_commitment(&self, c: &Commitment) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO commitments (pipeline, hotkey, block, data, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pipeline, hotkey, block) DO NOTHING",
        )
        .bind(&c.pipeline)
        .bind(&c.hotkey)
        .bind(c.block)
        .bind(c.data.to_string())
        .bind(self.now_ms())
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("commitment"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Each hotkey's latest commitment at or before `block`.
    pub async fn commitments_at(
        &self,
        pipeline: &str,
        block: i64,
    ) -> Result<Vec<Commitment>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT c.hotkey, c.block, c.data FROM commitments c
             WHERE c.pipeline = $1 AND c.block = (SELECT MAX(d.block) FROM commitments d
                 WHERE d.pipeline = c.pipeline AND d.hotkey = c.hotkey AND d.block <= $2)
             ORDER BY c.hotkey",
        )
        .bind(pipeline)
        .bind(block)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("commitments"))?;
        rows.into_iter()
            .map(|(hotkey, block, data)| {
                Ok(Commitment {
                    pipeline: pipeline.to_string(),
                    hotkey,
                    block,
                    data: serde_json::from_str(&data).map_err(|source| StoreError::Corrupt {
                        what: "commitment",
                        source,
                    })?,
                })
            })
            .collect()
    }

    /// Stores (or replaces) the weights of an epoch/round.
    pub async fn put_weights(
        &self,
        pipeline: &str,
        epoch_id: i64,
        weights: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO weights (pipeline, epoch_id, weights, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (pipeline, epoch_id) DO UPDATE SET weights = $3, created_at = $4",
        )
        .bind(pipeline)
        .bind(epoch_id)
        .bind(weights.to_string())
        .bind(self.now_ms())
        .execute(&self.pool)
        .await
        .map_err(StoreError::write("weights"))?;
        Ok(())
    }

    /// The most recent weights of a pipeline.
    pub async fn latest_weights(&self, pipeline: &str) -> Result<Option<WeightsRow>, StoreError> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT epoch_id, weights, created_at FROM weights WHERE pipeline = $1
             ORDER BY epoch_id DESC LIMIT 1",
        )
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::read("weights"))?;
        row.map(|(epoch_id, weights, created_at)| {
            Ok(WeightsRow {
                pipeline: pipeline.to_string(),
                epoch_id,
                weights: serde_json::from_str(&weights).map_err(|source| StoreError::Corrupt {
                    what: "weights",
                    source,
                })?,
                created_at,
            })
        })
        .transpose()
    }

    /// Every result ever written for a job (at most one, by construction).
    pub async fn results_for(&self, job_id: i64) -> Result<Vec<ResultRow>, StoreError> {
        let rows: Vec<(i64, i64, String, String, i64)> = sqlx::query_as(
            "SELECT job_id, attempt, worker, output, duration_ms FROM results WHERE job_id = $1
             ORDER BY attempt",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("results"))?;
        rows.into_iter()
            .map(|(job_id, attempt, worker, output, duration_ms)| {
                Ok(ResultRow {
                    job_id,
                    attempt,
                    worker,
                    output: serde_json::from_str(&output).map_err(|source| {
                        StoreError::Corrupt {
                            what: "result",
                            source,
                        }
                    })?,
                    duration_ms,
                })
            })
            .collect()
    }

    /// Total number of results (all jobs).
    pub async fn result_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM results")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::read("result count"))
    }

    /// Appends an event to the audit trail.
    pub async fn event(
        &self,
        kind: &str,
        job_id: Option<i64>,
        submission_id: Option<&str>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::write("event"))?;
        insert_event(&mut tx, self.now_ms(), kind, job_id, submission_id, detail).await?;
        tx.commit().await.map_err(StoreError::write("event"))
    }

    /// Events of a job, oldest first.
    pub async fn job_events(&self, job_id: i64) -> Result<Vec<EventRow>, StoreError> {
        let rows: Vec<EventTuple> = sqlx::query_as(
            "SELECT id, at, kind, job_id, submission_id, detail FROM events WHERE job_id = $1
             ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::read("events"))?;
        Ok(rows
            .into_iter()
            .map(|r| EventRow {
                id: r.0,
                at: r.1,
                kind: r.2,
                job_id: r.3,
                submission_id: r.4,
                detail: r.5,
            })
            .collect())
    }
}
