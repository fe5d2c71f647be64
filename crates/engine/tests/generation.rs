//! Generation behaviour: batch-size invariance, seeds, n samples, stop strings.

use std::path::PathBuf;

use assay_engine::{
    FinishReason, GenerateOptions, LoadOptions, LoadedModel, ModelSource, SamplingParams, generate,
    generate_with_keys, load, request_key,
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

#[test]
fn a_prompts_samples_do_not_depend_on_its_position() {
    let lm = tiny();
    let p = prompts(&lm);
    let opts = GenerateOptions {
        seed: 5,
        max_batch_rows: 4,
    };
    let run = |prompts: &[Vec<u32>]| {
        generate(
            &lm.model,
            &lm.tokenizer,
            prompts,
            &sampling(2),
            opts,
            |_| {},
        )
        .unwrap()
    };
    let forward = run(&p);
    let reversed: Vec<Vec<u32>> = p.iter().rev().cloned().collect();
    let backward = run(&reversed);
    let alone = run(&p[2..]);
    let tokens = |cs: &[assay_engine::Completion]| -> Vec<Vec<u32>> {
        cs.iter().map(|c| c.token_ids.clone()).collect()
    };
    for i in 0..3 {
        assert_eq!(tokens(&forward[i]), tokens(&backward[2 - i]), "prompt {i}");
    }
    assert_eq!(tokens(&forward[2]), tokens(&alone[0]));
    // The stream does change with the prompt: not every prompt draws the same first tokens.
    assert_ne!(tokens(&forward[0]), tokens(&forward[1]));
}

#[test]
fn explicit_request_ids_key_the_streams() {
    let lm = tiny();
    let p = prompts(&lm);
    let same = vec![p[0].clone(), p[0].clone(), p[1].clone()];
    let opts = GenerateOptions {
        seed: 3,
        max_batch_rows: 8,
    };
    let params = sampling(2);
    let keys: Vec<u64> = ["item-a", "item-b", "item-c"].map(request_key).to_vec();
    let run = |prompts: &[Vec<u32>], keys: &[u64]| {
        generate_with_keys(
            &lm.model,
            &lm.tokenizer,
            prompts,
            keys,
            &params,
            opts,
            |_| {},
        )
        .unwrap()
    };
    let tokens =
        |c: &[assay_engine::Completion]| c.iter().map(|c| c.token_ids.clone()).collect::<Vec<_>>();
    let by_id = run(&same, &keys);
    assert_ne!(
        tokens(&by_id[0]),
        tokens(&by_id[1]),
        "equal prompts with distinct ids draw apart"
    );
    // Moving item-c to the front keeps its samples.
    let moved = run(&[p[1].clone(), p[0].clone()], &[keys[2], keys[0]]);
    assert_eq!(moved[0][0].token_ids, by_id[2][0].token_ids);
    assert_eq!(moved[1][1].token_ids, by_id[0][1].token_ids);
    // Without ids, equal prompts are one request and draw the same.
    let by_content = generate(&lm.model, &lm.tokenizer, &same, &params, opts, |_| {}).unwrap();
    assert_eq!(tokens(&by_content[0]), tokens(&by_content[1]));
    let err = generate_with_keys(
        &lm.model,
        &lm.tokenizer,
        &same,
        &keys[..2],
        &params,
        opts,
        |_| {},
    );
    assert!(err.is_err(), "one key per prompt is required");
}
