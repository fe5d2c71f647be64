//! Batched generation with a KV cache: ragged prompts, n samples per prompt sharing one prefill,
//! greedy / temperature / top-k / top-p sampling, stop tokens and stop strings.
//!
//! Each sequence keeps its own cache row and positions, and draws its random numbers from a stream
//! keyed by (seed, prompt index, sample index). A request therefore gives the same text whatever the
//! batch size or the other requests beside it.

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::model::{KvCache, Model};
use crate::tokenizer::TextTokenizer;

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Keep only the k most likely tokens (None: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1.0: all).
    pub top_p: f32,
    /// Most tokens to generate.
    pub max_new_tokens: usize,
    /// Extra token ids that end a sample (the tokenizer's end-of-sequence ids always do).
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a sample; the text is cut before the first one.
    pub stop_strings: Vec<String>,
    /// Samples per prompt.
    pub n: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: None,
            top_p: 1.0,
            max_new_tokens: 256,
            stop_token_ids: vec![],
            stop_strings: vec![],
            n: 1,
        }
    }
}

impl SamplingParams {
    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(EngineError::Request(m.to_string()));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature must be a finite number >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]");
        }
        if self.top_k == Some(0) {
            return bad("top_k must be at least 1");
        }
        if self.n == 0 {
            return bad("n (samples per prompt) must be at least 1");
        }
        Ok(())
    }
}

/// Why a sample ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence or stop token was drawn.
    StopToken,
    /// A stop string appeared.
    StopString,
    /// `max_new_tokens` was reached.
    Length,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Index of the prompt in the request list.
    pub prompt_index: usize,
    /// Index of this sample among the prompt's `n`.
    pub sample_index: usize,
    /// Generated token ids (the stop token excluded).
    pub token_ids: Vec<u32>,
    /// Decoded text, cut before any stop string.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Options of a generation run.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    /// Seed of every sample's random stream.
    pub seed: u64,
    /// Most sequences decoded together.
    pub max_batch_rows: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            max_batch_rows: 32,
        }
    }
}

/// A sequence being decoded.
struct Row {
    prompt_index: usize,
    sample_index: usize,
    rng: ChaCha8Rng,
    generated: Vec<u32>,
    finished: Option<FinishReason>,
}

/// Generates `params.n` samples for every prompt; returns them grouped per prompt, in order.
/// `on_token` is told how many tokens each decode step produced, for progress bars.
pub fn generate(
    model: &Model,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    options: GenerateOptions,
    mut on_token: impl FnMut(usize),
) -> Result<Vec<Vec<Completion>>> {
    params.validate()?;
    check_prompts(model, prompts, params)?;
    let per_batch = (options.max_batch_rows.max(params.n) / params.n).max(1);
    let mut out = Vec::with_capacity(prompts.len());
    for (chunk_index, chunk) in prompts.chunks(per_batch).enumerate() {
        let first = chunk_index * per_batch;
        let mut done = generate_batch(
            model,
            tokenizer,
            chunk,
            first,
            params,
            options.seed,
            &mut on_token,
        )?;
        done.sort_by_key(|c| (c.prompt_index, c.sample_index));
        let mut grouped: Vec<Vec<Completion>> = vec![Vec::new(); chunk.len()];
        for c in done {
            grouped[c.prompt_index - first].push(c);
        }
        out.extend(grouped);
    }
    Ok(out)
}

fn check_prompts(model: &Model, prompts: &[Vec<u32>], params: &SamplingParams) -> Result<()> {
    let c = model.config();
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(EngineError::Request(format!(
                "prompt {i} is empty: give it at least one token"
            )));
        }
        if p.len() + params.max_new_tokens > c.max_position_embeddings {
            return Err(EngineError::Request(format!(
                "prompt {i} has {} tokens; with max_new_tokens {} it exceeds the model's context of {} \
                 (shorten the prompt or lower max_new_tokens)",
                p.len(),
                params.max_new_tokens,
                c.max_position_embeddings
            )));
        }
        if let Some(&bad) = p.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(EngineError::Request(format!(
                "prompt {i} holds token id {bad}, outside the vocabulary of {}",
                c.vocab_size
            )));
        }
    }
    Ok(())
}

/// A 64-bit seed for sample `(prompt, sample)` of run `seed` (SplitMix64 finaliser over the three).
fn stream_seed(seed: u64, prompt: usize, sample: usize) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    mix(mix(mix(seed) ^ prompt as u64).wrapping_add(0x9e37_79b9_7f4a_7c15) ^ sample as u64)
}

fn generate_batch(
    model: &Model,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    first_index: usize,
    params: &SamplingParams,
    seed: u64,
    on_token: &mut impl FnMut(usize),
) -> Result<Vec<Completion>> {
    let config = model.config();
    let stop_ids: Vec<u32> = tokenizer
        .eos_token_ids
        .iter()
        .chain(&params.stop_token_ids)
        .copied()
        .collect();
    let mut cache = KvCache::new(config.num_hidden_layers);
    let mut rows = Vec::new();
    let mut next_tokens = Vec::new();
    for (offset, prompt) in prompts.iter().enumerate() {
        let prompt_index = first_index + offset;
        let logits = prefill(model, &mut cache, prompt, params.max_new_tokens)?;
        let first_row = cache.rows() - 1;
        for sample_index in 0..params.n {
            if sample_index > 0 {
                cache.duplicate_row(first_row)?;
            }
            let mut row = Row {
                prompt_index,
                sample_index,
                rng: ChaCha8Rng::seed_from_u64(stream_seed(seed, prompt_index, sample_index)),
                generated: Vec::new(),
                finished: None,
            };
            let token = sample_token(&logits, params, &mut row.rng);
            next_tokens.push(token);
            rows.push(row);
        }
    }
    let mut finished = Vec::new();
    loop {
        let mut live = Vec::new();
        let mut live_tokens = Vec::new();
        for (i, (row, &token)) in rows.iter_mut().zip(&next_tokens).enumerate() {
            accept_token(row, token, &stop_ids, params, tokenizer)?;
            if row.finished.is_none() {
                live.push(i);
                live_tokens.push(token);
            }
        }
        on_token(rows.len());
        let (keep, done): (Vec<Row>, Vec<Row>) =
            rows.into_iter().partition(|r| r.finished.is_none());
        finished.extend(done);
        rows = keep;
        if rows.is_empty() {
            break;
        }
        cache.retain_rows(&live);
        let ids = Tensor::from_vec(live_tokens, (rows.len(), 1), model.device())?;
        let logits = model
            .forward_cached(&ids, &mut cache)?
            .to_dtype(DType::F32)?;
        let logits = logits.to_vec2::<f32>()?;
        next_tokens = rows
            .iter_mut()
            .zip(&logits)
            .map(|(row, l)| sample_token(l, params, &mut row.rng))
            .collect();
    }
    finished
        .into_iter()
        .map(|row| finish(row, params, tokenizer))
        .collect()
}

/// Runs a prompt through a fresh cache row; returns the logits of its last token.
fn prefill(model: &Model, cache: &mut KvCache, prompt: &[u32], max_new: usize) -> Result<Vec<f32>> {
    let mut single = KvCache::new(model.config().num_hidden_layers);
    single.add_row(
        model.config(),
        prompt.len() + max_new,
        model.dtype(),
        model.device(),
    )?;
    let ids = Tensor::new(prompt, model.device())?.unsqueeze(0)?;
    let logits = model.forward_cached(&ids, &mut single)?;
    cache.extend_from(single);
    Ok(logits.squeeze(0)?.to_vec1::<f32>()?)
}

fn accept_token(
    row: &mut Row,
    token: u32,
    stop_ids: &[u32],
    params: &SamplingParams,
    tokenizer: &TextTokenizer,
) -> Result<()> {
    if stop_ids.contains(&token) {
        row.finished = Some(FinishReason::StopToken);
        return Ok(());
    }
    row.generated.push(token);
    if !params.stop_strings.is_empty() {
        let text = tokenizer.decode(&row.generated, true)?;
        if params
            .stop_strings
            .iter()
            .any(|s| text.contains(s.as_str()))
        {
            row.finished = Some(FinishReason::StopString);
            return Ok(());
        }
    }
    if row.generated.len() >= params.max_new_tokens {
        row.finished = Some(FinishReason::Length);
    }
    Ok(())
}

fn finish(row: Row, params: &SamplingParams, tokenizer: &TextTokenizer) -> Result<Completion> {
    let mut text = tokenizer.decode(&row.generated, true)?;
    if let Some(cut) = params
        .stop_strings
        .iter()
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(cut);
    }
    Ok(Completion {
        prompt_index: row.prompt_index,
        sample_index: row.sample_index,
        token_ids: row.generated,
        text,
        finish_reason: row.finished.unwrap_or(FinishReason::Length),
    })
}

/// Picks the next token from f32 logits.
pub fn sample_token(logits: &[f32], params: &SamplingParams, rng: &mut impl Rng) -> u32 {
    if params.temperature == 0.0 {
        return argmax(logits);
    }
    let inv_t = 1.0 / params.temperature;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let filtering = params.top_k.is_some() || params.top_p < 1.0;
    let mut candidates: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, ((l - max) * inv_t).exp()))
        .collect();
    if filtering {
        // Most likely first; ties broken by token id so the order is total and reproducible.
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = params.top_k {
            candidates.truncate(k);
        }
        if params.top_p < 1.0 {
            let total: f32 = candidates.iter().map(|c| c.1).sum();
            let mut cumulative = 0.0;
            let keep = candidates
                .iter()
                .position(|c| {
                    cumulative += c.1 / total;
                    cumulative >= params.top_p
                })
                .map_or(candidates.len(), |p| p + 1);
            candidates.truncate(keep);
        }
    }
    let total: f64 = candidates.iter().map(|c| c.1 as f64).sum();
    let mut target = rng.random::<f64>() * total;
    for &(id, weight) in &candidates {
        target -= weight as f64;
        if target < 0.0 {
            return id;
        }
    }
    candidates.last().map_or(0, |c| c.0)
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_lowest_id_on_ties() {
        let p = SamplingParams::default();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sample_token(&[1.0, 3.0, 3.0], &p, &mut rng), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_head() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let logits = [0.0, 5.0, 4.9, -3.0];
        let k1 = SamplingParams {
            temperature: 1.0,
            top_k: Some(1),
            ..Default::default()
        };
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            ..Default::default()
        };
        for _ in 0..200 {
            assert_eq!(sample_token(&logits, &k1, &mut rng), 1);
            assert_eq!(sample_token(&logits, &p, &mut rng), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let logits = [0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let p = SamplingParams {
            temperature: 1.0,
            ..Default::default()
        };
        let ones = (0..20_000)
            .filter(|_| sample_token(&logits, &p, &mut rng) == 1)
            .count();
        let frac = ones as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.015, "{frac}");
    }

    #[test]
    fn streams_differ_per_prompt_and_sample() {
        let a = stream_seed(1, 0, 1);
        assert_ne!(a, stream_seed(1, 1, 0));
        assert_ne!(a, stream_seed(2, 0, 1));
        assert_eq!(a, stream_seed(1, 0, 1));
    }
}
