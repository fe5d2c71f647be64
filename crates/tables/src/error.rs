//! The crate's error type.

/// Why a table could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
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
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TableError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
