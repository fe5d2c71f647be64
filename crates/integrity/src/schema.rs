//! Schema and limit checks for submitted JSONL data.
//!
//! Three row shapes are accepted, one JSON object per line:
//! - chain of thought: `{"prompt", "chain_of_thought", "final_answer"}`
//! - completion: `{"prompt", "completion"}`
//! - chat: `{"messages": [{"role", "content"}, ...]}`
//!
//! Intake never fails on a bad row: good rows are kept, every problem is reported with the file,
//! the 1-based line and the field, and only an unreadable or oversized file is a file-level problem.

use assay_tables::json_kind_name;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

/// Size and count limits for one submission file. All lengths of text are in Unicode scalar values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted file, in bytes; a bigger file is rejected without being read.
    pub max_file_bytes: u64,
    /// Largest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Most rows read from one file; later lines are reported once and ignored.
    pub max_rows: usize,
    /// Longest accepted text field, in characters.
    pub max_field_chars: usize,
    /// Shortest accepted text field, in characters after trimming whitespace.
    pub min_field_chars: usize,
    /// Most messages in one chat row.
    pub max_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 256 * 1024 * 1024,
            max_line_bytes: 256 * 1024,
            max_rows: 1_000_000,
            max_field_chars: 32 * 1024,
            min_field_chars: 1,
            max_messages: 64,
        }
    }
}

/// One accepted row, in the shape the miner submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum RowContent {
    /// A prompt with a chain of thought and a final answer.
    ChainOfThought {
        /// The question or instruction.
        prompt: String,
        /// The reasoning leading to the answer.
        chain_of_thought: String,
        /// The answer itself.
        final_answer: String,
    },
    /// A prompt and its completion.
    Completion {
        /// The question or instruction.
        prompt: String,
        /// The text that answers it.
        completion: String,
    },
    /// A chat transcript.
    Chat {
        /// The messages, in order.
        messages: Vec<ChatMessage>,
    },
}

/// One message of a chat row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl RowContent {
    /// The text fields of the row with their names, in a fixed order (chat: `messages[i].content`).
    pub fn text_fields(&self) -> Vec<(String, &str)> {
        match self {
            RowContent::ChainOfThought {
                prompt,
                chain_of_thought,
                final_answer,
            } => vec![
                ("prompt".into(), prompt.as_str()),
                ("chain_of_thought".into(), chain_of_thought.as_str()),
                ("final_answer".into(), final_answer.as_str()),
            ],
            RowContent::Completion { prompt, completion } => {
                vec![
                    ("prompt".into(), prompt.as_str()),
                    ("completion".into(), completion.as_str()),
                ]
            }
            RowContent::Chat { messages } => messages
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("messages[{i}].content"), m.content.as_str()))
                .collect(),
        }
    }

    /// The text that plays the role of the question: the prompt, or the first user message.
    pub fn prompt_text(&self) -> &str {
        match self {
            RowContent::ChainOfThought { prompt, .. } | RowContent::Completion { prompt, .. } => {
                prompt
            }
            RowContent::Chat { messages } => messages
                .iter()
                .find(|m| m.role == "user")
                .map_or("", |m| m.content.as_str()),
        }
    }

    /// All text fields joined by newlines; what duplicate detection compares.
    pub fn joined_text(&self) -> String {
        let fields = self.text_fields();
        let mut out = String::with_capacity(fields.iter().map(|(_, t)| t.len() + 1).sum());
        for (i, (_, text)) in fields.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(text);
        }
        out
    }
}

/// A row that passed the schema checks, with the 1-based line it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// 1-based line number in the submitted file.
    pub line: usize,
    /// The row's fields.
    #[serde(flatten)]
    pub content: RowContent,
}

/// What is wrong with a line or a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file could not be opened or read.
    Unreadable,
    /// The file, a line or a field is larger than the limit.
    TooLarge,
    /// The file has more rows than the limit; reported once, at the first ignored line.
    TooManyRows,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is not valid JSON, or not a JSON object.
    InvalidJson,
    /// An object names the same key twice (validators could read different values).
    DuplicateKey,
    /// The object does not match any accepted row shape.
    UnknownShape,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field that no shape allows.
    UnexpectedField,
    /// A field contains control or invisible direction-override characters.
    ControlCharacter,
    /// A field is empty or shorter than the limit.
    TooShort,
    /// A chat message has a role other than system, user or assistant.
    InvalidRole,
}

/// One problem found while reading a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file the problem is in.
    pub file: String,
    /// 1-based line number; `None` for a problem with the whole file.
    pub line: Option<usize>,
    /// The field, e.g. `prompt` or `messages[2].content`; `None` for the whole line.
    pub field: Option<String>,
    /// The category of the problem.
    pub kind: ProblemKind,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The result of reading one submission file: the rows kept and the problems found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionIntake {
    /// Rows that passed every schema check, in file order.
    pub rows: Vec<Row>,
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

/// Reads and checks a JSONL submission file. Never panics and never fails: an unreadable or
/// oversized file yields no rows and one file-level problem.
pub fn read_submission(path: &Path, limits: &Limits) -> SubmissionIntake {
    let name = path.display().to_string();
    match read_bounded(path, limits.max_file_bytes) {
        Ok(bytes) => read_submission_bytes(&name, &bytes, limits),
        Err(problem) => SubmissionIntake {
            rows: Vec::new(),
            problems: vec![Problem {
                file: name,
                line: None,
                field: None,
                kind: problem.0,
                message: problem.1,
            }],
        },
    }
}

/// Reads at most `max_bytes` (plus one, to detect an oversized file) so a huge file cannot exhaust memory.
fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, (ProblemKind, String)> {
    let file = std::fs::File::open(path).map_err(|e| {
        (
            ProblemKind::Unreadable,
            format!("cannot open the file ({e}); check the path and permissions"),
        )
    })?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| {
            (
                ProblemKind::Unreadable,
                format!("cannot read the file ({e})"),
            )
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err((
            ProblemKind::TooLarge,
            format!(
                "the file is larger than the limit of {max_bytes} bytes; split or shrink the submission"
            ),
        ));
    }
    Ok(bytes)
}

/// Checks JSONL submission bytes that have already been read; `file` names them in problems.
/// This is the entry point the fuzz target and the robustness tests drive.
pub fn read_submission_bytes(file: &str, bytes: &[u8], limits: &Limits) -> SubmissionIntake {
    let mut intake = SubmissionIntake::default();
    if bytes.len() as u64 > limits.max_file_bytes {
        intake.problems.push(Problem {
            file: file.to_string(),
            line: None,
            field: None,
            kind: ProblemKind::TooLarge,
            message: format!(
                "the file is larger than the limit of {} bytes",
                limits.max_file_bytes
            ),
        });
        return intake;
    }
    // A UTF-8 byte-order mark (some editors write one) is not part of the first row.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut rows_seen = 0usize;
    for (index, raw_line) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if raw_line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if rows_seen == limits.max_rows {
            let mut checker = LineChecker::new(file, index + 1, &mut intake.problems);
            checker.report(
                None,
                ProblemKind::TooManyRows,
                format!(
                    "more than {} rows; this line and all later lines were ignored",
                    limits.max_rows
                ),
            );
            break;
        }
        rows_seen += 1;
        let mut checker = LineChecker::new(file, index + 1, &mut intake.problems);
        if let Some(content) = checker.check_line(raw_line, limits) {
            intake.rows.push(Row {
                line: index + 1,
                content,
            });
        }
    }
    intake
}

/// Checks one line and records its problems; `None` when the row must be dropped.
struct LineChecker<'a> {
    file: &'a str,
    line: usize,
    problems: &'a mut Vec<Problem>,
    found_problem: bool,
}

const ALLOWED_ROLES: [&str; 3] = ["system", "user", "assistant"];

impl<'a> LineChecker<'a> {
    fn new(file: &'a str, line: usize, problems: &'a mut Vec<Problem>) -> Self {
        Self {
            file,
            line,
            problems,
            found_problem: false,
        }
    }

    fn report(&mut self, field: Option<&str>, kind: ProblemKind, message: String) {
        self.found_problem = true;
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: Some(self.line),
            field: field.map(str::to_string),
            kind,
            message,
        });
    }

    fn check_line(&mut self, raw: &[u8], limits: &Limits) -> Option<RowContent> {
        if raw.len() > limits.max_line_bytes {
            let message = format!(
                "the line has {} bytes, more than the limit of {}",
                raw.len(),
                limits.max_line_bytes
            );
            self.report(None, ProblemKind::TooLarge, message);
            return None;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => {
                let message = format!(
                    "invalid UTF-8 at byte {} of the line; re-encode the file as UTF-8",
                    e.valid_up_to()
                );
                self.report(None, ProblemKind::InvalidUtf8, message);
                return None;
            }
        };
        let object = match assay_tables::parse_strict(text) {
            Ok(Value::Object(object)) => object,
            Ok(other) => {
                let message = format!("expected a JSON object, found {}", json_kind_name(&other));
                self.report(None, ProblemKind::InvalidJson, message);
                return None;
            }
            Err(e) if assay_tables::is_duplicate_key(&e) => {
                self.report(None, ProblemKind::DuplicateKey, e.to_string());
                return None;
            }
            Err(e) => {
                let message = format!("not valid JSON ({e}); each line must hold one JSON object");
                self.report(None, ProblemKind::InvalidJson, message);
                return None;
            }
        };
        let content = self.check_object(&object, limits)?;
        (!self.found_problem).then_some(content)
    }

    fn check_object(&mut self, object: &Map<String, Value>, limits: &Limits) -> Option<RowContent> {
        if object.contains_key("messages") {
            self.reject_unexpected(object, &["messages"]);
            return self.check_chat(&object["messages"], limits);
        }
        if object.contains_key("chain_of_thought") || object.contains_key("final_answer") {
            self.reject_unexpected(object, &["prompt", "chain_of_thought", "final_answer"]);
            let prompt = self.text_field(object, "prompt", limits);
            let chain_of_thought = self.text_field(object, "chain_of_thought", limits);
            let final_answer = self.text_field(object, "final_answer", limits);
            return Some(RowContent::ChainOfThought {
                prompt: prompt?,
                chain_of_thought: chain_of_thought?,
                final_answer: final_answer?,
            });
        }
        if object.contains_key("completion") {
            self.reject_unexpected(object, &["prompt", "completion"]);
            let prompt = self.text_field(object, "prompt", limits);
            let completion = self.text_field(object, "completion", limits);
            return Some(RowContent::Completion {
                prompt: prompt?,
                completion: completion?,
            });
        }
        let keys: Vec<&str> = object.keys().map(String::as_str).take(8).collect();
        let message = format!(
            "the object (keys: {keys:?}) matches no accepted shape; use {{prompt, chain_of_thought, final_answer}}, \
             {{prompt, completion}} or {{messages: [{{role, content}}]}}"
        );
        self.report(None, ProblemKind::UnknownShape, message);
        None
    }

    fn reject_unexpected(&mut self, object: &Map<String, Value>, allowed: &[&str]) {
        for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
            let message =
                format!("field not allowed in this row shape; allowed fields are {allowed:?}");
            self.report(
                Some(&truncate_for_message(key)),
                ProblemKind::UnexpectedField,
                message,
            );
        }
    }

    fn text_field(
        &mut self,
        object: &Map<String, Value>,
        name: &str,
        limits: &Limits,
    ) -> Option<String> {
        match object.get(name) {
            None => {
                self.report(
                    Some(name),
                    ProblemKind::MissingField,
                    "required field is missing".to_string(),
                );
                None
            }
            Some(value) => self.check_text(name, value, limits),
        }
    }

    fn check_text(&mut self, field: &str, value: &Value, limits: &Limits) -> Option<String> {
        let Value::String(text) = value else {
            let message = format!("expected a string, found {}", json_kind_name(value));
            self.report(Some(field), ProblemKind::WrongType, message);
            return None;
        };
        let chars = text.chars().count();
        if chars > limits.max_field_chars {
            let message = format!(
                "{chars} characters, more than the limit of {}",
                limits.max_field_chars
            );
            self.report(Some(field), ProblemKind::TooLarge, message);
            return None;
        }
        if text.trim().chars().count() < limits.min_field_chars.max(1) {
            let message = format!(
                "empty or shorter than {} characters",
                limits.min_field_chars.max(1)
            );
            self.report(Some(field), ProblemKind::TooShort, message);
            return None;
        }
        if let Some((offset, c)) = text.char_indices().find(|&(_, c)| is_forbidden_control(c)) {
            let message = format!(
                "control character U+{:04X} at character {}; only tab, newline and carriage return are allowed",
                c as u32,
                text[..offset].chars().count()
            );
            self.report(Some(field), ProblemKind::ControlCharacter, message);
            return None;
        }
        Some(text.clone())
    }

    fn check_chat(&mut self, value: &Value, limits: &Limits) -> Option<RowContent> {
        let Value::Array(items) = value else {
            let message = format!(
                "expected an array of messages, found {}",
                json_kind_name(value)
            );
            self.report(Some("messages"), ProblemKind::WrongType, message);
            return None;
        };
        if items.is_empty() || items.len() > limits.max_messages {
            let message = format!(
                "{} messages; between 1 and {} are allowed",
                items.len(),
                limits.max_messages
            );
            let kind = if items.is_empty() {
                ProblemKind::TooShort
            } else {
                ProblemKind::TooLarge
            };
            self.report(Some("messages"), kind, message);
            return None;
        }
        let messages: Vec<Option<ChatMessage>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.check_message(i, item, limits))
            .collect();
        messages
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|messages| RowContent::Chat { messages })
    }

    fn check_message(
        &mut self,
        index: usize,
        item: &Value,
        limits: &Limits,
    ) -> Option<ChatMessage> {
        let prefix = format!("messages[{index}]");
        let Value::Object(object) = item else {
            let message = format!(
                "expected an object {{role, content}}, found {}",
                json_kind_name(item)
            );
            self.report(Some(&prefix), ProblemKind::WrongType, message);
            return None;
        };
        for key in object.keys().filter(|k| *k != "role" && *k != "content") {
            let field = format!("{prefix}.{}", truncate_for_message(key));
            self.report(
                Some(&field),
                ProblemKind::UnexpectedField,
                "a message has only role and content".into(),
            );
        }
        let role = self.text_field_at(object, &prefix, "role", limits);
        let content = self.text_field_at(object, &prefix, "content", limits);
        let role = role?;
        if !ALLOWED_ROLES.contains(&role.as_str()) {
            let message = format!(
                "role `{}` is not one of {ALLOWED_ROLES:?}",
                truncate_for_message(&role)
            );
            self.report(
                Some(&format!("{prefix}.role")),
                ProblemKind::InvalidRole,
                message,
            );
            return None;
        }
        Some(ChatMessage {
            role,
            content: content?,
        })
    }

    fn text_field_at(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        limits: &Limits,
    ) -> Option<String> {
        let field = format!("{prefix}.{name}");
        match object.get(name) {
            None => {
                self.report(
                    Some(&field),
                    ProblemKind::MissingField,
                    "required field is missing".to_string(),
                );
                None
            }
            Some(value) => self.check_text(&field, value, limits),
        }
    }
}

/// C0/C1 controls other than tab, newline and carriage return, DEL, and the bidirectional
/// overrides and isolates that can make text display differently from what it contains.
fn is_forbidden_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Keeps miner-controlled names short in messages so a report cannot be blown up by a huge key.
fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        return text.escape_debug().to_string();
    }
    let head: String = text.chars().take(MAX).collect();
    format!("{}…", head.escape_debug())
}
