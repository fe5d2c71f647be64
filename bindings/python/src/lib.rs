//! `assay._assay`, the native half of the `assay` Python package.
//!
//! The Rust core crates know nothing of Python; this crate turns their functions into Python
//! ones. Every heavy call runs with the GIL released ([`Python::detach`]); errors become the
//! exception classes of the `errors` module (one per [`assay_errors::Blame`]); lists of numbers come back
//! as numpy arrays. The Python package (`py_src/assay/`) arranges these functions into
//! submodules and adds the pure-Python parts (the Datacomp interview contract, the PRISM client).
#![warn(missing_docs)]

use pyo3::prelude::*;

mod engine;
mod errors;
mod integrity;
mod metrics;
mod signing;
mod weights;

/// Adds a submodule `name` built by `fill` to `parent`, importable as `assay._assay.<name>`.
fn submodule(
    parent: &Bound<'_, PyModule>,
    name: &str,
    fill: impl FnOnce(&Bound<'_, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let py = parent.py();
    let module = PyModule::new(py, name)?;
    fill(&module)?;
    parent.add_submodule(&module)?;
    // `import assay._assay.metrics` and pickling look modules up by their dotted name.
    py.import("sys")?
        .getattr("modules")?
        .set_item(format!("assay._assay.{name}"), &module)?;
    Ok(())
}

#[pymodule]
fn _assay(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    submodule(m, "engine", engine::register)?;
    submodule(m, "metrics", metrics::register)?;
    submodule(m, "integrity", integrity::register)?;
    submodule(m, "weights", weights::register)?;
    submodule(m, "signing", signing::register)?;
    Ok(())
}

/// A serde value as the Python object `json.loads` makes of it (dicts, lists, numbers, str).
pub(crate) fn to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot convert: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}

/// A serde value from a Python object (dict, list, ...) through `json.dumps`; `what` names it
/// in the error.
pub(crate) fn from_python<T: serde::de::DeserializeOwned>(
    value: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<T> {
    let json: String = value
        .py()
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()?;
    serde_json::from_str(&json).map_err(|e| errors::bad_argument(format!("bad {what}: {e}")))
}
