//! The documents of a task: read from a JSON-lines file, or drawn from a seeded generator.

use std::path::Path;

use serde_json::{Map, Value};

use crate::sn37::dyck::{DyckConfig, generate_dyck_samples};
use crate::sn37::word_sorting::{WordSortingConfig, generate_word_sorting};
use crate::task_def::{DataSource, TaskDef};

/// One document: a JSON object whose fields the task's templates name.
pub type Doc = Map<String, Value>;

/// Why a task's documents could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The data file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the data file is not a JSON object.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The task's source cannot be loaded here (the message says what to do instead).
    #[error("task {task}: {message}")]
    Unavailable {
        /// Task name.
        task: String,
        /// Why, and what to do.
        message: String,
    },
}

impl assay_errors::Diagnose for DocsError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Io { source, .. } => assay_errors::io_blame(source),
            Self::BadLine { .. } | Self::Unavailable { .. } => assay_errors::Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Io { .. } => Some("pass --data an existing JSON-lines file".into()),
            Self::BadLine { .. } => Some("each line must be one JSON object".into()),
            Self::Unavailable { .. } => None,
        }
    }
}

/// The documents of `task`: from `data` when given (a JSONL file overrides the task's own
/// source), else from the task's source; generators draw from `seed`.
pub fn load_docs(task: &TaskDef, data: Option<&Path>, seed: u64) -> Result<Vec<Doc>, DocsError> {
    if let Some(path) = data {
        return read_jsonl(path);
    }
    let unavailable = |message: String| DocsError::Unavailable {
        task: task.name.clone(),
        message,
    };
    match &task.source {
        DataSource::Jsonl { path } => read_jsonl(Path::new(path)),
        DataSource::HuggingFace { dataset, .. } => Err(unavailable(format!(
            "its documents come from the Hugging Face dataset {dataset:?}, which assay does not \
             download; export the split to JSON lines and pass it with --data"
        ))),
        DataSource::Generated { generator } if generator == "word_sorting" => {
            let samples = generate_word_sorting(&WordSortingConfig::default(), seed)
                .map_err(|e| unavailable(e.to_string()))?;
            Ok(samples
                .into_iter()
                .map(|s| challenge_doc(s.challenge, s.reference))
                .collect())
        }
        DataSource::Generated { generator } if generator == "dyck" => {
            let samples = generate_dyck_samples(&DyckConfig::default(), seed)
                .map_err(|e| unavailable(e.to_string()))?;
            Ok(samples
                .into_iter()
                .map(|s| challenge_doc(s.challenge, s.reference))
                .collect())
        }
        DataSource::Generated { generator } => Err(unavailable(format!(
            "generator {generator:?} needs inputs the generic runner does not have; pass \
             documents with --data, or use the pipeline command that owns it (e.g. `assay sn37`)"
        ))),
    }
}

/// A generated task's document: `challenge` and `reference`.
fn challenge_doc(challenge: String, reference: String) -> Doc {
    Doc::from_iter([
        ("challenge".to_owned(), Value::String(challenge)),
        ("reference".to_owned(), Value::String(reference)),
    ])
}

/// Reads a JSON-lines file of objects; blank lines are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<Doc>, DocsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DocsError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut docs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| DocsError::BadLine {
            path: shown.clone(),
            line: index + 1,
            message,
        };
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(doc)) => docs.push(doc),
            Ok(_) => return Err(bad("expected a JSON object".into())),
            Err(error) => return Err(bad(format!("not JSON: {error}"))),
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_errors_name_the_line_and_blank_lines_are_skipped() {
        let dir = std::env::temp_dir().join(format!("assay-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("docs.jsonl");
        std::fs::write(&path, "{\"a\": 1}\n\n{\"a\": 2}\n").unwrap();
        assert_eq!(read_jsonl(&path).unwrap().len(), 2);
        std::fs::write(&path, "{\"a\": 1}\n[1, 2]\n").unwrap();
        let error = read_jsonl(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("docs.jsonl:2: expected a JSON object"),
            "{error}"
        );
        std::fs::write(&path, "{\"a\": \n").unwrap();
        let error = read_jsonl(&path).unwrap_err().to_string();
        assert!(error.contains("docs.jsonl:1: not JSON"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(read_jsonl(&path), Err(DocsError::Io { .. })));
    }

    #[test]
    fn generated_word_sorting_follows_the_seed() {
        let registry = crate::registry::Registry::builtin().unwrap();
        let task = registry.get("sn37_word_sorting").unwrap();
        let first = load_docs(task, None, 5).unwrap();
        assert_eq!(first, load_docs(task, None, 5).unwrap());
        assert_ne!(first, load_docs(task, None, 6).unwrap());
        assert!(
            first[0]["challenge"]
                .as_str()
                .unwrap()
                .starts_with("Sort the following")
        );
        let arc = registry.get("arc_easy").unwrap();
        let error = load_docs(arc, None, 5).unwrap_err().to_string();
        assert!(error.contains("--data"), "{error}");
    }
}
