//! Per-task normalisation and the weighted model score of SN37
//! (taoverse `model/eval/normalization.py`, finetuning `validation.py::score_model`).
//! Every score here is "lower is better".

use serde::{Deserialize, Serialize};

/// taoverse's `NormalizationId` with its arguments.
///
/// Read strictly, as taoverse's `EvalTask.__post_init__` (model/eval/task.py) checks it: `none`
/// takes no options, `inverse_exponential` needs a positive `ceiling`, and any other key is an
/// error (a misspelt option must not vanish silently).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "method",
    rename_all = "snake_case",
    try_from = "NormalizationFields"
)]
pub enum Normalization {
    /// The raw score is used as is.
    None,
    /// `1` at or above `ceiling`, else `(1 - e^(-raw/ceiling)) / (1 - e^(-1))`, in [0, 1]
    /// for raw scores in [0, ceiling].
    InverseExponential {
        /// The raw score from which the normalised score is 1 (must be > 0).
        ceiling: f64,
    },
}

/// A normalisation as written in a file, before its options are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NormalizationFields {
    method: String,
    #[serde(default)]
    ceiling: Option<f64>,
}

impl TryFrom<NormalizationFields> for Normalization {
    type Error = String;

    fn try_from(fields: NormalizationFields) -> Result<Self, String> {
        match (fields.method.as_str(), fields.ceiling) {
            ("none", None) => Ok(Self::None),
            ("none", Some(_)) => Err(
                "method `none` takes no options (taoverse rejects normalization kwargs with NONE); \
                 remove `ceiling` or use method `inverse_exponential`"
                    .into(),
            ),
            ("inverse_exponential", Some(ceiling)) if ceiling.is_finite() && ceiling > 0.0 => {
                Ok(Self::InverseExponential { ceiling })
            }
            ("inverse_exponential", Some(ceiling)) => Err(format!(
                "inverse_exponential ceiling {ceiling} must be a positive finite number"
            )),
            ("inverse_exponential", None) => {
                Err("method `inverse_exponential` needs a `ceiling`".into())
            }
            (other, _) => Err(format!(
                "unknown normalization method `{other}`; use `none` or `inverse_exponential`"
            )),
        }
    }
}

/// Why scores cannot be combined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// A ceiling that is not a positive finite number.
    #[error(
        "task {task:?}: inverse_exponential ceiling {ceiling} must be a positive finite number"
    )]
    BadCeiling {
        /// The task's name.
        task: String,
        /// The ceiling given.
        ceiling: f64,
    },
    /// A weight that is negative or not finite.
    #[error("task {task:?}: weight {weight} must be a finite number >= 0")]
    BadWeight {
        /// The task's name.
        task: String,
        /// The weight given.
        weight: f64,
    },
    /// Nothing to combine (SN37 retries the model later in this case).
    #[error("no task scores to combine: every evaluation task failed to load")]
    NoTasks,
}

/// Applies `method` to `raw` exactly as taoverse does (a NaN raw score stays NaN).
pub fn normalize(raw: f64, method: Normalization) -> f64 {
    match method {
        Normalization::None => raw,
        Normalization::InverseExponential { ceiling } => {
            if raw >= ceiling {
                return 1.0;
            }
            (1.0 - (-raw / ceiling).exp()) / (1.0 - (-1.0f64).exp())
        }
    }
}

/// One task's raw result and how it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRawScore {
    /// Task name, for reports and errors.
    pub name: String,
    /// Raw score (lower is better; `+inf` when the task failed).
    pub raw: f64,
    /// The task's weight in the competition.
    pub weight: f64,
    /// How the raw score is normalised.
    pub normalization: Normalization,
}

/// One task's contribution to the model score (SN37's `ScoreDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScoreDetails {
    /// Task name.
    pub name: String,
    /// Raw score.
    pub raw: f64,
    /// Normalised score.
    pub normalized: f64,
    /// Normalised score times the (renormalised) weight.
    pub weighted: f64,
}

/// The model's score and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Sum of the weighted normalised task scores; lower is better.
    pub total: f64,
    /// Per-task details, in input order.
    pub tasks: Vec<TaskScoreDetails>,
}

/// Python's `math.isclose(a, b)` with its default tolerances (rel 1e-9, abs 0).
fn is_close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Checks a task's parameters before use.
fn validate(task: &TaskRawScore) -> Result<(), NormalizeError> {
    if !task.weight.is_finite() || task.weight < 0.0 {
        return Err(NormalizeError::BadWeight {
            task: task.name.clone(),
            weight: task.weight,
        });
    }
    if let Normalization::InverseExponential { ceiling } = task.normalization
        && !(ceiling.is_finite() && ceiling > 0.0)
    {
        return Err(NormalizeError::BadCeiling {
            task: task.name.clone(),
            ceiling,
        });
    }
    Ok(())
}

/// SN37's `score_model` combination: weights are divided by their sum unless that sum is
/// (close to) 1 or 0, then `total = Σ weight_t · normalize(raw_t)`, summed in input order.
pub fn combine_task_scores(tasks: &[TaskRawScore]) -> Result<ModelScore, NormalizeError> {
    if tasks.is_empty() {
        return Err(NormalizeError::NoTasks);
    }
    tasks.iter().try_for_each(validate)?;
    let total_weight: f64 = tasks.iter().map(|task| task.weight).sum();
    let renormalize = !is_close(total_weight, 1.0) && total_weight > 0.0;
    let mut total = 0.0;
    let mut details = Vec::with_capacity(tasks.len());
    for task in tasks {
        let weight = if renormalize {
            task.weight / total_weight
        } else {
            task.weight
        };
        let normalized = normalize(task.raw, task.normalization);
        let weighted = normalized * weight;
        total += weighted;
        details.push(TaskScoreDetails {
            name: task.name.clone(),
            raw: task.raw,
            normalized,
            weighted,
        });
    }
    Ok(ModelScore {
        total,
        tasks: details,
    })
}
