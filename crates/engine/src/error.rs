//! The engine's error type: every failure names the file or input and says what to do.

use std::path::PathBuf;

/// Errors from loading, tokenising, running or training models.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file or folder could not be read (or opened, or listed).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file or folder could not be written (or created, synced, or moved into place).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A model file is malformed: truncated, inconsistent or of an unsupported kind.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The model's configuration cannot be used.
    #[error("model config: {0}")]
    Config(String),
    /// A weight is missing or has the wrong shape or dtype.
    #[error("weight `{name}`: {message}")]
    Weight {
        /// The tensor name (Hugging Face naming).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The model could not be found where the user pointed.
    #[error("model not found: {0}")]
    NotFound(String),
    /// Tokenizer or chat-template failure.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Chat-template rendering failure.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// A request the model cannot serve (too long, empty, bad parameters).
    #[error("invalid request: {0}")]
    Request(String),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Fetching an asset failed.
    #[error("asset: {0}")]
    Asset(String),
}

/// Shorthand for results with [`EngineError`].
pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    /// A malformed-file error for `path`.
    pub fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A failure to read `path`.
    pub fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Read {
            path: path.into(),
            source,
        }
    }

    /// A failure to write `path`.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
            path: path.into(),
            source,
        }
    }
}

impl assay_errors::Diagnose for EngineError {
    /// The engine cannot know whose model it was given, so a broken model file is blamed on its
    /// supplier as a miner's: a pipeline loading the operator's own base model re-blames it.
    fn blame(&self) -> assay_errors::Blame {
        use assay_errors::Blame;
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => {
                assay_errors::io_blame(source)
            }
            Self::BadFile { .. }
            | Self::Config(_)
            | Self::Weight { .. }
            | Self::Tokenizer(_)
            | Self::ChatTemplate(_) => Blame::Miner,
            Self::NotFound(_) | Self::Request(_) => Blame::Operator,
            Self::Asset(_) => Blame::Transient,
            Self::Tensor(e) => {
                let text = e.to_string().to_lowercase();
                if text.contains("out of memory") || text.contains("out_of_memory") {
                    Blame::Transient
                } else {
                    Blame::Bug
                }
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Write { path, .. } => Some(format!(
                "check that {} is writable and its disk has room",
                path.display()
            )),
            Self::NotFound(_) => Some(
                "pass --model a Hugging Face folder, a .gguf file, or org/name[@revision] from the \
                 local HF cache (HF_HUB_CACHE / HF_HOME)"
                    .into(),
            ),
            Self::Tensor(e) if e.to_string().to_lowercase().contains("out of memory") => Some(
                "the model does not fit: try --dtype bf16, a smaller batch, or another GPU".into(),
            ),
            _ => None,
        }
    }
}
