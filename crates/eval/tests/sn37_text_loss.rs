//! SN37 TEXT_LOSS against `fixtures/sn37/text_loss.json` (made by `make_text_loss.py` with
//! transformers on the engine's tiny random Llama): encoding, the sanity check's 20 greedy tokens,
//! per-document losses, and the sanity rule on 300 synthetic output pairs.

use std::path::Path;

use assay_engine::{LoadOptions, ModelSource, load};
use assay_eval::engine_lm::EngineLm;
use assay_eval::registry::Registry;
use assay_eval::runner::{LanguageModel, ModelError, run_task};
use assay_eval::sn37::text_loss::{
    TextLossError, TokenLm, check_reasonable_output, text_loss, text_losses,
};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct ModelCase {
    sequence_length: usize,
    documents: Vec<String>,
    encoded: Vec<Vec<u32>>,
    generated: Vec<Vec<u32>>,
    reasonable: bool,
    losses: Vec<f64>,
    text_loss: f64,
}

#[derive(Deserialize)]
struct SanityCase {
    first: Vec<u32>,
    second: Vec<u32>,
    reasonable: bool,
}

#[derive(Deserialize)]
struct Golden {
    model: ModelCase,
    sanity: Vec<SanityCase>,
}

fn golden() -> Golden {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sn37/text_loss.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tiny(max_length: usize) -> EngineLm {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/tiny-llama");
    let loaded = load(&ModelSource::HfFolder(dir), &LoadOptions::default()).unwrap();
    EngineLm::new(loaded).with_max_length(max_length)
}

#[test]
fn sanity_rule_matches_sn37_on_synthetic_outputs() {
    let cases = golden().sanity;
    assert!(cases.iter().any(|c| c.reasonable) && cases.iter().any(|c| !c.reasonable));
    for case in cases {
        let verdict = check_reasonable_output(&case.first, &case.second);
        assert_eq!(
            verdict.is_ok(),
            case.reasonable,
            "{:?} {:?}",
            case.first,
            case.second
        );
    }
}

#[test]
fn tiny_llama_matches_transformers() {
    let case = golden().model;
    let lm = tiny(case.sequence_length);
    assert_eq!(lm.text_length().unwrap(), case.sequence_length);
    for (text, want) in case.documents.iter().zip(&case.encoded) {
        assert_eq!(
            &lm.encode_padded(text, case.sequence_length).unwrap(),
            want,
            "{text}"
        );
    }
    for (prompt, want) in case.encoded.iter().zip(&case.generated) {
        assert_eq!(&lm.greedy_tokens(prompt, 20).unwrap(), want);
    }
    assert!(case.reasonable);
    let losses = text_losses(&lm, &case.documents).unwrap();
    for (got, want) in losses.iter().zip(&case.losses) {
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
    let mean = text_loss(&lm, &case.documents).unwrap();
    assert!(
        (mean - case.text_loss).abs() < 1e-4,
        "{mean} vs {}",
        case.text_loss
    );
}

#[test]
fn registry_task_runs_text_loss_through_the_runner() {
    let case = golden().model;
    let lm = tiny(case.sequence_length);
    let task = Registry::builtin()
        .unwrap()
        .get("sn37_text_loss")
        .unwrap()
        .clone();
    let docs: Vec<Map<String, Value>> = case
        .documents
        .iter()
        .map(|text| {
            let mut doc = Map::new();
            doc.insert("text".into(), text.clone().into());
            doc
        })
        .collect();
    let (results, counts) = run_task(&task, &docs, &lm).unwrap();
    assert_eq!(counts.effective, 4);
    let got = results.get("text_loss", "none").unwrap();
    assert!((got - case.text_loss).abs() < 1e-4, "{got}");
}

/// A model that always answers the same tokens, whatever the document.
struct Parrot;

impl TokenLm for Parrot {
    fn encode_padded(&self, text: &str, length: usize) -> Result<Vec<u32>, ModelError> {
        let mut ids: Vec<u32> = text.bytes().map(u32::from).collect();
        ids.resize(length, 0);
        Ok(ids)
    }
    fn text_length(&self) -> Result<usize, ModelError> {
        Ok(8)
    }
    fn sequence_losses(&self, sequences: &[Vec<u32>]) -> Result<Vec<f64>, ModelError> {
        Ok(vec![1.0; sequences.len()])
    }
    fn greedy_tokens(&self, _: &[u32], count: usize) -> Result<Vec<u32>, ModelError> {
        Ok((0..count as u32).collect())
    }
}

#[test]
fn degenerate_models_and_short_inputs_fail_with_reasons() {
    let docs = vec!["a".to_owned(), "b".to_owned()];
    match text_loss(&Parrot, &docs) {
        Err(TextLossError::Degenerate(reason)) => {
            assert!(
                reason.contains("20 of 20 generated positions are identical"),
                "{reason}"
            )
        }
        other => panic!("expected a failed sanity check, got {other:?}"),
    }
    assert!(matches!(
        text_loss(&Parrot, &docs[..1]),
        Err(TextLossError::TooFewDocuments(1))
    ));
    // A runner model without token access is refused by name, not scored.
    struct Plain;
    impl LanguageModel for Plain {
        fn loglikelihood(&self, _: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
            Ok(Vec::new())
        }
        fn generate_until(
            &self,
            _: &[(String, assay_eval::task_def::GenParams)],
        ) -> Result<Vec<String>, ModelError> {
            Ok(Vec::new())
        }
        fn reference_loss(&self, _: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
            Ok(Vec::new())
        }
    }
    let task = Registry::builtin()
        .unwrap()
        .get("sn37_text_loss")
        .unwrap()
        .clone();
    let doc: Map<String, Value> = serde_json::from_str(r#"{"text": "x"}"#).unwrap();
    let error = run_task(&task, &[doc.clone(), doc], &Plain).unwrap_err();
    assert!(
        error.to_string().contains("no token-level interface"),
        "{error}"
    );
}
