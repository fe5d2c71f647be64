//! Schedules: what becomes a job when. Blocks come from the operator's chain client
//! (`POST /internal/v1/chain/blocks`) or a block file ([`BlockFile`]); the chain itself is never
//! contacted.
//!
//! - **SN37**: one evaluation per competition per sync block
//!   (`GENESIS + ⌊(block − GENESIS)/360⌋·360`), competitions in round-robin order by sync step; the
//!   seed comes from the sync block's hash (the handler derives it with `assay-sn37`).
//! - **Datacomp**: a round collects submissions until its deadline block; then every submission's
//!   evaluation is queued, and once all have finished a weights job.
//! - **PRISM**: an epoch lasts `epoch_seconds`; when it ends, a weights job over its leaderboard.
//!
//! Every job a schedule makes has a dedupe key, so any number of servers may run the schedules
//! over one database and each job still exists once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use assay_store::{Block, EpochRow, JobSpec, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ServiceError;
use crate::api::ServiceConfig;

/// Schedule settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleSettings {
    /// SN37 competitions evaluated each sync block (empty: SN37 off).
    pub sn37_competitions: Vec<i64>,
    /// SN37's genesis block (3,138,611).
    pub sn37_genesis_block: i64,
    /// SN37's sync cadence in blocks (360).
    pub sn37_cadence: i64,
    /// SN37's per-model subprocess TTL, ms (720 s).
    pub sn37_ttl_ms: i64,
    /// Datacomp round length in blocks (0: Datacomp rounds off).
    pub datacomp_round_blocks: i64,
    /// TTL of one Datacomp miner's fine-tune + eval, ms.
    pub datacomp_ttl_ms: i64,
    /// Queue a weights job when a PRISM epoch ends.
    pub prism_weights: bool,
    /// The fine-tune and evaluation every Datacomp miner gets (handed to each job).
    #[serde(default)]
    pub datacomp: DatacompJobSettings,
}

/// The size of each Datacomp miner's fine-tune and evaluation, the same for every miner of a
/// round (the defaults are `assay datacomp run`'s CPU defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatacompJobSettings {
    /// Completion tokens each miner's fine-tune trains on.
    pub token_budget: usize,
    /// Generated held-out problems.
    pub eval_problems: usize,
    /// Greedy tokens per evaluation answer.
    pub max_new_tokens: usize,
    /// Whether to generate answers (accuracy) besides the reference loss.
    pub generate: bool,
}

impl Default for DatacompJobSettings {
    fn default() -> Self {
        Self {
            token_budget: 1200,
            eval_problems: 8,
            max_new_tokens: 128,
            generate: true,
        }
    }
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            sn37_competitions: Vec::new(),
            sn37_genesis_block: 3_138_611,
            sn37_cadence: 360,
            sn37_ttl_ms: 720_000,
            datacomp_round_blocks: 0,
            datacomp_ttl_ms: 3_600_000,
            prism_weights: true,
            datacomp: DatacompJobSettings::default(),
        }
    }
}

/// SN37's sync block of `block` (B.3).
pub fn sn37_sync_block(block: i64, s: &ScheduleSettings) -> i64 {
    let cadence = s.sn37_cadence.max(1);
    s.sn37_genesis_block + (block - s.sn37_genesis_block).div_euclid(cadence) * cadence
}

/// The Datacomp round `block` falls in.
pub fn datacomp_round(block: i64, s: &ScheduleSettings) -> i64 {
    if s.datacomp_round_blocks <= 0 {
        0
    } else {
        block.div_euclid(s.datacomp_round_blocks)
    }
}

/// Creates Datacomp round `round` (open, deadline at its last block + 1) if it is new.
pub async fn ensure_datacomp_round(
    store: &Store,
    round: i64,
    s: &ScheduleSettings,
) -> Result<bool, StoreError> {
    let deadline = if s.datacomp_round_blocks <= 0 {
        i64::MAX
    } else {
        (round + 1) * s.datacomp_round_blocks
    };
    store
        .ensure_epoch(&EpochRow {
            pipeline: "datacomp".into(),
            id: round,
            starts_at: store.now_ms(),
            ends_at: 0,
            status: "open".into(),
            deadline_block: Some(deadline),
            seed: None,
        })
        .await
}

/// Reacts to a new block: queues SN37 evaluations of its sync block and closes Datacomp rounds
/// whose deadline it reaches. Returns how many jobs were queued (0 when another server already
/// did it).
pub async fn on_block(
    store: &Store,
    s: &ScheduleSettings,
    block: &Block,
) -> Result<usize, StoreError> {
    let mut queued = 0;
    if !s.sn37_competitions.is_empty() {
        let sync = sn37_sync_block(block.number, s);
        let hash = store.block(sync).await?.map(|b| b.hash);
        let new = store
            .ensure_epoch(&EpochRow {
                pipeline: "sn37".into(),
                id: sync,
                starts_at: store.now_ms(),
                ends_at: 0,
                status: "open".into(),
                deadline_block: None,
                seed: hash.clone(),
            })
            .await?;
        let _ = new;
        let n = s.sn37_competitions.len() as i64;
        let step = (sync - s.sn37_genesis_block).div_euclid(s.sn37_cadence.max(1));
        let models = store.commitments_at("sn37", sync).await?;
        for k in 0..n {
            // Round robin: each sync step starts one competition later.
            let competition = s.sn37_competitions[(step + k).rem_euclid(n) as usize];
            let mut entrants = Vec::new();
            for c in models.iter().filter(|c| {
                c.data.get("competition_id").and_then(|v| v.as_i64()) == Some(competition)
            }) {
                // The submission that made this commitment (when it came through the API), so
                // the evaluation's result lands on it.
                let hash = c.data.get("hash").and_then(|v| v.as_str()).unwrap_or("");
                let submission = store.submission_with_hash("sn37", &c.hotkey, hash).await?;
                entrants.push(json!({
                    "hotkey": c.hotkey, "block": c.block, "commitment": c.data,
                    "submission_id": submission,
                }));
            }
            if entrants.is_empty() {
                // Nothing committed to this competition yet: no evaluation to run.
                continue;
            }
            let mut job = JobSpec::new(
                "sn37.eval",
                json!({ "competition_id": competition, "sync_block": sync, "block_hash": hash, "models": entrants }),
            );
            job.ttl_ms = s.sn37_ttl_ms * (entrants.len() as i64).max(1);
            job.priority = n - k;
            job.dedupe_key = Some(format!("sn37:{competition}:{sync}"));
            if store.enqueue(&job).await?.is_some() {
                queued += 1;
            }
        }
    }
    if s.datacomp_round_blocks > 0 {
        for round in store.epochs("datacomp", 1000).await? {
            let due =
                round.status == "open" && round.deadline_block.is_some_and(|d| block.number >= d);
            if !due
                || !store
                    .transition_epoch("datacomp", round.id, "open", "closed")
                    .await?
            {
                continue;
            }
            // The round's evaluation set is drawn from the hash of the block that closed it.
            store
                .set_epoch_seed("datacomp", round.id, &block.hash)
                .await?;
            for submission in store
                .submissions_in("datacomp", round.id, Some("pending"))
                .await?
            {
                let job = datacomp_miner_job(&submission.id, round.id, Some(&block.hash), s);
                if store.enqueue(&job).await?.is_some() {
                    queued += 1;
                }
            }
            tracing::info!(
                round = round.id,
                block = block.number,
                "datacomp round closed"
            );
        }
    }
    Ok(queued)
}

/// The periodic part: ends PRISM epochs (queues their weights), queues the weights of Datacomp
/// rounds whose evaluations are all finished, prunes nonces past their TTL. Returns jobs queued.
pub async fn tick(store: &Store, config: &ServiceConfig) -> Result<usize, StoreError> {
    let mut queued = 0;
    let now = store.now_ms();
    if config.schedule.prism_weights {
        let current = now.div_euclid(1000).div_euclid(config.epoch_seconds.max(1));
        for epoch in store.epochs("prism", 1000).await? {
            if epoch.status == "open"
                && epoch.id < current
                && store
                    .transition_epoch("prism", epoch.id, "open", "closed")
                    .await?
            {
                queued += queue_weights(store, "prism", epoch.id).await?;
            }
        }
    }
    for round in store.epochs("datacomp", 1000).await? {
        if round.status != "closed" {
            continue;
        }
        // A submission that raced the deadline (read the round before the deadline block was
        // stored, inserted after it closed) still gets its evaluation.
        for submission in store
            .submissions_in("datacomp", round.id, Some("pending"))
            .await?
        {
            let job = datacomp_miner_job(
                &submission.id,
                round.id,
                round.seed.as_deref(),
                &config.schedule,
            );
            queued += usize::from(store.enqueue(&job).await?.is_some());
        }
        let subs = store.submissions_in("datacomp", round.id, None).await?;
        if subs
            .iter()
            .any(|s| s.status == "pending" || s.status == "running")
        {
            continue;
        }
        if store
            .transition_epoch("datacomp", round.id, "closed", "scored")
            .await?
        {
            queued += queue_weights(store, "datacomp", round.id).await?;
        }
    }
    store
        .prune_nonces(now - 2 * config.signature_ttl_seconds * 1000)
        .await?;
    Ok(queued)
}

/// One Datacomp miner's fine-tune + evaluation. The job sees the whole round (`peers`): the
/// integrity checks compare every miner's rows with everyone's, first submitter first.
fn datacomp_miner_job(
    submission_id: &str,
    round: i64,
    block_hash: Option<&str>,
    s: &ScheduleSettings,
) -> JobSpec {
    let mut job = JobSpec::new(
        "datacomp.miner",
        json!({
            "submission_id": submission_id,
            "round": round,
            "block_hash": block_hash,
            "peers": { "pipeline": "datacomp", "epoch_id": round },
            "settings": s.datacomp,
        }),
    );
    job.ttl_ms = s.datacomp_ttl_ms;
    job.submission_id = Some(submission_id.to_string());
    job.dedupe_key = Some(format!("datacomp:{round}:{submission_id}"));
    job
}

async fn queue_weights(store: &Store, pipeline: &str, epoch_id: i64) -> Result<usize, StoreError> {
    let mut scores = BTreeMap::new();
    for row in store.leaderboard(pipeline, epoch_id, usize::MAX).await? {
        scores.insert(row.hotkey, row.final_score.unwrap_or(0.0));
    }
    let mut job = JobSpec::new(
        "weights",
        json!({ "pipeline": pipeline, "epoch_id": epoch_id, "scores": scores }),
    );
    job.ttl_ms = 60_000;
    job.priority = 100;
    job.dedupe_key = Some(format!("weights:{pipeline}:{epoch_id}"));
    Ok(usize::from(store.enqueue(&job).await?.is_some()))
}

/// A file of blocks, one JSON object `{"number": N, "hash": "0x…"}` a line, appended to by a
/// chain client or written by hand for tests and local runs. [`BlockFile::poll`] returns the lines
/// added since the last call.
#[derive(Debug)]
pub struct BlockFile {
    path: PathBuf,
    offset: u64,
}

impl BlockFile {
    /// Reads `path` from its start.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offset: 0,
        }
    }

    /// Blocks in complete lines added since the last poll (a half-written last line waits).
    pub fn poll(&mut self) -> Result<Vec<Block>, ServiceError> {
        use std::io::{Read, Seek, SeekFrom};
        let read_err = |source| ServiceError::Read {
            path: self.path.display().to_string(),
            source,
        };
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        file.seek(SeekFrom::Start(self.offset)).map_err(read_err)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_err)?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        let mut blocks = Vec::new();
        for (n, line) in text[..complete].lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let block: Block = serde_json::from_str(line).map_err(|e| {
                ServiceError::Config(format!(
                    "{} (line {} after byte {}): not a block {{\"number\": N, \"hash\": \"0x…\"}}: {e}",
                    self.path.display(),
                    n + 1,
                    self.offset
                ))
            })?;
            blocks.push(block);
        }
        self.offset += complete as u64;
        Ok(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_blocks_follow_sn37() {
        let s = ScheduleSettings::default();
        assert_eq!(sn37_sync_block(3_138_611, &s), 3_138_611);
        assert_eq!(sn37_sync_block(3_138_970, &s), 3_138_611);
        assert_eq!(sn37_sync_block(3_138_971, &s), 3_138_971);
        assert_eq!(
            sn37_sync_block(5_000_000, &s),
            3_138_611 + (5_000_000 - 3_138_611) / 360 * 360
        );
    }

    #[test]
    fn block_file_reads_complete_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.jsonl");
        let mut file = BlockFile::new(&path);
        assert!(
            file.poll().unwrap().is_empty(),
            "a missing file is no blocks yet"
        );
        std::fs::write(
            &path,
            "{\"number\": 1, \"hash\": \"0x01\"}\n{\"number\": 2, \"ha",
        )
        .unwrap();
        assert_eq!(
            file.poll().unwrap(),
            vec![Block {
                number: 1,
                hash: "0x01".into()
            }]
        );
        std::fs::write(
            &path,
            "{\"number\": 1, \"hash\": \"0x01\"}\n{\"number\": 2, \"hash\": \"0x02\"}\n",
        )
        .unwrap();
        assert_eq!(
            file.poll().unwrap(),
            vec![Block {
                number: 2,
                hash: "0x02".into()
            }]
        );
        assert!(file.poll().unwrap().is_empty());
    }
}
