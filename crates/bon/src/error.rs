//! Errors of the best-of-N pipeline and the reward models: what went wrong, where, whose fault it is
//! ([`Diagnose`]) and what to do.
//!
//! Everything this crate is given (problem files, models, reward heads, settings) comes from the
//! person running it, so input faults are the operator's; tensor failures are bugs unless the device
//! ran out of memory.

use std::path::{Path, PathBuf};

use assay_errors::{Blame, Diagnose};
use thiserror::Error;

/// What went wrong.
#[derive(Debug, Error)]
pub enum BonError {
    /// A setting or an input is unusable (arguments, problems, reward-model checkpoints).
    #[error("{0}")]
    Input(String),
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file has the wrong content.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A table (JSON lines or Parquet) could not be read or written.
    #[error(transparent)]
    Table(#[from] assay_tables::TableError),
    /// The engine failed (loading, tokenising, generating).
    #[error(transparent)]
    Engine(#[from] assay_engine::EngineError),
    /// A tensor operation failed.
    #[error("tensor operation failed")]
    Tensor(#[from] candle_core::Error),
    /// Selection over answers failed.
    #[error(transparent)]
    Select(#[from] assay_eval::math::select::SelectError),
}

impl BonError {
    /// A read failure on `path`.
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A write failure on `path`.
    pub fn write(path: &Path, source: std::io::Error) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A content error in `path`.
    pub fn bad_file(path: &Path, message: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

fn out_of_memory(e: &candle_core::Error) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("out of memory") || text.contains("out_of_memory")
}

impl Diagnose for BonError {
    fn blame(&self) -> Blame {
        match self {
            Self::Input(_) | Self::BadFile { .. } => Blame::Operator,
            Self::Read { source, .. } | Self::Write { source, .. } => {
                assay_errors::io_blame(source)
            }
            Self::Table(assay_tables::TableError::Io { source, .. }) => {
                assay_errors::io_blame(source)
            }
            Self::Table(_) => Blame::Operator,
            // The generator and the reward model are the operator's own: a broken one is not a
            // miner's fault here.
            Self::Engine(e) => match e.blame() {
                Blame::Miner => Blame::Operator,
                other => other,
            },
            Self::Tensor(e) if out_of_memory(e) => Blame::Transient,
            Self::Tensor(_) | Self::Select(_) => Blame::Bug,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Engine(e) => e.hint(),
            Self::Tensor(e) if out_of_memory(e) => Some(
                "the models do not fit: try --dtype bf16, a smaller --batch-rows / --prm-batch, or \
                 another GPU"
                    .into(),
            ),
            Self::Write { .. } => Some("check that the output folder is writable".into()),
            _ => None,
        }
    }
}

/// Result with [`BonError`].
pub type Result<T> = std::result::Result<T, BonError>;
