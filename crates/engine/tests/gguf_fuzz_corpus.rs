//! The GGUF reader against the fuzz target's seeds and corpus (in `crates/integrity/fuzz`): the
//! seeds, written by gguf-py, parse to exactly what gguf-py's own reader sees
//! (`seeds/gguf_expected.json`, written by `make_seeds.py`), and every input of the minimised
//! corpus either parses to tensors that lie inside the file or fails with a message, never a panic.

use std::path::{Path, PathBuf};

use assay_engine::gguf::{GgufFile, MetaValue, dequantize};
use serde_json::{Value, json};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrity/fuzz")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A metadata value as JSON, tagged with the family of GGUF types it came from.
fn as_json(v: &MetaValue) -> (&'static str, Value) {
    match v {
        MetaValue::Uint(x) => ("UINT", json!(x)),
        MetaValue::Int(x) => ("INT", json!(x)),
        MetaValue::Float(x) => ("FLOAT", json!(x)),
        MetaValue::Bool(x) => ("BOOL", json!(x)),
        MetaValue::Str(x) => ("STRING", json!(x)),
        MetaValue::Array(xs) => ("ARRAY", xs.iter().map(|x| as_json(x).1).collect()),
    }
}

#[test]
fn gguf_py_seeds_parse_to_what_gguf_py_reads() {
    let expected: Value =
        serde_json::from_slice(&read(&fuzz_dir().join("seeds/gguf_expected.json"))).unwrap();
    let seeds = expected.as_object().unwrap();
    assert_eq!(seeds.len(), 3);
    for (name, want) in seeds {
        let bytes = read(&fuzz_dir().join("seeds/gguf_header").join(name));
        let (metadata, tensors) = GgufFile::parse_header(&bytes).unwrap();
        let want_meta = want["metadata"].as_object().unwrap();
        assert_eq!(metadata.len(), want_meta.len(), "{name}: metadata count");
        for (key, w) in want_meta {
            let (family, value) = as_json(&metadata[key]);
            let w_type = w["type"].as_str().unwrap();
            assert!(
                w_type.starts_with(family),
                "{name} {key}: {w_type} read as {family}"
            );
            assert_eq!(value, w["value"], "{name} {key}");
        }
        let want_tensors = want["tensors"].as_object().unwrap();
        assert_eq!(tensors.len(), want_tensors.len(), "{name}: tensor count");
        for (t, w) in want_tensors {
            let info = &tensors[t];
            let dtype = format!("{:?}", info.dtype).to_uppercase().replace('_', "");
            assert_eq!(
                dtype,
                w["type"].as_str().unwrap().replace('_', ""),
                "{name} {t}"
            );
            assert_eq!(json!(info.shape), w["shape"], "{name} {t}");
            assert_eq!(json!(info.offset), w["offset"], "{name} {t}");
            if let Some(values) = w.get("values") {
                let data = &bytes[info.offset..info.offset + info.n_bytes];
                let got = dequantize(info.dtype, data, info.shape.iter().product()).unwrap();
                let got: Vec<f64> = got.into_iter().map(f64::from).collect();
                assert_eq!(json!(got), *values, "{name} {t}");
            }
        }
    }
}

#[test]
fn every_corpus_input_parses_inside_the_file_or_fails_with_a_message() {
    let mut inputs = 0;
    for dir in ["corpus/gguf_header", "seeds/gguf_header"] {
        for entry in std::fs::read_dir(fuzz_dir().join(dir)).unwrap() {
            let bytes = read(&entry.unwrap().path());
            inputs += 1;
            match GgufFile::parse_header(&bytes) {
                Ok((_, tensors)) => {
                    for info in tensors.values() {
                        let end = info.offset + info.n_bytes;
                        assert!(end <= bytes.len());
                        let n = info.shape.iter().product();
                        assert_eq!(
                            dequantize(info.dtype, &bytes[info.offset..end], n)
                                .unwrap()
                                .len(),
                            n
                        );
                    }
                }
                Err(message) => assert!(!message.is_empty()),
            }
        }
    }
    assert!(inputs > 3, "the corpus is missing");
}
