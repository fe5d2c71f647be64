//! `assay train`.

use std::path::PathBuf;

use anyhow::Context;
use assay_engine::train::{
    AdamWConfig, LoraConfig, Schedule, TrainConfig, TrainRow, attach_lora, export, lora_parameters,
    peft, read_rows, tokenize_rows, train,
};
use serde_json::json;

use crate::common::ModelArgs;
use crate::diagnosis::operator_input;
use crate::progress::Progress;

/// Arguments of `assay train`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay train --data train.jsonl --val val.jsonl --out runs/lora1            # LoRA r=16 on all projections
  assay train --data train.jsonl --out runs/top --lora-layers 26-29 --steps 50 --lr 5e-3
  assay train --model ./tiny-llama --data text.jsonl --out runs/full --full --no-chat

Rows (JSONL): {\"prompt\": \"...\", \"completion\": \"...\"} or {\"messages\": [..., {\"role\": \"assistant\", ...}]}.
With chat formatting (the default when the model has a template) the prompt is a user turn and the loss covers
only the completion and its end-of-turn token. Writes DIR/adapter (PEFT format; or DIR/model with --full),
DIR/training.json (steps, losses, wall clock, seed, full history) and, with --merge, DIR/merged (an HF folder).
The same data, config and seed give bit-identical adapters on the CPU.")]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Training rows (JSONL).
    #[arg(long)]
    data: PathBuf,
    /// Held-out rows (JSONL) for the validation loss.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Train every parameter instead of LoRA adapters.
    #[arg(long)]
    full: bool,
    /// Use the prompt text as is, without the chat template.
    #[arg(long)]
    no_chat: bool,
    /// LoRA rank.
    #[arg(long, default_value_t = 16)]
    rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 32.0)]
    alpha: f64,
    /// LoRA dropout.
    #[arg(long, default_value_t = 0.0)]
    lora_dropout: f32,
    /// Scale by alpha/sqrt(r) (rsLoRA).
    #[arg(long)]
    rslora: bool,
    /// Comma-separated projections to adapt.
    #[arg(
        long,
        default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )]
    targets: String,
    /// Only these layers, e.g. `26-29` or `0,5,7` (default: all).
    #[arg(long)]
    lora_layers: Option<String>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Learning-rate schedule after the warm-up.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    schedule: Schedule,
    /// Warm-up steps.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Padded tokens per micro-batch.
    #[arg(long, default_value_t = 2048)]
    batch_tokens: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Clip the global gradient norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Stop after this many steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Stop after this many completion tokens.
    #[arg(long)]
    token_budget: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    time_budget_s: Option<f64>,
    /// Validation loss every N steps (and at the end).
    #[arg(long)]
    eval_every: Option<usize>,
    /// Longest row in tokens.
    #[arg(long)]
    max_len: Option<usize>,
    /// Merge the adapter and save the merged model as an HF folder too.
    #[arg(long)]
    merge: bool,
    /// Seed of batching, initialisation and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_layers(spec: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<usize>()?..=b.trim().parse::<usize>()?),
            None => out.push(part.trim().parse()?),
        }
    }
    Ok(out)
}

/// Runs `assay train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let schedule = args.schedule;
    // The rows are read before the model loads, so a bad file fails at once. They are the
    // operator's own: the reader's errors blame a miner, as it serves the pipelines too.
    let train_rows = read_rows(&args.data).map_err(|e| operator_input(&e))?;
    let val_rows = match &args.val {
        Some(path) => read_rows(path).map_err(|e| operator_input(&e))?,
        None => Vec::new(),
    };
    let mut lm = args.model.load()?;
    let chat = !args.no_chat && lm.tokenizer.chat_template.is_some();
    let max_len = args
        .max_len
        .unwrap_or(lm.model.config().max_position_embeddings);
    let tokenize = |rows: &[TrainRow], path: &PathBuf| {
        tokenize_rows(
            rows,
            &lm.tokenizer,
            chat,
            max_len,
            &path.display().to_string(),
        )
        .map_err(|e| operator_input(&e))
    };
    let train_ex = tokenize(&train_rows, &args.data)?;
    let val_ex = match &args.val {
        Some(path) => tokenize(&val_rows, path)?,
        None => Vec::new(),
    };
    let lora = LoraConfig {
        rank: args.rank,
        alpha: args.alpha,
        dropout: args.lora_dropout,
        use_rslora: args.rslora,
        target_modules: args
            .targets
            .split(',')
            .map(|s| s.trim().to_string())
            .collect(),
        layers: args
            .lora_layers
            .as_deref()
            .map(parse_layers)
            .transpose()
            .context("bad --lora-layers")?,
    };
    let params = if args.full {
        lm.model.make_trainable()?
    } else {
        attach_lora(&mut lm.model, &lora, args.seed)?;
        lora_parameters(&mut lm.model)
    };
    let config = TrainConfig {
        optimizer: AdamWConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            ..Default::default()
        },
        schedule,
        warmup_steps: args.warmup,
        batch_tokens: args.batch_tokens,
        grad_accum: args.grad_accum,
        max_grad_norm: args.max_grad_norm,
        epochs: args.epochs,
        max_steps: args.steps,
        token_budget: args.token_budget,
        time_budget_s: args.time_budget_s,
        eval_every: args.eval_every,
        seed: args.seed,
    };
    let mut pb = Progress::new("train", 0, "steps");
    let report = train(&lm.model, &params, &train_ex, &val_ex, &config, |s| {
        pb.set_length(s.planned_steps as u64);
        pb.set_position(s.step as u64);
        pb.set_message(format!(
            "loss {:.4} | lr {:.2e} | {:.0} tok/s",
            s.loss,
            s.lr,
            s.tokens as f64 / s.elapsed_s.max(1e-9)
        ));
    })?;
    pb.finish();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let base = args
        .model
        .model
        .clone()
        .unwrap_or_else(|| "SmolLM2-135M-Instruct (embedded default)".into());
    if args.full {
        export::save_hf_folder(&mut lm.model, &lm.tokenizer, &args.out.join("model"))?;
    } else {
        peft::save_adapter(&mut lm.model, &lora, &base, &args.out.join("adapter"))?;
        if args.merge {
            peft::merge_adapters(&mut lm.model)?;
            export::save_hf_folder(&mut lm.model, &lm.tokenizer, &args.out.join("merged"))?;
        }
    }
    let summary = json!({
        "base_model": base,
        "method": if args.full { "full" } else { "lora" },
        "lora": if args.full { None } else { Some(&lora) },
        "config": config,
        "train_rows": train_ex.len(),
        "val_rows": val_ex.len(),
        "steps": report.steps,
        "tokens": report.tokens,
        "train_loss": report.train_loss,
        "initial_val_loss": report.initial_val_loss,
        "val_loss": report.val_loss,
        "wall_clock_s": report.wall_clock_s,
        "seed": report.seed,
        "stopped_by": report.stopped_by,
        "history": report.history,
    });
    let path = args.out.join("training.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "trained {} steps ({} tokens, stopped by {}) in {:.1}s: train loss {:.4}, val loss {} -> {}; wrote {}",
        report.steps,
        report.tokens,
        report.stopped_by,
        report.wall_clock_s,
        report.train_loss,
        report
            .initial_val_loss
            .map_or("-".into(), |v| format!("{v:.4}")),
        report.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
        args.out.display()
    );
    Ok(())
}
