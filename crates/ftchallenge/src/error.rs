//! The crate's error type: every failure names the file, line or field and says what to do.

use std::path::PathBuf;

/// Errors of the challenge runner and grader.
#[derive(Debug, thiserror::Error)]
pub enum FtError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// One line of a JSONL file is wrong.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, and what to do.
        message: String,
    },
    /// A whole file is wrong (empty, not JSON, inconsistent with another file).
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// The engine failed (loading, tokenising, training, scoring, generating).
    #[error(transparent)]
    Engine(#[from] assay_engine::EngineError),
    /// A tensor operation of intent scoring failed.
    #[error("tensor: {0}")]
    Tensor(#[from] assay_engine::candle_core::Error),
    /// The LLM judge could not be asked or gave an unusable answer.
    #[error("judge: {0}")]
    Judge(String),
    /// The sentence-embedding model could not be loaded or run (`--no-embedding` skips it).
    #[error("embedding similarity: {0}; pass --no-embedding to grade without it")]
    Similarity(String),
}

/// Shorthand for results with [`FtError`].
pub type Result<T> = std::result::Result<T, FtError>;

impl FtError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A bad line `line` of `path`.
    pub fn line(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self::BadLine {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// A bad file.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }
}
