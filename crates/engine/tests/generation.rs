//! Generation behaviour: batch-size invariance, seeds, n samples, stop strings.

use std::path::PathBuf;

use assay_engine::{
    FinishReason, GenerateOptions, LoadOptions, LoadedModel, ModelSource, SamplingParams, generate,
    load,
};

fn tiny() -> LoadedModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-qwen2");
    load(&ModelSource::HfFolder(dir), &LoadOptions::default()).unwrap()
}

fn prompts(lm: &LoadedModel) -> Vec<Vec<u32>> {
    [
        "The quick brown fox",
        "3 plus 4 is",
        "Validators score miners by training",
    ]
    .iter()
    .map(|p| lm.tokenizer.encode(p, false).unwrap())
    .collect()
}

fn sampling(n: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.9,
        top_p: 0.95,
        n,
        max_new_tokens: 16,
        ..Default::default()
    }
}

#[test]
fn batch_size_never_changes_the_samples() {
    let lm = tiny();
    let p = prompts(&lm);
    let run = |rows| {
        let opts = GenerateOptions {
            seed: 11,
            max_batch_rows: rows,
        };
        generate(&lm.model, &lm.tokenizer, &p, &sampling(3), opts, |_| {}).unwrap()
    };
    let together = run(64);
    assert_eq!(together, run(3), "one prompt per batch");
    assert_eq!(together, run(1), "rows of one");
    assert_eq!(together.len(), 3);
    assert!(together.iter().all(|s| s.len() == 3));
}

#[test]
fn seeds_and_sample_indices_give_distinct_reproducible_streams() {
    let lm = tiny();
    let p = prompts(&lm);
    let run = |seed| {
        let opts = GenerateOptions {
            seed,
            max_batch_rows: 8,
        };
        generate(
            &lm.model,
            &lm.tokenizer,
            &p[..1],
            &sampling(4),
            opts,
            |_| {},
        )
        .unwrap()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
    let texts: std::collections::HashSet<&Vec<u32>> = a[0].iter().map(|c| &c.token_ids).collect();
    assert!(
        texts.len() > 1,
        "4 samples at T=0.9 should not all be identical"
    );
}

#[test]
fn stop_strings_cut_the_text() {
    let lm = tiny();
    let p = prompts(&lm);
    let free = generate(
        &lm.model,
        &lm.tokenizer,
        &p[..1],
        &SamplingParams {
            max_new_tokens: 12,
            ..Default::default()
        },
        GenerateOptions::default(),
        |_| {},
    )
    .unwrap();
    let text = &free[0][0].text;
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() > 4, "greedy text too short to test: {text:?}");
    let stop: String = chars[2..4].iter().collect();
    let params = SamplingParams {
        max_new_tokens: 12,
        stop_strings: vec![stop.clone()],
        ..Default::default()
    };
    let cut = generate(
        &lm.model,
        &lm.tokenizer,
        &p[..1],
        &params,
        GenerateOptions::default(),
        |_| {},
    )
    .unwrap();
    let c = &cut[0][0];
    assert_eq!(c.finish_reason, FinishReason::StopString);
    assert!(!c.text.contains(&stop));
    assert!(
        text.starts_with(&c.text),
        "{:?} is not a prefix of {text:?}",
        c.text
    );
}
