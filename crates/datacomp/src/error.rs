//! Errors of the Datacomp pipeline.

use std::path::{Path, PathBuf};

use assay_errors::{Blame, Diagnose};

/// What can stop a Datacomp round (a bad miner file never does: it is reported and scored 0).
#[derive(Debug, thiserror::Error)]
pub enum DatacompError {
    /// A file of the validator's (manifest, eval set, policy) could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An output (results, report, adapters, the output folder) could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
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
    #[error("model work failed")]
    Engine(
        #[from]
        #[source]
        assay_engine::EngineError,
    ),
    /// Integrity parameters are invalid.
    #[error("integrity policy: {0}")]
    Policy(String),
    /// The output folder holds a finished round and `overwrite` was not asked for.
    #[error("{path} already holds a finished round (results.json)")]
    OutputExists {
        /// The output folder.
        path: PathBuf,
    },
}

impl DatacompError {
    /// A read error on `path`.
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A write error on `path`.
    pub fn write(path: &Path, source: std::io::Error) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Diagnose for DatacompError {
    fn blame(&self) -> Blame {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => {
                assay_errors::io_blame(source)
            }
            Self::BadInput { .. } | Self::Policy(_) | Self::OutputExists { .. } => Blame::Operator,
            Self::Engine(e) => e.blame(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Read { .. } => Some("check that the path exists and is readable".into()),
            Self::Write { .. } => {
                Some("check that the output folder's parent exists and is writable".into())
            }
            Self::OutputExists { .. } => {
                Some("choose a new --out folder, or pass --overwrite to replace it".into())
            }
            Self::Policy(_) => Some("fix the value in the --policy file".into()),
            Self::Engine(e) => e.hint(),
            Self::BadInput { .. } => None,
        }
    }
}
