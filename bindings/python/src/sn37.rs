//! `assay.sn37`: an SN37 (finetuning) round from submitted model folders and data to results,
//! leaderboard and moving-average weights, and the weight logic on its own (epsilon advantage,
//! pairwise wins, winner-take-all, the per-competition moving average and the subnet weights).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use assay_sn37::epsilon::EpsilonSchedule;
use assay_sn37::round::{RoundEvent, RoundPolicy};
use assay_sn37::run::{RoundSettings, run};
use assay_sn37::tracker::{ALPHA, EmaState, MIN_WEIGHT_THRESHOLD};
use assay_sn37::wins::{Contender, WinRecord, win_records, winner_take_all};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::engine::{Callback, placement};
use crate::errors::{OperatorError, bad_argument, diagnosed};
use crate::{from_python, to_python};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_round, m)?)?;
    m.add_function(wrap_pyfunction!(epsilon, m)?)?;
    m.add_function(wrap_pyfunction!(wins, m)?)?;
    m.add_function(wrap_pyfunction!(step_weights, m)?)?;
    m.add_class::<MovingAverage>()?;
    m.add("ALPHA", ALPHA)?;
    m.add("MIN_WEIGHT_THRESHOLD", MIN_WEIGHT_THRESHOLD)?;
    Ok(())
}

/// Runs one round of `competition` (a built-in name or id, or a TOML file) on the model folders
/// under `models` (one sub-folder per hotkey, with its commit metadata) and the data files under
/// `data`, at chain block `block`: every folder is checked, the accepted models are evaluated,
/// wins are counted with the epsilon advantage, and the winner's step is folded into the moving
/// average kept in `state` (default `out/ema_state.json`). Writes `results.json`,
/// `weights.json`, `leaderboard.md` and the state into `out`, each atomically, and returns
/// `{"results": {...}, "leaderboard": str, "state_path": str}`. `block_hash` seeds the round's
/// data (None: a stand-in derived from the block). `progress` gets `{"event": "submissions" |
/// "checked" | "evaluating" | "task_scored", ...}` dicts. Errors blamed on a miner only zero
/// that miner; an `OperatorError` or `TransientError` stops the round before the state changes.
#[pyfunction]
#[pyo3(signature = (
    competition, models, data, out, block, *, block_hash=None, state=None, device="cpu",
    dtype=None, allow_missing_tasks=false, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn run_round<'py>(
    py: Python<'py>,
    competition: String,
    models: PathBuf,
    data: PathBuf,
    out: PathBuf,
    block: u64,
    block_hash: Option<String>,
    state: Option<PathBuf>,
    device: &str,
    dtype: Option<&str>,
    allow_missing_tasks: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = RoundSettings {
        competition,
        models,
        block,
        block_hash,
        data,
        state,
        out,
        placement: placement(device, dtype)?,
        policy: RoundPolicy {
            allow_missing_tasks,
        },
    };
    let mut callback = Callback::new(progress);
    let result = py.detach(|| {
        run(&settings, |event| {
            callback.call(|e| match event {
                RoundEvent::Submissions(count) => {
                    e.set_item("event", "submissions")?;
                    e.set_item("count", count)
                }
                RoundEvent::Checked(hotkey) => {
                    e.set_item("event", "checked")?;
                    e.set_item("hotkey", hotkey)
                }
                RoundEvent::EvaluationStarts { models, tasks } => {
                    e.set_item("event", "evaluating")?;
                    e.set_item("models", models)?;
                    e.set_item("tasks", tasks)
                }
                RoundEvent::TaskScored { hotkey, task } => {
                    e.set_item("event", "task_scored")?;
                    e.set_item("hotkey", hotkey)?;
                    e.set_item("task", task)
                }
                RoundEvent::ModelEvaluated {
                    hotkey,
                    load_seconds,
                    task_seconds,
                    peak_memory_bytes,
                } => {
                    e.set_item("event", "model_evaluated")?;
                    e.set_item("hotkey", hotkey)?;
                    e.set_item("load_seconds", load_seconds)?;
                    e.set_item("task_seconds", task_seconds)?;
                    e.set_item("peak_memory_bytes", peak_memory_bytes)
                }
            })
        })
    });
    callback.finish()?;
    let output = result.map_err(diagnosed)?;
    let d = PyDict::new(py);
    d.set_item("results", to_python(py, &output.results)?)?;
    d.set_item("leaderboard", output.leaderboard)?;
    d.set_item("state_path", output.state_path)?;
    Ok(d)
}

fn parse_schedule(value: &Bound<'_, PyAny>) -> PyResult<EpsilonSchedule> {
    let schedule: EpsilonSchedule = from_python(value, "epsilon schedule")?;
    schedule.validate().map_err(bad_argument)?;
    Ok(schedule)
}

/// The epsilon advantage at `current_block` of a model committed at `model_block` under
/// `schedule` (`{"kind": "fixed", "epsilon": e}` or `{"kind": "linear_decay", "start", "end",
/// "decay_blocks"}`, as in the competition files).
#[pyfunction]
fn epsilon(schedule: &Bound<'_, PyAny>, current_block: u64, model_block: u64) -> PyResult<f64> {
    Ok(parse_schedule(schedule)?.epsilon(current_block, model_block))
}

/// A contender from a dict `{"hotkey", "score", "block"}`; `score` None stands for `+inf`
/// (a failed evaluation), as JSON has no infinity.
fn contender(item: &Bound<'_, PyAny>) -> PyResult<Contender> {
    let field = |key: &str| {
        item.get_item(key)
            .map_err(|_| bad_argument(format!("a contender needs `{key}`: {item}")))
    };
    let score = field("score")?;
    Ok(Contender {
        hotkey: field("hotkey")?.extract()?,
        score: if score.is_none() {
            f64::INFINITY
        } else {
            score.extract()?
        },
        block: field("block")?.extract()?,
    })
}

/// Pairwise wins of every contender (dicts `{"hotkey", "score", "block"}`; lower score is
/// better; None is a failed evaluation) at `current_block`: only the strictly earlier commit
/// has its score multiplied by `1 - epsilon`, ties are no win. Returns one `{"wins",
/// "win_rate"}` per contender, in order.
#[pyfunction]
fn wins<'py>(
    py: Python<'py>,
    contenders: &Bound<'py, PyList>,
    schedule: &Bound<'py, PyAny>,
    current_block: u64,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let contenders = contenders
        .iter()
        .map(|c| contender(&c))
        .collect::<PyResult<Vec<_>>>()?;
    let schedule = parse_schedule(schedule)?;
    win_records(&contenders, &schedule, current_block)
        .into_iter()
        .map(|r| {
            let d = PyDict::new(py);
            d.set_item("wins", r.wins)?;
            d.set_item("win_rate", r.win_rate)?;
            Ok(d)
        })
        .collect()
}

/// Winner-take-all step weights from win rates: 1 for every contender at the best rate (ties
/// share), 0 for the others.
#[pyfunction]
fn step_weights(win_rates: Vec<f64>) -> Vec<f64> {
    let records: Vec<WinRecord> = win_rates
        .into_iter()
        .map(|win_rate| WinRecord { wins: 0, win_rate })
        .collect();
    winner_take_all(&records)
}

/// The moving average of every competition's step weights, persisted between rounds (the state
/// file `run_round` keeps): `W <- alpha W + (1 - alpha) step` per competition, then the subnet
/// weights (threshold, reward shares, normalised), as taoverse's `CompetitionTracker` does.
#[pyclass(module = "assay.sn37", frozen)]
struct MovingAverage {
    state: Mutex<EmaState>,
}

impl MovingAverage {
    fn lock(&self) -> MutexGuard<'_, EmaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl MovingAverage {
    /// An empty average with factor `alpha` (SN37's `ALPHA` by default).
    #[new]
    #[pyo3(signature = (alpha=ALPHA))]
    fn new(alpha: f64) -> PyResult<Self> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(bad_argument(format!("alpha {alpha} is not in [0, 1]")));
        }
        Ok(Self {
            state: Mutex::new(EmaState {
                alpha,
                ..EmaState::default()
            }),
        })
    }

    /// Reads a state file written by `run_round` (a missing file gives an empty average).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let state = py
            .detach(|| assay_sn37::state::read_state(&path))
            .map_err(diagnosed)?;
        Ok(Self {
            state: Mutex::new(state),
        })
    }

    /// The state from its dict form (`to_dict`).
    #[staticmethod]
    fn from_dict(state: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            state: Mutex::new(from_python(state, "moving-average state")?),
        })
    }

    /// The state as the state file holds it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &*self.lock())
    }

    /// Writes the state file atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let state = self.lock().clone();
        py.detach(|| assay_sn37::state::write_json_atomic(&path, &state))
            .map_err(diagnosed)
    }

    /// Records one step of `competition` (step weights by hotkey, normalised to sum 1 first).
    fn record_step(&self, competition: u32, reward_share: f64, step: BTreeMap<String, f64>) {
        self.lock().record_step(competition, reward_share, &step);
    }

    /// Records the step of the round at `block`, idempotently: a second call for the same block
    /// replaces the first one's step. An older block than the last recorded raises
    /// `OperatorError` (the state is ahead of this round).
    fn record_round(
        &self,
        competition: u32,
        block: u64,
        reward_share: f64,
        step: BTreeMap<String, f64>,
    ) -> PyResult<()> {
        self.lock()
            .record_round(competition, block, reward_share, &step)
            .map_err(|e| OperatorError::new_err(e.to_string()))
    }

    /// The weights to set on the subnet, by hotkey: each competition's average normalised,
    /// entries under `threshold` zeroed and renormalised, scaled by its reward share, summed
    /// and normalised.
    #[pyo3(signature = (threshold=MIN_WEIGHT_THRESHOLD))]
    fn subnet_weights(&self, threshold: f64) -> BTreeMap<String, f64> {
        self.lock().subnet_weights(threshold)
    }

    /// One competition's moving-average weights by hotkey (empty when it was never recorded).
    fn weights(&self, competition: u32) -> BTreeMap<String, f64> {
        self.lock()
            .competitions
            .get(&competition)
            .map(|c| c.weights.clone())
            .unwrap_or_default()
    }

    /// The moving-average factor.
    #[getter]
    fn alpha(&self) -> f64 {
        self.lock().alpha
    }

    fn __repr__(&self) -> String {
        let state = self.lock();
        format!(
            "MovingAverage(alpha={}, competitions={:?})",
            state.alpha,
            state.competitions.keys().collect::<Vec<_>>()
        )
    }
}
