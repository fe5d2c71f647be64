//! Converts a table between JSON lines and Parquet (formats chosen by extension); the fixture
//! script uses it to hand files written by this crate to pyarrow.
//!
//! `cargo run -p assay-tables --example convert -- IN OUT [snappy|zstd|none]`

use std::path::Path;

use assay_tables::{Format, ParquetCodec, ParquetOptions, read_rows, write_jsonl, write_parquet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: convert IN OUT [snappy|zstd|none]".into());
    };
    let codec = match rest.first().map(String::as_str) {
        None | Some("snappy") => ParquetCodec::Snappy,
        Some("zstd") => ParquetCodec::Zstd(3),
        Some("none") => ParquetCodec::Uncompressed,
        Some(other) => return Err(format!("unknown codec {other}").into()),
    };
    let rows = read_rows(Path::new(input))?;
    let output = Path::new(output);
    match Format::from_path(output) {
        Some(Format::Parquet) => {
            let options = ParquetOptions {
                codec,
                rows_per_group: 4,
            };
            write_parquet(output, &rows, &options)?
        }
        _ => write_jsonl(output, &rows)?,
    }
    Ok(())
}
