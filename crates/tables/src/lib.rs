//! Tabular data I/O shared by assay's pipelines: JSON-lines and Parquet files read into, and
//! written from, rows that are JSON objects, so that a pipeline treats both formats alike.
//!
//! - [`read_table`] picks the reader from the file extension (`.jsonl`/`.json`/`.ndjson` or
//!   `.parquet`); every record keeps its [`Location`] (line or row) for error messages.
//! - [`write_jsonl`] and [`write_parquet`] write rows; the Parquet writer infers a nested
//!   schema (strings, integers, doubles, booleans, lists and structs, all nullable) from the
//!   rows, the way `pyarrow.Table.from_pylist` does for the same rows.
//!
//! The Parquet side uses the `parquet` crate without Arrow (its record API for reading, its
//! column writers for writing), with the Snappy and Zstandard codecs that Hugging Face dataset
//! files use.
#![warn(missing_docs)]

mod error;
pub mod jsonl;
pub mod parquet_read;
pub mod parquet_write;
mod schema;
pub mod strict;

use std::path::Path;

pub use error::TableError;
pub use jsonl::{json_kind_name, read_jsonl, write_jsonl};
pub use parquet_read::read_parquet;
pub use parquet_write::{ParquetCodec, ParquetOptions, write_parquet};
pub use strict::{is_duplicate_key, parse_strict, parse_strict_line, strip_bom};

/// One row: a JSON object, fields in file (or schema) order.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// Where a record sits in its file, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of a JSON-lines file (blank lines are counted but yield no record).
    Line(usize),
    /// 1-based row of a Parquet file, across row groups.
    Row(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// A row and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its position in the file.
    pub location: Location,
    /// The row.
    pub row: Row,
}

/// A file format this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format named by `path`'s extension (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// Reads every record of a JSON-lines or Parquet file, chosen by extension.
pub fn read_table(path: &Path) -> Result<Vec<Record>, TableError> {
    match Format::from_path(path) {
        Some(Format::Jsonl) => read_jsonl(path),
        Some(Format::Parquet) => read_parquet(path),
        None => Err(TableError::UnknownFormat {
            path: path.display().to_string(),
        }),
    }
}

/// Reads only the rows of a JSON-lines or Parquet file (see [`read_table`]).
pub fn read_rows(path: &Path) -> Result<Vec<Row>, TableError> {
    Ok(read_table(path)?.into_iter().map(|r| r.row).collect())
}
