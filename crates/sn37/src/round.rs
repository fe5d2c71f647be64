//! One SN37 round for one competition: check every submitted folder, evaluate the accepted
//! models on the round's data, combine task scores, compare with the epsilon advantage, give
//! the winner(s) the step weight, and fold it into the persisted moving average.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assay_eval::runner::LanguageModel;
use assay_eval::sn37::normalize::{TaskRawScore, TaskScoreDetails, combine_task_scores};
use assay_integrity::models::{ModelViolation, check_model_folder};
use assay_integrity::report::Priority;
use assay_integrity::round::{ModelSubmission, check_model_round};
use serde::{Deserialize, Serialize};

use crate::competition::{Competition, Constraints, TaskSpec};
use crate::data::{TaskData, load_task_data};
use crate::evaluate::{method_accepts, raw_task_score};
use crate::seed::{offline_block_hash, seed_from_block_hash, sync_block, task_seed};
use crate::submission::{SubmissionMetadata, read_metadata, submission_dirs};
use crate::time_limit::TimedModel;
use crate::tracker::{EmaState, MIN_WEIGHT_THRESHOLD, StaleRound};
use crate::wins::{Contender, win_records, winner_take_all};
use assay_errors::{Blame, Diagnose};

/// Loads a submitted folder as a model the evaluation can query.
///
/// The round loads one model, evaluates it on every task and drops it before loading the next,
/// so peak memory is bounded by one model.
pub trait ModelLoader {
    /// Loads `dir` under `constraints` (tokenizer rule, sequence length). An error blamed on the
    /// miner counts as a failed evaluation (score `+inf`), as in SN37; one blamed on the operator
    /// or on a passing condition stops the round, so no miner pays for it.
    fn load(
        &self,
        dir: &Path,
        constraints: &Constraints,
    ) -> Result<Box<dyn LanguageModel>, LoadError>;

    /// The device the loaded models run on, for the memory figures of [`RoundEvent::ModelEvaluated`]
    /// (`None`: memory is not measured).
    fn device(&self) -> Option<assay_engine::candle_core::Device> {
        None
    }
}

/// Why a submitted model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine could not load the folder (it passed the integrity checks, so what is left is
    /// the miner's, except running out of memory).
    #[error("{0}")]
    Engine(#[source] assay_engine::EngineError),
    /// The competition's fixed tokenizer is not available on this validator.
    #[error("{0}")]
    Tokenizer(String),
    /// The device asked for cannot be opened on this validator.
    #[error("{0}")]
    Device(String),
    /// The model does not fit the competition (its embedding is smaller than the fixed
    /// tokenizer's vocabulary, say).
    #[error("{0}")]
    Unfit(String),
}

impl From<String> for LoadError {
    fn from(message: String) -> Self {
        Self::Unfit(message)
    }
}

impl Diagnose for LoadError {
    fn blame(&self) -> Blame {
        match self {
            Self::Engine(error) if error.blame() == Blame::Transient => Blame::Transient,
            Self::Engine(_) | Self::Unfit(_) => Blame::Miner,
            Self::Tokenizer(_) | Self::Device(_) => Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Tokenizer(_) => Some(
                "put the competition's tokenizer in the local Hugging Face cache or name a \
                 folder holding it in the competition file (constraints.tokenizer.model)"
                    .into(),
            ),
            Self::Device(_) => Some(
                "pass --device cpu, or a CUDA device this build and machine have (--features cuda)"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// What a round does when some of its tasks cannot be evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundPolicy {
    /// Score models on the tasks that loaded, their weights renormalised to sum 1 (SN37 drops a
    /// task whose loader fails). When false, a round with a task that cannot be evaluated is
    /// refused before any model is loaded.
    pub allow_missing_tasks: bool,
}

/// What a round needs besides the state.
#[derive(Debug, Clone)]
pub struct RoundInputs {
    /// The competition evaluated.
    pub competition: Competition,
    /// Folder with one sub-folder per submitted model.
    pub models_dir: PathBuf,
    /// Folder with the data files the competition's readers name.
    pub data_dir: PathBuf,
    /// Current block.
    pub block: u64,
    /// Hash of the sync block; `None` uses [`offline_block_hash`].
    pub block_hash: Option<String>,
}

/// Progress of a round, for progress bars.
#[derive(Debug, Clone)]
pub enum RoundEvent {
    /// Submissions found.
    Submissions(usize),
    /// A folder's checks are done.
    Checked(String),
    /// Evaluation of accepted models starts: how many models and tasks.
    EvaluationStarts {
        /// Models to evaluate.
        models: usize,
        /// Tasks per model.
        tasks: usize,
    },
    /// One task of one model is scored.
    TaskScored {
        /// The model's hotkey.
        hotkey: String,
        /// The task.
        task: String,
    },
    /// One model is loaded, evaluated on every task and freed: how long each part took and the
    /// most memory in use meanwhile (timings are reported apart from the results, which stay the
    /// same run to run).
    ModelEvaluated {
        /// The model's hotkey.
        hotkey: String,
        /// Seconds to load the model.
        load_seconds: f64,
        /// Seconds per task, in the competition's order.
        task_seconds: Vec<(String, f64)>,
        /// The most memory in use while the model was loaded and evaluated, in bytes (GPU memory
        /// in use on CUDA, resident memory on the CPU; see [`assay_engine::PeakMemory`]).
        peak_memory_bytes: Option<u64>,
    },
}

/// Where a submission ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Evaluated and compared.
    Evaluated,
    /// Accepted but loading or scoring failed: score `+inf`, still compared (SN37).
    Failed,
    /// Broke a constraint: not evaluated, no step weight.
    Rejected,
    /// Committed too recently (`eval_block_delay`): not evaluated yet.
    Waiting,
}

/// One submission's line in the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// The miner's hotkey (the folder name when the metadata is unreadable).
    pub hotkey: String,
    /// The submitted folder.
    pub folder: String,
    /// Commit block, when the metadata was readable.
    pub commit_block: Option<u64>,
    /// Outcome.
    pub status: Status,
    /// Why it was rejected, failed, or is waiting; notes such as a detected copy.
    pub reasons: Vec<String>,
    /// Per-task raw, normalised and weighted scores.
    pub tasks: Vec<TaskScoreDetails>,
    /// Combined score, lower is better (`None` for +inf or not evaluated).
    pub score: Option<f64>,
    /// Pairwise wins.
    pub wins: usize,
    /// Win rate against the other compared models.
    pub win_rate: f64,
    /// Winner-take-all step weight before normalisation (0 or 1).
    pub step_weight: f64,
}

/// A task of the round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Name.
    pub name: String,
    /// Weight in the competition.
    pub weight: f64,
    /// Samples drawn this round.
    pub samples: usize,
    /// Why the task was dropped this round (its weight is then spread over the others).
    pub dropped: Option<String>,
}

/// A weight to set on chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRow {
    /// Hotkey.
    pub hotkey: String,
    /// Normalised weight.
    pub weight: f64,
    /// Bittensor u16 weight (largest = 65535).
    pub weight_u16: u16,
}

/// Everything a round produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResults {
    /// Competition id.
    pub competition_id: u32,
    /// Competition name.
    pub competition: String,
    /// Current block.
    pub block: u64,
    /// Its sync block.
    pub sync_block: u64,
    /// The block hash the seed came from.
    pub block_hash: String,
    /// The round seed.
    pub seed: u64,
    /// Tasks and whether they ran.
    pub tasks: Vec<TaskResult>,
    /// One line per submission, in folder order.
    pub models: Vec<ModelResult>,
    /// This competition's moving-average weights after the round.
    pub competition_weights: BTreeMap<String, f64>,
    /// Subnet weights across tracked competitions (threshold 0.18, reward shares).
    pub weights: Vec<WeightRow>,
    /// What the round did differently from a full round (dropped tasks and renormalised
    /// weights, a rerun of a block that replaced its earlier step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why a round could not run (the state is then left as it was).
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The models folder cannot be listed.
    #[error("{path}: cannot list model folders: {source}")]
    ModelsDir {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every task failed to load (SN37 skips the step and retries later).
    #[error("every task failed to load, so no model can be scored: {0}")]
    NoTasks(String),
    /// Some tasks cannot be evaluated and the policy does not allow a partial round.
    #[error("{} of {total} tasks cannot be evaluated: {}", dropped.len(), describe_dropped(dropped))]
    MissingTasks {
        /// (task, why) for each task that cannot be evaluated.
        dropped: Vec<(String, String)>,
        /// Tasks in the competition.
        total: usize,
    },
    /// The state has already recorded a later round of this competition.
    #[error(transparent)]
    Stale(#[from] StaleRound),
    /// A model could not be loaded for a reason that is not its miner's fault.
    #[error("{folder}: cannot load the model: {source}")]
    Load {
        /// The submitted folder.
        folder: String,
        /// Why.
        #[source]
        source: LoadError,
    },
}

fn describe_dropped(dropped: &[(String, String)]) -> String {
    dropped
        .iter()
        .map(|(task, why)| format!("{task} ({why})"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Diagnose for RoundError {
    fn blame(&self) -> Blame {
        match self {
            Self::ModelsDir { source, .. } => assay_errors::io_blame(source),
            Self::NoTasks(_) | Self::MissingTasks { .. } | Self::Stale(_) => Blame::Operator,
            Self::Load { source, .. } => source.blame(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::ModelsDir { .. } => {
                Some("pass --models a folder with one sub-folder per submission".into())
            }
            Self::NoTasks(_) | Self::MissingTasks { .. } => Some(
                "put the tasks' data files in the --data folder, or pass --allow-missing-tasks to \
                 score on the tasks that load (their weights renormalised, as SN37 does)"
                    .into(),
            ),
            Self::Stale(_) => Some(
                "rounds must move forward: pass a later --block, or another --state file".into(),
            ),
            Self::Load { source, .. } => source.hint(),
        }
    }
}

/// A submission that passed the checks.
struct Accepted {
    index: usize,
    dir: PathBuf,
}

/// Runs one round as SN37 does, updating `state`: tasks whose data cannot be loaded are dropped
/// and the others' weights renormalised (see [`run_round_with`] to refuse such a round).
pub fn run_round(
    inputs: &RoundInputs,
    state: &mut EmaState,
    loader: &dyn ModelLoader,
    progress: &mut dyn FnMut(RoundEvent),
) -> Result<RoundResults, RoundError> {
    let policy = RoundPolicy {
        allow_missing_tasks: true,
    };
    run_round_with(inputs, &policy, state, loader, progress)
}

/// Runs one round under `policy`, updating `state`. See the module docs for the steps.
///
/// The round is idempotent per block: a rerun for the block the state last recorded replaces
/// that step (see [`EmaState::record_round`]); an older block is refused before any work.
pub fn run_round_with(
    inputs: &RoundInputs,
    policy: &RoundPolicy,
    state: &mut EmaState,
    loader: &dyn ModelLoader,
    progress: &mut dyn FnMut(RoundEvent),
) -> Result<RoundResults, RoundError> {
    let competition = &inputs.competition;
    let mut notes = Vec::new();
    if let Some(last_block) = state
        .competitions
        .get(&competition.id)
        .and_then(|tracked| tracked.last_block)
    {
        if inputs.block < last_block {
            return Err(StaleRound {
                competition: competition.id,
                block: inputs.block,
                last_block,
            }
            .into());
        }
        if inputs.block == last_block {
            notes.push(format!(
                "block {} was already recorded in the state; this round replaced its step (the moving average is applied once per block)",
                inputs.block
            ));
        }
    }
    let block_hash = inputs
        .block_hash
        .clone()
        .unwrap_or_else(|| offline_block_hash(sync_block(inputs.block)));
    let seed = seed_from_block_hash(&block_hash);
    let (task_results, loaded) = load_round_data(competition, &inputs.data_dir, seed);
    if loaded.is_empty() {
        let reasons: Vec<String> = task_results
            .iter()
            .filter_map(|t| t.dropped.clone())
            .collect();
        return Err(RoundError::NoTasks(reasons.join("; ")));
    }
    let dropped: Vec<(String, String)> = task_results
        .iter()
        .filter_map(|t| t.dropped.clone().map(|why| (t.name.clone(), why)))
        .collect();
    if !dropped.is_empty() {
        if !policy.allow_missing_tasks {
            return Err(RoundError::MissingTasks {
                dropped,
                total: task_results.len(),
            });
        }
        let names: Vec<&str> = dropped.iter().map(|(name, _)| name.as_str()).collect();
        notes.push(format!(
            "tasks dropped this round: {}; the weights of the other tasks were renormalised to sum to 1, as SN37 does",
            names.join(", ")
        ));
    }
    let dirs = submission_dirs(&inputs.models_dir).map_err(|source| RoundError::ModelsDir {
        path: inputs.models_dir.display().to_string(),
        source,
    })?;
    progress(RoundEvent::Submissions(dirs.len()));
    let (mut models, accepted) = check_submissions(competition, &dirs, inputs.block, progress);
    progress(RoundEvent::EvaluationStarts {
        models: accepted.len(),
        tasks: loaded.len(),
    });
    for entry in &accepted {
        evaluate_model(
            competition,
            &loaded,
            entry,
            &mut models[entry.index],
            loader,
            progress,
        )?;
    }
    compare_and_record(competition, inputs.block, &mut models, &accepted, state)?;
    let subnet = state.subnet_weights(MIN_WEIGHT_THRESHOLD);
    let competition_weights = state
        .competitions
        .get(&competition.id)
        .map(|tracked| tracked.weights.clone())
        .unwrap_or_default();
    Ok(RoundResults {
        competition_id: competition.id,
        competition: competition.name.clone(),
        block: inputs.block,
        sync_block: sync_block(inputs.block),
        block_hash,
        seed,
        tasks: task_results,
        models,
        competition_weights,
        weights: weight_rows(&subnet),
        notes,
    })
}

/// Loads every task's data; tasks that cannot load are reported as dropped.
fn load_round_data(
    competition: &Competition,
    data_dir: &Path,
    seed: u64,
) -> (Vec<TaskResult>, Vec<(TaskSpec, TaskData)>) {
    let mut results = Vec::new();
    let mut loaded = Vec::new();
    for task in &competition.tasks {
        let outcome = load_task_data(
            &task.source,
            task.samples,
            data_dir,
            task_seed(seed, &task.name),
        )
        .map_err(|error| error.to_string())
        .and_then(|data| {
            if method_accepts(task.method, &data) {
                Ok(data)
            } else {
                Err(format!(
                    "method {:?} cannot score the data of reader {:?}",
                    task.method, task.source
                ))
            }
        });
        let (samples, dropped) = match outcome {
            Ok(data) => {
                let samples = data_len(&data);
                loaded.push((task.clone(), data));
                (samples, None)
            }
            Err(reason) => (0, Some(reason)),
        };
        results.push(TaskResult {
            name: task.name.clone(),
            weight: task.weight,
            samples,
            dropped,
        });
    }
    (results, loaded)
}

fn data_len(data: &TaskData) -> usize {
    match data {
        TaskData::ReferencePairs(rows) | TaskData::MultipleChoice(rows) => rows.len(),
        TaskData::IfEval(samples) => samples.len(),
        TaskData::Text(texts) => texts.len(),
    }
}

fn empty_result(hotkey: String, dir: &Path, status: Status, reasons: Vec<String>) -> ModelResult {
    ModelResult {
        hotkey,
        folder: dir.display().to_string(),
        commit_block: None,
        status,
        reasons,
        tasks: Vec::new(),
        score: None,
        wins: 0,
        win_rate: 0.0,
        step_weight: 0.0,
    }
}

/// Checks metadata, competition, age, constraints and content hash of every folder.
fn check_submissions(
    competition: &Competition,
    dirs: &[PathBuf],
    block: u64,
    progress: &mut dyn FnMut(RoundEvent),
) -> (Vec<ModelResult>, Vec<Accepted>) {
    let rules = competition.constraints.model_rules();
    let mut models = Vec::with_capacity(dirs.len());
    let mut candidates: Vec<(
        usize,
        SubmissionMetadata,
        assay_integrity::models::ModelReport,
    )> = Vec::new();
    let mut seen = BTreeSet::new();
    for dir in dirs {
        let folder_name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if let Some(reason) = broken_link(dir) {
            models.push(empty_result(
                folder_name,
                dir,
                Status::Rejected,
                vec![reason],
            ));
            progress(RoundEvent::Checked(dir.display().to_string()));
            continue;
        }
        let metadata = match read_metadata(dir) {
            Ok(metadata) => metadata,
            Err(error) => {
                models.push(empty_result(
                    folder_name,
                    dir,
                    Status::Rejected,
                    vec![error.to_string()],
                ));
                continue;
            }
        };
        let mut result = empty_result(metadata.hotkey.clone(), dir, Status::Rejected, Vec::new());
        result.commit_block = Some(metadata.commit_block);
        if let Some(reason) = metadata_problem(competition, &metadata, block, &mut seen) {
            result.status = if reason.starts_with("waiting") {
                Status::Waiting
            } else {
                Status::Rejected
            };
            result.reasons.push(reason);
        } else {
            let report = check_model_folder(dir, &rules);
            result
                .reasons
                .extend(report.violations.iter().map(describe_violation));
            if report.accepted() && report.content_hash != metadata.content_hash {
                result.reasons.push(format!(
                    "content hash mismatch: the weights hash to {} but the commitment says {}; the folder changed after the commit",
                    report.content_hash, metadata.content_hash
                ));
            }
            if result.reasons.is_empty() {
                result.status = Status::Evaluated;
                candidates.push((models.len(), metadata, report));
            }
        }
        progress(RoundEvent::Checked(result.hotkey.clone()));
        models.push(result);
    }
    note_copies(&candidates, &rules, &mut models);
    let accepted = candidates
        .iter()
        .map(|(index, _, _)| Accepted {
            index: *index,
            dir: dirs[*index].clone(),
        })
        .collect();
    (models, accepted)
}

/// Why a submission entry that is a symbolic link cannot be followed (`None` for a folder or a
/// link to one: links are followed, and the results name the folder as listed).
fn broken_link(dir: &Path) -> Option<String> {
    let link = std::fs::symlink_metadata(dir).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    let target =
        std::fs::read_link(dir).map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some(format!(
            "symbolic link to {target}, which is not a folder; link a model folder or remove the link"
        )),
        Err(error) => Some(format!(
            "symbolic link to {target}, which cannot be followed ({error}); fix or remove the link"
        )),
    }
}

/// Problems visible from the metadata alone; a reason starting with "waiting" is not a
/// rejection.
fn metadata_problem(
    competition: &Competition,
    metadata: &SubmissionMetadata,
    block: u64,
    seen: &mut BTreeSet<String>,
) -> Option<String> {
    if !seen.insert(metadata.hotkey.clone()) {
        return Some(format!(
            "hotkey {} already submitted a model in this round (one model per hotkey)",
            metadata.hotkey
        ));
    }
    if metadata.competition_id != competition.id {
        return Some(format!(
            "submitted to competition {}, not {} ({})",
            metadata.competition_id, competition.id, competition.name
        ));
    }
    let eligible_from = metadata
        .commit_block
        .saturating_add(competition.eval_block_delay);
    if metadata.commit_block > block || eligible_from > block {
        return Some(format!(
            "waiting: committed at block {}, evaluated from block {eligible_from} (eval_block_delay {})",
            metadata.commit_block, competition.eval_block_delay
        ));
    }
    None
}

/// Marks models whose weights copy an earlier commit's. SN37 does not reject copies (the
/// epsilon advantage of the original is its defence), so this is a note, not a rejection.
fn note_copies(
    candidates: &[(
        usize,
        SubmissionMetadata,
        assay_integrity::models::ModelReport,
    )],
    rules: &assay_integrity::models::ModelRules,
    models: &mut [ModelResult],
) {
    let submissions: Vec<ModelSubmission> = candidates
        .iter()
        .map(|(_, metadata, report)| ModelSubmission {
            miner: metadata.hotkey.clone(),
            priority: Priority {
                block: metadata.commit_block,
                receipt_ms: 0,
            },
            report: report.clone(),
        })
        .collect();
    for verdict in check_model_round(&submissions, rules, None) {
        if let Some((original, similarity)) = verdict.copy_of
            && let Some(model) = models.iter_mut().find(|m| m.hotkey == verdict.miner)
        {
            model.reasons.push(format!(
                "note: weights match the earlier commit of {original} (similarity {similarity:.4}); it must beat it by epsilon"
            ));
        }
    }
}

/// One line per integrity violation, saying what to fix.
pub fn describe_violation(violation: &ModelViolation) -> String {
    // The text lives beside the violation in assay-integrity, so its reports say the same.
    violation.to_string()
}

/// Loads one accepted model and scores it on every loaded task.
fn evaluate_model(
    competition: &Competition,
    loaded: &[(TaskSpec, TaskData)],
    entry: &Accepted,
    result: &mut ModelResult,
    loader: &dyn ModelLoader,
    progress: &mut dyn FnMut(RoundEvent),
) -> Result<(), RoundError> {
    let memory = loader
        .device()
        .map(|device| assay_engine::PeakMemory::watch(&device));
    let started = std::time::Instant::now();
    let model = match loader.load(&entry.dir, &competition.constraints) {
        Ok(model) => model,
        Err(error) if error.blame() == Blame::Miner => {
            result.status = Status::Failed;
            result.reasons.push(format!(
                "cannot load the model: {}",
                assay_errors::chain(&error)
            ));
            return Ok(());
        }
        Err(source) => {
            return Err(RoundError::Load {
                folder: entry.dir.display().to_string(),
                source,
            });
        }
    };
    let load_seconds = started.elapsed().as_secs_f64();
    let mut task_seconds = Vec::with_capacity(loaded.len());
    let timed = TimedModel::new(model.as_ref(), competition.eval_time_limit_s);
    let mut raw_scores = Vec::with_capacity(loaded.len());
    for (task, data) in loaded {
        let task_started = std::time::Instant::now();
        let raw = if timed.expired() {
            f64::INFINITY
        } else {
            raw_task_score(task.method, data, task.max_new_tokens, &timed).unwrap_or_else(|error| {
                if !timed.expired() {
                    result
                        .reasons
                        .push(format!("task {} failed (scored +inf): {error}", task.name));
                }
                f64::INFINITY
            })
        };
        raw_scores.push(TaskRawScore {
            name: task.name.clone(),
            raw,
            weight: task.weight,
            normalization: task.normalization,
        });
        task_seconds.push((task.name.clone(), task_started.elapsed().as_secs_f64()));
        progress(RoundEvent::TaskScored {
            hotkey: result.hotkey.clone(),
            task: task.name.clone(),
        });
    }
    if timed.expired() {
        // SN37 kills the evaluation at its TTL: the whole model scores +inf.
        result.status = Status::Failed;
        result.reasons.push(timed.reason());
        raw_scores
            .iter_mut()
            .for_each(|task| task.raw = f64::INFINITY);
    }
    drop(model);
    progress(RoundEvent::ModelEvaluated {
        hotkey: result.hotkey.clone(),
        load_seconds,
        task_seconds,
        peak_memory_bytes: memory.and_then(|m| m.finish()),
    });
    match combine_task_scores(&raw_scores) {
        Ok(score) => {
            result.score = score.total.is_finite().then_some(score.total);
            if !score.total.is_finite() {
                result.status = Status::Failed;
            }
            result.tasks = score.tasks;
        }
        Err(error) => {
            result.status = Status::Failed;
            result.reasons.push(error.to_string());
        }
    }
    Ok(())
}

/// Compares the evaluated and failed models and records the winner-take-all step in `state`.
fn compare_and_record(
    competition: &Competition,
    block: u64,
    models: &mut [ModelResult],
    accepted: &[Accepted],
    state: &mut EmaState,
) -> Result<(), StaleRound> {
    let indices: Vec<usize> = accepted.iter().map(|entry| entry.index).collect();
    let contenders: Vec<Contender> = indices
        .iter()
        .map(|&index| Contender {
            hotkey: models[index].hotkey.clone(),
            score: models[index].score.unwrap_or(f64::INFINITY),
            block: models[index].commit_block.unwrap_or(u64::MAX),
        })
        .collect();
    if !contenders.is_empty() {
        let records = win_records(&contenders, &competition.epsilon, block);
        let step = winner_take_all(&records);
        let mut step_map = BTreeMap::new();
        for ((&index, record), weight) in indices.iter().zip(&records).zip(&step) {
            models[index].wins = record.wins;
            models[index].win_rate = record.win_rate;
            models[index].step_weight = *weight;
            step_map.insert(models[index].hotkey.clone(), *weight);
        }
        state.record_round(competition.id, block, competition.reward_share, &step_map)?;
    }
    Ok(())
}

fn weight_rows(subnet: &BTreeMap<String, f64>) -> Vec<WeightRow> {
    let values: Vec<f64> = subnet.values().copied().collect();
    let u16s = assay_weights::to_u16(&values);
    subnet
        .iter()
        .zip(u16s)
        .map(|((hotkey, weight), weight_u16)| WeightRow {
            hotkey: hotkey.clone(),
            weight: *weight,
            weight_u16,
        })
        .collect()
}
