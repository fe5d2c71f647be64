//! `assay._assay`, the native half of the `assay` Python package.
//!
//! The Rust core crates know nothing of Python; this crate turns their functions into Python
//! ones. Every heavy call runs with the GIL released ([`Python::detach`]); errors become the
//! exception classes of the `errors` module (one per [`assay_errors::Blame`]); lists of numbers come back
//! as numpy arrays. The Python package (`py_src/assay/`) arranges these functions into
//! submodules and adds the pure-Python parts (the Datacomp interview contract, the PRISM client).
#![warn(missing_docs)]

use pyo3::prelude::*;

mod bon;
mod datacomp;
mod engine;
mod errors;
mod ftchallenge;
mod integrity;
mod metrics;
mod prism;
mod signing;
mod sn37;
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
    submodule(m, "sn37", sn37::register)?;
    submodule(m, "ftchallenge", ftchallenge::register)?;
    submodule(m, "bon", bon::register)?;
    submodule(m, "prism", prism::register)?;
    submodule(m, "datacomp", datacomp::register)?;
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

/// A pipeline's settings: `defaults` with the keyword arguments of a Python call laid over
/// them, nested dicts merged key by key (so `sampling={"n": 4}` changes only `n`). The pipeline
/// crates' settings types are plain serde data, so one merge serves every pipeline and a new
/// setting needs no binding change. Unknown keys are refused by name rather than ignored.
pub(crate) fn settings_with<T: serde::Serialize + serde::de::DeserializeOwned>(
    defaults: &T,
    overrides: Option<&Bound<'_, pyo3::types::PyDict>>,
    what: &str,
) -> PyResult<T> {
    let mut value = serde_json::to_value(defaults)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot convert: {e}")))?;
    if let Some(overrides) = overrides {
        let overrides: serde_json::Value = from_python(overrides.as_any(), what)?;
        check_known(&value, &overrides, what)?;
        merge(&mut value, overrides);
    }
    serde_json::from_value(value).map_err(|e| errors::bad_argument(format!("bad {what}: {e}")))
}

/// Refuses a top-level key the settings do not have (serde would drop it silently).
fn check_known(
    defaults: &serde_json::Value,
    overrides: &serde_json::Value,
    what: &str,
) -> PyResult<()> {
    if let (Some(known), Some(given)) = (defaults.as_object(), overrides.as_object())
        && let Some(unknown) = given.keys().find(|k| !known.contains_key(*k))
    {
        let mut names: Vec<&str> = known.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(errors::bad_argument(format!(
            "unknown {what} `{unknown}`; known: {}",
            names.join(", ")
        )));
    }
    Ok(())
}

/// Lays `over` on `base`: an object whose keys all exist in `base` merges key by key; anything
/// else replaces (an enum such as `{"generated": {...}}` given as `{"file": ...}` is a new value,
/// not a mixture of both).
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(base), serde_json::Value::Object(over))
            if over.keys().all(|k| base.contains_key(k)) =>
        {
            for (key, value) in over {
                if let Some(slot) = base.get_mut(&key) {
                    merge(slot, value);
                }
            }
        }
        (base, over) => *base = over,
    }
}
