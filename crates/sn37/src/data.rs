//! Pluggable readers for SN37's data sources, over local JSON-lines or Parquet files (SN37 reads
//! them from Hugging Face; a round here reads files the operator downloaded, e.g. a dataset's
//! `data/*.parquet` shards). A source names a file or a folder of `.jsonl`/`.parquet` files;
//! `assay-tables` reads both formats into the same JSON rows. Every reader samples rows with a
//! seeded ChaCha20 stream, so a round's data depends only on its seed.
//!
//! Sampling is uniform over rows without replacement, where SN37 draws random pages of a
//! dataset server; generated tasks (word sorting, IF-eval) come from `assay-eval`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use assay_eval::ifeval::generate::{
    IfEvalSample, IfEvalVersion, QuestionAnswer, generate_samples, generate_samples_with_rules,
};
use assay_eval::sn37::dyck::{DyckConfig, generate_dyck_samples};
use assay_eval::sn37::word_sorting::{WordSortingConfig, generate_word_sorting};
use assay_tables::{Format, Location, TableError, read_table};
use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha20Rng;
use regex::Regex;
use serde_json::{Map, Value};

use crate::competition::SourceSpec;

/// SN37's system instruction for SYNTHETIC-1 and Codeforces traces.
pub const REASONING_SYSTEM_PROMPT: &str = "You are a reflective AI capable of using extended chains of thought to consider the problem thoroughly and deliberate through systematic reasoning to arrive at a correct solution before answering. Enclose your internal monologue in <think> ... </think> tags, then provide your final answer in the format that the user requests.";

/// Heuristic characters per token of SN37's Codeforces length filter.
const CHARS_PER_TOKEN: usize = 4;

/// Codeforces length limit, in heuristic tokens (SN37: the competition's 16,384).
const CODEFORCES_MAX_TOKENS: usize = 16_384;

/// A task's samples, in the shape its method needs.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskData {
    /// (user message, reference) pairs for REFERENCE_LOSS.
    ReferencePairs(Vec<(String, String)>),
    /// (question with options, reference letter) pairs for MULTIPLE_CHOICE.
    MultipleChoice(Vec<(String, String)>),
    /// IF-eval samples: two prompts sharing rules.
    IfEval(Vec<IfEvalSample>),
    /// Whole documents for TEXT_LOSS.
    Text(Vec<String>),
}

/// Why a data source could not be read (the task is then dropped for the round, as SN37
/// drops a task whose loader fails).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file is missing, unreadable, or not valid JSON lines / Parquet.
    #[error("{0}; put the file in the --data folder")]
    Table(#[from] TableError),
    /// A folder source holds no `.jsonl` or `.parquet` file.
    #[error("{path}: no .jsonl or .parquet file in this folder")]
    NoFiles {
        /// The folder.
        path: String,
    },
    /// A row lacks a field or has it in the wrong shape.
    #[error("{path}: {at}: {reason}")]
    BadRow {
        /// The file.
        path: String,
        /// Line (JSON lines) or row (Parquet).
        at: Location,
        /// What is wrong.
        reason: String,
    },
    /// The file has no usable rows.
    #[error("{path}: no usable rows ({reason})")]
    Empty {
        /// The file.
        path: String,
        /// Which rows were looked for.
        reason: String,
    },
    /// The word-sorting generator rejected its configuration.
    #[error("word sorting: {0}")]
    WordSorting(String),
    /// The DYCK_LANGUAGE generator rejected its configuration.
    #[error("{0}")]
    Dyck(#[from] assay_eval::sn37::dyck::DyckError),
}

impl assay_errors::Diagnose for DataError {
    /// The data files are the operator's (downloaded for the round), so every failure is theirs.
    fn blame(&self) -> assay_errors::Blame {
        assay_errors::Blame::Operator
    }
}

/// A data row with its file and position.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// The file it came from.
    pub file: PathBuf,
    /// Line or row number in that file.
    pub at: Location,
    /// The row.
    pub row: Map<String, Value>,
}

impl SourceRow {
    fn bad(&self, reason: String) -> DataError {
        DataError::BadRow {
            path: self.file.display().to_string(),
            at: self.at,
            reason,
        }
    }
}

/// The table files of a source: the file itself, or a folder's `.jsonl`/`.parquet` files in
/// name order (a Hugging Face dataset's shards).
fn source_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| TableError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|file| file.is_file() && Format::from_path(file).is_some())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::NoFiles {
            path: path.display().to_string(),
        });
    }
    Ok(files)
}

/// Reads every row of a JSON-lines or Parquet file, or of all such files in a folder.
pub fn read_source_rows(path: &Path) -> Result<Vec<SourceRow>, DataError> {
    let mut rows = Vec::new();
    for file in source_files(path)? {
        rows.extend(read_table(&file)?.into_iter().map(|record| SourceRow {
            file: file.clone(),
            at: record.location,
            row: record.row,
        }));
    }
    Ok(rows)
}

/// Picks up to `count` items without replacement, keeping their file order.
pub fn sample_in_order<T: Clone>(items: &[T], count: usize, seed: u64) -> Vec<T> {
    if items.len() <= count {
        return items.to_vec();
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut picked = index::sample(&mut rng, items.len(), count).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|at| items[at].clone()).collect()
}

fn string_field(row: &Map<String, Value>, field: &str) -> Option<String> {
    row.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// The (role, content) pairs of a `messages` field, or why not.
fn messages(row: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let list = row
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("field `messages`: expected a list of {role, content}")?;
    list.iter()
        .enumerate()
        .map(|(at, message)| {
            let role = message.get("role").and_then(Value::as_str);
            let content = message.get("content").and_then(Value::as_str);
            match (role, content) {
                (Some(role), Some(content)) => Ok((role.to_owned(), content.to_owned())),
                _ => Err(format!(
                    "messages[{at}]: expected string `role` and `content`"
                )),
            }
        })
        .collect()
}

/// The text captured by the last non-greedy, single-line match of `open(.*?)close`, with the
/// byte offset of the whole match (Python `re.findall(...)[-1]` without DOTALL).
fn last_capture<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let mut found = None;
    let mut from = 0;
    while let Some(start) = text[from..].find(open).map(|at| from + at) {
        let body = start + open.len();
        let line_end = text[body..].find('\n').map_or(text.len(), |at| body + at);
        match text[body..line_end].find(close) {
            Some(end) => {
                found = Some(&text[body..body + end]);
                from = body + end + close.len();
            }
            None => from = body,
        }
    }
    found
}

/// SN37's `_parse_verifiable_math` and reference: the trace before the last `\boxed{answer}`,
/// stripped, then ` \boxed{answer}`.
pub fn math_reference(assistant: &str) -> String {
    let answer = last_capture(assistant, "\\boxed{", "}").unwrap_or("");
    let mut trace = assistant;
    if !answer.is_empty()
        && let Some(at) = assistant.rfind(&format!("\\boxed{{{answer}}}"))
    {
        trace = &assistant[..at];
    }
    format!("{} \\boxed{{{answer}}}", trace.trim())
}

/// SN37's `_parse_code_output_prediction` and reference: the text without the first
/// occurrence of the last `{"output": "..."}`, stripped, then that fragment.
pub fn code_output_reference(assistant: &str) -> String {
    let answer = last_capture(assistant, "{\"output\": \"", "\"}").unwrap_or("");
    let fragment = format!("{{\"output\": \"{answer}\"}}");
    let trace = if answer.is_empty() {
        assistant.to_owned()
    } else {
        assistant.replacen(&fragment, "", 1)
    };
    format!("{} {fragment}", trace.trim())
}

/// The user turn SN37 scores after its system prompt. The runner's models take one user
/// turn, so the system instruction is put in front of the question.
fn reasoning_context(question: &str) -> String {
    format!("{REASONING_SYSTEM_PROMPT}\n\n{question}")
}

fn synthetic1_pairs(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let mut pairs = Vec::new();
    for source in read_source_rows(path)? {
        let task_type = string_field(&source.row, "task_type").unwrap_or_default();
        if task_type != "verifiable_math" && task_type != "code_output_prediction" {
            continue;
        }
        let turns = messages(&source.row).map_err(|reason| source.bad(reason))?;
        let [(_, question), (_, assistant), ..] = turns.as_slice() else {
            continue;
        };
        let reference = if task_type == "verifiable_math" {
            math_reference(assistant)
        } else {
            code_output_reference(assistant)
        };
        pairs.push((reasoning_context(question), reference));
    }
    non_empty(
        pairs,
        path,
        "task_type verifiable_math or code_output_prediction",
    )
}

fn codeforces_pairs(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let mut pairs = Vec::new();
    for source in read_source_rows(path)? {
        let turns = messages(&source.row).map_err(|reason| source.bad(reason))?;
        let [(_, question), (_, trace)] = turns.as_slice() else {
            continue;
        };
        let estimate = question.len() / CHARS_PER_TOKEN + trace.len() / CHARS_PER_TOKEN + 10;
        if estimate <= CODEFORCES_MAX_TOKENS {
            pairs.push((reasoning_context(question), trace.trim().to_owned()));
        }
    }
    non_empty(pairs, path, "exactly two messages within the length limit")
}

fn field_rows(path: &Path, fields: &[&str]) -> Result<Vec<Vec<String>>, DataError> {
    let rows: Vec<Vec<String>> = read_source_rows(path)?
        .into_iter()
        .filter_map(|source| {
            fields
                .iter()
                .map(|field| string_field(&source.row, field))
                .collect()
        })
        .collect();
    non_empty(rows, path, &format!("string fields {fields:?}"))
}

fn non_empty<T>(rows: Vec<T>, path: &Path, reason: &str) -> Result<Vec<T>, DataError> {
    if rows.is_empty() {
        return Err(DataError::Empty {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        });
    }
    Ok(rows)
}

/// SN37's MMLU prompt layout (finetuning `mmlu_parser.py`): question, then the four options.
/// Without DOTALL, as there: `.` stops at line ends while `\s+` may cross them.
static MMLU_LAYOUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(.*)\s+A\. (.*)\s+B\. (.*)\s+C\. (.*)\s+D\. (.*)").expect("valid pattern")
});

/// SN37's `extract_q_and_a_text`: the question and the text of the option `letter` names, or
/// `None` when the challenge does not have the layout or the letter is not A-D.
///
/// Hazard: `\s` here is Unicode `White_Space`; Python's also counts U+001C..U+001F.
pub fn mmlu_question_answer(challenge: &str, letter: &str) -> Option<QuestionAnswer> {
    let group = match letter {
        "A" => 2,
        "B" => 3,
        "C" => 4,
        "D" => 5,
        _ => return None,
    };
    let captures = MMLU_LAYOUT.captures(challenge)?;
    Some(QuestionAnswer {
        question: captures.get(1)?.as_str().to_owned(),
        answer: captures.get(group)?.as_str().to_owned(),
    })
}

/// Question/answer rows for IF-eval: `question` + `answer`, or an MMLU row's `challenge` with
/// the text of the option named by `reference`, parsed as SN37 does. (`generate_samples` drops
/// answers of fewer than two words, SN37's `_should_filter_question`.)
fn question_answers(path: &Path) -> Result<Vec<QuestionAnswer>, DataError> {
    let parsed: Vec<QuestionAnswer> = read_source_rows(path)?
        .iter()
        .filter_map(|source| {
            let row = &source.row;
            match (string_field(row, "question"), string_field(row, "answer")) {
                (Some(question), Some(answer)) => Some(QuestionAnswer { question, answer }),
                _ => mmlu_question_answer(
                    &string_field(row, "challenge")?,
                    &string_field(row, "reference")?,
                ),
            }
        })
        .collect();
    non_empty(
        parsed,
        path,
        "`question` and `answer`, or MMLU `challenge` and `reference`",
    )
}

/// Loads `samples` samples of `source` from files under `data_dir`, seeded by `seed`.
pub fn load_task_data(
    source: &SourceSpec,
    samples: usize,
    data_dir: &Path,
    seed: u64,
) -> Result<TaskData, DataError> {
    match source {
        SourceSpec::WordSorting => {
            let config = WordSortingConfig {
                samples,
                ..WordSortingConfig::default()
            };
            let generated = generate_word_sorting(&config, seed)
                .map_err(|error| DataError::WordSorting(error.to_string()))?;
            Ok(TaskData::ReferencePairs(
                generated
                    .into_iter()
                    .map(|s| (s.challenge, s.reference))
                    .collect(),
            ))
        }
        SourceSpec::Dyck => {
            let config = DyckConfig {
                samples,
                ..DyckConfig::default()
            };
            Ok(TaskData::ReferencePairs(
                generate_dyck_samples(&config, seed)?
                    .into_iter()
                    .map(|s| (s.challenge, s.reference))
                    .collect(),
            ))
        }
        SourceSpec::IfEvalRules {
            questions,
            rules,
            min_rules,
            max_rules,
        } => {
            let rows = question_answers(&data_dir.join(questions))?;
            let drawn = sample_in_order(&rows, 2 * samples, seed);
            Ok(TaskData::IfEval(generate_samples_with_rules(
                &drawn,
                samples,
                rules,
                (*min_rules, *max_rules),
                seed,
            )))
        }
        SourceSpec::IfEval { questions, version } => {
            let rows = question_answers(&data_dir.join(questions))?;
            let drawn = sample_in_order(&rows, 2 * samples, seed);
            Ok(TaskData::IfEval(if_eval_samples(
                &drawn, samples, *version, seed,
            )))
        }
        SourceSpec::Synthetic1 { file } => {
            let pairs = synthetic1_pairs(&data_dir.join(file))?;
            Ok(TaskData::ReferencePairs(sample_in_order(
                &pairs, samples, seed,
            )))
        }
        SourceSpec::CodeforcesCots { file } => {
            let pairs = codeforces_pairs(&data_dir.join(file))?;
            Ok(TaskData::ReferencePairs(sample_in_order(
                &pairs, samples, seed,
            )))
        }
        SourceSpec::Mmlu { file } => {
            let rows = field_rows(&data_dir.join(file), &["challenge", "reference"])?;
            let pairs: Vec<(String, String)> = rows
                .into_iter()
                .filter(|row| ["A", "B", "C", "D"].contains(&row[1].as_str()))
                .map(|row| (row[0].clone(), row[1].clone()))
                .collect();
            Ok(TaskData::MultipleChoice(sample_in_order(
                &pairs, samples, seed,
            )))
        }
        SourceSpec::Text { file } => {
            let rows = field_rows(&data_dir.join(file), &["text"])?;
            let texts: Vec<String> = rows.into_iter().map(|row| row[0].clone()).collect();
            Ok(TaskData::Text(sample_in_order(&texts, samples, seed)))
        }
    }
}

fn if_eval_samples(
    questions: &[QuestionAnswer],
    samples: usize,
    version: IfEvalVersion,
    seed: u64,
) -> Vec<IfEvalSample> {
    // SN37 pairs consecutive items (qa_i, qa_i+1); generate_samples does that.
    generate_samples(questions, samples, version, seed)
}
