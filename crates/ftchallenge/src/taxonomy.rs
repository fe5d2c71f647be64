//! The intent taxonomy and its synonym table: how a predicted label is mapped to a canonical intent.
//! Labels are compared in `assay_eval::intent`'s normal form, as the intent metrics compare them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::error::{FtError, Result};

/// Canonical intents and accepted synonyms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taxonomy {
    intents: BTreeSet<String>,
    synonyms: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxonomyFile {
    intents: Vec<String>,
    #[serde(default)]
    synonyms: BTreeMap<String, String>,
}

pub use assay_eval::intent::normalize_label;

impl Taxonomy {
    /// A taxonomy of `intents` with `(synonym, canonical)` pairs; every canonical side must be one
    /// of the intents.
    pub fn new<I, S>(intents: I, synonyms: S) -> std::result::Result<Self, String>
    where
        I: IntoIterator<Item = String>,
        S: IntoIterator<Item = (String, String)>,
    {
        let intents: BTreeSet<String> = intents.into_iter().map(|i| normalize_label(&i)).collect();
        let mut table = BTreeMap::new();
        for (synonym, canonical) in synonyms {
            let canonical = normalize_label(&canonical);
            if !intents.contains(&canonical) {
                return Err(format!(
                    "synonym `{synonym}` maps to `{canonical}`, which is not among the intents"
                ));
            }
            table.insert(normalize_label(&synonym), canonical);
        }
        Ok(Self {
            intents,
            synonyms: table,
        })
    }

    /// Reads `{"intents": [...], "synonyms": {"synonym": "canonical", ...}}`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| FtError::read(path, e))?;
        let file: TaxonomyFile = serde_json::from_str(&text).map_err(|e| {
            FtError::file(
                path,
                format!(
                    "not a taxonomy ({e}); expected {{\"intents\": [...], \"synonyms\": {{...}}}}"
                ),
            )
        })?;
        if file.intents.is_empty() {
            return Err(FtError::file(
                path,
                "`intents` is empty; list the canonical intents",
            ));
        }
        Self::new(file.intents, file.synonyms).map_err(|m| FtError::file(path, m))
    }

    /// The canonical form of `label`: normalised, then mapped through the synonym table.
    pub fn canonical(&self, label: &str) -> String {
        let norm = normalize_label(label);
        self.synonyms.get(&norm).cloned().unwrap_or(norm)
    }

    /// Whether `label` (after [`Taxonomy::canonical`]) is a known intent.
    pub fn contains(&self, label: &str) -> bool {
        self.intents.contains(&self.canonical(label))
    }

    /// The canonical intents, sorted.
    pub fn intents(&self) -> impl Iterator<Item = &str> {
        self.intents.iter().map(String::as_str)
    }
}
