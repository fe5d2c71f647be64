//! A round from plain settings to files: what every front end (the CLI, the validator service,
//! Python) calls. It checks its inputs and outputs before any work, runs the round
//! ([`crate::round`]) and writes the results, the leaderboard, the weights and the moving-average
//! state, each atomically ([`crate::state`]).

use std::path::{Path, PathBuf};

use assay_engine::Placement;
use assay_errors::{Blame, Diagnose};
use serde::{Deserialize, Serialize};

use crate::competition::{CompetitionError, find_competition};
use crate::engine_loader::EngineLoader;
use crate::report::{leaderboard_markdown, weight_vector};
use crate::round::{
    ModelLoader, RoundError, RoundEvent, RoundInputs, RoundPolicy, RoundResults, run_round_with,
};
use crate::state::{StateError, check_writable, read_state, write_atomic, write_json_atomic};

/// File names a round writes into its output folder.
pub mod files {
    /// Every submission's checks, task scores, wins and weights.
    pub const RESULTS: &str = "results.json";
    /// The subnet weights as parallel vectors.
    pub const WEIGHTS: &str = "weights.json";
    /// The Markdown leaderboard.
    pub const LEADERBOARD: &str = "leaderboard.md";
    /// The moving-average state when no other path is given.
    pub const STATE: &str = "ema_state.json";
    /// Per model: load and per-task seconds and peak memory (not part of the results, which stay
    /// the same run to run).
    pub const TIMINGS: &str = "timings.json";
}

/// Everything one round needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundSettings {
    /// Competition: a built-in name or id, or a TOML file.
    pub competition: String,
    /// Folder with one sub-folder (or link to one) per submitted model.
    pub models: PathBuf,
    /// Current block; sets the sync block, commit ages and epsilon.
    pub block: u64,
    /// Hash of the sync block (the data seed); `None` derives a stand-in from the block.
    #[serde(default)]
    pub block_hash: Option<String>,
    /// Folder with the data files the competition's tasks read.
    pub data: PathBuf,
    /// Moving-average state to continue from and update (`None`: `OUT/ema_state.json`).
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// Where the models run (device and dtype).
    #[serde(default)]
    pub placement: Placement,
    /// What to do when a task cannot be evaluated (default: refuse the round).
    #[serde(default)]
    pub policy: RoundPolicy,
}

impl RoundSettings {
    /// The state file in use.
    pub fn state_path(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| self.out.join(files::STATE))
    }
}

/// Why a round could not run or its files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The competition cannot be found or read.
    #[error(transparent)]
    Competition(#[from] CompetitionError),
    /// The models folder is missing or not a folder.
    #[error("{path}: {reason}")]
    Models {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The data folder is missing.
    #[error("{path}: the --data folder does not exist")]
    Data {
        /// The folder.
        path: PathBuf,
    },
    /// Reading the state or writing a file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The round itself failed.
    #[error(transparent)]
    Round(#[from] RoundError),
}

impl Diagnose for RunError {
    fn blame(&self) -> Blame {
        match self {
            Self::Competition(error) => error.blame(),
            Self::Models { .. } | Self::Data { .. } => Blame::Operator,
            Self::State(error) => error.blame(),
            Self::Round(error) => error.blame(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Competition(error) => error.hint(),
            Self::Models { .. } => {
                Some("pass --models a folder with one sub-folder per submission".into())
            }
            Self::Data { .. } => {
                Some("pass --data the folder holding the competition's data files".into())
            }
            Self::State(error) => error.hint(),
            Self::Round(error) => error.hint(),
        }
    }
}

/// How long one model of a round took and how much memory it needed (`timings.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTiming {
    /// The model's hotkey.
    pub hotkey: String,
    /// Seconds to load it.
    pub load_seconds: f64,
    /// Seconds per task.
    pub task_seconds: std::collections::BTreeMap<String, f64>,
    /// The most memory in use while it was loaded and evaluated, in bytes (GPU memory in use on
    /// CUDA, resident memory on the CPU).
    pub peak_memory_bytes: Option<u64>,
}

/// A round's results and where its files went.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundOutput {
    /// The results (also in `OUT/results.json`).
    pub results: RoundResults,
    /// The leaderboard (also in `OUT/leaderboard.md`).
    pub leaderboard: String,
    /// The state file written.
    pub state_path: PathBuf,
}

/// Runs a round with the engine on `settings.placement`; see [`run_with_loader`].
pub fn run(
    settings: &RoundSettings,
    on_event: impl FnMut(RoundEvent),
) -> Result<RoundOutput, RunError> {
    run_with_loader(settings, &EngineLoader::new(settings.placement), on_event)
}

/// Runs a round: checks the competition, folders and state first, runs the round, then writes
/// results, weights and leaderboard, and the state last (each atomically), so an interrupted
/// round leaves the state as it was and a rerun for the same block gives the same state.
pub fn run_with_loader(
    settings: &RoundSettings,
    loader: &dyn ModelLoader,
    mut on_event: impl FnMut(RoundEvent),
) -> Result<RoundOutput, RunError> {
    let competition = find_competition(&settings.competition)?;
    check_folder(&settings.models)?;
    if !settings.data.is_dir() {
        return Err(RunError::Data {
            path: settings.data.clone(),
        });
    }
    check_writable(&settings.out)?;
    let state_path = settings.state_path();
    if let Some(parent) = state_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        check_writable(parent)?;
    }
    let mut state = read_state(&state_path)?;
    let inputs = RoundInputs {
        competition,
        models_dir: settings.models.clone(),
        data_dir: settings.data.clone(),
        block: settings.block,
        block_hash: settings.block_hash.clone(),
    };
    let mut timings = Vec::new();
    let mut forward = |event: RoundEvent| {
        if let RoundEvent::ModelEvaluated {
            hotkey,
            load_seconds,
            task_seconds,
            peak_memory_bytes,
        } = &event
        {
            timings.push(ModelTiming {
                hotkey: hotkey.clone(),
                load_seconds: *load_seconds,
                task_seconds: task_seconds.iter().cloned().collect(),
                peak_memory_bytes: *peak_memory_bytes,
            });
        }
        on_event(event);
    };
    let results = run_round_with(&inputs, &settings.policy, &mut state, loader, &mut forward)?;
    let leaderboard = leaderboard_markdown(&results);
    write_json_atomic(&settings.out.join(files::RESULTS), &results)?;
    write_json_atomic(&settings.out.join(files::WEIGHTS), &weight_vector(&results))?;
    write_atomic(
        &settings.out.join(files::LEADERBOARD),
        leaderboard.as_bytes(),
    )?;
    write_json_atomic(&settings.out.join(files::TIMINGS), &timings)?;
    write_json_atomic(&state_path, &state)?;
    Ok(RoundOutput {
        results,
        leaderboard,
        state_path,
    })
}

fn check_folder(path: &Path) -> Result<(), RunError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(RunError::Models {
            path: path.to_path_buf(),
            reason: "not a folder".into(),
        }),
        Err(error) => Err(RunError::Models {
            path: path.to_path_buf(),
            reason: format!("cannot read the models folder: {error}"),
        }),
    }
}
