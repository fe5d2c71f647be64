//! `assay score`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use assay_engine::BatchLimits;
use serde_json::json;

use crate::common::{ModelArgs, output, read_jsonl, render_prompt};
use crate::progress::Progress;

/// Arguments of `assay score`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay score --input pairs.jsonl                      # rows {\"prompt\": \"Q: 2+2?\\nA:\", \"completion\": \" 4\"}
  assay score --chat --input pairs.jsonl               # prompt as a chat user turn, completion as the reply
  assay score --input texts.jsonl                      # rows {\"text\": \"...\"}: loss and bits per byte

Only completion tokens are scored after a prompt. A `text` row is scored whole: its first token is predicted
from the tokenizer's BOS when it adds one, else from its end-of-text token (--text-prefix eos, the convention of
lm-evaluation-harness's rolling log-likelihood and of PRISM's bits per byte); --text-prefix first-token scores
from the second token on instead (the first is context only) and counts only the scored tokens' bytes.
Output rows: {\"index\", \"id\", \"num_tokens\", \"sum_logprob\",
\"mean_nll\", \"is_greedy\"} plus \"bits_per_byte\" for text rows and \"token_logprobs\" with --token-logprobs.")]
pub struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// JSONL rows with `prompt` + `completion`, `messages` + `completion`, or `text`.
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// Write JSONL here instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Render `prompt` as a user message with the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Include every token's log-probability.
    #[arg(long)]
    token_logprobs: bool,
    /// Most padded tokens in one forward pass.
    #[arg(long, default_value_t = 4096)]
    batch_tokens: usize,
    /// What a `text` row's first token is predicted from (see below).
    #[arg(long, value_enum, default_value_t = TextPrefix::Eos)]
    text_prefix: TextPrefix,
}

/// What the first token of a `text` row is predicted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextPrefix {
    /// The tokenizer's BOS when it adds one, else its end-of-text token: every token of the text
    /// is scored and bits per byte cover the whole text.
    Eos,
    /// Nothing: scoring starts at the second token (unless the tokenizer adds a BOS), and bits per
    /// byte cover the scored tokens' bytes only.
    FirstToken,
}

/// Runs `assay score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let rows = read_jsonl(&args.input)?;
    let lm = args.model.load()?;
    let mut pairs = Vec::with_capacity(rows.len());
    let mut text_bytes = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let here = || format!("{}: row {}", args.input.display(), i + 1);
        let (prompt, completion) = match (&row.text, &row.completion) {
            (Some(text), None) => {
                let ids = lm.tokenizer.encode(text, true).with_context(here)?;
                let bos_added = ids.len() > lm.tokenizer.encode(text, false)?.len();
                let (prefix, scored) = match (bos_added, args.text_prefix) {
                    (true, _) | (false, TextPrefix::FirstToken) => (vec![ids[0]], &ids[1..]),
                    (false, TextPrefix::Eos) => match lm.tokenizer.eos_token_ids.first() {
                        Some(&eos) => (vec![eos], &ids[..]),
                        None => bail!(
                            "{}: the tokenizer has neither a BOS nor an end-of-text token to \
                             predict the first token from; use --text-prefix first-token",
                            here()
                        ),
                    },
                };
                if scored.is_empty() {
                    bail!("{}: `text` has no token to score", here());
                }
                text_bytes.push(Some(lm.tokenizer.decode(scored, false)?.len()));
                (prefix, scored.to_vec())
            }
            (None, Some(completion)) => {
                let prompt = render_prompt(&lm, row, args.chat, None).with_context(here)?;
                let templated = args.chat || row.messages.is_some();
                text_bytes.push(None);
                (
                    lm.tokenizer.encode(&prompt, !templated)?,
                    lm.tokenizer.encode(completion, false)?,
                )
            }
            _ => bail!(
                "{}: give either `text`, or a prompt/messages with `completion`",
                here()
            ),
        };
        pairs.push((prompt, completion));
    }
    let mut pb = Progress::new("score", pairs.len() as u64, "rows");
    let limits = BatchLimits {
        max_tokens: args.batch_tokens,
    };
    let scores = assay_engine::score_completions(&lm.model, &pairs, limits, |n| pb.inc(n as u64))?;
    pb.finish();
    let mut out = output(args.output.as_ref())?;
    let mut total_nll = 0.0;
    let mut total_tokens = 0usize;
    for (i, ((row, score), bytes)) in rows.iter().zip(&scores).zip(&text_bytes).enumerate() {
        let mut line = json!({
            "index": i,
            "id": row.id,
            "num_tokens": score.logprobs.len(),
            "sum_logprob": score.sum_logprob,
            "mean_nll": score.mean_nll,
            "is_greedy": score.is_greedy,
        });
        if let Some(bytes) = bytes {
            line["bits_per_byte"] =
                json!(-score.sum_logprob / std::f64::consts::LN_2 / *bytes as f64);
        }
        if args.token_logprobs {
            line["token_logprobs"] = json!(score.logprobs);
        }
        total_nll -= score.sum_logprob;
        total_tokens += score.logprobs.len();
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!(
        "scored {} rows, {total_tokens} tokens, mean loss {:.4} nats/token",
        rows.len(),
        total_nll / total_tokens.max(1) as f64
    );
    Ok(())
}
