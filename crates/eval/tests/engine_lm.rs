//! `EngineLm` on the engine's tiny random Llama fixture: which tokens are scored, left
//! truncation, and generation stops.

use std::path::Path;

use assay_engine::{BatchLimits, LoadOptions, ModelSource, load, score_sequences};
use assay_eval::engine_lm::EngineLm;
use assay_eval::runner::LanguageModel;
use assay_eval::task_def::GenParams;

fn tiny() -> EngineLm {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/tiny-llama");
    EngineLm::new(
        load(&ModelSource::HfFolder(dir), &LoadOptions::default()).expect("fixture loads"),
    )
}

/// Mean NLL of the last `n` tokens of `ids`, scored independently of `EngineLm`.
fn tail_nll(lm: &EngineLm, ids: Vec<u32>, n: usize) -> f64 {
    let scores = score_sequences(&lm.loaded.model, &[ids], BatchLimits::default(), |_| {}).unwrap();
    let logprobs = &scores[0].logprobs;
    -logprobs[logprobs.len() - n..]
        .iter()
        .map(|&x| x as f64)
        .sum::<f64>()
        / n as f64
}

#[test]
fn reference_loss_scores_only_the_reference_after_the_chat_turn() {
    let lm = tiny();
    let (context, reference) = ("Sort: b a c. ", "a b c");
    let prompt = "<|im_start|>user\nSort: b a c. <|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(lm.chat_prompt(context).unwrap(), prompt);
    let tokenizer = &lm.loaded.tokenizer;
    let reference_ids = tokenizer.encode(reference, true).unwrap();
    let mut ids = tokenizer.encode(prompt, false).unwrap();
    ids.extend(&reference_ids);
    let want = tail_nll(&lm, ids, reference_ids.len());
    let got = lm
        .reference_loss(&[(context.into(), reference.into())])
        .unwrap();
    assert!((got[0] - want).abs() < 1e-9, "{} vs {want}", got[0]);
}

#[test]
fn long_contexts_are_cut_from_the_left() {
    let lm = tiny().with_max_length(40);
    let context = "word ".repeat(200);
    let reference = "end";
    let tokenizer = &lm.loaded.tokenizer;
    let reference_ids = tokenizer.encode(reference, true).unwrap();
    let context_ids = tokenizer
        .encode(&lm.chat_prompt(&context).unwrap(), false)
        .unwrap();
    let keep = 40 - reference_ids.len();
    let mut ids = context_ids[context_ids.len() - keep..].to_vec();
    ids.extend(&reference_ids);
    let want = tail_nll(&lm, ids, reference_ids.len());
    let got = lm.reference_loss(&[(context, reference.into())]).unwrap();
    assert!((got[0] - want).abs() < 1e-9);
}

#[test]
fn generation_is_greedy_and_cut_at_stop_strings() {
    let lm = tiny();
    let params = GenParams {
        until: vec![],
        max_new_tokens: 12,
    };
    let free = lm
        .generate_until(&[("hello".into(), params.clone())])
        .unwrap();
    assert_eq!(
        free,
        lm.generate_until(&[("hello".into(), params)]).unwrap()
    );
    let text = &free[0];
    eprintln!("generated: {text:?}");
    let Some(stop) = text
        .chars()
        .nth(3)
        .filter(|c| !c.is_whitespace())
        .map(String::from)
    else {
        return; // too short or a blank at the cut: nothing to stop on
    };
    let stopped = lm
        .generate_until(&[(
            "hello".into(),
            GenParams {
                until: vec![stop.clone()],
                max_new_tokens: 12,
            },
        )])
        .unwrap();
    assert_eq!(stopped[0], text[..text.find(&stop).unwrap()]);
}
