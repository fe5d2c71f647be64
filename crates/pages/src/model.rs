//! The view models the pages render: plain data, filled by a [`crate::PageSource`], knowing
//! nothing of SQL. Times are Unix milliseconds; scores are plain numbers with their direction.

use serde::{Deserialize, Serialize};

/// A pipeline (competition) the validator runs, as the index page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineLink {
    /// Its id in URLs (`prism`, `sn37`, `datacomp`); letters, digits, `-` and `_` only.
    pub id: String,
    /// Its human name ("PRISM architecture lab").
    pub title: String,
    /// One sentence on what is scored.
    pub summary: String,
    /// Submissions on its current board.
    pub entries: u64,
}

/// Where a submission stands in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a worker.
    Queued,
    /// Being evaluated.
    Running,
    /// Evaluated and scored.
    Done,
    /// Held for review (a borderline integrity finding).
    Held,
    /// Refused: an integrity check failed.
    Rejected,
    /// The evaluation failed (the miner's code or the validator's; see the reason).
    Failed,
}

impl Status {
    /// The store's spelling (`pending`, `running`, `completed`, `held`, `rejected`, `failed`);
    /// `None` for anything else.
    pub fn from_store(s: &str) -> Option<Self> {
        Some(match s {
            "pending" | "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" | "done" | "scored" => Self::Done,
            "held" => Self::Held,
            "rejected" => Self::Rejected,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// A word for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "scored",
            Self::Held => "held for review",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    /// Whether nothing more will happen to it (no live updates needed).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running | Self::Held)
    }
}

/// PRISM's two-tier crown (seeds C.13): the architecture family's owner takes 60 % of the
/// weight, the owner of that family's best training variant 40 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrownTier {
    /// Owner of the best architecture family (first to create it).
    Architecture,
    /// Owner of the best training variant of that family.
    Training,
}

impl CrownTier {
    /// A word for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Architecture => "architecture crown",
            Self::Training => "training crown",
        }
    }
}

/// One holder of a crown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrownHolder {
    /// Which crown.
    pub tier: CrownTier,
    /// The holder.
    pub hotkey: String,
    /// The submission that earned it.
    pub submission_id: String,
    /// The architecture family (a short hash) the crown is about.
    pub family: String,
    /// The share of the pipeline's weight it carries (0.6 / 0.4 before renormalising).
    pub share: f64,
    /// The score that holds it.
    pub score: Option<f64>,
}

/// One line of a leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    /// Rank by the pipeline's own rule (1 = best); `None` while unscored.
    pub rank: Option<u32>,
    /// The miner.
    pub hotkey: String,
    /// The submission this row shows.
    pub submission_id: String,
    /// Score, once evaluated.
    pub score: Option<f64>,
    /// Its uncertainty (a standard error or half-width), where the pipeline has one.
    pub uncertainty: Option<f64>,
    /// Share of the pipeline's weight, 0-1.
    pub weight_share: Option<f64>,
    /// The same weight as the u16 set on chain.
    pub weight_u16: Option<u16>,
    /// The chain block it was committed or submitted at.
    pub submitted_block: Option<u64>,
    /// Received (Unix ms).
    pub submitted_at_ms: Option<i64>,
    /// Where it stands.
    pub status: Status,
    /// Crowns it holds (PRISM).
    pub crowns: Vec<CrownTier>,
}

/// A pipeline's leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    /// Pipeline id.
    pub pipeline: String,
    /// Pipeline name.
    pub title: String,
    /// The epoch or round shown, if the pipeline has them.
    pub epoch: Option<i64>,
    /// What the score is ("bits per byte", "average loss").
    pub score_label: String,
    /// Whether a higher score is better (PRISM's final score) or a lower one (SN37's loss).
    pub higher_is_better: bool,
    /// The rows, best first.
    pub rows: Vec<LeaderboardRow>,
    /// PRISM's crowns (empty elsewhere).
    pub crowns: Vec<CrownHolder>,
    /// Newest chain block the validator knows.
    pub latest_block: Option<u64>,
}

/// One step of a submission's way through the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// "received", "integrity checks", "evaluation", "scored".
    pub name: String,
    /// How far it got.
    pub state: StageState,
    /// A line of detail ("on worker gpu-2 (NVIDIA H100)").
    pub detail: Option<String>,
    /// When it reached this state (Unix ms).
    pub at_ms: Option<i64>,
}

/// The state of one [`Stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Not reached yet.
    Pending,
    /// In progress.
    Current,
    /// Passed.
    Done,
    /// Stopped here.
    Failed,
}

impl StageState {
    /// A word for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "not started",
            Self::Current => "in progress",
            Self::Done => "done",
            Self::Failed => "stopped",
        }
    }
}

/// How grave an integrity finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Noted; no effect on the score.
    Note,
    /// Held for review or penalised.
    Warning,
    /// Rejected because of it.
    Reject,
}

impl Severity {
    /// A word for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Reject => "reason for rejection",
        }
    }
}

/// An integrity or exploit finding, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The check's code (`plagiarism.static`, `weights.norm`).
    pub code: String,
    /// What it found, for people ("The code is 97 % similar to submission …").
    pub message: String,
    /// How grave.
    pub severity: Severity,
}

/// One task's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScore {
    /// Task name.
    pub task: String,
    /// Score.
    pub score: Option<f64>,
    /// Its uncertainty, where known.
    pub uncertainty: Option<f64>,
    /// The task's weight in the final score, where it has one.
    pub weight: Option<f64>,
}

/// A training or evaluation curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// What the y values are ("bits per byte").
    pub y_label: String,
    /// What the x values are ("step", "tokens seen").
    pub x_label: String,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A file a submission produced that may be downloaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileLink {
    /// Its name (no directories).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// What it is ("LoRA adapter", "evaluation report").
    pub description: String,
}

/// A file's bytes, for a download.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    /// MIME type (`application/json`, `application/octet-stream`).
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The worker (and device) a job ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRef {
    /// The worker's name.
    pub name: String,
    /// Its device ("NVIDIA H100 80GB", "cpu").
    pub device: Option<String>,
}

/// Everything the submission page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionPage {
    /// Id.
    pub id: String,
    /// Pipeline id.
    pub pipeline: String,
    /// Pipeline name.
    pub pipeline_title: String,
    /// The miner.
    pub hotkey: String,
    /// The epoch or round it belongs to.
    pub epoch: Option<i64>,
    /// The block it was committed or submitted at.
    pub submitted_block: Option<u64>,
    /// Received (Unix ms).
    pub submitted_at_ms: Option<i64>,
    /// Where it stands.
    pub status: Status,
    /// Its way through the pipeline.
    pub stages: Vec<Stage>,
    /// The worker evaluating or having evaluated it.
    pub worker: Option<WorkerRef>,
    /// Final score.
    pub score: Option<f64>,
    /// Its uncertainty.
    pub uncertainty: Option<f64>,
    /// What the score is.
    pub score_label: String,
    /// Rank on the board, once scored.
    pub rank: Option<u32>,
    /// Why it failed, in plain words.
    pub failure: Option<String>,
    /// Integrity findings.
    pub findings: Vec<Finding>,
    /// Scores per task.
    pub tasks: Vec<TaskScore>,
    /// The loss or bpb curve.
    pub curve: Option<Curve>,
    /// Files it produced that may be downloaded.
    pub files: Vec<FileLink>,
}

/// One hotkey's weight in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRow {
    /// The miner.
    pub hotkey: String,
    /// Share, 0-1.
    pub share: f64,
    /// As set on chain.
    pub weight_u16: u16,
    /// Its share in the round before, if it had one.
    pub previous_share: Option<f64>,
}

/// An exploit finding of a round, tied to its submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundFinding {
    /// The miner.
    pub hotkey: String,
    /// The submission.
    pub submission_id: String,
    /// What was found.
    pub finding: Finding,
}

/// The winner of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Winner {
    /// The miner.
    pub hotkey: String,
    /// The winning submission.
    pub submission_id: String,
    /// Its score.
    pub score: Option<f64>,
}

/// One epoch or round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundPage {
    /// Pipeline id.
    pub pipeline: String,
    /// Pipeline name.
    pub pipeline_title: String,
    /// Epoch or round id.
    pub epoch: i64,
    /// `open`, `closed`, `scored`.
    pub status: String,
    /// Start (Unix ms).
    pub starts_at_ms: i64,
    /// End (Unix ms), once closed.
    pub ends_at_ms: Option<i64>,
    /// Who won.
    pub winner: Option<Winner>,
    /// Weights set for it, largest first.
    pub weights: Vec<WeightRow>,
    /// Shares in recent rounds, oldest first: `(epoch, [(hotkey, share)])`, for the chart.
    pub history: Vec<(i64, Vec<(String, f64)>)>,
    /// Exploit findings of its submissions.
    pub findings: Vec<RoundFinding>,
    /// The round before, if any.
    pub previous: Option<i64>,
    /// The round after, if any.
    pub next: Option<i64>,
}

/// A worker as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// Its name.
    pub name: String,
    /// Its devices ("2× NVIDIA H100").
    pub devices: String,
    /// The job it holds, if any.
    pub job: Option<i64>,
    /// The submission that job evaluates.
    pub submission_id: Option<String>,
    /// Last heartbeat (Unix ms).
    pub last_seen_ms: Option<i64>,
}

/// A recent failure, for the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRow {
    /// When (Unix ms).
    pub at_ms: i64,
    /// The job.
    pub job: i64,
    /// Its kind.
    pub kind: String,
    /// The submission it evaluated.
    pub submission_id: Option<String>,
    /// Whose fault: `miner`, `operator`, `transient`, `bug`.
    pub blame: String,
    /// What went wrong (paths and secrets are removed before display).
    pub message: String,
}

/// The operator's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorPage {
    /// Jobs waiting.
    pub queue_depth: u64,
    /// Jobs per state (`queued`, `running`, `done`, `failed`).
    pub jobs_by_state: Vec<(String, u64)>,
    /// Workers seen recently.
    pub workers: Vec<WorkerRow>,
    /// Recent failures, newest first.
    pub failures: Vec<FailureRow>,
    /// Newest chain block.
    pub latest_block: Option<u64>,
}
