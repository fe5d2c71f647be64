//! Scoring: per-token log-probabilities of given text, batched over ragged sequences. Logits are
//! made a chunk of positions at a time in the model's dtype and reduced to (log-probability,
//! arg-max) per position by one kernel ([`token_nll`]), so neither the full `[tokens, vocab]`
//! logits nor any f32 log-softmax ever exist.

use candle_core::Tensor;

use crate::error::{EngineError, Result};
use crate::kernels::loss::token_nll;
use crate::models::llama::{Model, Pass};

/// Positions whose logits exist together: on the CPU 256 (about 155 MB of f32 for a 151,936-token
/// vocabulary); on a GPU 8192 (2.5 GB of bf16), large enough to keep the output matmul efficient.
fn logit_chunk(model: &Model) -> usize {
    if model.device().is_cpu() { 256 } else { 8192 }
}

/// Log-probabilities of every token of one sequence given the tokens before it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenScores {
    /// `logprobs[i]` is log p(token `i + 1` | tokens `0..=i`); one fewer entry than the sequence.
    pub logprobs: Vec<f32>,
    /// `greedy[i]` says whether token `i + 1` was the most likely next token.
    pub greedy: Vec<bool>,
}

/// How much work one forward pass may take.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most padded tokens (rows × longest row) in one batch.
    pub max_tokens: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self { max_tokens: 4096 }
    }
}

/// Scores every sequence. Sequences are grouped by length into right-padded batches; the grouping
/// depends only on the lengths, so the same input list always gives the same numbers.
pub fn score_sequences(
    model: &Model,
    sequences: &[Vec<u32>],
    limits: BatchLimits,
    mut on_progress: impl FnMut(usize),
) -> Result<Vec<TokenScores>> {
    check_sequences(model, sequences)?;
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sequences[i].len()));
    let mut results: Vec<Option<TokenScores>> = vec![None; sequences.len()];
    let mut start = 0;
    while start < order.len() {
        let longest = sequences[order[start]].len();
        let rows = (limits.max_tokens / longest.max(1)).max(1);
        let batch: Vec<usize> = order[start..(start + rows).min(order.len())].to_vec();
        let seqs: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
        for (i, scores) in batch.iter().zip(score_batch(model, &seqs)?) {
            results[*i] = Some(scores);
        }
        start += batch.len();
        on_progress(batch.len());
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every sequence scored"))
        .collect())
}

fn check_sequences(model: &Model, sequences: &[Vec<u32>]) -> Result<()> {
    let c = model.config();
    for (i, s) in sequences.iter().enumerate() {
        if s.len() < 2 {
            return Err(EngineError::Request(format!(
                "sequence {i} has {} tokens; scoring needs at least 2",
                s.len()
            )));
        }
        if s.len() > c.max_position_embeddings {
            return Err(EngineError::Request(format!(
                "sequence {i} has {} tokens, longer than the model's context of {}",
                s.len(),
                c.max_position_embeddings
            )));
        }
        if let Some(&bad) = s.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(EngineError::Request(format!(
                "sequence {i} holds token id {bad}, outside the vocabulary of {}",
                c.vocab_size
            )));
        }
    }
    Ok(())
}

fn score_batch(model: &Model, seqs: &[&[u32]]) -> Result<Vec<TokenScores>> {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    let padded: Vec<u32> = seqs
        .iter()
        .flat_map(|s| s.iter().copied().chain(std::iter::repeat_n(0, t - s.len())))
        .collect();
    let device = model.device();
    let ids = Tensor::from_vec(padded, (seqs.len(), t), device)?;
    let hidden = model.hidden_states(&ids, Pass::Inference)?;
    let h = hidden.dim(2)?;
    let hidden = hidden.reshape((seqs.len() * t, h))?;
    // Every real position but each row's last predicts the token after it.
    let (mut positions, mut targets) = (Vec::new(), Vec::new());
    for (r, s) in seqs.iter().enumerate() {
        for i in 0..s.len() - 1 {
            positions.push((r * t + i) as u32);
            targets.push(s[i + 1]);
        }
    }
    let mut results = Vec::with_capacity(positions.len() * 2);
    for (pos, tgt) in positions
        .chunks(logit_chunk(model))
        .zip(targets.chunks(logit_chunk(model)))
    {
        let picked = hidden.index_select(&Tensor::new(pos, device)?, 0)?;
        let logits = model.raw_logits(&picked.unsqueeze(0)?)?.squeeze(0)?;
        let out = token_nll(&logits, &Tensor::new(tgt, device)?)?;
        results.extend(out.flatten_all()?.to_vec1::<f32>()?);
    }
    let mut at = 0;
    Ok(seqs
        .iter()
        .map(|s| {
            let n = s.len() - 1;
            let rows = &results[2 * at..2 * (at + n)];
            at += n;
            TokenScores {
                logprobs: rows.chunks(2).map(|r| -r[0]).collect(),
                greedy: rows
                    .chunks(2)
                    .zip(&s[1..])
                    .map(|(r, &tok)| r[1] as u32 == tok)
                    .collect(),
            }
        })
        .collect())
}

/// Summary of a completion's tokens scored after its prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionScore {
    /// Log-probability of each completion token.
    pub logprobs: Vec<f32>,
    /// Sum of `logprobs` (the log-likelihood), accumulated in f64.
    pub sum_logprob: f64,
    /// Mean negative log-likelihood per completion token (the usual loss).
    pub mean_nll: f64,
    /// Whether every completion token was the model's greedy choice.
    pub is_greedy: bool,
}

/// Scores `completion` tokens after `prompt` tokens for each pair: only the completion is scored.
/// `on_progress` is told how many pairs each batch finished.
///
/// ```
/// use assay_engine::{BatchLimits, LoadOptions, ModelSource, load, score_completions};
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-qwen2");
/// let lm = load(&ModelSource::HfFolder(dir), &LoadOptions::default())?;
/// let prompt = lm.tokenizer.encode("3 plus 4 is", false)?;
/// let completion = lm.tokenizer.encode(" 7", false)?;
/// let scores = score_completions(&lm.model, &[(prompt, completion)], BatchLimits::default(), |_| {})?;
/// assert!(scores[0].mean_nll > 0.0);
/// let n = scores[0].logprobs.len() as f64;
/// assert!((scores[0].sum_logprob + n * scores[0].mean_nll).abs() < 1e-9);
/// # Ok::<(), assay_engine::EngineError>(())
/// ```
pub fn score_completions(
    model: &Model,
    pairs: &[(Vec<u32>, Vec<u32>)],
    limits: BatchLimits,
    on_progress: impl FnMut(usize),
) -> Result<Vec<CompletionScore>> {
    for (i, (p, c)) in pairs.iter().enumerate() {
        if p.is_empty() || c.is_empty() {
            return Err(EngineError::Request(format!(
                "pair {i}: prompt and completion both need at least one token"
            )));
        }
    }
    let seqs: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(p, c)| [p.as_slice(), c].concat())
        .collect();
    let scores = score_sequences(model, &seqs, limits, on_progress)?;
    Ok(scores
        .into_iter()
        .zip(pairs)
        .map(|(s, (p, _))| {
            let from = p.len() - 1;
            let logprobs = s.logprobs[from..].to_vec();
            let sum: f64 = logprobs.iter().map(|&x| x as f64).sum();
            CompletionScore {
                mean_nll: -sum / logprobs.len() as f64,
                sum_logprob: sum,
                is_greedy: s.greedy[from..].iter().all(|&g| g),
                logprobs,
            }
        })
        .collect())
}
