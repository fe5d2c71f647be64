//! Errors of the best-of-N pipeline.

use std::path::Path;

use thiserror::Error;

/// What went wrong.
#[derive(Debug, Error)]
pub enum BonError {
    /// Bad user input (arguments, problem files, checkpoints).
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        message: String,
    },
    /// A file has the wrong content.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The engine failed (loading, tokenising, generating).
    #[error(transparent)]
    Engine(#[from] assay_engine::EngineError),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Selection over answers failed.
    #[error(transparent)]
    Select(#[from] assay_eval::math::select::SelectError),
}

impl BonError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, message: impl Into<String>) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: message.into(),
        }
    }

    /// A content error in `path`.
    pub fn bad_file(path: &Path, message: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Result with [`BonError`].
pub type Result<T> = std::result::Result<T, BonError>;
