//! The task registry: built-in tasks (TOML files under `crates/eval/tasks/`, compiled in)
//! plus user task files loaded at run time.

use std::collections::BTreeMap;
use std::path::Path;

use crate::task_def::{RequestType, TaskDef};

/// Built-in task files: (file name, contents).
const BUILTIN_TASKS: &[(&str, &str)] = &[
    ("arc_easy.toml", include_str!("../tasks/arc_easy.toml")),
    ("sn37_dyck.toml", include_str!("../tasks/sn37_dyck.toml")),
    (
        "sn37_if_eval.toml",
        include_str!("../tasks/sn37_if_eval.toml"),
    ),
    (
        "sn37_word_sorting.toml",
        include_str!("../tasks/sn37_word_sorting.toml"),
    ),
    (
        "sn37_text_loss.toml",
        include_str!("../tasks/sn37_text_loss.toml"),
    ),
];

/// Metrics each request type can produce.
fn known_metrics(request_type: RequestType) -> &'static [&'static str] {
    match request_type {
        RequestType::Loglikelihood => &["acc", "loglikelihood", "perplexity"],
        RequestType::MultipleChoice => &["acc", "acc_norm", "acc_bytes"],
        RequestType::GenerateUntil => &["exact_match", "if_eval", "embedding_cosine"],
        RequestType::ReferenceLoss => &["reference_loss"],
        RequestType::TextLoss => &["text_loss"],
    }
}

impl assay_errors::Diagnose for RegistryError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Io { source, .. } => assay_errors::io_blame(source),
            _ => assay_errors::Blame::Operator,
        }
    }
}

/// Why a task file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read.
    #[error("{path}: cannot read task file: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or does not fit the schema (the message names the field).
    #[error("{origin}: invalid task definition: {message}")]
    Parse {
        /// File name or other origin.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field has a value the schema accepts but the task cannot use.
    #[error("{origin}: field `{field}`: {reason}")]
    Invalid {
        /// File name or other origin.
        origin: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Two tasks share a name.
    #[error("{origin}: task name {name:?} is already registered; rename the task")]
    Duplicate {
        /// File name or other origin.
        origin: String,
        /// The duplicated name.
        name: String,
    },
}

/// Tasks by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, TaskDef>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in tasks.
    pub fn builtin() -> Result<Self, RegistryError> {
        let mut registry = Self::new();
        for (origin, text) in BUILTIN_TASKS {
            registry.add_toml(text, origin)?;
        }
        Ok(registry)
    }

    /// Task names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(String::as_str)
    }

    /// The task called `name`.
    pub fn get(&self, name: &str) -> Option<&TaskDef> {
        self.tasks.get(name)
    }

    /// Reads, checks and adds the task in the TOML file at `path`; returns its name.
    pub fn load_file(&mut self, path: &Path) -> Result<String, RegistryError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            path: origin.clone(),
            source,
        })?;
        self.add_toml(&text, &origin)
    }

    /// Parses, checks and adds one task from TOML text; `origin` names it in errors.
    pub fn add_toml(&mut self, text: &str, origin: &str) -> Result<String, RegistryError> {
        let task = parse_task(text, origin)?;
        if self.tasks.contains_key(&task.name) {
            return Err(RegistryError::Duplicate {
                origin: origin.to_owned(),
                name: task.name,
            });
        }
        let name = task.name.clone();
        self.tasks.insert(name.clone(), task);
        Ok(name)
    }
}

/// Parses one task and checks what the schema alone cannot.
pub fn parse_task(text: &str, origin: &str) -> Result<TaskDef, RegistryError> {
    let task: TaskDef = toml::from_str(text).map_err(|error| RegistryError::Parse {
        origin: origin.to_owned(),
        message: error.to_string(),
    })?;
    check_task(&task, origin)?;
    Ok(task)
}

fn invalid(origin: &str, field: &'static str, reason: String) -> RegistryError {
    RegistryError::Invalid {
        origin: origin.to_owned(),
        field,
        reason,
    }
}

fn check_task(task: &TaskDef, origin: &str) -> Result<(), RegistryError> {
    if task.name.trim().is_empty() || task.name.contains(',') {
        return Err(invalid(
            origin,
            "name",
            "must be non-empty and contain no comma".into(),
        ));
    }
    if task.metrics.is_empty() {
        return Err(invalid(
            origin,
            "metrics",
            "list at least one metric".into(),
        ));
    }
    let known = known_metrics(task.request_type);
    if let Some(metric) = task
        .metrics
        .iter()
        .find(|metric| !known.contains(&metric.as_str()))
    {
        let reason = format!(
            "unknown metric {metric:?} for {:?}; use one of {known:?}",
            task.request_type
        );
        return Err(invalid(origin, "metrics", reason));
    }
    if task.request_type == RequestType::MultipleChoice && task.choices.is_none() {
        return Err(invalid(
            origin,
            "choices",
            "multiple_choice tasks must name the document field holding the choices".into(),
        ));
    }
    if task.request_type != RequestType::GenerateUntil && task.generation.is_some() {
        return Err(invalid(
            origin,
            "generation",
            "only generate_until tasks take generation settings".into(),
        ));
    }
    if task.limit == Some(0) {
        return Err(invalid(
            origin,
            "limit",
            "must be at least 1 (omit it for no limit)".into(),
        ));
    }
    Ok(())
}
