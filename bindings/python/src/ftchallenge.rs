//! `assay.ftchallenge`: the fine-tuning challenge's grader (intent with synonyms, reply
//! quality, regression probes, training efficiency) on a candidate's `results.json`.

use std::path::PathBuf;

use assay_ftchallenge::{GradeInputs, GradeSettings, JudgeSettings, grade_with};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{bad_argument, diagnosed};
use crate::to_python;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(grade, m)?)?;
    Ok(())
}

/// Grades a candidate's `results` (its `results.json`) against the hidden `labels` (JSONL) with
/// the intent `taxonomy` (JSON with `intents` and `synonyms`; None: the labels' intents, no
/// synonyms). Total = 100 × (0.4 intent + 0.3 reply + 0.2 probes + 0.1 efficiency).
/// `embedding` adds the all-MiniLM-L6-v2 cosine to reply similarity (fetched once on first
/// use); `judge_url` and `judge_model` add an OpenAI-compatible LLM judge; `out` writes
/// `<out>.json` and `<out>.md`. Returns the report (`total`, `components`, `intent_accuracy`,
/// `majority_baseline`, `rows`, ...) with its Markdown under `markdown` and the files written
/// under `written`. A malformed or incomplete results file raises `MinerError`; bad labels,
/// taxonomy or paths `OperatorError`.
#[pyfunction]
#[pyo3(signature = (
    results, labels, taxonomy=None, *, embedding=true, judge_url=None, judge_model=None, out=None
))]
#[allow(clippy::too_many_arguments)]
fn grade<'py>(
    py: Python<'py>,
    results: PathBuf,
    labels: PathBuf,
    taxonomy: Option<PathBuf>,
    embedding: bool,
    judge_url: Option<String>,
    judge_model: Option<String>,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let judge = match (judge_url, judge_model) {
        (Some(url), Some(model)) => Some(JudgeSettings { url, model }),
        (None, None) => None,
        _ => {
            return Err(bad_argument(
                "give both judge_url and judge_model, or neither",
            ));
        }
    };
    let settings = GradeSettings {
        inputs: GradeInputs {
            results,
            labels,
            taxonomy,
        },
        judge,
        embedding,
        out,
    };
    let outcome = py.detach(|| grade_with(&settings)).map_err(diagnosed)?;
    let report = to_python(py, &outcome.report)?;
    let d = report.cast::<PyDict>()?;
    d.set_item("markdown", outcome.report.to_markdown())?;
    d.set_item("written", outcome.written)?;
    Ok(report)
}
