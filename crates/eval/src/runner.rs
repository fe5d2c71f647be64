//! The generic task runner, written against a [`LanguageModel`] trait so that it can be
//! used before (and tested without) the real engine.
//!
//! Scoring follows lm-evaluation-harness (0.4.13, checked against it by
//! `fixtures/lmeval/make_lmeval_fixtures.py`): multiple-choice `acc` is the arg-max of the
//! choices' log-likelihoods, `acc_norm` the arg-max of log-likelihood divided by the choice's
//! length in characters (Python's `len`: Unicode code points, not bytes), `acc_bytes` the same
//! divided by its UTF-8 length in bytes; the continuation is `" " + choice` but the lengths are
//! the choice's alone; standard errors are the sample standard deviation over `sqrt(n)`.
//! Generation tasks report `exact_match` and, on request, `embedding_cosine` (all-MiniLM-L6-v2
//! cosine of the answer, cut at the stop sequences, with the target).

use serde_json::{Map, Value};

use crate::results::{NO_FILTER, SampleCounts, TaskResults};
use crate::sn37::text_loss::{TokenLm, text_losses};
use crate::task_def::{GenParams, RequestType, TaskDef, TemplateError, render_template};
use crate::text::embedder::{EmbedderError, shared_minilm};

/// Error type of model calls.
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// What the runner needs from a model.
pub trait LanguageModel {
    /// For each (context, continuation): log-probability of the continuation and whether
    /// greedy decoding would have produced it.
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError>;
    /// For each (context, settings): the generated text.
    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError>;
    /// For each (context, reference): mean negative log-likelihood per reference token.
    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError>;
    /// Token-level access for TEXT_LOSS, when the model has it.
    fn token_lm(&self) -> Option<&dyn TokenLm> {
        None
    }
}

/// Why a task could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A document does not fit the task's templates.
    #[error("task {task}: document {doc}: {source}")]
    Template {
        /// Task name.
        task: String,
        /// Index of the document.
        doc: usize,
        /// The template problem.
        source: TemplateError,
    },
    /// A document field has the wrong shape.
    #[error("task {task}: document {doc}: field {field:?}: {reason}")]
    BadField {
        /// Task name.
        task: String,
        /// Index of the document.
        doc: usize,
        /// The field.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// The model failed or answered the wrong number of requests.
    #[error("task {task}: model: {message}")]
    Model {
        /// Task name.
        task: String,
        /// The model's error.
        message: String,
    },
    /// A metric could not be computed (its model failed to load or run).
    #[error("task {task}: metric {metric:?}: {message}")]
    Metric {
        /// Task name.
        task: String,
        /// The metric.
        metric: String,
        /// What went wrong.
        message: String,
    },
    /// The task asks for a metric this runner does not compute.
    #[error("task {task}: metric {metric:?} is not computed by the generic runner")]
    UnsupportedMetric {
        /// Task name.
        task: String,
        /// The metric.
        metric: String,
    },
}

impl assay_errors::Diagnose for RunError {
    /// Documents and task files are the operator's; a model that fails while answering is its
    /// supplier's.
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Template { .. } | Self::BadField { .. } | Self::UnsupportedMetric { .. } => {
                assay_errors::Blame::Operator
            }
            Self::Model { .. } | Self::Metric { .. } => assay_errors::Blame::Miner,
        }
    }
}

/// Mean and standard error (sample standard deviation / sqrt(n)) of `values`.
pub fn mean_and_stderr(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, None);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some((variance / n).sqrt()))
}

/// Index of the largest value (first one on ties, like `numpy.argmax`).
fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (index, value) in values.enumerate() {
        if value > best.1 {
            best = (index, value);
        }
    }
    best.0
}

/// Runs `task` on `docs` (already loaded) and returns its metrics and counts.
pub fn run_task(
    task: &TaskDef,
    docs: &[Map<String, Value>],
    model: &dyn LanguageModel,
) -> Result<(TaskResults, SampleCounts), RunError> {
    let original = docs.len();
    let docs = &docs[..task.limit.map_or(original, |limit| limit.min(original))];
    let counts = SampleCounts {
        original,
        effective: docs.len(),
    };
    let mut results = TaskResults::new(&task.name);
    if docs.is_empty() {
        return Ok((results, counts));
    }
    let per_doc = match task.request_type {
        RequestType::MultipleChoice => run_multiple_choice(task, docs, model)?,
        RequestType::Loglikelihood => run_loglikelihood(task, docs, model)?,
        RequestType::GenerateUntil => run_generate(task, docs, model)?,
        RequestType::ReferenceLoss => run_reference_loss(task, docs, model)?,
        RequestType::TextLoss => run_text_loss(task, docs, model)?,
    };
    for metric in &task.metrics {
        let values: Vec<f64> = per_doc
            .iter()
            .filter_map(|doc| {
                doc.iter()
                    .find(|(name, _)| name == metric)
                    .map(|(_, value)| *value)
            })
            .collect();
        if values.len() != per_doc.len() {
            return Err(RunError::UnsupportedMetric {
                task: task.name.clone(),
                metric: metric.clone(),
            });
        }
        let (mean, stderr) = mean_and_stderr(&values);
        results.insert(metric, NO_FILTER, mean, stderr);
    }
    Ok((results, counts))
}

/// Per-document metric values.
type DocMetrics = Vec<Vec<(String, f64)>>;

fn model_error(task: &TaskDef, error: impl std::fmt::Display) -> RunError {
    RunError::Model {
        task: task.name.clone(),
        message: error.to_string(),
    }
}

/// Checks the model answered every request.
fn expect_len<T>(task: &TaskDef, answers: Vec<T>, wanted: usize) -> Result<Vec<T>, RunError> {
    if answers.len() != wanted {
        return Err(model_error(
            task,
            format!("returned {} answers for {wanted} requests", answers.len()),
        ));
    }
    Ok(answers)
}

fn render(
    task: &TaskDef,
    template: &str,
    doc: &Map<String, Value>,
    index: usize,
) -> Result<String, RunError> {
    render_template(template, doc).map_err(|source| RunError::Template {
        task: task.name.clone(),
        doc: index,
        source,
    })
}

/// The choices and gold index of a multiple-choice document.
fn choices_and_gold(
    task: &TaskDef,
    doc: &Map<String, Value>,
    index: usize,
) -> Result<(Vec<String>, usize), RunError> {
    let bad = |field: &str, reason: &str| RunError::BadField {
        task: task.name.clone(),
        doc: index,
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let field = task.choices.as_deref().unwrap_or("choices");
    let choices: Vec<String> = doc
        .get(field)
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| bad(field, "expected a list of strings"))?;
    let gold = match doc.get(&task.target) {
        Some(Value::Number(number)) => number.as_u64().map(|n| n as usize),
        Some(Value::String(text)) => choices.iter().position(|choice| choice == text),
        _ => None,
    };
    let gold = gold
        .filter(|&gold| gold < choices.len())
        .ok_or_else(|| bad(&task.target, "expected a choice index or a choice's text"))?;
    Ok((choices, gold))
}

fn run_multiple_choice(
    task: &TaskDef,
    docs: &[Map<String, Value>],
    model: &dyn LanguageModel,
) -> Result<DocMetrics, RunError> {
    let mut requests = Vec::new();
    let mut layout = Vec::with_capacity(docs.len());
    for (index, doc) in docs.iter().enumerate() {
        let context = render(task, &task.prompt, doc, index)?;
        let (choices, gold) = choices_and_gold(task, doc, index)?;
        requests.extend(
            choices
                .iter()
                .map(|choice| (context.clone(), format!(" {choice}"))),
        );
        layout.push((choices, gold));
    }
    let answers = model
        .loglikelihood(&requests)
        .map_err(|error| model_error(task, error))?;
    let answers = expect_len(task, answers, requests.len())?;
    let mut offset = 0;
    let mut metrics = Vec::with_capacity(docs.len());
    for (choices, gold) in layout {
        let scores = &answers[offset..offset + choices.len()];
        offset += choices.len();
        let acc = argmax(scores.iter().map(|(logprob, _)| *logprob)) == gold;
        let normalized = scores
            .iter()
            .zip(&choices)
            .map(|((logprob, _), choice)| logprob / choice.chars().count() as f64);
        let acc_norm = argmax(normalized) == gold;
        let per_byte = scores
            .iter()
            .zip(&choices)
            .map(|((logprob, _), choice)| logprob / choice.len() as f64);
        let acc_bytes = argmax(per_byte) == gold;
        metrics.push(vec![
            ("acc".to_owned(), f64::from(u8::from(acc))),
            ("acc_norm".to_owned(), f64::from(u8::from(acc_norm))),
            ("acc_bytes".to_owned(), f64::from(u8::from(acc_bytes))),
        ]);
    }
    Ok(metrics)
}

fn contexts_and_targets(
    task: &TaskDef,
    docs: &[Map<String, Value>],
) -> Result<Vec<(String, String)>, RunError> {
    docs.iter()
        .enumerate()
        .map(|(index, doc)| {
            Ok((
                render(task, &task.prompt, doc, index)?,
                render(task, &task.target, doc, index)?,
            ))
        })
        .collect()
}

fn run_loglikelihood(
    task: &TaskDef,
    docs: &[Map<String, Value>],
    model: &dyn LanguageModel,
) -> Result<DocMetrics, RunError> {
    let requests = contexts_and_targets(task, docs)?;
    let answers = model
        .loglikelihood(&requests)
        .map_err(|error| model_error(task, error))?;
    let answers = expect_len(task, answers, requests.len())?;
    Ok(answers
        .into_iter()
        .map(|(logprob, greedy)| {
            vec![
                ("loglikelihood".to_owned(), logprob),
                ("acc".to_owned(), f64::from(u8::from(greedy))),
                ("perplexity".to_owned(), (-logprob).exp()),
            ]
        })
        .collect())
}

/// Cuts `text` before the first stop sequence.
fn cut_at_stop(text: &str, until: &[String]) -> String {
    let end = until
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| text.find(stop.as_str()))
        .min()
        .unwrap_or(text.len());
    text[..end].to_owned()
}

fn run_generate(
    task: &TaskDef,
    docs: &[Map<String, Value>],
    model: &dyn LanguageModel,
) -> Result<DocMetrics, RunError> {
    let params = task.generation.clone().unwrap_or(GenParams {
        until: Vec::new(),
        max_new_tokens: 256,
    });
    let pairs = contexts_and_targets(task, docs)?;
    let requests: Vec<(String, GenParams)> = pairs
        .iter()
        .map(|(context, _)| (context.clone(), params.clone()))
        .collect();
    let outputs = model
        .generate_until(&requests)
        .map_err(|error| model_error(task, error))?;
    let outputs = expect_len(task, outputs, requests.len())?;
    let answers: Vec<String> = outputs
        .iter()
        .map(|output| cut_at_stop(output, &params.until))
        .collect();
    let mut metrics: DocMetrics = answers
        .iter()
        .zip(&pairs)
        .map(|(answer, (_, target))| {
            let exact = answer.trim() == target.trim();
            vec![("exact_match".to_owned(), f64::from(u8::from(exact)))]
        })
        .collect();
    if task.metrics.iter().any(|m| m == EMBEDDING_COSINE) {
        let cosines = embedding_cosines(task, &answers, &pairs)?;
        for (doc, value) in metrics.iter_mut().zip(cosines) {
            doc.push((EMBEDDING_COSINE.to_owned(), value));
        }
    }
    Ok(metrics)
}

/// Name of the sentence-embedding similarity metric.
pub const EMBEDDING_COSINE: &str = "embedding_cosine";

/// all-MiniLM-L6-v2 cosine of each answer (stop sequences cut) with its target.
fn embedding_cosines(
    task: &TaskDef,
    answers: &[String],
    pairs: &[(String, String)],
) -> Result<Vec<f64>, RunError> {
    let metric_error = |error: EmbedderError| RunError::Metric {
        task: task.name.clone(),
        metric: EMBEDDING_COSINE.to_owned(),
        message: error.to_string(),
    };
    let texts: Vec<(&str, &str)> = answers
        .iter()
        .zip(pairs)
        .map(|(answer, (_, target))| (answer.as_str(), target.as_str()))
        .collect();
    let cosines = shared_minilm()
        .and_then(|embedder| embedder.cosines(&texts))
        .map_err(metric_error)?;
    Ok(cosines.into_iter().map(f64::from).collect())
}

fn run_reference_loss(
    task: &TaskDef,
    docs: &[Map<String, Value>],
    model: &dyn LanguageModel,
) -> Result<DocMetrics, RunError> {
    let requests = contexts_and_targets(task, docs)?;
    let losses = model
        .reference_loss(&requests)
        .map_err(|error| model_error(task, error))?;
    let losses = expect_len(task, losses, requests.len())?;
    Ok(losses
        .into_iter()
        .map(|loss| vec![("reference_loss".to_owned(), loss)])
        .collect())
}

/// TEXT_LOSS: `prompt` renders each document's text; the sanity check runs on the first two.
fn run_text_loss(
    task: &TaskDef,
    docs: &[Map<String, Value>],
    model: &dyn LanguageModel,
) -> Result<DocMetrics, RunError> {
    let texts = docs
        .iter()
        .enumerate()
        .map(|(index, doc)| render(task, &task.prompt, doc, index))
        .collect::<Result<Vec<_>, _>>()?;
    let token_lm = model
        .token_lm()
        .ok_or_else(|| model_error(task, "the model has no token-level interface for TEXT_LOSS"))?;
    let losses = text_losses(token_lm, &texts).map_err(|error| model_error(task, error))?;
    Ok(losses
        .into_iter()
        .map(|loss| vec![("text_loss".to_owned(), loss)])
        .collect())
}
