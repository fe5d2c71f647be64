//! Reads Parquet files into JSON rows through the `parquet` crate's record API (no Arrow).
//!
//! Nested columns come out as JSON: lists as arrays, structs as objects, maps as objects keyed
//! by the key's text, nulls as `null`. Numbers stay numbers (NaN and infinities become `null`,
//! as JSON has no such values); binary columns become base64 strings; dates and timestamps
//! become strings (the `parquet` crate's formatting).

use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::{Location, Record, TableError};

/// Reads every row of a Parquet file.
///
/// A malformed file is an error, never a crash: the decoder runs behind `catch_unwind`, because
/// a corrupt page can reach a panic inside the `parquet` crate.
pub fn read_parquet(path: &Path) -> Result<Vec<Record>, TableError> {
    let file = File::open(path).map_err(|e| TableError::read(path, e))?;
    let bad = |reason: String| TableError::BadParquet {
        path: path.display().to_string(),
        reason,
    };
    match std::panic::catch_unwind(move || decode(file)) {
        Ok(result) => result.map_err(bad),
        Err(panic) => Err(bad(format!(
            "the decoder failed: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

fn decode(file: File) -> Result<Vec<Record>, String> {
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    let expected = reader.metadata().file_metadata().num_rows();
    let mut records = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(1 << 20));
    for (index, row) in reader.into_iter().enumerate() {
        let location = Location::Row(index + 1);
        let row = row.map_err(|e| format!("{location}: {e}"))?;
        match row.to_json_value() {
            Value::Object(row) => records.push(Record { location, row }),
            other => return Err(format!("{location}: decoded to {other}, not an object")),
        }
    }
    Ok(records)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
