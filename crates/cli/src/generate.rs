//! `assay generate`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use assay_engine::{GenerateOptions, SamplingParams};
use serde_json::json;

use crate::common::{ModelArgs, PromptRow, output, read_jsonl, render_prompt};
use crate::progress::Progress;

/// Arguments of `assay generate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay generate --chat \"Name three prime numbers.\"
  assay generate --chat --n 8 --temperature 0.8 --top-p 0.95 --seed 7 --input prompts.jsonl --output samples.jsonl

Input rows (JSONL): {\"prompt\": \"...\"} or {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}, optional \"id\".
Output rows: {\"prompt_index\", \"sample_index\", \"id\", \"text\", \"finish_reason\", \"num_tokens\"}.
Sampling is deterministic per (seed, prompt index, sample index): batch size never changes the text.")]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompts given on the command line.
    prompts: Vec<String>,
    /// Read prompts from a JSONL file instead.
    #[arg(long, short = 'i')]
    input: Option<PathBuf>,
    /// Write JSONL here instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Wrap each prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// A system message for --chat.
    #[arg(long)]
    system: Option<String>,
    /// Samples per prompt (they share the prompt's prefill).
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Keep only the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Divide (or, when negative, multiply) the logit of every token already seen by this, as
    /// transformers does; 1.0 is none.
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Seed of the sampling streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Stop when this string appears (repeatable); the text is cut before it.
    #[arg(long)]
    stop: Vec<String>,
    /// Most sequences decoded together.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

/// Runs `assay generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let rows: Vec<PromptRow> = match (&args.input, args.prompts.is_empty()) {
        (Some(path), true) => read_jsonl(path)?,
        (None, false) => args
            .prompts
            .iter()
            .map(|p| PromptRow {
                prompt: Some(p.clone()),
                messages: None,
                completion: None,
                text: None,
                id: None,
            })
            .collect(),
        (Some(_), false) => bail!("give prompts either as arguments or with --input, not both"),
        (None, true) => bail!("no prompts: pass them as arguments or with --input FILE.jsonl"),
    };
    let lm = args.model.load()?;
    let mut prompts = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let text = render_prompt(&lm, row, args.chat, args.system.as_deref())
            .map_err(|e| e.context(format!("prompt {i}")))?;
        prompts.push(
            lm.tokenizer
                .encode(&text, !args.chat && row.messages.is_none())?,
        );
    }
    let params = SamplingParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        stop_token_ids: vec![],
        stop_strings: args.stop.clone(),
        n: args.n,
        repetition_penalty: args.repetition_penalty,
    };
    let options = GenerateOptions {
        seed: args.seed,
        max_batch_rows: args.batch_size,
    };
    let mut pb = Progress::new(
        "generate",
        (rows.len() * args.n * args.max_new_tokens) as u64,
        "tokens (upper bound)",
    );
    let results =
        assay_engine::generate(&lm.model, &lm.tokenizer, &prompts, &params, options, |n| {
            pb.inc(n as u64)
        })?;
    pb.finish();
    let mut out = output(args.output.as_ref())?;
    for (row, samples) in rows.iter().zip(&results) {
        for s in samples {
            let line = json!({
                "prompt_index": s.prompt_index,
                "sample_index": s.sample_index,
                "id": row.id,
                "text": s.text,
                "finish_reason": s.finish_reason,
                "num_tokens": s.token_ids.len(),
            });
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}
