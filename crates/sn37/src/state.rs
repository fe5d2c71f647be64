//! Files a round keeps between runs, written so that a crash never leaves half a file: each is
//! written to a temporary file in the same folder, flushed to disk (`fsync`), renamed over the
//! old one, and the folder is flushed too. A process killed at any point (even `kill -9`) leaves
//! either the old file or the new one, never a mix, and the next round reads it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::tracker::EmaState;

/// Why a state or result file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing failed (the old file, if any, is left as it was).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an SN37 moving-average state.
    #[error("{path}: not an SN37 moving-average state: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl assay_errors::Diagnose for StateError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => {
                assay_errors::io_blame(source)
            }
            Self::Parse { .. } => assay_errors::Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Parse { .. } => Some(
                "pass --state another file, or move this one away to start the moving averages afresh"
                    .into(),
            ),
            Self::Write { .. } => Some("check that the folder exists and is writable".into()),
            Self::Read { .. } => None,
        }
    }
}

/// Reads the moving-average state; a missing file is a fresh state.
pub fn read_state(path: &Path) -> Result<EmaState, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(EmaState::default());
        }
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically (see the module docs); creates the parent folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let write = |source: std::io::Error| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(write)?;
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let temp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        // The rename itself lives in the folder: flush it too (not possible on every platform).
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(write)
}

/// Writes `value` as pretty JSON (with a final newline) atomically.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<(), StateError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| StateError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Checks before any work that `dir` can be created and written to, with a probe file that is
/// removed again.
pub fn check_writable(dir: &Path) -> Result<(), StateError> {
    let probe = dir.join(format!(".assay-write-check.{}", std::process::id()));
    let write = |source: std::io::Error| StateError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    std::fs::write(&probe, b"").map_err(write)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
