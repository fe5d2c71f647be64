//! Parquet reading and writing against pyarrow: the fixtures and their expected rows come from
//! `fixtures/make_fixtures.py`.

use std::path::{Path, PathBuf};

use assay_tables::{
    Location, ParquetCodec, ParquetOptions, TableError, read_rows, read_table, write_jsonl,
    write_parquet,
};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn rows_value(path: &Path) -> Value {
    Value::Array(
        read_rows(path)
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect(),
    )
}

#[test]
fn reads_pyarrow_snappy_synthetic1_messages() {
    let got = rows_value(&fixture("synthetic1_snappy.parquet"));
    assert_eq!(got, json("synthetic1_snappy.expected.json"));
    // The shape SN37's readers rely on: a list of {role, content} structs.
    assert_eq!(got[0]["messages"][0]["role"], "user");
    assert!(got[3]["messages"].is_null());
}

#[test]
fn reads_pyarrow_zstd_nested_columns_across_row_groups() {
    let got = rows_value(&fixture("mixed_zstd.parquet"));
    assert_eq!(got, json("mixed_zstd.expected.json"));
    assert_eq!(got.as_array().unwrap().len(), 10);
}

#[test]
fn records_carry_their_row_numbers() {
    let records = read_table(&fixture("mixed_zstd.parquet")).unwrap();
    let locations: Vec<Location> = records.iter().map(|r| r.location).collect();
    assert_eq!(locations.first(), Some(&Location::Row(1)));
    assert_eq!(locations.last(), Some(&Location::Row(10)));
    assert_eq!(records[4].row["id"], 4);
}

fn roundtrip_rows() -> Vec<serde_json::Map<String, Value>> {
    read_rows(&fixture("roundtrip_input.jsonl")).unwrap()
}

#[test]
fn our_writer_output_is_the_file_pyarrow_checked() {
    // pyarrow read `ours.parquet` into `ours.pyarrow.json`; the writer must still produce those
    // bytes, or the script has to be rerun to check the new output with pyarrow.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.parquet");
    let options = ParquetOptions {
        codec: ParquetCodec::Zstd(3),
        rows_per_group: 4,
    };
    write_parquet(&path, &roundtrip_rows(), &options).unwrap();
    let written = std::fs::read(&path).unwrap();
    let checked = std::fs::read(fixture("ours.parquet")).unwrap();
    assert!(
        written == checked,
        "writer output changed; rerun crates/tables/fixtures/make_fixtures.py"
    );
}

#[test]
fn our_reader_agrees_with_pyarrow_on_our_file() {
    let golden = json("ours.pyarrow.json");
    assert_eq!(rows_value(&fixture("ours.parquet")), golden["rows"]);
    assert_eq!(golden["row_groups"], 2);
    assert_eq!(
        golden["schema"][8],
        "messages: list<element: struct<role: string, content: string>>"
    );
}

#[test]
fn rows_survive_a_roundtrip_through_both_codecs() {
    let dir = tempfile::tempdir().unwrap();
    // Rows whose fields are present everywhere with one JSON number type read back unchanged.
    let rows: Vec<_> = read_rows(&fixture("synthetic1_snappy.parquet")).unwrap();
    for codec in [
        ParquetCodec::Snappy,
        ParquetCodec::Zstd(9),
        ParquetCodec::Uncompressed,
    ] {
        let path = dir.path().join("t.parquet");
        let options = ParquetOptions {
            codec,
            rows_per_group: 2,
        };
        write_parquet(&path, &rows, &options).unwrap();
        assert_eq!(read_rows(&path).unwrap(), rows, "{codec:?}");
    }
    let jsonl = dir.path().join("t.jsonl");
    write_jsonl(&jsonl, &rows).unwrap();
    assert_eq!(read_rows(&jsonl).unwrap(), rows);
}

#[test]
fn corrupt_parquet_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("mixed_zstd.parquet")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", b"PAR1 this is not parquet PAR1".to_vec()),
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            for at in (100..b.len() - 200).step_by(37) {
                b[at] ^= 0x5a;
            }
            b
        }),
    ];
    for (name, content) in cases {
        let path = dir.path().join(format!("{name}.parquet"));
        std::fs::write(&path, content).unwrap();
        match read_table(&path) {
            Err(TableError::BadParquet { path: shown, .. }) => {
                assert!(shown.ends_with(&format!("{name}.parquet")))
            }
            other => panic!("{name}: expected BadParquet, got {other:?}"),
        }
    }
}

#[test]
fn a_field_with_two_types_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = [r#"{"a": 1}"#, r#"{"a": "one"}"#]
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
    let error = write_parquet(
        &dir.path().join("x.parquet"),
        &rows,
        &ParquetOptions::default(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("field `a` holds both integer and string"),
        "{message}"
    );
}

#[test]
fn bad_jsonl_lines_are_reported_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    std::fs::write(&path, "{\"a\": 1}\r\n\n[1, 2]\n").unwrap();
    match read_table(&path) {
        Err(TableError::BadLine {
            line: 3, reason, ..
        }) => {
            assert!(reason.contains("expected a JSON object, found an array"))
        }
        other => panic!("expected BadLine at 3, got {other:?}"),
    }
    std::fs::write(&path, "{\"a\": 1}\r\n\n{\"b\": [null]}").unwrap();
    let records = read_table(&path).unwrap();
    assert_eq!(records[1].location, Location::Line(3));
    assert!(matches!(
        read_table(&dir.path().join("x.csv")),
        Err(TableError::UnknownFormat { .. })
    ));
}
