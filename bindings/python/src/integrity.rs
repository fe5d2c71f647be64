//! `assay.integrity`: canonical forms, exact and near duplicates, submission schema checks and
//! model-folder checks, as the Rust crate `assay-integrity` runs them.

use std::path::PathBuf;

use assay_integrity::canonical;
use assay_integrity::dedup;
use assay_integrity::minhash::MinHashParams;
use assay_integrity::models::{ModelRules, check_model_folder as check_folder};
use assay_integrity::schema::{Limits, read_submission_bytes};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use crate::errors::bad_argument;
use crate::{from_python, to_python};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(canonical_form, m)?)?;
    m.add_function(wrap_pyfunction!(content_hash, m)?)?;
    m.add_function(wrap_pyfunction!(exact_duplicates, m)?)?;
    m.add_function(wrap_pyfunction!(near_duplicates, m)?)?;
    m.add_function(wrap_pyfunction!(check_submission, m)?)?;
    m.add_function(wrap_pyfunction!(check_model_folder, m)?)?;
    Ok(())
}

/// The canonical form of a text: Unicode NFKC, case-folded, punctuation and whitespace runs
/// collapsed, so cosmetic edits of one text give the same form.
#[pyfunction]
fn canonical_form(text: &str) -> String {
    canonical::canonical_form(text)
}

/// Hex SHA-256 of the canonical form of `text`: equal hashes mean the same data up to cosmetic
/// edits.
#[pyfunction]
fn content_hash(text: &str) -> String {
    hex::encode(dedup::content_hash(&canonical::canonical_form(text)))
}

/// For each text, the index of the first earlier text with the same canonical form, else None.
#[pyfunction]
fn exact_duplicates(py: Python<'_>, texts: Vec<PyBackedStr>) -> Vec<Option<usize>> {
    py.detach(|| {
        let forms: Vec<String> = texts.iter().map(|t| canonical::canonical_form(t)).collect();
        dedup::exact_duplicates(&forms)
    })
}

/// For each text, the best near duplicate (MinHash/LSH over word shingles of the canonical
/// forms) among the texts before it, as `(index, estimated_jaccard)`, else None. `params`
/// overrides the defaults (`num_perm`, `shingle_words`, `threshold`, `bands`, `rows`, `seed`...).
#[pyfunction]
#[pyo3(signature = (texts, params=None))]
fn near_duplicates(
    py: Python<'_>,
    texts: Vec<PyBackedStr>,
    params: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<Option<(usize, f32)>>> {
    let params: MinHashParams = match params {
        Some(p) => from_python(p, "MinHash parameters")?,
        None => MinHashParams::default(),
    };
    let found = py
        .detach(|| {
            let forms: Vec<String> = texts.iter().map(|t| canonical::canonical_form(t)).collect();
            dedup::near_duplicates(&forms, &params)
        })
        .map_err(|e| bad_argument(e.to_string()))?;
    Ok(found
        .into_iter()
        .map(|m| m.map(|m| (m.id, m.jaccard)))
        .collect())
}

/// Reads a miner's JSONL submission (`data`, named `file` in messages) with the schema checks:
/// `{"rows": [...], "problems": [...]}`. Never raises for bad data: every problem is listed.
#[pyfunction]
#[pyo3(signature = (file, data, limits=None))]
fn check_submission<'py>(
    py: Python<'py>,
    file: &str,
    data: &[u8],
    limits: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let limits: Limits = match limits {
        Some(l) => from_python(l, "limits")?,
        None => Limits::default(),
    };
    let intake = py.detach(|| read_submission_bytes(file, data, &limits));
    to_python(py, &intake)
}

/// Checks a model folder (config, safetensors headers, parameter count, projection norms,
/// weight fingerprint) against `rules` (defaults when None): the report as a dict with an
/// `accepted` key. Never raises for a bad model: every failure is a violation in the report.
#[pyfunction]
#[pyo3(signature = (path, rules=None))]
fn check_model_folder<'py>(
    py: Python<'py>,
    path: PathBuf,
    rules: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let rules: ModelRules = match rules {
        Some(r) => from_python(r, "model rules")?,
        None => ModelRules::default(),
    };
    let report = py.detach(|| check_folder(&path, &rules));
    let accepted = report.accepted();
    let out = to_python(py, &report)?;
    out.set_item("accepted", accepted)?;
    Ok(out)
}
