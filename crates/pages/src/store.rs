//! A [`PageSource`] over the validator's store (feature `store`): the view models built from
//! submissions, jobs, results, epochs and weights. What the store does not keep (devices of
//! workers, PRISM's crown families) is left out rather than guessed. A miner's uploaded code is
//! never listed as a file; only the evaluation's JSON is.

use std::collections::{BTreeMap, HashSet};

use assay_store::{JobState, JobSummary, Store, SubmissionRow};
use serde_json::Value;

use crate::model::*;
use crate::{PageSource, SourceError};

/// How one pipeline is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineInfo {
    /// Id (`prism`, `sn37`, `datacomp`).
    pub id: String,
    /// Name.
    pub title: String,
    /// One sentence on what is scored.
    pub summary: String,
    /// What the score is.
    pub score_label: String,
    /// Whether a higher score is better.
    pub higher_is_better: bool,
}

impl PipelineInfo {
    fn new(id: &str, title: &str, summary: &str, label: &str, higher: bool) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            summary: summary.into(),
            score_label: label.into(),
            higher_is_better: higher,
        }
    }

    /// PRISM, SN37 and Datacomp as the service runs them.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::new(
                "prism",
                "PRISM",
                "Architectures trained within a fixed budget, scored on held-out bits per byte.",
                "final score",
                true,
            ),
            Self::new(
                "sn37",
                "SN37 fine-tuning",
                "Fine-tuned models scored on fresh evaluation data; the lowest loss wins.",
                "average loss",
                false,
            ),
            Self::new(
                "datacomp",
                "Datacomp",
                "Data selections scored by the model they train.",
                "score",
                true,
            ),
        ]
    }
}

/// The pages' data from an [`assay_store::Store`].
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Store,
    pipelines: Vec<PipelineInfo>,
}

/// Rows shown on a board at most.
const BOARD_LIMIT: usize = 100;

fn err(e: assay_store::StoreError) -> SourceError {
    Box::new(e)
}

impl StoreSource {
    /// Pages over `store` for the [`PipelineInfo::defaults`].
    pub fn new(store: Store) -> Self {
        Self::with_pipelines(store, PipelineInfo::defaults())
    }

    /// Pages over `store` for the given pipelines (menu order).
    pub fn with_pipelines(store: Store, pipelines: Vec<PipelineInfo>) -> Self {
        Self { store, pipelines }
    }

    fn info(&self, id: &str) -> Option<&PipelineInfo> {
        self.pipelines.iter().find(|p| p.id == id)
    }

    /// The epoch a board shows: the latest one holding submissions (an SN37 model committed at
    /// one sync block is evaluated at later ones, which hold no submissions of their own), else
    /// the latest epoch.
    async fn latest_epoch(&self, pipeline: &str) -> Result<Option<i64>, SourceError> {
        if let Some(id) = self
            .store
            .latest_submission_epoch(pipeline)
            .await
            .map_err(err)?
        {
            return Ok(Some(id));
        }
        Ok(self
            .store
            .epochs(pipeline, 1)
            .await
            .map_err(err)?
            .first()
            .map(|e| e.id))
    }

    /// Submissions of an epoch: the scored ones ranked (one per hotkey, its best; ties: earlier,
    /// then id), then the rest, newest first.
    async fn board_rows(
        &self,
        info: &PipelineInfo,
        epoch: i64,
    ) -> Result<(Vec<(u32, SubmissionRow)>, Vec<SubmissionRow>), SourceError> {
        let all = self
            .store
            .submissions_in(&info.id, epoch, None)
            .await
            .map_err(err)?;
        let (mut scored, mut rest): (Vec<SubmissionRow>, Vec<SubmissionRow>) =
            all.into_iter().partition(|s| {
                Status::from_store(&s.status) == Some(Status::Done)
                    && s.final_score.is_some_and(f64::is_finite)
            });
        scored.sort_by(|a, b| {
            let (x, y) = (a.final_score.unwrap_or(0.0), b.final_score.unwrap_or(0.0));
            let o = if info.higher_is_better {
                y.total_cmp(&x)
            } else {
                x.total_cmp(&y)
            };
            o.then(a.created_at.cmp(&b.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut seen = HashSet::new();
        let ranked: Vec<(u32, SubmissionRow)> = scored
            .into_iter()
            .filter(|s| seen.insert(s.hotkey.clone()))
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, s))
            .collect();
        rest.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok((ranked, rest))
    }

    /// The shares of a weights object (hotkey → weight), normalised, with their u16 values
    /// (the largest is 65535, as set on chain).
    fn shares(weights: &Value) -> BTreeMap<String, (f64, u16)> {
        let raw: Vec<(String, f64)> = weights
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| {
                        v.as_f64()
                            .filter(|w| w.is_finite() && *w >= 0.0)
                            .map(|w| (k.clone(), w))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sum: f64 = raw.iter().map(|r| r.1).sum();
        let max = raw.iter().map(|r| r.1).fold(0.0, f64::max);
        raw.into_iter()
            .map(|(k, w)| {
                let share = if sum > 0.0 { w / sum } else { 0.0 };
                let u = if max > 0.0 {
                    (w / max * 65535.0).round() as u16
                } else {
                    0
                };
                (k, (share, u))
            })
            .collect()
    }

    async fn weights_history(
        &self,
        pipeline: &str,
        up_to: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Value)>, SourceError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT epoch_id, weights FROM weights WHERE pipeline = $1 AND epoch_id <= $2
             ORDER BY epoch_id DESC LIMIT $3",
        )
        .bind(pipeline)
        .bind(up_to)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        let mut out: Vec<(i64, Value)> = rows
            .into_iter()
            .map(|(e, w)| (e, serde_json::from_str(&w).unwrap_or(Value::Null)))
            .collect();
        out.reverse();
        Ok(out)
    }

    async fn job_of(&self, submission: &str) -> Result<Option<JobSummary>, SourceError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE submission_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(submission)
        .fetch_optional(self.store.pool())
        .await?;
        match id {
            Some(id) => Ok(self.store.job(id).await.map_err(err)?),
            None => Ok(None),
        }
    }
}

fn block_of(s: &SubmissionRow) -> Option<u64> {
    s.metadata.get("block").and_then(Value::as_u64)
}

fn row(
    rank: Option<u32>,
    s: &SubmissionRow,
    shares: &BTreeMap<String, (f64, u16)>,
) -> LeaderboardRow {
    let w = shares.get(&s.hotkey);
    LeaderboardRow {
        rank,
        hotkey: s.hotkey.clone(),
        submission_id: s.id.clone(),
        score: s.final_score,
        uncertainty: s
            .result
            .as_ref()
            .and_then(|r| r.get("uncertainty").or_else(|| r.get("stderr")))
            .and_then(Value::as_f64),
        weight_share: w.map(|w| w.0),
        weight_u16: w.map(|w| w.1),
        submitted_block: block_of(s),
        submitted_at_ms: Some(s.created_at),
        status: Status::from_store(&s.status).unwrap_or(Status::Queued),
        crowns: vec![],
    }
}

/// `final_score`-like keys of a result, for the per-task table.
fn tasks_of(result: &Value) -> Vec<TaskScore> {
    let mut out = Vec::new();
    if let Some(tasks) = result.get("tasks").and_then(Value::as_object) {
        for (name, v) in tasks {
            let score = v
                .as_f64()
                .or_else(|| v.get("score").and_then(Value::as_f64));
            out.push(TaskScore {
                task: name.replace('_', " "),
                score,
                uncertainty: v.get("uncertainty").and_then(Value::as_f64),
                weight: v.get("weight").and_then(Value::as_f64),
            });
        }
    }
    if let Some(o) = result.as_object() {
        for (k, v) in o {
            if k == "final_score" || k == "uncertainty" {
                continue;
            }
            if let Some(x) = v.as_f64() {
                out.push(TaskScore {
                    task: k.replace('_', " "),
                    score: Some(x),
                    uncertainty: None,
                    weight: None,
                });
            }
        }
    }
    out
}

fn curve_of(result: &Value) -> Option<Curve> {
    let c = result.get("curve")?;
    let floats = |k: &str| -> Vec<f64> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let loss = floats("online_loss");
    if loss.is_empty() {
        return None;
    }
    let bytes = floats("covered_bytes_cumulative");
    let (x_label, points) = if bytes.len() == loss.len() {
        ("bytes seen", bytes.into_iter().zip(loss).collect())
    } else {
        (
            "step",
            loss.into_iter()
                .enumerate()
                .map(|(i, y)| (i as f64, y))
                .collect(),
        )
    };
    Some(Curve {
        y_label: "online loss".into(),
        x_label: x_label.into(),
        points,
    })
}

fn findings_of(s: &SubmissionRow) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(flags) = s
        .result
        .as_ref()
        .and_then(|r| r.get("flags"))
        .and_then(Value::as_array)
    {
        for f in flags {
            let text = f
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| f.to_string());
            out.push(Finding {
                code: "flag".into(),
                message: text,
                severity: Severity::Warning,
            });
        }
    }
    if Status::from_store(&s.status) == Some(Status::Rejected)
        && let Some(e) = &s.error
    {
        let reasons = e.split_once(": ").map_or(e.as_str(), |(_, r)| r);
        for r in reasons.split("; ").filter(|r| !r.trim().is_empty()) {
            out.push(Finding {
                code: "integrity".into(),
                message: r.trim().to_string(),
                severity: Severity::Reject,
            });
        }
    }
    out
}

fn stages_of(s: &SubmissionRow, job: Option<&JobSummary>, worker: Option<&str>) -> Vec<Stage> {
    let status = Status::from_store(&s.status).unwrap_or(Status::Queued);
    let st = |name: &str, state: StageState, detail: Option<String>, at: Option<i64>| Stage {
        name: name.into(),
        state,
        detail,
        at_ms: at,
    };
    use StageState::*;
    let on = worker.map(|w| format!("on worker {w}"));
    let (queued, eval, scored) = match status {
        Status::Queued => (Current, Pending, Pending),
        Status::Running => (Done, Current, Pending),
        Status::Held => (Done, Current, Pending),
        Status::Done => (Done, Done, Done),
        Status::Rejected | Status::Failed => (Done, Failed, Pending),
    };
    let attempts = job.map(|j| format!("attempt {} of {}", j.attempts.max(1), j.max_attempts));
    vec![
        st("received", Done, None, Some(s.created_at)),
        st("queued", queued, None, None),
        st(
            "evaluation",
            eval,
            match (on, attempts, status) {
                (_, _, Status::Held) => Some("held for review".into()),
                (Some(w), Some(a), _) => Some(format!("{w}, {a}")),
                (w, a, _) => w.or(a),
            },
            None,
        ),
        st(
            "scored",
            scored,
            None,
            (status == Status::Done).then_some(s.updated_at),
        ),
    ]
}

impl PageSource for StoreSource {
    async fn pipelines(&self) -> Result<Vec<PipelineLink>, SourceError> {
        let mut out = Vec::new();
        for p in &self.pipelines {
            let entries = match self.latest_epoch(&p.id).await? {
                Some(e) => self
                    .store
                    .submissions_in(&p.id, e, None)
                    .await
                    .map_err(err)?
                    .len() as u64,
                None => 0,
            };
            out.push(PipelineLink {
                id: p.id.clone(),
                title: p.title.clone(),
                summary: p.summary.clone(),
                entries,
            });
        }
        Ok(out)
    }

    async fn leaderboard(&self, pipeline: &str) -> Result<Option<Leaderboard>, SourceError> {
        let Some(info) = self.info(pipeline).cloned() else {
            return Ok(None);
        };
        let epoch = self.latest_epoch(pipeline).await?;
        let shares = match self.store.latest_weights(pipeline).await.map_err(err)? {
            Some(w) => Self::shares(&w.weights),
            None => BTreeMap::new(),
        };
        let mut rows = Vec::new();
        if let Some(e) = epoch {
            let (ranked, rest) = self.board_rows(&info, e).await?;
            rows.extend(ranked.iter().map(|(r, s)| row(Some(*r), s, &shares)));
            rows.extend(rest.iter().map(|s| row(None, s, &shares)));
            rows.truncate(BOARD_LIMIT);
        }
        let latest_block = self
            .store
            .latest_block()
            .await
            .map_err(err)?
            .and_then(|b| u64::try_from(b.number).ok());
        Ok(Some(Leaderboard {
            pipeline: info.id.clone(),
            title: info.title.clone(),
            epoch,
            score_label: info.score_label.clone(),
            higher_is_better: info.higher_is_better,
            rows,
            crowns: vec![],
            latest_block,
        }))
    }

    async fn submission(&self, id: &str) -> Result<Option<SubmissionPage>, SourceError> {
        let Some(s) = self.store.submission(id).await.map_err(err)? else {
            return Ok(None);
        };
        let info = self
            .info(&s.pipeline)
            .cloned()
            .unwrap_or_else(|| PipelineInfo::new(&s.pipeline, &s.pipeline, "", "score", true));
        let job = self.job_of(id).await?;
        let worker = match &job {
            Some(j) if j.state == JobState::Running => j.lease_owner.clone(),
            Some(j) => self
                .store
                .results_for(j.id)
                .await
                .map_err(err)?
                .last()
                .map(|r| r.worker.clone()),
            None => None,
        };
        let status = Status::from_store(&s.status).unwrap_or(Status::Queued);
        let rank = if status == Status::Done {
            let (ranked, _) = self.board_rows(&info, s.epoch_id).await?;
            ranked.iter().find(|(_, r)| r.id == s.id).map(|(k, _)| *k)
        } else {
            None
        };
        let files = match &s.result {
            Some(r) => vec![FileLink {
                name: "result.json".into(),
                size: serde_json::to_vec_pretty(r).map_or(0, |b| b.len() as u64),
                description: "the evaluation's result".into(),
            }],
            None => vec![],
        };
        Ok(Some(SubmissionPage {
            id: s.id.clone(),
            pipeline: s.pipeline.clone(),
            pipeline_title: info.title.clone(),
            hotkey: s.hotkey.clone(),
            epoch: Some(s.epoch_id),
            submitted_block: block_of(&s),
            submitted_at_ms: Some(s.created_at),
            status,
            stages: stages_of(&s, job.as_ref(), worker.as_deref()),
            worker: worker.map(|name| WorkerRef { name, device: None }),
            score: s.final_score,
            uncertainty: s
                .result
                .as_ref()
                .and_then(|r| r.get("uncertainty"))
                .and_then(Value::as_f64),
            score_label: info.score_label.clone(),
            rank,
            failure: match status {
                Status::Failed | Status::Rejected => s.error.clone(),
                _ => None,
            },
            findings: findings_of(&s),
            tasks: s.result.as_ref().map(tasks_of).unwrap_or_default(),
            curve: s.result.as_ref().and_then(curve_of),
            files,
        }))
    }

    async fn round(
        &self,
        pipeline: &str,
        epoch: Option<i64>,
    ) -> Result<Option<RoundPage>, SourceError> {
        let Some(info) = self.info(pipeline).cloned() else {
            return Ok(None);
        };
        let epochs = self.store.epochs(pipeline, 1000).await.map_err(err)?;
        let pos = match epoch {
            Some(e) => epochs.iter().position(|x| x.id == e),
            None => (!epochs.is_empty()).then_some(0),
        };
        let Some(pos) = pos else { return Ok(None) };
        let this = &epochs[pos];
        let (ranked, rest) = self.board_rows(&info, this.id).await?;
        let history = self.weights_history(pipeline, this.id, 8).await?;
        let now = history
            .last()
            .filter(|h| h.0 == this.id)
            .map(|h| Self::shares(&h.1))
            .unwrap_or_default();
        let before = history
            .iter()
            .rev()
            .find(|h| h.0 < this.id)
            .map(|h| Self::shares(&h.1))
            .unwrap_or_default();
        let mut weights: Vec<WeightRow> = now
            .iter()
            .map(|(hk, (share, u))| WeightRow {
                hotkey: hk.clone(),
                share: *share,
                weight_u16: *u,
                previous_share: before.get(hk).map(|b| b.0),
            })
            .collect();
        weights.sort_by(|a, b| {
            b.share
                .total_cmp(&a.share)
                .then_with(|| a.hotkey.cmp(&b.hotkey))
        });
        let findings = rest
            .iter()
            .filter(|s| Status::from_store(&s.status) == Some(Status::Rejected))
            .flat_map(|s| {
                findings_of(s).into_iter().map(|f| RoundFinding {
                    hotkey: s.hotkey.clone(),
                    submission_id: s.id.clone(),
                    finding: f,
                })
            })
            .collect();
        Ok(Some(RoundPage {
            pipeline: info.id.clone(),
            pipeline_title: info.title.clone(),
            epoch: this.id,
            status: this.status.clone(),
            starts_at_ms: this.starts_at,
            ends_at_ms: (this.ends_at > 0).then_some(this.ends_at),
            winner: ranked.first().map(|(_, s)| Winner {
                hotkey: s.hotkey.clone(),
                submission_id: s.id.clone(),
                score: s.final_score,
            }),
            weights,
            history: history
                .iter()
                .map(|(e, w)| {
                    (
                        *e,
                        Self::shares(w).into_iter().map(|(k, v)| (k, v.0)).collect(),
                    )
                })
                .collect(),
            findings,
            previous: epochs.get(pos + 1).map(|e| e.id),
            next: pos.checked_sub(1).map(|k| epochs[k].id),
        }))
    }

    async fn operator(&self) -> Result<OperatorPage, SourceError> {
        let counts = self.store.job_counts().await.map_err(err)?;
        let queue_depth = counts
            .iter()
            .find(|c| c.0 == JobState::Queued)
            .map_or(0, |c| c.1.max(0) as u64);
        let recent = self.store.recent_jobs(200).await.map_err(err)?;
        let mut workers: BTreeMap<String, WorkerRow> = BTreeMap::new();
        for j in recent.iter().filter(|j| j.state == JobState::Running) {
            if let Some(owner) = &j.lease_owner {
                workers.entry(owner.clone()).or_insert(WorkerRow {
                    name: owner.clone(),
                    devices: "not reported".into(),
                    job: Some(j.id),
                    submission_id: j.submission_id.clone(),
                    last_seen_ms: Some(j.updated_at),
                });
            }
        }
        let failures = recent
            .iter()
            .filter(|j| j.state == JobState::Failed)
            .take(20)
            .map(|j| FailureRow {
                at_ms: j.updated_at,
                job: j.id,
                kind: j.kind.clone(),
                submission_id: j.submission_id.clone(),
                blame: "not recorded".into(),
                message: j
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".into()),
            })
            .collect();
        Ok(OperatorPage {
            queue_depth,
            jobs_by_state: counts
                .iter()
                .map(|(s, n)| (s.as_str().to_string(), (*n).max(0) as u64))
                .collect(),
            workers: workers.into_values().collect(),
            failures,
            latest_block: self
                .store
                .latest_block()
                .await
                .map_err(err)?
                .and_then(|b| u64::try_from(b.number).ok()),
        })
    }

    async fn file(&self, submission: &str, name: &str) -> Result<Option<Download>, SourceError> {
        if name != "result.json" {
            return Ok(None);
        }
        let Some(s) = self.store.submission(submission).await.map_err(err)? else {
            return Ok(None);
        };
        Ok(s.result.map(|r| Download {
            content_type: "application/json".into(),
            bytes: serde_json::to_vec_pretty(&r).unwrap_or_default(),
        }))
    }
}
