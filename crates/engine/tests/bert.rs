//! The BERT encoder against transformers: a tiny random model's token ids and hidden states
//! (fixtures from `fixtures/make_bert_fixtures.py`), and bad inputs.

mod common;

use assay_engine::EngineError;
use assay_engine::bert::{BertConfig, BertEncoder, BertModel};
use common::{fixtures, ids, read_json};
use serde_json::Value;

fn tiny_encoder(max_seq_length: usize) -> BertEncoder {
    let dir = fixtures().join("tiny-bert");
    let model =
        BertModel::from_files(&dir.join("config.json"), &dir.join("model.safetensors")).unwrap();
    BertEncoder::new(model, &dir.join("tokenizer.json"), max_seq_length).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    let mut out = Vec::new();
    flatten(v, &mut out);
    out
}

fn flatten(v: &Value, out: &mut Vec<f32>) {
    match v {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other.as_f64().unwrap() as f32),
    }
}

fn max_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn tiny_bert_matches_transformers() {
    let golden = read_json("bert-golden.json");
    let encoder = tiny_encoder(golden["max_seq_length"].as_u64().unwrap() as usize);
    let texts: Vec<&str> = golden["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let batch = encoder.encode(&texts).unwrap();
    for (i, (row, mask)) in golden["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(golden["attention_mask"].as_array().unwrap())
        .enumerate()
    {
        let mask = ids(mask);
        let real = mask.iter().filter(|&&m| m == 1).count();
        assert_eq!(
            batch.ids[i],
            ids(row)[..real],
            "token ids of {:?}",
            texts[i]
        );
        assert_eq!(batch.masks[i], mask, "mask of {:?}", texts[i]);
    }
    let want = floats(&golden["last_hidden_state"]);
    let gap = max_gap(&batch.hidden, &want);
    assert!(gap < 1e-5, "hidden states differ by {gap}");
}

#[test]
fn batching_and_order_do_not_change_hidden_states() {
    let encoder = tiny_encoder(12);
    let texts = ["the cat sat on the mat.", "birds", "a dog and a bird sing"];
    let mut seen = vec![None; texts.len()];
    encoder
        .encode_each(&texts, |i, hidden, mask| {
            seen[i] = Some((hidden.to_vec(), mask.to_vec()))
        })
        .unwrap();
    for (i, text) in texts.iter().enumerate() {
        let alone = encoder.encode(&[text]).unwrap();
        let (hidden, mask) = seen[i].clone().unwrap();
        assert_eq!(mask, alone.masks[0]);
        assert!(max_gap(&hidden, &alone.hidden) < 1e-5, "{text}");
    }
}

#[test]
fn bad_configs_and_inputs_are_rejected_with_reasons() {
    let dir = fixtures().join("tiny-bert");
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut config: BertConfig = serde_json::from_str(&text).unwrap();
    config.num_attention_heads = 5;
    let error = config.check().unwrap_err().to_string();
    assert!(error.contains("num_attention_heads 5"), "{error}");
    config.num_attention_heads = 4;
    config.hidden_act = "swish".into();
    assert!(config.check().unwrap_err().to_string().contains("swish"));

    // A weight of the wrong shape names the tensor.
    let map = assay_engine::weights::WeightMap::from_safetensors(
        &[dir.join("model.safetensors")],
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    config.hidden_act = "gelu".into();
    config.intermediate_size = 40;
    let error = BertModel::new(config, &map, &candle_core::Device::Cpu).unwrap_err();
    assert!(
        matches!(&error, EngineError::Weight { name, .. } if name.contains("intermediate.dense")),
        "{error}"
    );

    let encoder = tiny_encoder(12);
    let error = encoder.encode_ids(vec![vec![2, 500, 3]]).unwrap_err();
    assert!(error.to_string().contains("token id 500"), "{error}");
    let model =
        BertModel::from_files(&dir.join("config.json"), &dir.join("model.safetensors")).unwrap();
    let error = BertEncoder::new(model, &dir.join("tokenizer.json"), 21).unwrap_err();
    assert!(error.to_string().contains("max_seq_length 21"), "{error}");
    let missing = BertModel::from_files(&dir.join("nope.json"), &dir.join("model.safetensors"));
    assert!(matches!(missing, Err(EngineError::Read { .. })));
}

#[test]
fn long_text_is_cut_and_empty_input_gives_an_empty_batch() {
    let encoder = tiny_encoder(8);
    let ids = encoder.tokenize(&"cat ".repeat(100)).unwrap();
    assert_eq!(ids.len(), 8);
    assert_eq!((ids[0], ids[7]), (2, 3), "[CLS] ... [SEP] kept");
    let empty = encoder.encode(&[]).unwrap();
    assert!(empty.hidden.is_empty() && empty.masks.is_empty());
}
