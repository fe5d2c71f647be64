//! Exceptions: `AssayError` and one subclass per [`Blame`], so a validator can write
//! `except assay.MinerError` (score zero) apart from `except assay.TransientError` (retry).

use assay_errors::{Blame, Diagnose, chain};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    assay,
    AssayError,
    PyException,
    "Base class of every error assay raises. `.blame` says whose fault it is, `.hint` what to do."
);
create_exception!(
    assay,
    MinerError,
    AssayError,
    "The submission is at fault (malformed data, a broken model): score it zero; retrying cannot help."
);
create_exception!(
    assay,
    OperatorError,
    AssayError,
    "The validator's own configuration or inputs are wrong (a missing file, a bad option)."
);
create_exception!(
    assay,
    TransientError,
    AssayError,
    "A passing condition (out of memory, a timeout): the same work may succeed if retried."
);
create_exception!(
    assay,
    BugError,
    AssayError,
    "An internal invariant failed: a bug in assay. Please report it."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AssayError", py.get_type::<AssayError>())?;
    m.add("MinerError", py.get_type::<MinerError>())?;
    m.add("OperatorError", py.get_type::<OperatorError>())?;
    m.add("TransientError", py.get_type::<TransientError>())?;
    m.add("BugError", py.get_type::<BugError>())?;
    Ok(())
}

/// The Python exception for `error`: the class of its blame, the message with its whole cause
/// chain, and `blame` / `hint` attributes.
pub fn diagnosed<E: Diagnose>(error: E) -> PyErr {
    let blame = error.blame();
    let hint = error.hint();
    let mut message = chain(&error);
    if let Some(hint) = &hint {
        message.push_str("\nhint: ");
        message.push_str(hint);
    }
    let err = match blame {
        Blame::Miner => MinerError::new_err(message),
        Blame::Operator => OperatorError::new_err(message),
        Blame::Transient => TransientError::new_err(message),
        Blame::Bug => BugError::new_err(message),
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Setting attributes on a fresh exception object cannot fail in practice; if it did,
        // the exception is still raised with its message.
        let _ = value.setattr("blame", blame.as_str());
        let _ = value.setattr("hint", hint);
    });
    err
}

/// A `ValueError` for an argument the caller got wrong (checked before any work).
pub fn bad_argument(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
