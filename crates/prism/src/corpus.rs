//! PRISM's locked data plane (evaluator/data_prep.py, dataset.py): documents are split by a hash
//! partition of their id (SHA-256 of the id mod 1000: train 0-949, val 950-974, test 975-999),
//! deduplicated (by id, then by exact text) and sorted by id within each split, written as
//! JSONL shards of 1,024 documents, and described by a `MANIFEST.json` of schema
//! `prism_locked_data.v1`: the source pin, the partition spec, and each shard's SHA-256 and
//! document and token counts. [`crate::data::LockedManifest::verify`] refuses a data folder whose
//! shards do not match it, before any run.
//!
//! [`write_corpus`] locks the default corpus, made from the documentation topics every CPython
//! carries (`pydoc_data.topics`, shipped by the interpreter package of any registry:
//! Debian's `libpython3.11-stdlib`, python.org builds, conda's `python`): each topic cut into
//! paragraphs, each paragraph a document with id `topic#index`. [`lock_corpus`] locks any
//! `(id, text)` documents, e.g. FineWeb-edu's Parquet files at PRISM's pin (see the README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Documents per shard.
pub const DOCS_PER_SHARD: usize = 1024;
/// The manifest's schema.
pub const MANIFEST_SCHEMA: &str = "prism_locked_data.v1";
/// The manifest's file name in a data folder.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// FineWeb-edu as PRISM pins it.
pub const FINEWEB_EDU: (&str, &str) = (
    "HuggingFaceFW/fineweb-edu",
    "87f09149ef4734204d70ed1d046ddc9ca3f2b8f9",
);

/// Where the documents came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourcePin {
    /// Dataset or package name.
    pub name: String,
    /// Commit, version or other pin (empty when unknown).
    pub revision: String,
}

/// PRISM's partition spec: bucket = SHA-256(id) as an integer mod `buckets`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionSpec {
    /// How the bucket is computed.
    pub hash: String,
    /// Number of buckets.
    pub buckets: u32,
    /// Inclusive bucket range of each split.
    pub splits: BTreeMap<String, [u32; 2]>,
}

impl Default for PartitionSpec {
    fn default() -> Self {
        Self {
            hash: "int(sha256(id).hexdigest(), 16) % 1000".into(),
            buckets: 1000,
            splits: [
                ("train", [0, 949]),
                ("val", [950, 974]),
                ("test", [975, 999]),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

/// One shard of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShardEntry {
    /// Path relative to the data folder, e.g. `train/train-00000.jsonl`.
    pub path: String,
    /// `train`, `val` or `test`.
    pub split: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Documents in the shard.
    pub documents: usize,
    /// Tokens in the shard: UTF-8 bytes of the texts (the stream is byte-level).
    pub tokens: u64,
}

/// `MANIFEST.json` of a locked data folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorpusManifest {
    /// [`MANIFEST_SCHEMA`].
    pub schema: String,
    /// Where the text came from.
    pub source: SourcePin,
    /// The partition.
    pub partition: PartitionSpec,
    /// Documents per shard.
    pub docs_per_shard: usize,
    /// Documents per split (after deduplication).
    pub documents: BTreeMap<String, usize>,
    /// UTF-8 bytes per split.
    pub bytes: BTreeMap<String, usize>,
    /// Documents dropped as duplicates (same id, or same text), per split.
    pub duplicates_dropped: BTreeMap<String, usize>,
    /// Every shard, in reading order.
    pub shards: Vec<ShardEntry>,
}

/// Why a corpus could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A source file could not be read.
    #[error(transparent)]
    Read(#[from] assay_tables::TableError),
    /// A source row has no usable `id` / `text`.
    #[error("{path}: {location}: {reason}")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// Line or row.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A shard or the manifest could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl assay_errors::Diagnose for CorpusError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Write { source, .. } => assay_errors::io_blame(source),
            Self::Read(_) | Self::BadRow { .. } => assay_errors::Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::BadRow { .. } => Some(
                "each row needs a string `text` and an `id` (string or number); FineWeb-edu's Parquet files have both".into(),
            ),
            _ => None,
        }
    }
}

/// PRISM's split of a document id: `train`, `val` or `test`.
pub fn split_of(id: &str) -> &'static str {
    let digest = Sha256::digest(id.as_bytes());
    let bucket = digest
        .iter()
        .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % 1000);
    match bucket {
        0..=949 => "train",
        950..=974 => "val",
        _ => "test",
    }
}

/// Documents `(id, text)` from topics: paragraphs separated by blank lines, trimmed, non-empty.
pub fn documents(topics: &BTreeMap<String, String>) -> Vec<(String, String)> {
    topics
        .iter()
        .flat_map(|(topic, text)| {
            text.split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
                .map(move |(i, p)| (format!("{topic}#{i}"), p.to_string()))
        })
        .collect()
}

/// Locks the pydoc corpus: see [`lock_corpus`].
pub fn write_corpus(
    topics: &BTreeMap<String, String>,
    source: &str,
    out: &Path,
) -> Result<CorpusManifest, CorpusError> {
    let pin = SourcePin {
        name: source.to_string(),
        revision: String::new(),
    };
    lock_corpus(documents(topics), pin, out)
}

/// Reads `(id, text)` documents from JSONL or Parquet files (FineWeb-edu's columns).
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<(String, String)>, CorpusError> {
    let mut docs = Vec::new();
    for path in paths {
        for record in assay_tables::read_table(path)? {
            let bad = |reason: &str| CorpusError::BadRow {
                path: path.clone(),
                location: record.location.to_string(),
                reason: reason.to_string(),
            };
            let id = match record.row.get("id") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => return Err(bad("no string or number `id`")),
            };
            let Some(serde_json::Value::String(text)) = record.row.get("text") else {
                return Err(bad("no string `text`"));
            };
            docs.push((id, text.clone()));
        }
    }
    Ok(docs)
}

/// Partitions, deduplicates, sorts and shards `docs` into `out/{train,val,test}/` and writes
/// `out/MANIFEST.json`. Empty texts are dropped. Every file is written atomically.
pub fn lock_corpus(
    docs: impl IntoIterator<Item = (String, String)>,
    source: SourcePin,
    out: &Path,
) -> Result<CorpusManifest, CorpusError> {
    let mut splits: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    for (id, text) in docs {
        if text.is_empty() {
            continue;
        }
        let split = split_of(&id);
        match splits.entry(split).or_default().entry(id) {
            std::collections::btree_map::Entry::Occupied(_) => {
                *dropped.entry(split.to_string()).or_default() += 1;
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(text);
            }
        }
    }
    let mut manifest = CorpusManifest {
        schema: MANIFEST_SCHEMA.into(),
        source,
        partition: PartitionSpec::default(),
        docs_per_shard: DOCS_PER_SHARD,
        documents: BTreeMap::new(),
        bytes: BTreeMap::new(),
        duplicates_dropped: BTreeMap::new(),
        shards: Vec::new(),
    };
    let write = |path: &Path, bytes: &[u8]| {
        crate::write_atomic(path, bytes).map_err(|source| CorpusError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    // A text kept twice under two ids could land in two splits (train and test): texts are
    // deduplicated across the whole corpus, the smallest id keeping each text.
    let mut owner: BTreeMap<_, String> = BTreeMap::new();
    for by_id in splits.values() {
        for (id, text) in by_id {
            let slot = owner
                .entry(Sha256::digest(text.as_bytes()))
                .or_insert_with(|| id.clone());
            if id < slot {
                *slot = id.clone();
            }
        }
    }
    for (split, by_id) in splits {
        let mut docs = Vec::new();
        for (id, text) in by_id {
            if owner.get(&Sha256::digest(text.as_bytes())) == Some(&id) {
                docs.push((id, text));
            } else {
                *dropped.entry(split.to_string()).or_default() += 1;
            }
        }
        manifest.documents.insert(split.into(), docs.len());
        manifest
            .bytes
            .insert(split.into(), docs.iter().map(|(_, t)| t.len()).sum());
        manifest
            .duplicates_dropped
            .insert(split.into(), dropped.get(split).copied().unwrap_or(0));
        for (n, shard) in docs.chunks(DOCS_PER_SHARD).enumerate() {
            let rel = format!("{split}/{split}-{n:05}.jsonl");
            let body: String = shard
                .iter()
                .map(|(id, text)| serde_json::json!({"id": id, "text": text}).to_string() + "\n")
                .collect();
            write(&out.join(&rel), body.as_bytes())?;
            manifest.shards.push(ShardEntry {
                path: rel,
                split: split.to_string(),
                sha256: format!("{:x}", Sha256::digest(body.as_bytes())),
                documents: shard.len(),
                tokens: shard.iter().map(|(_, t)| t.len() as u64).sum(),
            });
        }
    }
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| CorpusError::Write {
        path: out.join(MANIFEST_FILE),
        source: std::io::Error::other(e),
    })?;
    write(&out.join(MANIFEST_FILE), (text + "\n").as_bytes())?;
    Ok(manifest)
}
