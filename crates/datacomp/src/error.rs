//! Errors of the Datacomp pipeline.

use std::path::{Path, PathBuf};

/// What can stop a Datacomp round (a bad miner file never does: it is reported and scored 0).
#[derive(Debug, thiserror::Error)]
pub enum DatacompError {
    /// A file of the validator's (manifest, eval set, output) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Validator input is malformed.
    #[error("{what}: {message}")]
    BadInput {
        /// Which input.
        what: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The engine failed (model, tokenizer, training).
    #[error(transparent)]
    Engine(#[from] assay_engine::EngineError),
    /// Integrity parameters are invalid.
    #[error("integrity policy: {0}")]
    Policy(String),
}

impl DatacompError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
