//! The locked data the orchestrator owns: JSONL shards with a `text` field, read in a fixed
//! order (PRISM's container runner `_resolve_train_shards` / `_token_stream`, heldout.py).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

/// Why the data could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No non-empty shard was found.
    #[error(
        "{dir}: no {split} shards found (expected {expected}); build one with `assay prism corpus`"
    )]
    NoShards {
        /// Folder searched.
        dir: PathBuf,
        /// `train` or `val`.
        split: &'static str,
        /// The patterns tried.
        expected: &'static str,
    },
    /// A shard could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// Shard.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `MANIFEST.json` is not a `prism_locked_data.v1` manifest.
    #[error("{path}: not a prism_locked_data.v1 manifest: {detail}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A shard's bytes do not match the manifest.
    #[error(
        "{path}: SHA-256 {actual} does not match the manifest's {expected}: the locked data was changed"
    )]
    ShardMismatch {
        /// The shard.
        path: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// A shard the run would read is not in the manifest.
    #[error("{path}: a shard the run would read is not listed in MANIFEST.json")]
    Unlisted {
        /// The shard.
        path: PathBuf,
    },
}

impl assay_errors::Diagnose for DataError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Io { source, .. } => assay_errors::io_blame(source),
            _ => assay_errors::Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NoShards { .. } => None,
            Self::Io { .. } => None,
            Self::Manifest { .. } | Self::ShardMismatch { .. } | Self::Unlisted { .. } => Some(
                "lock the data again (`assay prism corpus` or `assay prism lock`) or restore the shards from the locked copy".into(),
            ),
        }
    }
}

/// A data folder's `MANIFEST.json` (schema `prism_locked_data.v1`).
#[derive(Debug, Clone)]
pub struct LockedManifest(pub crate::corpus::CorpusManifest);

impl LockedManifest {
    /// The folder's manifest, `None` when it has no `MANIFEST.json` (unlocked data).
    pub fn find(dir: &Path) -> Result<Option<Self>, DataError> {
        let path = dir.join(crate::corpus::MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DataError::Io { path, source }),
        };
        let manifest: crate::corpus::CorpusManifest =
            serde_json::from_str(&text).map_err(|e| DataError::Manifest {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if manifest.schema != crate::corpus::MANIFEST_SCHEMA {
            return Err(DataError::Manifest {
                path,
                detail: format!("schema {}", manifest.schema),
            });
        }
        Ok(Some(Self(manifest)))
    }

    /// Checks every listed shard's SHA-256, and that every shard a run reads is listed.
    pub fn verify(&self, dir: &Path) -> Result<(), DataError> {
        use sha2::Digest;
        let mut listed = std::collections::BTreeSet::new();
        for shard in &self.0.shards {
            let path = dir.join(&shard.path);
            let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?;
            let actual = format!("{:x}", sha2::Sha256::digest(&bytes));
            if actual != shard.sha256 {
                return Err(DataError::ShardMismatch {
                    path,
                    expected: shard.sha256.clone(),
                    actual,
                });
            }
            listed.insert(path);
        }
        let read = train_shards(dir)
            .into_iter()
            .chain(val_shards(dir))
            .flatten();
        for path in read {
            if !listed.contains(&path) {
                return Err(DataError::Unlisted { path });
            }
        }
        Ok(())
    }
}

/// Train shards in PRISM's order: the first non-empty match of `train-*.jsonl`, `*.jsonl`,
/// then `train/*.jsonl`, sorted by path. (`*.bin` shards are not supported here.)
pub fn train_shards(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    for (sub, prefix) in [("", "train-"), ("", ""), ("train", "")] {
        let shards = matching(&dir.join(sub), prefix)?;
        if !shards.is_empty() {
            return Ok(shards);
        }
    }
    Err(DataError::NoShards {
        dir: dir.to_path_buf(),
        split: "train",
        expected: "train-*.jsonl, *.jsonl or train/*.jsonl",
    })
}

/// Val shards: `val-*.jsonl` in the folder or in its `val/` subfolder, sorted by path.
pub fn val_shards(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    for sub in ["", "val"] {
        let shards = matching(&dir.join(sub), "val-")?;
        if !shards.is_empty() {
            return Ok(shards);
        }
    }
    Err(DataError::NoShards {
        dir: dir.to_path_buf(),
        split: "val",
        expected: "val-*.jsonl or val/val-*.jsonl",
    })
}

fn matching(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let nonempty = path
            .metadata()
            .map(|m| m.is_file() && m.len() > 0)
            .unwrap_or(false);
        if name.starts_with(prefix) && name.ends_with(".jsonl") && nonempty {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Documents of a list of shards, one at a time: blank lines, invalid JSON, a missing or empty
/// `text` are skipped, as PRISM does.
pub struct Documents {
    shards: VecDeque<PathBuf>,
    current: Option<(PathBuf, Lines<BufReader<File>>)>,
}

impl Documents {
    /// Reads `shards` in order.
    pub fn new(shards: Vec<PathBuf>) -> Self {
        Self {
            shards: shards.into(),
            current: None,
        }
    }
}

impl Iterator for Documents {
    type Item = Result<String, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let path = self.shards.pop_front()?;
                match File::open(&path) {
                    Ok(f) => self.current = Some((path, BufReader::new(f).lines())),
                    Err(source) => return Some(Err(DataError::Io { path, source })),
                }
            }
            let (path, lines) = self.current.as_mut()?;
            match lines.next() {
                None => self.current = None,
                Some(Err(source)) => {
                    return Some(Err(DataError::Io {
                        path: path.clone(),
                        source,
                    }));
                }
                Some(Ok(line)) => {
                    if let Some(text) = document_text(&line) {
                        return Some(Ok(text));
                    }
                }
            }
        }
    }
}

fn document_text(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = value.get("text")?.as_str()?;
    (!text.is_empty()).then(|| text.to_string())
}

/// A deterministic prefix of a split: documents in order until their UTF-8 bytes reach
/// `byte_budget` (the document crossing the boundary included); `0` takes everything.
pub fn prefix_texts(shards: Vec<PathBuf>, byte_budget: usize) -> Result<Vec<String>, DataError> {
    let mut texts = Vec::new();
    let mut total = 0;
    for doc in Documents::new(shards) {
        let doc = doc?;
        total += doc.len();
        texts.push(doc);
        if byte_budget > 0 && total >= byte_budget {
            break;
        }
    }
    Ok(texts)
}
