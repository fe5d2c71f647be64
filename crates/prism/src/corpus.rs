//! The default byte corpus, built deterministically from the documentation topics that ship
//! with every CPython (`pydoc_data.topics`): each topic cut into paragraphs, each paragraph a
//! document with id `topic#index`, split by PRISM's hash partition (SHA-256 of the id mod 1000:
//! train 0-949, val 950-974, test 975-999), each split sorted by id, in JSONL shards of 1024.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Documents per shard.
pub const DOCS_PER_SHARD: usize = 1024;

/// What was written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorpusManifest {
    /// `assay_prism_corpus.v1`.
    pub schema: String,
    /// Where the text came from.
    pub source: String,
    /// Documents per split.
    pub documents: BTreeMap<String, usize>,
    /// UTF-8 bytes per split.
    pub bytes: BTreeMap<String, usize>,
    /// SHA-256 of each shard, by relative path.
    pub shards: BTreeMap<String, String>,
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

/// Writes `out/{train,val,test}/<split>-NNNNN.jsonl` and `out/MANIFEST.json`.
pub fn write_corpus(
    topics: &BTreeMap<String, String>,
    source: &str,
    out: &Path,
) -> std::io::Result<CorpusManifest> {
    let mut splits: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (id, text) in documents(topics) {
        splits.entry(split_of(&id)).or_default().push((id, text));
    }
    let mut manifest = CorpusManifest {
        schema: "assay_prism_corpus.v1".into(),
        source: source.into(),
        documents: BTreeMap::new(),
        bytes: BTreeMap::new(),
        shards: BTreeMap::new(),
    };
    for (split, mut docs) in splits {
        docs.sort();
        std::fs::create_dir_all(out.join(split))?;
        manifest.documents.insert(split.into(), docs.len());
        manifest
            .bytes
            .insert(split.into(), docs.iter().map(|(_, t)| t.len()).sum());
        for (n, shard) in docs.chunks(DOCS_PER_SHARD).enumerate() {
            let rel = format!("{split}/{split}-{n:05}.jsonl");
            let body: String = shard
                .iter()
                .map(|(id, text)| serde_json::json!({"id": id, "text": text}).to_string() + "\n")
                .collect();
            std::fs::write(out.join(&rel), &body)?;
            manifest
                .shards
                .insert(rel, format!("{:x}", Sha256::digest(body.as_bytes())));
        }
    }
    let text = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
    std::fs::write(out.join("MANIFEST.json"), text + "\n")?;
    Ok(manifest)
}
