//! Bad models and requests get precise errors, never panics; and GGUF dequantisation matches gguf-py.

use std::path::{Path, PathBuf};

use assay_engine::gguf::{GgmlType, dequantize};
use assay_engine::{
    BatchLimits, EngineError, GenerateOptions, LoadOptions, ModelSource, SamplingParams, generate,
    load, score_sequences,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A copy of the tiny Qwen2 fixture in a temp dir, to be damaged by a test.
fn tiny_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("tiny-qwen2")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> String {
    load(
        &ModelSource::HfFolder(dir.to_path_buf()),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string()
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn missing_model_and_missing_files_are_named() {
    let err = ModelSource::resolve(Some("/no/such/model"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such/model"), "{err}");
    let dir = tiny_copy();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    assert!(load_err(dir.path()).contains("tokenizer.json"));
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(load_err(dir.path()).contains("config.json"));
}

#[test]
fn unknown_architecture_is_rejected() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| {
        v["architectures"] = serde_json::json!(["GPTNeoXForCausalLM"]);
        v["model_type"] = "gpt_neox".into();
    });
    let err = load_err(dir.path());
    assert!(
        err.contains("unknown architecture") && err.contains("GPTNeoXForCausalLM"),
        "{err}"
    );
}

#[test]
fn inconsistent_config_is_rejected() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| v["num_key_value_heads"] = 3.into());
    assert!(load_err(dir.path()).contains("not a multiple of num_key_value_heads"));
}

#[test]
fn wrong_shapes_name_the_weight() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| v["intermediate_size"] = 100.into());
    let err = load_err(dir.path());
    assert!(
        err.contains("mlp.gate_proj.weight") && err.contains("[96, 64]"),
        "{err}"
    );
}

#[test]
fn truncated_and_corrupt_safetensors_name_the_file() {
    let dir = tiny_copy();
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("not a valid safetensors"),
        "{err}"
    );
    std::fs::write(&weights, b"\xff\xff\xff\xff\xff\xff\xff\xffgarbage").unwrap();
    assert!(load_err(dir.path()).contains("not a valid safetensors"));
}

#[test]
fn unsupported_weight_dtype_is_rejected() {
    let dir = tiny_copy();
    let data: Vec<u8> = (0..16u8).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![2], &data).unwrap();
    let path = dir.path().join("model.safetensors");
    safetensors::serialize_to_file([("model.embed_tokens.weight", view)], None, &path).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("I64") && err.contains("not supported"),
        "{err}"
    );
}

#[test]
fn truncated_gguf_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cut.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00").unwrap();
    let err = load(&ModelSource::Gguf(bad.clone()), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.gguf") && err.contains("truncated"),
        "{err}"
    );
    // Every prefix of a real header must give an error, never a panic.
    let real = ModelSource::resolve(None).unwrap();
    let ModelSource::Gguf(real) = real else {
        unreachable!()
    };
    let head = read_prefix(&real, 1 << 21);
    for cut in [4usize, 16, 23, 24, 100, 1000, 50_000, 700_000, head.len()] {
        std::fs::write(&bad, &head[..cut]).unwrap();
        assert!(
            load(&ModelSource::Gguf(bad.clone()), &LoadOptions::default()).is_err(),
            "prefix {cut}"
        );
    }
}

fn read_prefix(path: &Path, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    let mut f = std::fs::File::open(path).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn requests_beyond_the_model_are_rejected() {
    let lm = load(
        &ModelSource::HfFolder(fixtures().join("tiny-qwen2")),
        &LoadOptions::default(),
    )
    .unwrap();
    let params = SamplingParams {
        max_new_tokens: 10,
        ..Default::default()
    };
    let long = vec![vec![5u32; 250]];
    let err = generate(
        &lm.model,
        &lm.tokenizer,
        &long,
        &params,
        GenerateOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, EngineError::Request(_)) && err.to_string().contains("context of 256"),
        "{err}"
    );
    let err = generate(
        &lm.model,
        &lm.tokenizer,
        &[vec![]],
        &params,
        GenerateOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err =
        score_sequences(&lm.model, &[vec![1, 9999]], BatchLimits::default(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    let bad_p = SamplingParams {
        top_p: 0.0,
        ..Default::default()
    };
    assert!(
        generate(
            &lm.model,
            &lm.tokenizer,
            &[vec![1]],
            &bad_p,
            GenerateOptions::default(),
            |_| {}
        )
        .is_err()
    );
}

#[test]
fn dequantisation_matches_gguf_py() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("dequant.json")).unwrap())
            .unwrap();
    for case in cases.as_array().unwrap() {
        let ty = match case["type"].as_str().unwrap() {
            "F16" => GgmlType::F16,
            "BF16" => GgmlType::Bf16,
            "Q8_0" => GgmlType::Q8_0,
            "Q4_0" => GgmlType::Q4_0,
            "Q4_1" => GgmlType::Q4_1,
            "Q4_K" => GgmlType::Q4K,
            "Q6_K" => GgmlType::Q6K,
            other => panic!("unexpected type {other}"),
        };
        let hex = case["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let n = case["n"].as_u64().unwrap() as usize;
        let ours = dequantize(ty, &bytes, n).unwrap();
        for (i, want) in case["values"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap() as f32;
            assert!(
                (ours[i] - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{ty:?}[{i}]: {} vs {want}",
                ours[i]
            );
        }
        assert!(
            dequantize(ty, &bytes[..bytes.len() - 1], n).is_err(),
            "{ty:?} short input"
        );
    }
}
