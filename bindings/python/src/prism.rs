//! `assay.prism` (native half): PRISM's static check of a bundle, the score of a finished run
//! from its prequential record (bpb, held-out tie-break, memorisation gap, step-0 check), and
//! the leaderboard with its two-tier crown and weights.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use assay_prism::bundle::{Bundle, BundleError, Limits};
use assay_prism::distributed::Policy;
use assay_prism::leaderboard::{ScoredSubmission, State};
use assay_prism::score::{Heldout, Prequential, final_score};
use assay_prism::{CheckReport, CheckSettings, check_bundle_with};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{bad_argument, diagnosed};
use crate::{from_python, to_python};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(score_run, m)?)?;
    m.add_class::<Leaderboard>()?;
    Ok(())
}

/// Runs every static gate on a bundle: `path` (a folder or `.zip`, read with PRISM's intake
/// limits), or `files` (a dict of relative path to source text), or neither for assay's example
/// bundle. Returns the report: `passed`, `contract` (the resolved entry points, or None with
/// `contract_error`), `findings` (each with `path`, `line`, `col`, `rule`, `message`), `flags`,
/// `fingerprint`, `structure`, `family_hash`, `training_hash`. `distributed_policy` (`reject`,
/// `flag`, `off`), `gpu_count` and `num_nodes` as the submission asks. An unreadable or unsafe
/// bundle (a link, a path outside it, too large) raises `MinerError`.
#[pyfunction]
#[pyo3(signature = (path=None, *, files=None, distributed_policy="reject", gpu_count=None, num_nodes=None))]
fn check_bundle<'py>(
    py: Python<'py>,
    path: Option<PathBuf>,
    files: Option<std::collections::BTreeMap<String, String>>,
    distributed_policy: &str,
    gpu_count: Option<u32>,
    num_nodes: Option<u32>,
) -> PyResult<Bound<'py, PyAny>> {
    let distributed_policy = match distributed_policy {
        "reject" => Policy::Reject,
        "flag" => Policy::Flag,
        "off" => Policy::Off,
        other => {
            return Err(bad_argument(format!(
                "unknown distributed_policy `{other}`: use reject, flag or off"
            )));
        }
    };
    let settings = CheckSettings {
        distributed_policy,
        gpu_count,
        num_nodes,
    };
    let report = py
        .detach(|| -> Result<Option<CheckReport>, BundleError> {
            let bundle = match (path, files) {
                (Some(_), Some(_)) => return Ok(None),
                (Some(path), None) => Bundle::open(&path, &Limits::default())?,
                (None, Some(files)) => Bundle { files },
                (None, None) => assay_prism::example_bundle(),
            };
            Ok(Some(check_bundle_with(&bundle, &settings)))
        })
        .map_err(diagnosed)?
        .ok_or_else(|| bad_argument("give a bundle path or files, not both"))?;
    let passed = report.passed();
    let (contract, contract_error) = match &report.contract {
        Ok(contract) => (Some(contract.clone()), None),
        Err(error) => (None, Some(error.clone())),
    };
    let out = to_python(py, &report)?;
    let d = out.cast::<PyDict>()?;
    d.set_item("contract", to_python(py, &contract)?)?;
    d.set_item("contract_error", contract_error)?;
    d.set_item("passed", passed)?;
    Ok(out)
}

/// The held-out record from a dict: `val_bpb_random_init`, `val_bpb_trained`, and optionally
/// `train_bpb_converged` and `val_covered_bytes`.
fn heldout(value: &Bound<'_, PyAny>, prequential_bpb: Option<f64>) -> PyResult<Heldout> {
    let field = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        match value.get_item(key) {
            Ok(v) if v.is_none() => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(_) => Ok(None),
        }
    };
    let required = |key: &str| -> PyResult<f64> {
        field(key)?
            .ok_or_else(|| bad_argument(format!("heldout needs `{key}`")))?
            .extract()
    };
    Ok(Heldout::new(
        required("val_bpb_random_init")?,
        required("val_bpb_trained")?,
        field("train_bpb_converged")?
            .map(|v| v.extract())
            .transpose()?,
        prequential_bpb,
        field("val_covered_bytes")?
            .map(|v| v.extract())
            .transpose()?
            .unwrap_or(0),
    ))
}

/// Scores a finished run as PRISM's `score_prequential_bpb` does. The run is either `batches`
/// (one `(rows, cols, mean_loss)` per training batch in order, `mean_loss` None or non-finite for
/// a NaN/inf batch, counted as 2 ln V) with `vocab_size`, or `prequential`, the record a run
/// report holds (`train.prequential`). `heldout` (`val_bpb_random_init`, `val_bpb_trained`,
/// optional `train_bpb_converged`, `val_covered_bytes`) adds the tie-break and the memorisation
/// gap; `near_duplicate` is the plagiarism multiplier (1: none). Returns `{"score": {bpb,
/// final_score, base, tie_break, stored_score, flags, ...}, "prequential": {...}, "heldout":
/// {...} | None}`. A run that never trained or whose bpb is not a positive number raises
/// `MinerError`.
#[pyfunction]
#[pyo3(signature = (batches=None, vocab_size=None, *, prequential=None, heldout=None, near_duplicate=1.0))]
fn score_run<'py>(
    py: Python<'py>,
    batches: Option<&Bound<'py, PyList>>,
    vocab_size: Option<u32>,
    prequential: Option<&Bound<'py, PyAny>>,
    heldout: Option<&Bound<'py, PyAny>>,
    near_duplicate: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let preq = match (batches, vocab_size, prequential) {
        (Some(batches), Some(vocab), None) => {
            let mut preq = Prequential::new(vocab);
            for batch in batches.iter() {
                // A tuple or a list (as JSON gives it): `(rows, cols, mean_loss)`.
                let rows: usize = batch.get_item(0)?.extract()?;
                let cols: usize = batch.get_item(1)?.extract()?;
                let loss: Option<f64> = batch.get_item(2)?.extract()?;
                preq.record(rows, cols, loss);
            }
            preq
        }
        (None, None, Some(record)) => from_python::<Prequential>(record, "prequential record")?,
        _ => {
            return Err(bad_argument(
                "give batches with vocab_size, or a prequential record",
            ));
        }
    };
    let heldout = heldout.map(|h| self::heldout(h, preq.bpb())).transpose()?;
    let score = final_score(&preq, heldout.as_ref(), near_duplicate).map_err(diagnosed)?;
    let d = PyDict::new(py);
    d.set_item("score", to_python(py, &score)?)?;
    d.set_item("prequential", to_python(py, &preq)?)?;
    d.set_item("heldout", to_python(py, &heldout)?)?;
    Ok(d)
}

/// PRISM's leaderboard and crown, kept in one JSON state file: submissions ranked by score (ties
/// within 1e-9 to the earlier commit, one row per hotkey), architecture families owned by their
/// first submitter (60% of the weight) and training variants owned by whoever scores best with
/// them (40%).
#[pyclass(module = "assay.prism", frozen)]
struct Leaderboard {
    state: Mutex<State>,
}

impl Leaderboard {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl Leaderboard {
    /// An empty leaderboard.
    #[new]
    fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
        }
    }

    /// Reads a state file (`assay serve` and `assay prism` keep one); a missing file gives an
    /// empty leaderboard, a malformed one raises `OperatorError`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let state = py.detach(|| State::load(&path)).map_err(diagnosed)?;
        Ok(Self {
            state: Mutex::new(state),
        })
    }

    /// Writes the state file atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let state = self.lock().clone();
        py.detach(|| state.save(&path)).map_err(diagnosed)
    }

    /// Records a scored submission and returns its id. `score` is the stored score (a run's
    /// `stored_score`), `accepted_at` its commit time or block (lower is earlier).
    #[pyo3(signature = (
        hotkey, accepted_at, score, bpb, family_hash, training_hash, *, fingerprint=None,
        structure=None, architecture_name=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        hotkey: String,
        accepted_at: u64,
        score: f64,
        bpb: f64,
        family_hash: String,
        training_hash: String,
        fingerprint: Option<BTreeSet<String>>,
        structure: Option<BTreeSet<String>>,
        architecture_name: Option<String>,
    ) -> PyResult<u64> {
        if !score.is_finite() || !bpb.is_finite() {
            return Err(bad_argument(format!(
                "score {score} and bpb {bpb} must be finite numbers"
            )));
        }
        Ok(self.lock().record(ScoredSubmission {
            hotkey,
            accepted_at,
            score,
            bpb,
            family_hash,
            training_hash,
            fingerprint: fingerprint.unwrap_or_default(),
            structure: structure.unwrap_or_default(),
            architecture_name,
        }))
    }

    /// The ranking, best first: each hotkey's best submission as a dict (`id`, `hotkey`,
    /// `accepted_at`, `score`, `bpb`, ...).
    fn ranking<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.lock();
        to_python(py, &state.leaderboard())
    }

    /// The crowned architecture family (`owner_hotkey`, `q_arch_best`, ...), or None.
    fn best_family<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.lock();
        to_python(py, &state.best_family())
    }

    /// Weights by hotkey: 0.6 to the crowned family's owner, 0.4 to the owner of its best
    /// training variant (one hotkey may get both); empty before anything scored.
    fn weights(&self) -> std::collections::BTreeMap<String, f64> {
        self.lock().weights()
    }

    /// The whole state as the state file holds it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &*self.lock())
    }

    fn __len__(&self) -> usize {
        self.lock().submissions.len()
    }
}
