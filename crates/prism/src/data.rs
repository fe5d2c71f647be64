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
    #[error("{path}: {source}")]
    Io {
        /// Shard.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
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
