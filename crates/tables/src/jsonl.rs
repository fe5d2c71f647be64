//! JSON-lines files: one JSON object a line.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::{Location, Record, Row, TableError};

/// Longest line read; a longer one is an error rather than an unbounded allocation.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Reads a JSON-lines file: one object a line; blank lines are skipped; a trailing `\r` is
/// allowed (files written on Windows), and so is a UTF-8 byte-order mark before the first line.
/// An object that names a key twice is an error naming the key (see [`crate::strict`]).
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, TableError> {
    let file = std::fs::File::open(path).map_err(|e| TableError::read(path, e))?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut buffer = Vec::new();
    for line in 1.. {
        buffer.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|e| TableError::read(path, e))?;
        if read == 0 {
            break;
        }
        if let Some(row) = parse_line(path, line, &buffer)? {
            records.push(Record {
                location: Location::Line(line),
                row,
            });
        }
    }
    Ok(records)
}

/// The object on one line, `None` for a blank line.
fn parse_line(path: &Path, line: usize, bytes: &[u8]) -> Result<Option<Row>, TableError> {
    let bad = |reason: String| TableError::BadLine {
        path: path.display().to_string(),
        line,
        reason,
    };
    if bytes.len() > MAX_LINE_BYTES && !bytes.ends_with(b"\n") {
        return Err(bad(format!("line longer than {MAX_LINE_BYTES} bytes")));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let text = text.trim_end_matches(['\n', '\r']);
    let text = if line == 1 {
        crate::strict::strip_bom(text)
    } else {
        text
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    match crate::strict::parse_strict(text) {
        Ok(Value::Object(row)) => Ok(Some(row)),
        Ok(other) => Err(bad(format!(
            "expected a JSON object, found {}",
            json_kind_name(&other)
        ))),
        Err(e) => Err(bad(format!("invalid JSON: {e}"))),
    }
}

/// The kind of a JSON value with its article ("a string", "an object", "null"), for messages
/// such as "expected a JSON object, found an array".
pub fn json_kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes `rows` as JSON lines (compact, one object a line, `\n` after each).
pub fn write_jsonl<'a>(
    path: &Path,
    rows: impl IntoIterator<Item = &'a Row>,
) -> Result<(), TableError> {
    let file = std::fs::File::create(path).map_err(|e| TableError::write(path, e))?;
    let mut out = BufWriter::new(file);
    for row in rows {
        serde_json::to_writer(&mut out, row).map_err(|e| TableError::write(path, e.into()))?;
        out.write_all(b"\n")
            .map_err(|e| TableError::write(path, e))?;
    }
    out.flush().map_err(|e| TableError::write(path, e))
}
