//! The crate's error type.

/// Why a table could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error on a file that callers outside this crate report (kept for them; this crate
    /// itself always says [`TableError::Read`] or [`TableError::Write`]).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The extension names no known format.
    #[error("{path}: unknown table format; use a .jsonl or .parquet file")]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// A JSON-lines line is not a JSON object, or is too long.
    #[error("{path}:{line}: {reason}")]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The Parquet file is malformed or uses something this reader cannot decode.
    #[error("{path}: not a readable Parquet file: {reason}")]
    BadParquet {
        /// The file.
        path: String,
        /// The decoder's message.
        reason: String,
    },
    /// The rows cannot be given one Parquet schema (a field holds two kinds of value).
    #[error("{path}: cannot write Parquet: {reason}")]
    Schema {
        /// The file.
        path: String,
        /// Which field and which kinds.
        reason: String,
    },
}

impl TableError {
    pub(crate) fn read(path: &std::path::Path, source: std::io::Error) -> Self {
        TableError::Read {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn write(path: &std::path::Path, source: std::io::Error) -> Self {
        TableError::Write {
            path: path.display().to_string(),
            source,
        }
    }
}

impl assay_errors::Diagnose for TableError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } | Self::Io { source, .. } => {
                assay_errors::io_blame(source)
            }
            // Whoever supplied the file: the pipeline decides whether that is a miner or the
            // operator; as a table reader we can only say the input is wrong.
            Self::UnknownFormat { .. } | Self::BadLine { .. } | Self::BadParquet { .. } => {
                assay_errors::Blame::Operator
            }
            Self::Schema { .. } => assay_errors::Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownFormat { .. } => Some("name the file .jsonl or .parquet".into()),
            Self::BadLine { .. } => {
                Some("each line must hold one JSON object, each key at most once".into())
            }
            Self::Schema { .. } => Some("give each field one kind of value in every row".into()),
            _ => None,
        }
    }
}
