//! Competitions as data: a TOML file per competition (see `crates/sn37/competitions/`).
//!
//! The built-in files are INSTRUCT_8B (id 3) and DISTILLED_REASONING_3B (id 4) as SN37
//! schedules them, and TINY_DEMO (id 100) for small models.

use std::path::Path;

use assay_eval::ifeval::generate::IfEvalVersion;
use assay_eval::sn37::normalize::Normalization;
use assay_integrity::models::ModelRules;
use serde::{Deserialize, Serialize};

use crate::epsilon::EpsilonSchedule;

/// Built-in competition files: (file name, contents).
const BUILTIN: &[(&str, &str)] = &[
    (
        "instruct_8b.toml",
        include_str!("../competitions/instruct_8b.toml"),
    ),
    (
        "distilled_reasoning_3b.toml",
        include_str!("../competitions/distilled_reasoning_3b.toml"),
    ),
    ("tiny.toml", include_str!("../competitions/tiny.toml")),
];

/// One competition: who may enter, how models are scored, and how weights move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competition {
    /// Numeric id (SN37: 3 = INSTRUCT_8B, 4 = DISTILLED_REASONING_3B).
    pub id: u32,
    /// Name, e.g. `INSTRUCT_8B`.
    pub name: String,
    /// One line for listings.
    #[serde(default)]
    pub description: String,
    /// Share of the subnet's reward, in [0, 1].
    pub reward_share: f64,
    /// Blocks a commit must age before its model is evaluated.
    #[serde(default)]
    pub eval_block_delay: u64,
    /// Wall-clock seconds one model's evaluation may take; past it the model scores +inf with
    /// the reason (SN37: a 720 s subprocess TTL per model).
    #[serde(default = "default_eval_time_limit")]
    pub eval_time_limit_s: f64,
    /// The advantage of earlier commits.
    pub epsilon: EpsilonSchedule,
    /// What a model must satisfy to be evaluated.
    pub constraints: Constraints,
    /// Evaluation tasks; their weights sum to 1.
    pub tasks: Vec<TaskSpec>,
}

fn default_eval_time_limit() -> f64 {
    crate::time_limit::SN37_EVAL_TIME_LIMIT_S
}

/// Model constraints (taoverse `ModelConstraints` plus SN37's norm validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Fewest parameters.
    pub min_params: u64,
    /// Most parameters.
    pub max_params: u64,
    /// Longest token sequence fed to the model; longer contexts are cut from the left.
    pub sequence_length: usize,
    /// Which tokenizer evaluates the model.
    pub tokenizer: TokenizerRule,
    /// Accepted `config.json` `architectures[0]` values (exact match).
    pub architectures: Vec<String>,
    /// Largest total size of the weight files, in bytes.
    pub max_bytes: u64,
    /// Any projection with a larger Frobenius norm rejects the model (SN37: 1000).
    pub max_projection_norm: f32,
    /// Norm above which a projection counts as high (SN37: 200).
    pub high_projection_norm: f32,
    /// Largest mean fraction of layers with a high norm (SN37: 0.15).
    pub max_high_norm_fraction: f32,
}

impl Constraints {
    /// The integrity crate's rules for these constraints (other limits at their defaults).
    pub fn model_rules(&self) -> ModelRules {
        ModelRules {
            min_params: self.min_params,
            max_params: self.max_params,
            architectures: self.architectures.clone(),
            max_projection_norm: self.max_projection_norm,
            high_projection_norm: self.high_projection_norm,
            max_high_norm_fraction: self.max_high_norm_fraction,
            max_total_bytes: self.max_bytes,
            ..ModelRules::default()
        }
    }
}

/// Which tokenizer a competition evaluates with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerRule {
    /// The model's own tokenizer (INSTRUCT_8B).
    Own,
    /// One tokenizer for every model, replacing the model's own (SN37: `Xenova/gpt-4`).
    Fixed {
        /// A model folder or `org/name` in the local Hugging Face cache holding `tokenizer.json`.
        model: String,
    },
}

/// How a task's raw score is computed (SN37's `EvalMethodId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Mean NLL of reference tokens after a chat-templated context.
    ReferenceLoss,
    /// Loss over whole padded documents after SN37's degeneracy check (FINEWEB).
    TextLoss,
    /// Greedy answer; the first standalone A/B/C/D must be the reference letter.
    MultipleChoice,
    /// Two responses per sample checked against generated rules.
    IfEval,
}

/// Where a task's samples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reader", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// Generated word-sorting tasks (assay-eval).
    WordSorting,
    /// Generated DYCK_LANGUAGE bracket-completion tasks (assay-eval), SN37's defaults (2 to 20
    /// pairs, 1 to 3 closing brackets to predict); score with `reference_loss`.
    Dyck,
    /// IF-eval samples generated from question/answer rows.
    IfEval {
        /// Rows with `question` and `answer` (or `challenge`/`reference` MMLU rows): a JSONL or
        /// Parquet file, or a folder of them, relative to the data folder.
        questions: String,
        /// Rule set version.
        version: IfEvalVersion,
    },
    /// IF-eval samples over a hand-picked rule set (any of SN37's 14 rule ids, STARTS_WITH
    /// included) instead of a version's.
    IfEvalRules {
        /// Question/answer rows, as for `if_eval`.
        questions: String,
        /// The rule ids to draw from, e.g. `["starts_with", "no_commas"]`.
        rules: Vec<assay_eval::ifeval::RuleId>,
        /// Fewest rules per sample (at least 1).
        min_rules: usize,
        /// Most rules per sample.
        max_rules: usize,
    },
    /// SYNTHETIC-1-SFT rows (`messages`, `task_type`).
    Synthetic1 {
        /// JSONL or Parquet file, or a folder of them, relative to the data folder.
        file: String,
    },
    /// open-r1/codeforces-cots rows (`messages`).
    CodeforcesCots {
        /// JSONL or Parquet file, or a folder of them, relative to the data folder.
        file: String,
    },
    /// Multiple-choice rows (`challenge`, `reference` letter).
    Mmlu {
        /// JSONL or Parquet file, or a folder of them, relative to the data folder.
        file: String,
    },
    /// Plain documents (`text`).
    Text {
        /// JSONL or Parquet file, or a folder of them, relative to the data folder.
        file: String,
    },
}

/// One evaluation task of a competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Name in reports (SN37's task name).
    pub name: String,
    /// Scoring method.
    pub method: Method,
    /// Weight in the model score.
    pub weight: f64,
    /// Normalisation of the raw score.
    pub normalization: Normalization,
    /// Samples drawn per round.
    pub samples: usize,
    /// Token budget for generation methods (SN37: 20 for multiple choice, 200 for IF-eval).
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    /// Data source.
    pub source: SourceSpec,
}

/// Why a competition file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CompetitionError {
    /// The file could not be read.
    #[error("{path}: cannot read competition file: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Malformed TOML or a field that does not fit (the message has line and column).
    #[error("{origin}: invalid competition: {message}")]
    Parse {
        /// File name.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A value the schema accepts but the competition cannot use.
    #[error("{origin}: field `{field}`: {reason}")]
    Invalid {
        /// File name.
        origin: String,
        /// The field.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// No competition with that name or id.
    #[error(
        "no competition `{0}`; run `assay sn37 competitions` to list them, or pass a TOML file"
    )]
    Unknown(String),
}

impl assay_errors::Diagnose for CompetitionError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Io { source, .. } => assay_errors::io_blame(source),
            Self::Parse { .. } | Self::Invalid { .. } | Self::Unknown(_) => {
                assay_errors::Blame::Operator
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Parse { .. } | Self::Invalid { .. } => Some(
                "compare with a built-in competition: `assay sn37 competitions --show TINY_DEMO`"
                    .into(),
            ),
            _ => None,
        }
    }
}

impl Competition {
    /// The competition as a TOML file (the format [`Competition::from_toml`] reads).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// One line for listings: id, name, reward share, parameter range and task weights.
    pub fn summary_line(&self) -> String {
        let tasks: Vec<String> = self
            .tasks
            .iter()
            .map(|t| format!("{} {}", t.name, t.weight))
            .collect();
        format!(
            "{:>4}  {:<24} reward {:.2}  params {}..={}  tasks: {}",
            self.id,
            self.name,
            self.reward_share,
            self.constraints.min_params,
            self.constraints.max_params,
            tasks.join(", ")
        )
    }

    /// Parses and validates a competition file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, CompetitionError> {
        let competition: Competition =
            toml::from_str(text).map_err(|error| CompetitionError::Parse {
                origin: origin.to_owned(),
                message: error.to_string(),
            })?;
        reject_options_of_unit_variants(text, origin)?;
        competition.validate(origin)?;
        Ok(competition)
    }

    /// Reads a competition file.
    pub fn from_file(path: &Path) -> Result<Self, CompetitionError> {
        let text = std::fs::read_to_string(path).map_err(|source| CompetitionError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks what serde cannot: shares and weights in range, task weights summing to 1 (as
    /// SN37 asserts at import), a usable epsilon schedule and parameter range.
    pub fn validate(&self, origin: &str) -> Result<(), CompetitionError> {
        let invalid = |field: &str, reason: String| CompetitionError::Invalid {
            origin: origin.to_owned(),
            field: field.to_owned(),
            reason,
        };
        if !(0.0..=1.0).contains(&self.reward_share) {
            return Err(invalid("reward_share", "must be in [0, 1]".into()));
        }
        if !(self.eval_time_limit_s.is_finite() && self.eval_time_limit_s > 0.0) {
            return Err(invalid(
                "eval_time_limit_s",
                "must be a positive number of seconds".into(),
            ));
        }
        self.epsilon
            .validate()
            .map_err(|reason| invalid("epsilon", reason))?;
        if self.constraints.min_params > self.constraints.max_params {
            return Err(invalid(
                "constraints.min_params",
                "is greater than max_params".into(),
            ));
        }
        if self.tasks.is_empty() {
            return Err(invalid(
                "tasks",
                "a competition needs at least one task".into(),
            ));
        }
        for task in &self.tasks {
            // taoverse's EvalTask.__post_init__: "Weight must be positive."
            if !(task.weight.is_finite() && task.weight > 0.0) {
                return Err(invalid(
                    "tasks.weight",
                    format!(
                        "task {}: must be > 0 (taoverse rejects a zero weight); remove the task instead",
                        task.name
                    ),
                ));
            }
            if let SourceSpec::IfEvalRules {
                rules,
                min_rules,
                max_rules,
                ..
            } = &task.source
            {
                let mut unique = rules.clone();
                unique.sort();
                unique.dedup();
                if rules.is_empty() || unique.len() != rules.len() {
                    return Err(invalid(
                        "tasks.source.rules",
                        format!("task {}: list each rule id once, at least one", task.name),
                    ));
                }
                if *min_rules == 0 || min_rules > max_rules {
                    return Err(invalid(
                        "tasks.source.min_rules",
                        format!(
                            "task {}: need 1 <= min_rules <= max_rules (got {min_rules} and {max_rules})",
                            task.name
                        ),
                    ));
                }
            }
            if task.samples == 0 {
                return Err(invalid(
                    "tasks.samples",
                    format!("task {}: must be >= 1", task.name),
                ));
            }
        }
        let total: f64 = self.tasks.iter().map(|task| task.weight).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(invalid(
                "tasks.weight",
                format!("task weights sum to {total}; they must sum to 1"),
            ));
        }
        Ok(())
    }
}

/// serde ignores extra keys beside the tag of a variant without fields (`reader = "word_sorting"`,
/// `rule = "own"`), so those tables are checked here: a misspelt or misplaced option is an error.
fn reject_options_of_unit_variants(text: &str, origin: &str) -> Result<(), CompetitionError> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let extra = |value: Option<&toml::Value>, tag: &str, units: &[&str]| -> Option<String> {
        let table = value?.as_table()?;
        let kind = table.get(tag)?.as_str()?;
        if !units.contains(&kind) {
            return None;
        }
        table
            .keys()
            .find(|key| key.as_str() != tag)
            .map(|key| format!("`{tag} = \"{kind}\"` takes no option `{key}`; remove it"))
    };
    let invalid = |field: &str, reason: String| CompetitionError::Invalid {
        origin: origin.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let tokenizer = table
        .get("constraints")
        .and_then(|c| c.as_table())
        .and_then(|c| c.get("tokenizer"));
    if let Some(reason) = extra(tokenizer, "rule", &["own"]) {
        return Err(invalid("constraints.tokenizer", reason));
    }
    let tasks = table.get("tasks").and_then(|t| t.as_array());
    for task in tasks.into_iter().flatten() {
        let source = task.as_table().and_then(|t| t.get("source"));
        if let Some(reason) = extra(source, "reader", &["word_sorting", "dyck"]) {
            return Err(invalid("tasks.source", reason));
        }
    }
    Ok(())
}

/// The built-in competitions, in file order.
pub fn builtin_competitions() -> Vec<Competition> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            Competition::from_toml(text, name).expect("built-in competitions are valid")
        })
        .collect()
}

/// Finds a competition: a path to a TOML file, or a built-in's name (case-insensitive) or id.
pub fn find_competition(spec: &str) -> Result<Competition, CompetitionError> {
    let path = Path::new(spec);
    if path.is_file() {
        return Competition::from_file(path);
    }
    builtin_competitions()
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(spec) || c.id.to_string() == spec)
        .ok_or_else(|| CompetitionError::Unknown(spec.to_owned()))
}
