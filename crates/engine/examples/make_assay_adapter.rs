//! Trains a small LoRA adapter on the tiny Llama fixture and saves it in PEFT's format, so that
//! `fixtures/make_peft_fixtures.py` can check that PEFT loads it and computes the same logits.
//!
//! cargo run -p assay-engine --example make_assay_adapter [OUT_DIR]
//!
//! OUT_DIR defaults to `fixtures/assay-llama-adapter`. The adapter names its base by the fixture
//! folder's absolute path, as PEFT's `AutoPeftModelForCausalLM` needs to load it on its own.

use std::path::PathBuf;

use assay_engine::train::{AdamWConfig, TrainRow};
use assay_engine::train::{
    LoraConfig, TrainConfig, attach_lora, lora_parameters, peft, tokenize_rows, train,
};
use assay_engine::{LoadOptions, ModelSource, load};

fn main() -> anyhow::Result<()> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut lm = load(
        &ModelSource::HfFolder(fixtures.join("tiny-llama")),
        &LoadOptions::default(),
    )?;
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        ..Default::default()
    };
    attach_lora(&mut lm.model, &lora, 7)?;
    let rows: Vec<TrainRow> = [
        "The quick brown fox",
        "3 plus 4 is 7",
        "Validators score miners",
    ]
    .iter()
    .map(|t| TrainRow::Completion {
        prompt: t[..4].to_string(),
        completion: t[4..].to_string(),
    })
    .collect();
    let examples = tokenize_rows(&rows, &lm.tokenizer, false, 256, "inline")?;
    let params = lora_parameters(&mut lm.model);
    let config = TrainConfig {
        optimizer: AdamWConfig {
            lr: 5e-2,
            ..Default::default()
        },
        max_steps: Some(5),
        ..Default::default()
    };
    let report = train(&lm.model, &params, &examples, &[], &config, |_| {})?;
    println!(
        "trained {} steps, loss {:.4}",
        report.steps, report.train_loss
    );
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures.join("assay-llama-adapter"));
    let base = fixtures.join("tiny-llama");
    peft::save_adapter(&mut lm.model, &lora, &base.to_string_lossy(), &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
