//! Batched generation with a KV cache: ragged prompts, n samples per prompt sharing one prefill,
//! greedy / temperature / top-k / top-p sampling, stop tokens and stop strings.
//!
//! Each prompt is prefilled alone, then the batch decodes together in one left-padded KV cache
//! (see [`KvCache`]); each sample draws its random numbers from a counter-based stream keyed by
//! (seed, request key, sample index) and the step. The request key is a hash of the prompt's token
//! ids ([`prompt_key`]) or, through [`generate_with_keys`], of an explicit request id
//! ([`request_key`]); never the prompt's position. So a request gives the same text whatever the
//! batch size, the other requests beside it, or its place in the input (up to float rounding in
//! batched matmuls) — the invariance a validator needs when miners' items arrive in any order.
//!
//! Plain temperature sampling and greedy decoding run on the device (Gumbel-max over the logits,
//! [`crate::kernels::sampling::sample_rows`]); tokens are read back every few steps rather than every step, so
//! the host never waits on the device in between. Top-k, top-p and the repetition penalty need the
//! logits on the host and use the same draws there.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::kernels::sampling::gumbel_choice;
use crate::models::llama::{KvCache, Model};
use crate::text::tokenizer::TextTokenizer;

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
    /// Repetition penalty as in transformers (1.0: none): the logit of every token already in the
    /// prompt or the sample is divided by it when positive and multiplied by it when negative.
    #[serde(default = "no_penalty")]
    pub repetition_penalty: f32,
}

fn no_penalty() -> f32 {
    1.0
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
            repetition_penalty: 1.0,
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
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad("repetition_penalty must be a finite number > 0 (1.0 for none)");
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
    /// Key of the sample's random stream.
    key: u64,
    generated: Vec<u32>,
    finished: Option<FinishReason>,
}

/// Generates `params.n` samples for every prompt; returns them grouped per prompt, in order.
/// `on_token` is told how many tokens each decode step produced, for progress bars.
///
/// ```
/// use assay_engine::{GenerateOptions, LoadOptions, ModelSource, SamplingParams, generate, load};
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-qwen2");
/// let lm = load(&ModelSource::HfFolder(dir), &LoadOptions::default())?;
/// let prompts = vec![lm.tokenizer.encode("The quick brown fox", false)?];
/// let params = SamplingParams { temperature: 0.8, n: 2, max_new_tokens: 4, ..Default::default() };
/// let out = generate(&lm.model, &lm.tokenizer, &prompts, &params, GenerateOptions::default(), |_| {})?;
/// assert_eq!(out[0].len(), 2);
/// assert!(out[0].iter().all(|c| c.token_ids.len() <= 4));
/// # Ok::<(), assay_engine::EngineError>(())
/// ```
///
/// Each prompt's samples are drawn from streams keyed by the seed and the prompt's own tokens
/// ([`prompt_key`]), so they do not depend on where the prompt stands in `prompts`; two equal
/// prompts get equal samples (give them distinct ids through [`generate_with_keys`] if they must
/// differ).
pub fn generate(
    model: &Model,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    options: GenerateOptions,
    on_token: impl FnMut(usize),
) -> Result<Vec<Vec<Completion>>> {
    let keys: Vec<u64> = prompts.iter().map(|p| prompt_key(p)).collect();
    generate_with_keys(model, tokenizer, prompts, &keys, params, options, on_token)
}

/// [`generate`] with an explicit stream key per prompt (`keys[i]` for `prompts[i]`, typically
/// [`request_key`] of the request's id): prompt `i`'s samples depend only on `keys[i]`, its
/// tokens, the parameters and the seed.
pub fn generate_with_keys(
    model: &Model,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    keys: &[u64],
    params: &SamplingParams,
    options: GenerateOptions,
    mut on_token: impl FnMut(usize),
) -> Result<Vec<Vec<Completion>>> {
    params.validate()?;
    check_prompts(model, prompts, params)?;
    if keys.len() != prompts.len() {
        return Err(EngineError::Request(format!(
            "{} stream keys for {} prompts: give one key per prompt",
            keys.len(),
            prompts.len()
        )));
    }
    let per_batch = (options.max_batch_rows.max(params.n) / params.n).max(1);
    let mut out = Vec::with_capacity(prompts.len());
    for (chunk_index, chunk) in prompts.chunks(per_batch).enumerate() {
        let first = chunk_index * per_batch;
        let mut done = generate_batch(
            model,
            tokenizer,
            chunk,
            first,
            &keys[first..first + chunk.len()],
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

/// The stream key of a prompt by its content: the first 8 bytes (little-endian) of the SHA-256 of
/// its token ids (each 4 bytes, little-endian) after a domain tag.
pub fn prompt_key(tokens: &[u32]) -> u64 {
    let mut h = Sha256::new();
    h.update(b"assay prompt tokens\0");
    for t in tokens {
        h.update(t.to_le_bytes());
    }
    first_u64(&h.finalize())
}

/// The stream key of a request by its id (any string the caller keeps stable, such as a
/// submission's item id): the first 8 bytes (little-endian) of the SHA-256 of the id's UTF-8
/// bytes after a domain tag, so it never collides with a [`prompt_key`] by construction.
pub fn request_key(id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"assay request id\0");
    h.update(id.as_bytes());
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}

/// A 64-bit seed for sample `sample` of the request keyed `request` in run `seed` (SplitMix64
/// finaliser over the three).
fn stream_seed(seed: u64, request: u64, sample: usize) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    mix(mix(mix(seed) ^ request).wrapping_add(0x9e37_79b9_7f4a_7c15) ^ sample as u64)
}

/// Decode steps between reads of the sampled tokens on a GPU (on the CPU every step is read).
const GPU_CHECK_EVERY: usize = 8;

fn generate_batch(
    model: &Model,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    first_index: usize,
    request_keys: &[u64],
    params: &SamplingParams,
    seed: u64,
    on_token: &mut impl FnMut(usize),
) -> Result<Vec<Completion>> {
    let stop_ids: Vec<u32> = tokenizer
        .eos_token_ids
        .iter()
        .chain(&params.stop_token_ids)
        .copied()
        .collect();
    let device = model.device().clone();
    let (mut cache, mut logits) = prefill(model, prompts, params)?;
    let mut rows: Vec<Row> = (0..prompts.len())
        .flat_map(|p| (0..params.n).map(move |s| (p, s)))
        .map(|(p, s)| Row {
            prompt_index: first_index + p,
            sample_index: s,
            key: stream_seed(seed, request_keys[p], s),
            generated: Vec::new(),
            finished: None,
        })
        .collect();
    let mut keys = row_keys(&rows, &device)?;
    let check_every = if device.is_cpu() { 1 } else { GPU_CHECK_EVERY };
    let mut pending = Vec::new();
    let mut finished = Vec::new();
    for step in 0..params.max_new_tokens {
        let tokens = sample_step(&logits, &keys, &rows, prompts, first_index, params, step)?;
        pending.push(tokens.clone());
        let last_step = step + 1 == params.max_new_tokens;
        let mut tokens = tokens;
        if pending.len() == check_every || last_step {
            let drawn = Tensor::stack(&pending, 1)?.to_vec2::<u32>()?;
            pending.clear();
            let mut accepted = 0;
            for (row, drawn) in rows.iter_mut().zip(&drawn) {
                for &token in drawn {
                    if row.finished.is_none() {
                        accept_token(row, token, &stop_ids, params, tokenizer)?;
                        accepted += 1;
                    }
                }
            }
            on_token(accepted);
            let live: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].finished.is_none())
                .collect();
            if live.is_empty() {
                finished.append(&mut rows);
                break;
            }
            if live.len() < rows.len() {
                let (keep, done): (Vec<Row>, Vec<Row>) =
                    rows.into_iter().partition(|r| r.finished.is_none());
                finished.extend(done);
                rows = keep;
                cache.retain_rows(&live)?;
                let index = Tensor::from_vec(
                    live.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    live.len(),
                    &device,
                )?;
                tokens = tokens.index_select(&index, 0)?;
                keys = row_keys(&rows, &device)?;
            }
        }
        if last_step {
            break;
        }
        logits = model.forward_cached_raw(&tokens.unsqueeze(1)?, &mut cache)?;
    }
    finished.append(&mut rows);
    finished
        .into_iter()
        .map(|row| finish(row, params, tokenizer))
        .collect()
}

fn row_keys(rows: &[Row], device: &candle_core::Device) -> Result<Tensor> {
    let keys: Vec<i64> = rows.iter().map(|r| r.key as i64).collect();
    Ok(Tensor::from_vec(keys, rows.len(), device)?)
}

/// Most prompt tokens prefilled in one forward pass.
const PREFILL_TOKENS: usize = 16_384;

/// Prefills the prompts, those of one length together, then stacks their caches left-padded with
/// each prompt's row repeated `n` times, in prompt order; returns the cache and the logits
/// `[rows, V]` of every row's last prompt token.
fn prefill(
    model: &Model,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
) -> Result<(KvCache, Tensor)> {
    let mut by_length: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, p) in prompts.iter().enumerate() {
        by_length.entry(p.len()).or_default().push(i);
    }
    let (config, n) = (model.config(), params.n);
    let mut caches = Vec::new();
    let mut logits = Vec::new();
    let mut order = Vec::new();
    for (len, indices) in by_length {
        for group in indices.chunks((PREFILL_TOKENS / len).max(1)) {
            let mut cache =
                KvCache::with_rows(config, group.len(), len, model.dtype(), model.device())?;
            let ids: Vec<u32> = group
                .iter()
                .flat_map(|&i| prompts[i].iter().copied())
                .collect();
            let ids = Tensor::from_vec(ids, (group.len(), len), model.device())?;
            let last = model.forward_cached_raw(&ids, &mut cache)?; // [g, V]
            let (g, v) = last.dims2()?;
            logits.push(
                last.unsqueeze(1)?
                    .broadcast_as((g, n, v))?
                    .reshape((g * n, v))?,
            );
            caches.push(cache);
            order.extend_from_slice(group);
        }
    }
    let parts: Vec<(&KvCache, usize)> = caches.iter().map(|c| (c, n)).collect();
    let mut cache = KvCache::stack_left_padded(&parts, params.max_new_tokens)?;
    let mut logits = Tensor::cat(&logits, 0)?;
    if order.windows(2).any(|w| w[0] > w[1]) {
        // Rows are in length-group order: put them back in prompt order.
        let mut slot_of = vec![0; prompts.len()];
        for (slot, &prompt) in order.iter().enumerate() {
            slot_of[prompt] = slot;
        }
        let perm: Vec<usize> = (0..prompts.len())
            .flat_map(|p| (0..n).map(move |s| (p, s)))
            .map(|(p, s)| slot_of[p] * n + s)
            .collect();
        cache.retain_rows(&perm)?;
        let index: Vec<u32> = perm.iter().map(|&r| r as u32).collect();
        logits = logits.index_select(&Tensor::new(index.as_slice(), model.device())?, 0)?;
    }
    Ok((cache, logits.contiguous()?))
}

/// The next token of every row, as a u32 tensor `[rows]` on the model's device.
fn sample_step(
    logits: &Tensor,
    keys: &Tensor,
    rows: &[Row],
    prompts: &[Vec<u32>],
    first_index: usize,
    params: &SamplingParams,
    step: usize,
) -> Result<Tensor> {
    let on_host = params.top_k.is_some() || params.top_p < 1.0 || params.repetition_penalty != 1.0;
    if !on_host {
        return Ok(crate::kernels::sampling::sample_rows(
            logits,
            keys,
            step as u32,
            params.temperature,
        )?);
    }
    let host = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let tokens: Vec<u32> = rows
        .iter()
        .zip(host)
        .map(|(row, mut l)| {
            let seen = prompts[row.prompt_index - first_index]
                .iter()
                .chain(&row.generated);
            apply_repetition_penalty(&mut l, seen, params.repetition_penalty);
            sample_token(&l, params, row.key, step as u32)
        })
        .collect();
    Ok(Tensor::from_vec(tokens, rows.len(), logits.device())?)
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: each distinct token seen is penalised once.
pub fn apply_repetition_penalty<'a>(
    logits: &mut [f32],
    seen: impl Iterator<Item = &'a u32>,
    penalty: f32,
) {
    if penalty == 1.0 {
        return;
    }
    let mut done = std::collections::HashSet::new();
    for &t in seen {
        if let Some(l) = logits.get_mut(t as usize)
            && done.insert(t)
        {
            *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
        }
    }
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

/// Picks the next token from f32 logits with the draws of stream `key` at `step`: greedy at
/// temperature 0, else Gumbel-max over the tokens that top-k and top-p keep. The device sampler
/// ([`crate::kernels::sampling::sample_rows`]) makes the same draws.
pub fn sample_token(logits: &[f32], params: &SamplingParams, key: u64, step: u32) -> u32 {
    let inv_t = if params.temperature > 0.0 {
        1.0 / params.temperature
    } else {
        0.0
    };
    let filtering = params.temperature > 0.0 && (params.top_k.is_some() || params.top_p < 1.0);
    if !filtering {
        let all = logits.iter().enumerate().map(|(i, &l)| (i as u32, l));
        return gumbel_choice(all, key, step, inv_t);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut candidates: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, ((l - max) * inv_t).exp()))
        .collect();
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
    let kept = candidates.iter().map(|&(i, _)| (i, logits[i as usize]));
    gumbel_choice(kept, key, step, inv_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(logits: &[f32], p: &SamplingParams, key: u64, step: u32) -> u32 {
        sample_token(logits, p, key, step)
    }

    #[test]
    fn greedy_takes_lowest_id_on_ties() {
        let p = SamplingParams::default();
        assert_eq!(draw(&[1.0, 3.0, 3.0], &p, 0, 0), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_head() {
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
        for step in 0..200 {
            assert_eq!(draw(&logits, &k1, 7, step), 1);
            assert_eq!(draw(&logits, &p, 7, step), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let p = SamplingParams {
            temperature: 1.0,
            ..Default::default()
        };
        let ones = (0..20_000u32)
            .filter(|&step| draw(&logits, &p, 3, step) == 1)
            .count();
        let frac = ones as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.015, "{frac}");
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        let logits = [0.0f32, 1.0];
        let share = |t: f32| {
            let p = SamplingParams {
                temperature: t,
                ..Default::default()
            };
            (0..20_000u32)
                .filter(|&s| draw(&logits, &p, 11, s) == 1)
                .count() as f64
                / 20_000.0
        };
        // softmax([0, 1] / t)[1]: t = 0.5 → 0.881, t = 2 → 0.622.
        assert!((share(0.5) - 0.881).abs() < 0.015);
        assert!((share(2.0) - 0.622).abs() < 0.015);
    }

    #[test]
    fn repetition_penalty_matches_transformers_rule() {
        let mut l = vec![2.0, -2.0, 1.0];
        apply_repetition_penalty(&mut l, [0u32, 1, 0].iter(), 2.0);
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn streams_differ_per_prompt_and_sample() {
        let a = stream_seed(1, 0, 1);
        assert_ne!(a, stream_seed(1, 1, 0));
        assert_ne!(a, stream_seed(2, 0, 1));
        assert_eq!(a, stream_seed(1, 0, 1));
    }
}
