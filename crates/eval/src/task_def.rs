//! Task definitions as data: an lm-evaluation-harness-style task described in TOML.
//!
//! ```toml
//! name = "sn37_word_sorting"
//! request_type = "reference_loss"
//! prompt = "{{challenge}}"
//! target = "{{reference}}"
//! metrics = ["reference_loss"]
//! seed = 1234
//! [source]
//! kind = "generated"
//! generator = "word_sorting"
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a task asks the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// Log-probability of `target` after `prompt`.
    Loglikelihood,
    /// Log-probability of each choice after `prompt`; the highest is the answer.
    MultipleChoice,
    /// Generated text after `prompt`, stopped by `generation.until`.
    GenerateUntil,
    /// Mean negative log-likelihood per reference token (SN37's REFERENCE_LOSS).
    ReferenceLoss,
    /// Loss over whole padded documents after a degeneracy check (SN37's TEXT_LOSS).
    TextLoss,
}

/// Where the documents of a task come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// A local JSON-lines file, one document (a JSON object) a line.
    Jsonl {
        /// Path of the file, relative to the working directory.
        path: String,
    },
    /// A Hugging Face dataset (loaded by a later layer).
    HuggingFace {
        /// Dataset id, e.g. `allenai/ai2_arc`.
        dataset: String,
        /// Dataset configuration name.
        #[serde(default)]
        config: Option<String>,
        /// Split to evaluate.
        split: String,
    },
    /// Documents produced by a built-in generator (e.g. `word_sorting`, `if_eval`).
    Generated {
        /// Generator name.
        generator: String,
    },
}

/// Generation settings of a `generate_until` task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenParams {
    /// Stop sequences; the output is cut before the first one.
    #[serde(default)]
    pub until: Vec<String>,
    /// Upper bound on generated tokens.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
}

fn default_max_new_tokens() -> usize {
    256
}

fn default_seed() -> u64 {
    1234
}

fn default_version() -> u32 {
    1
}

/// One task, as written in a task file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    /// Unique task name (results are keyed by it).
    pub name: String,
    /// Free text for listings.
    #[serde(default)]
    pub description: Option<String>,
    /// Where documents come from.
    pub source: DataSource,
    /// How the model is asked.
    pub request_type: RequestType,
    /// Prompt template: `{{field}}` is replaced by the document's field.
    pub prompt: String,
    /// Target template (the answer text), or for `multiple_choice` the field holding the
    /// gold index or gold choice text.
    pub target: String,
    /// For `multiple_choice`: the document field holding the list of choices.
    #[serde(default)]
    pub choices: Option<String>,
    /// Metric names to report (e.g. `acc`, `acc_norm`, `exact_match`, `reference_loss`).
    pub metrics: Vec<String>,
    /// Number of few-shot examples to prepend (0 = zero-shot).
    #[serde(default)]
    pub few_shot: usize,
    /// Evaluate at most this many documents.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Seed for sampling documents, few-shot examples and generators.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Generation settings (`generate_until` only).
    #[serde(default)]
    pub generation: Option<GenParams>,
    /// Version of the task definition, reported in results.
    #[serde(default = "default_version")]
    pub version: u32,
}

/// A template that cannot be filled from a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a closing `}}`.
    #[error("template {template:?}: '{{{{' at byte {at} is never closed with '}}}}'")]
    Unclosed {
        /// The template.
        template: String,
        /// Byte offset of the opening braces.
        at: usize,
    },
    /// The document has no such field.
    #[error("template field {field:?} is not in the document (fields: {available})")]
    MissingField {
        /// The missing field.
        field: String,
        /// The document's field names, comma separated.
        available: String,
    },
}

/// Fills `{{field}}` placeholders from `doc`; strings are inserted raw, other values as JSON.
pub fn render_template(template: &str, doc: &Map<String, Value>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            template: template.to_owned(),
            at: template.len() - rest.len() + open,
        })?;
        let field = after[..close].trim();
        let value = doc.get(field).ok_or_else(|| TemplateError::MissingField {
            field: field.to_owned(),
            available: doc.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        match value {
            Value::String(text) => out.push_str(text),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
