//! `assay.weights`: scores to weights that sum to 1, and the u16 `(uids, weights)` a Bittensor
//! validator emits (identical to the SDK's own quantisation; see `assay_weights::emit`).

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::diagnosed;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(to_u16, m)?)?;
    m.add_function(wrap_pyfunction!(emit_u16, m)?)?;
    Ok(())
}

/// Scores scaled to sum 1 (float64 array). Negative, NaN and infinite scores count as 0; when
/// nothing is positive every weight is 0.
#[pyfunction]
fn normalize<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let scores = scores.as_slice()?;
    Ok(assay_weights::normalize(scores).into_pyarray(py))
}

/// One u16 weight per score (uint16 array, zeros kept): the largest becomes 65535, the others
/// scale with it, rounded half to even.
#[pyfunction]
fn to_u16<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<u16>>> {
    let scores = scores.as_slice()?;
    Ok(assay_weights::to_u16(scores).into_pyarray(py))
}

/// `(uids, weights)` as lists of ints, ready for the chain: bittensor's max-upscale, u16
/// quantisation and dropping of zeros (`bittensor.intents.weights.normalize` in SDK 11,
/// `convert_weights_and_uids_for_emit` before). Raises `OperatorError` on negative or
/// non-finite weights, uids outside 0..65535, or lists of different lengths.
#[pyfunction]
fn emit_u16(
    uids: PyReadonlyArray1<'_, i64>,
    weights: PyReadonlyArray1<'_, f64>,
) -> PyResult<(Vec<u16>, Vec<u16>)> {
    assay_weights::emit_u16(uids.as_slice()?, weights.as_slice()?).map_err(diagnosed)
}
