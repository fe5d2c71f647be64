//! A submitted model: a folder with the weights, config, tokenizer and `sn37.json` holding the
//! chain metadata (hotkey, commit block, content hash, competition id).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the metadata inside a model folder.
pub const METADATA_FILE: &str = "sn37.json";

/// Largest metadata file read.
const MAX_METADATA_BYTES: u64 = 64 * 1024;

/// What SN37 reads from the chain commitment, for a local folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionMetadata {
    /// The miner's hotkey.
    pub hotkey: String,
    /// Block of the commit: the model's timestamp for the epsilon advantage.
    pub commit_block: u64,
    /// The weights' content hash as committed (the integrity crate's `content_hash`, hex
    /// SHA-256 over tensors); the folder's weights must hash to it.
    pub content_hash: String,
    /// The competition entered.
    pub competition_id: u32,
}

/// Why a folder's metadata is unusable.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Missing or unreadable file.
    #[error(
        "{path}: cannot read {METADATA_FILE}: {message}; write it with hotkey, commit_block, content_hash and competition_id"
    )]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// Not the expected JSON (the message names the field, line and column).
    #[error("{path}: invalid {METADATA_FILE}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

impl assay_errors::Diagnose for MetadataError {
    fn blame(&self) -> assay_errors::Blame {
        assay_errors::Blame::Miner
    }
}

/// Why a folder has no content hash.
#[derive(Debug, thiserror::Error)]
#[error("{path}: no readable weights ({reasons})")]
pub struct HashError {
    /// The folder.
    pub path: String,
    /// What the integrity checks found.
    pub reasons: String,
}

impl assay_errors::Diagnose for HashError {
    fn blame(&self) -> assay_errors::Blame {
        assay_errors::Blame::Operator
    }

    fn hint(&self) -> Option<String> {
        Some("pass a model folder holding *.safetensors files".into())
    }
}

/// The weights' content hash of a model folder: the `content_hash` its `sn37.json` must hold.
pub fn content_hash(dir: &Path) -> Result<String, HashError> {
    let rules = assay_integrity::models::ModelRules {
        architectures: Vec::new(),
        max_params: u64::MAX,
        ..Default::default()
    };
    let report = assay_integrity::models::check_model_folder(dir, &rules);
    if report.content_hash.is_empty() {
        return Err(HashError {
            path: dir.display().to_string(),
            reasons: report
                .violations
                .iter()
                .map(crate::round::describe_violation)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(report.content_hash)
}

/// Reads and parses `<dir>/sn37.json`.
pub fn read_metadata(dir: &Path) -> Result<SubmissionMetadata, MetadataError> {
    let path = dir.join(METADATA_FILE);
    let shown = path.display().to_string();
    let io = |message: String| MetadataError::Io {
        path: shown.clone(),
        message,
    };
    let size = std::fs::metadata(&path)
        .map_err(|e| io(e.to_string()))?
        .len();
    if size > MAX_METADATA_BYTES {
        return Err(io(format!("{size} bytes, more than {MAX_METADATA_BYTES}")));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io(e.to_string()))?;
    let metadata: SubmissionMetadata =
        serde_json::from_str(&text).map_err(|e| MetadataError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    if metadata.hotkey.trim().is_empty() {
        return Err(MetadataError::Parse {
            path: shown,
            message: "field `hotkey` is empty".into(),
        });
    }
    Ok(metadata)
}

/// The sub-folders of `models_dir`, sorted by name (one submission each).
///
/// Symbolic links are listed too, whatever they point to: a link to a folder is followed as a
/// submission, and a broken link or a link to a file is reported by the round as a rejected
/// submission with the reason, never skipped silently. Plain files are not submissions.
pub fn submission_dirs(models_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(models_dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() || kind.is_symlink() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}
