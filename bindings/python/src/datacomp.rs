//! `assay.datacomp.run_round`: a Datacomp round from the miners' submitted files to scores and
//! weights (integrity checks, one LoRA fine-tune per miner on the same budget, held-out
//! evaluation against the base model), as `assay datacomp run` does.

use std::path::PathBuf;

use assay_datacomp::{RoundEvent, RoundSettings, run};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::engine::{Callback, placement};
use crate::errors::diagnosed;
use crate::{settings_with, to_python};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_round, m)?)?;
    Ok(())
}

/// Runs a round on `submissions` (a folder with `round.json` and each miner's JSONL file) and
/// writes `results.json`, `report.md`, `eval_set.jsonl`, `timings.json`, the plots and the
/// adapters into `out` (moved into place only when complete). `model` is the base model (None:
/// the embedded default). Further settings go as keywords over the CLI's defaults: `eval`
/// (`{"generated": {"seed": None, "count": 8}}` or `{"file": path}`), `token_budget`, `lr`,
/// `rank`, `top_layers`, `batch_tokens`, `max_new_tokens`, `generate`, `policy`, `seed`,
/// `overwrite`. Returns the results (`miners` best first with `score`, `weight`, `weight_u16`,
/// `penalty_multiplier`, `reasons`, ...; `base`; `integrity`). `progress` gets `{"event":
/// "loading" | "checked" | "base_evaluated" | "training" | "scored" | "writing", ...}` dicts.
#[pyfunction]
#[pyo3(signature = (submissions, out, *, model=None, device="cpu", dtype=None, progress=None, **settings))]
#[allow(clippy::too_many_arguments)]
fn run_round<'py>(
    py: Python<'py>,
    submissions: PathBuf,
    out: PathBuf,
    model: Option<String>,
    device: &str,
    dtype: Option<&str>,
    progress: Option<Py<PyAny>>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let defaults = RoundSettings {
        model,
        placement: placement(device, dtype)?,
        submissions,
        out,
        ..RoundSettings::default()
    };
    let settings = settings_with(&defaults, settings, "datacomp setting")?;
    let mut callback = Callback::new(progress);
    let result = py.detach(|| {
        run(&settings, |event| {
            callback.call(|e| match event {
                RoundEvent::Loading { model, placement } => {
                    e.set_item("event", "loading")?;
                    e.set_item("model", model)?;
                    e.set_item("placement", placement)
                }
                RoundEvent::Writing => e.set_item("event", "writing"),
                RoundEvent::Checked => e.set_item("event", "checked"),
                RoundEvent::BaseEvaluated => e.set_item("event", "base_evaluated"),
                RoundEvent::Training {
                    miner,
                    index,
                    total,
                } => {
                    e.set_item("event", "training")?;
                    e.set_item("miner", miner)?;
                    e.set_item("index", index)?;
                    e.set_item("total", total)
                }
                RoundEvent::Scored { miner } => {
                    e.set_item("event", "scored")?;
                    e.set_item("miner", miner)
                }
            })
        })
    });
    callback.finish()?;
    let results = result.map_err(diagnosed)?;
    to_python(py, &results)
}
