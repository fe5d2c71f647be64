//! The challenge's JSONL files: labelled training tickets, input-only validation tickets and the
//! host's hidden labels. Every row is checked (required fields present and non-empty, ids unique)
//! and errors name the file and line.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{FtError, Result};

/// One labelled training ticket (`train.jsonl`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrainTicket {
    /// Unique row id.
    pub id: String,
    /// The customer's message.
    pub ticket: String,
    /// Dotted intent label, e.g. `billing.seat_question`.
    pub intent: String,
    /// The reply support would ideally send.
    pub ideal_reply: String,
}

/// One validation ticket (`val.jsonl`): input only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ValTicket {
    /// Unique row id.
    pub id: String,
    /// The customer's message.
    pub ticket: String,
}

/// The host's hidden label of one validation row (`labels.jsonl`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LabelRow {
    /// Id of the validation row.
    pub id: String,
    /// Canonical intent.
    pub intent: String,
    /// Reference reply.
    pub ideal_reply: String,
    /// Terms a good reply mentions.
    #[serde(default)]
    pub must_mention: Vec<String>,
    /// Terms a good reply must not mention.
    #[serde(default)]
    pub must_not_mention: Vec<String>,
    /// Whether the row is a regression probe.
    #[serde(default, alias = "is_probe")]
    pub probe: bool,
}

/// A row kind that has an id and required text fields to check.
pub trait Row: DeserializeOwned {
    /// What the file holds, for messages ("training ticket").
    const KIND: &'static str;
    /// The fields every row needs, for messages.
    const FIELDS: &'static str;
    /// The row's id.
    fn id(&self) -> &str;
    /// The required text fields, by name, to check for emptiness.
    fn required_text(&self) -> Vec<(&'static str, &str)>;
}

impl Row for TrainTicket {
    const KIND: &'static str = "training ticket";
    const FIELDS: &'static str = "{\"id\", \"ticket\", \"intent\", \"ideal_reply\"}";
    fn id(&self) -> &str {
        &self.id
    }
    fn required_text(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("id", &self.id),
            ("ticket", &self.ticket),
            ("intent", &self.intent),
            ("ideal_reply", &self.ideal_reply),
        ]
    }
}

impl Row for ValTicket {
    const KIND: &'static str = "validation ticket";
    const FIELDS: &'static str = "{\"id\", \"ticket\"}";
    fn id(&self) -> &str {
        &self.id
    }
    fn required_text(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id), ("ticket", &self.ticket)]
    }
}

impl Row for LabelRow {
    const KIND: &'static str = "label";
    const FIELDS: &'static str = "{\"id\", \"intent\", \"ideal_reply\"} (optional \"must_mention\", \"must_not_mention\", \"probe\")";
    fn id(&self) -> &str {
        &self.id
    }
    fn required_text(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("id", &self.id),
            ("intent", &self.intent),
            ("ideal_reply", &self.ideal_reply),
        ]
    }
}

/// Rows of a file with the 1-based line each came from.
#[derive(Debug, Clone)]
pub struct Rows<T> {
    /// The rows in file order.
    pub rows: Vec<T>,
    /// `lines[i]` is the line of `rows[i]`.
    pub lines: Vec<usize>,
}

/// Reads a JSONL file of `T` rows (through `assay-tables`). Blank lines are skipped; a line that is not a JSON object with
/// the required fields, a required field that is empty, a repeated id, or a file with no rows is an
/// error naming the file and line.
pub fn read_rows<T: Row>(path: &Path) -> Result<Rows<T>> {
    let records = assay_tables::read_jsonl(path).map_err(|e| match e {
        assay_tables::TableError::Io { source, .. } => FtError::read(path, source),
        assay_tables::TableError::BadLine { line, reason, .. } => FtError::line(
            path,
            line,
            format!("not a {} ({reason}); expected {}", T::KIND, T::FIELDS),
        ),
        other => FtError::file(path, other.to_string()),
    })?;
    let mut rows: Vec<T> = Vec::new();
    let mut lines = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for record in records {
        let number = match record.location {
            assay_tables::Location::Line(n) | assay_tables::Location::Row(n) => n,
        };
        let row = parse_row::<T>(path, number, record.row)?;
        if let Some(first) = first_line_of.insert(row.id().to_string(), number) {
            return Err(FtError::line(
                path,
                number,
                format!(
                    "duplicate id `{}` (first on line {first}); ids must be unique",
                    row.id()
                ),
            ));
        }
        rows.push(row);
        lines.push(number);
    }
    if rows.is_empty() {
        return Err(FtError::file(
            path,
            format!(
                "holds no {} rows; expected one JSON object per line: {}",
                T::KIND,
                T::FIELDS
            ),
        ));
    }
    Ok(Rows { rows, lines })
}

fn parse_row<T: Row>(path: &Path, number: usize, row: assay_tables::Row) -> Result<T> {
    let row: T = serde_json::from_value(serde_json::Value::Object(row)).map_err(|e| {
        FtError::line(
            path,
            number,
            format!(
                "not a {} ({}); expected {}",
                T::KIND,
                strip_position(&e),
                T::FIELDS
            ),
        )
    })?;
    for (field, value) in row.required_text() {
        if value.trim().is_empty() {
            return Err(FtError::line(
                path,
                number,
                format!("field `{field}` is empty; every {} needs one", T::KIND),
            ));
        }
    }
    Ok(row)
}

/// serde_json's message without its " at line 1 column N" tail (the line is ours to report).
fn strip_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.find(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message,
    }
}
