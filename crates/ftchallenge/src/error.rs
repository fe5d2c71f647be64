//! The crate's error type: every failure names the file, line or field and says what to do, and
//! whose fault it is ([`Diagnose`]): a candidate's `results.json` is the submission (the miner's);
//! the training data, labels, taxonomy, settings and base model are the host's (the operator's).

use std::path::PathBuf;

use assay_errors::{Blame, Diagnose};

/// Errors of the challenge runner and grader.
#[derive(Debug, thiserror::Error)]
pub enum FtError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One line of a JSONL file is wrong.
    #[error("{}:{line}: {message}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, and what to do.
        message: String,
    },
    /// A whole file is wrong (empty, not JSON, inconsistent with another file).
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The candidate's results file breaks the schema or does not answer the validation rows.
    #[error("{}: {message}", path.display())]
    BadResults {
        /// The results file.
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
    #[error("tensor operation failed")]
    Tensor(#[from] assay_engine::candle_core::Error),
    /// The LLM judge could not be asked or gave an unusable answer.
    #[error("judge: {0}")]
    Judge(String),
    /// The sentence-embedding model could not be loaded or run (`--no-embedding` skips it).
    #[error("embedding similarity failed")]
    Similarity(#[source] assay_eval::text::embedder::EmbedderError),
}

/// Shorthand for results with [`FtError`].
pub type Result<T> = std::result::Result<T, FtError>;

impl FtError {
    /// A read failure on `path`.
    pub fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Read {
            path: path.into(),
            source,
        }
    }

    /// A write failure on `path`.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
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

    /// A bad results file (the candidate's submission).
    pub fn results(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::BadResults {
            path: path.into(),
            message: message.into(),
        }
    }
}

fn out_of_memory(e: &assay_engine::candle_core::Error) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("out of memory") || text.contains("out_of_memory")
}

impl Diagnose for FtError {
    fn blame(&self) -> Blame {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => {
                assay_errors::io_blame(source)
            }
            Self::BadResults { .. } => Blame::Miner,
            Self::BadLine { .. } | Self::BadFile { .. } | Self::Setting(_) => Blame::Operator,
            // The base model is the host's own, so a broken one is the operator's to fix.
            Self::Engine(e) => match e.blame() {
                Blame::Miner => Blame::Operator,
                other => other,
            },
            Self::Tensor(e) if out_of_memory(e) => Blame::Transient,
            Self::Tensor(_) => Blame::Bug,
            Self::Judge(_) | Self::Similarity(_) => Blame::Transient,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Engine(e) => e.hint(),
            Self::Similarity(_) => {
                Some("pass --no-embedding to grade without the embedding similarity".into())
            }
            Self::Judge(_) => Some(
                "check that --judge-url answers OpenAI-style /chat/completions requests, or grade \
                 without a judge"
                    .into(),
            ),
            Self::Tensor(e) if out_of_memory(e) => {
                Some("the model does not fit: try --dtype bf16 or a smaller --batch-tokens".into())
            }
            Self::Write { .. } => Some("check that the output folder is writable".into()),
            _ => None,
        }
    }
}
