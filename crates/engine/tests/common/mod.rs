//! Helpers shared by the engine's integration tests: the committed fixtures.

#![allow(dead_code)]

use std::path::PathBuf;

use assay_engine::{LoadOptions, LoadedModel, ModelSource, load};
use serde_json::Value;

/// `crates/engine/fixtures`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A JSON fixture by file name.
pub fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// One of the tiny random models (`tiny-llama`, `tiny-qwen2`).
pub fn tiny(name: &str) -> LoadedModel {
    load(
        &ModelSource::HfFolder(fixtures().join(name)),
        &LoadOptions::default(),
    )
    .unwrap()
}
