//! `assay.bon`: best-of-N with a process reward model: the reward model's step rewards, the
//! selection rules (weighted best-of-N, majority vote, naive best-of-N) with grading against the
//! gold answer, and the whole run (sample, score, select, write the dataset and analysis).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use assay_bon::pipeline::{Sample, evaluate as evaluate_run};
use assay_bon::prm::{RewardKind, RewardModel as Prm};
use assay_bon::{BonSettings, Event};
use assay_eval::math::select::{Aggregation, aggregate_scores};
use assay_eval::math::{extract_answer, math_equal};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::engine::{Callback, placement};
use crate::errors::{bad_argument, diagnosed};
use crate::{settings_with, to_python};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RewardModel>()?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    Ok(())
}

fn reward_kind(kind: Option<&str>) -> PyResult<Option<RewardKind>> {
    match kind {
        None => Ok(None),
        Some("process") => Ok(Some(RewardKind::Process)),
        Some("outcome") => Ok(Some(RewardKind::Outcome)),
        Some(other) => Err(bad_argument(format!(
            "unknown reward kind `{other}`: use process or outcome"
        ))),
    }
}

fn aggregation(name: &str) -> PyResult<Aggregation> {
    match name {
        "last" => Ok(Aggregation::Last),
        "min" => Ok(Aggregation::Min),
        "prod" => Ok(Aggregation::Prod),
        other => Err(bad_argument(format!(
            "unknown aggregation `{other}`: use last, min or prod"
        ))),
    }
}

/// A process (or outcome) reward model: a Skywork-layout folder, a Hugging Face cache id, or a
/// `prm.json` folder made by `assay prm train`. Calls on one model run one at a time, each with
/// the GIL released.
#[pyclass(module = "assay.bon", frozen)]
struct RewardModel {
    inner: Mutex<Prm>,
    spec: String,
}

impl RewardModel {
    fn lock(&self) -> MutexGuard<'_, Prm> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl RewardModel {
    /// Loads the reward model `spec`; `kind` (`process`: one reward per response line,
    /// `outcome`: one at the end) overrides the model's own; `device` and `dtype` as in
    /// `Model.load`.
    #[staticmethod]
    #[pyo3(signature = (spec, kind=None, device="cpu", dtype=None))]
    fn load(
        py: Python<'_>,
        spec: String,
        kind: Option<&str>,
        device: &str,
        dtype: Option<&str>,
    ) -> PyResult<Self> {
        let kind = reward_kind(kind)?;
        let placement = placement(device, dtype)?;
        let prm = py
            .detach(|| {
                let options = placement.load_options()?;
                Prm::load(&spec, kind, &options)
            })
            .map_err(diagnosed)?;
        Ok(Self {
            inner: Mutex::new(prm),
            spec,
        })
    }

    /// Step rewards (the head's sigmoid) of each response to `problem`: one list per response,
    /// one reward per step (line) for a process model, one for an outcome model. `batch`
    /// sequences run per forward pass (the rewards do not depend on it).
    #[pyo3(signature = (problem, responses, *, batch=8))]
    fn score(
        &self,
        py: Python<'_>,
        problem: String,
        responses: Vec<String>,
        batch: usize,
    ) -> PyResult<Vec<Vec<f64>>> {
        py.detach(|| self.lock().score(&problem, &responses, batch.max(1)))
            .map_err(diagnosed)
    }

    /// `process` or `outcome`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.lock().kind.as_str()
    }

    fn __repr__(&self) -> String {
        format!("RewardModel({}, {})", self.spec, self.kind())
    }
}

/// A sample from a dict: `pred` (else the answer extracted from `text`), and `score` (else
/// `step_scores` aggregated), graded against `gold`.
fn sample(item: &Bound<'_, PyAny>, gold: &str, how: Aggregation) -> PyResult<Sample> {
    let dict = item
        .cast::<PyDict>()
        .map_err(|_| bad_argument(format!("a sample is a dict, not {item}")))?;
    let text: String = match dict.get_item("text")? {
        Some(t) => t.extract()?,
        None => String::new(),
    };
    let pred: String = match dict.get_item("pred")? {
        Some(p) => p.extract()?,
        None if dict.contains("text")? => extract_answer(&text),
        None => return Err(bad_argument("a sample needs `pred` or `text`")),
    };
    let step_scores: Vec<f64> = match dict.get_item("step_scores")? {
        Some(s) => s.extract()?,
        None => Vec::new(),
    };
    let score: f64 = match dict.get_item("score")? {
        Some(s) => s.extract()?,
        None => aggregate_scores(&step_scores, how)
            .ok_or_else(|| bad_argument("a sample needs `score` or non-empty `step_scores`"))?,
    };
    let tokens: usize = match dict.get_item("tokens")? {
        Some(t) => t.extract()?,
        None => 0,
    };
    Ok(Sample {
        correct: math_equal(&pred, gold),
        pred,
        step_scores,
        score,
        tokens,
        text,
    })
}

/// Grades and selects: `samples[p]` are the scored samples of problem `p` (dicts with `pred` or
/// `text`, and `score` or `step_scores`), `gold[p]` its gold answer. Each sample is graded by
/// math equivalence; the three rules (weighted best-of-N: rewards summed per equivalent answer;
/// majority vote; naive best-of-N: highest reward) pick an answer over the first `k` samples for
/// each budget k = 1, 2, 4, ... up to `n` (default: the fewest samples of any problem). Returns
/// `{"samples", "selections", "curve", "sample_accuracy", "temperature"}` as a run's report does.
#[pyfunction]
#[pyo3(signature = (samples, gold, *, n=None, aggregation="last", temperature=0.0))]
fn evaluate<'py>(
    py: Python<'py>,
    samples: &Bound<'py, PyList>,
    gold: Vec<String>,
    n: Option<usize>,
    aggregation: &str,
    temperature: f32,
) -> PyResult<Bound<'py, PyAny>> {
    let how = self::aggregation(aggregation)?;
    if samples.len() != gold.len() {
        return Err(bad_argument(format!(
            "{} problems of samples but {} gold answers",
            samples.len(),
            gold.len()
        )));
    }
    let samples = samples
        .iter()
        .zip(&gold)
        .map(|(group, g)| {
            group
                .try_iter()?
                .map(|item| sample(&item?, g, how))
                .collect::<PyResult<Vec<_>>>()
        })
        .collect::<PyResult<Vec<_>>>()?;
    let fewest = samples.iter().map(Vec::len).min().unwrap_or(0);
    let n = n.unwrap_or(fewest);
    if n == 0 || n > fewest {
        return Err(bad_argument(format!(
            "n = {n} but the fewest samples of a problem is {fewest}: every problem needs at \
             least n >= 1 samples"
        )));
    }
    let run = py
        .detach(|| evaluate_run(temperature, samples, &gold, n))
        .map_err(diagnosed)?;
    to_python(py, &run)
}

/// Runs best-of-N end to end: loads the generator `model` (None: the embedded default) and the
/// reward model `prm`, samples `n` solutions per problem at each temperature, scores every step,
/// selects with the three rules, and writes the dataset, plots, analysis and `results.json` into
/// `out`. Further settings go as keywords over the CLI's defaults, nested dicts merged key by key:
/// `problems={"count": 3}`, `sampling={"n": 4, "max_new_tokens": 64, "seed": 1}`,
/// `prm_kind="outcome"`, `command="..."`. Returns the report (`gold`, `greedy`, `runs` with their
/// `curve`s, ...). `progress` gets `{"event": "loading", "what"}`, `{"event": "stage", "name",
/// "total"}` and `{"event": "advance", "done"}` dicts.
#[pyfunction]
#[pyo3(signature = (prm, out, *, model=None, device="cpu", dtype=None, progress=None, **settings))]
#[allow(clippy::too_many_arguments)]
fn run<'py>(
    py: Python<'py>,
    prm: String,
    out: PathBuf,
    model: Option<String>,
    device: &str,
    dtype: Option<&str>,
    progress: Option<Py<PyAny>>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut defaults = BonSettings::new(prm, out);
    defaults.model = model;
    defaults.placement = placement(device, dtype)?;
    let settings = settings_with(&defaults, settings, "best-of-N setting")?;
    let mut callback = Callback::new(progress);
    let result = py.detach(|| {
        assay_bon::run(&settings, |event| {
            callback.call(|e| match event {
                Event::Loading { what } => {
                    e.set_item("event", "loading")?;
                    e.set_item("what", what)
                }
                Event::Stage { name, total } => {
                    e.set_item("event", "stage")?;
                    e.set_item("name", name)?;
                    e.set_item("total", total)
                }
                Event::Advance(done) => {
                    e.set_item("event", "advance")?;
                    e.set_item("done", done)
                }
            })
        })
    });
    callback.finish()?;
    let report = result.map_err(diagnosed)?;
    to_python(py, &report)
}
