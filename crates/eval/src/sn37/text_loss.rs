//! SN37's TEXT_LOSS (the FINEWEB task; finetuning `finetune/eval/method.py`
//! `compute_text_loss` and `check_for_reasonable_output`, loader `HuggingFaceLoader.tokenize`).
//!
//! 1. Every document is encoded as SN37's loader does: the tokenizer's special tokens added, cut
//!    to `sequence_length` tokens, then right-padded with the pad token (the end-of-sequence
//!    token when the tokenizer has none) to exactly `sequence_length`.
//! 2. Sanity check on the first two encoded documents. SN37 slices `[:100]` along the first axis of
//!    a `(1, sequence_length)` array, so the whole padded sequence is the prompt. Exactly 20 new
//!    tokens are generated for each (`min_new_tokens = max_new_tokens = 20`: end-of-sequence
//!    tokens cannot be chosen). The model fails (+inf) if 10 or more of the 20 positions hold
//!    the same token in both outputs, or if *both* outputs have a most frequent token occurring
//!    more than 10 times.
//! 3. Loss: mean next-token cross-entropy over every position of each padded sequence (pad
//!    positions are scored too: SN37's loss has no ignore index for them and no attention mask);
//!    the raw score is the mean over documents (each document is one batch in SN37).
//!
//! Deliberate differences, documented:
//! - Generation is greedy. SN37 calls `model.generate` with the model's own generation config,
//!   which samples when the submitted `generation_config.json` says `do_sample`; greedy keeps
//!   validators in agreement (SN37's own aim in PR #92).
//! - No attention mask anywhere. SN37's `generate` infers one only when the pad id it passes (the
//!   tokenizer's end-of-sequence id) differs from the model's end-of-sequence id; in the usual
//!   case they are equal and every position, pads included, is attended, as here.
//! - Truncation cuts the encoded ids (special tokens included) to the length; a tokenizer whose
//!   post-processor appends a token at the end loses it here, where Hugging Face keeps it.
//! - The encoded length is the competition's sequence length but at most the model's positions
//!   minus the 20 generated tokens, so the sanity check never runs past the model's positions
//!   (SN37 lets RoPE models run past them).

use assay_engine::candle_core::{DType, Tensor};
use assay_engine::{KvCache, score_sequences};

use crate::engine_lm::EngineLm;
use crate::runner::{ModelError, mean_and_stderr};

/// Tokens generated per prompt by the sanity check.
pub const SANITY_NEW_TOKENS: usize = 20;

/// Identical positions (between the two outputs) at which the sanity check fails.
pub const MAX_SHARED_POSITIONS: usize = SANITY_NEW_TOKENS / 2;

/// A most-frequent-token count above this, in both outputs, fails the sanity check.
pub const MAX_REPEATS: usize = SANITY_NEW_TOKENS / 2;

/// What TEXT_LOSS needs from a model: token-level access. Models without it keep the default
/// methods, which refuse, so the task fails with a precise reason instead of a wrong score.
pub trait TokenLm {
    /// `text` encoded with special tokens, cut to `length` ids and right-padded to exactly
    /// `length` with the pad id.
    fn encode_padded(&self, _text: &str, _length: usize) -> Result<Vec<u32>, ModelError> {
        Err("this model has no token-level interface for TEXT_LOSS".into())
    }
    /// The length documents are encoded to (the competition's sequence length, never beyond the
    /// model's positions minus the sanity check's new tokens).
    fn text_length(&self) -> Result<usize, ModelError> {
        Err("this model has no token-level interface for TEXT_LOSS".into())
    }
    /// Mean next-token cross-entropy (nats) over all positions of each sequence.
    fn sequence_losses(&self, _sequences: &[Vec<u32>]) -> Result<Vec<f64>, ModelError> {
        Err("this model has no token-level interface for TEXT_LOSS".into())
    }
    /// Exactly `count` greedy tokens after `prompt`, never an end-of-sequence token.
    fn greedy_tokens(&self, _prompt: &[u32], _count: usize) -> Result<Vec<u32>, ModelError> {
        Err("this model has no token-level interface for TEXT_LOSS".into())
    }
}

/// Why TEXT_LOSS gave no finite score (SN37 scores all of these +inf).
#[derive(Debug, thiserror::Error)]
pub enum TextLossError {
    /// The sanity check needs the first two documents.
    #[error("TEXT_LOSS needs at least 2 documents for its sanity check, got {0}")]
    TooFewDocuments(usize),
    /// The model's two sanity outputs share too many positions or both repeat one token.
    #[error("sanity check failed: {0}")]
    Degenerate(String),
    /// The model failed or answered the wrong number of requests.
    #[error("model: {0}")]
    Model(String),
}

/// The raw TEXT_LOSS score: mean over documents of [`text_losses`].
pub fn text_loss(model: &dyn TokenLm, documents: &[String]) -> Result<f64, TextLossError> {
    Ok(mean_and_stderr(&text_losses(model, documents)?).0)
}

/// Each document's loss, after the sanity check on the first two documents.
pub fn text_losses(model: &dyn TokenLm, documents: &[String]) -> Result<Vec<f64>, TextLossError> {
    if documents.len() < 2 {
        return Err(TextLossError::TooFewDocuments(documents.len()));
    }
    let model_error = |e: ModelError| TextLossError::Model(e.to_string());
    let length = model.text_length().map_err(model_error)?;
    let sequences = documents
        .iter()
        .map(|text| model.encode_padded(text, length))
        .collect::<Result<Vec<_>, _>>()
        .map_err(model_error)?;
    let first = model
        .greedy_tokens(&sequences[0], SANITY_NEW_TOKENS)
        .map_err(model_error)?;
    let second = model
        .greedy_tokens(&sequences[1], SANITY_NEW_TOKENS)
        .map_err(model_error)?;
    check_reasonable_output(&first, &second).map_err(TextLossError::Degenerate)?;
    let losses = model.sequence_losses(&sequences).map_err(model_error)?;
    if losses.len() != sequences.len() {
        return Err(TextLossError::Model(format!(
            "{} losses for {} documents",
            losses.len(),
            sequences.len()
        )));
    }
    Ok(losses)
}

/// SN37's `check_for_reasonable_output` on two generated id lists: `Err` says which rule failed.
pub fn check_reasonable_output(first: &[u32], second: &[u32]) -> Result<(), String> {
    let shared = first.iter().zip(second).filter(|(a, b)| a == b).count();
    if shared >= MAX_SHARED_POSITIONS {
        return Err(format!(
            "{shared} of {} generated positions are identical for two different documents (limit: fewer than {MAX_SHARED_POSITIONS})",
            first.len().min(second.len())
        ));
    }
    let (top_first, top_second) = (most_common_count(first), most_common_count(second));
    if top_first > MAX_REPEATS && top_second > MAX_REPEATS {
        return Err(format!(
            "both outputs repeat one token too often ({top_first} and {top_second} times in {SANITY_NEW_TOKENS}; limit {MAX_REPEATS})"
        ));
    }
    Ok(())
}

/// How often the most frequent id occurs.
fn most_common_count(ids: &[u32]) -> usize {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted
        .chunk_by(|a, b| a == b)
        .map(<[u32]>::len)
        .max()
        .unwrap_or(0)
}

/// Index of the largest logit, skipping `banned` ids; the lowest index wins ties (as
/// `torch.argmax` does).
fn argmax_except(logits: &[f32], banned: &[u32]) -> Option<u32> {
    let mut best: Option<(u32, f32)> = None;
    for (id, &value) in (0u32..).zip(logits) {
        if banned.contains(&id) || value.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, top)| value > top) {
            best = Some((id, value));
        }
    }
    best.map(|(id, _)| id)
}

impl TokenLm for EngineLm {
    fn encode_padded(&self, text: &str, length: usize) -> Result<Vec<u32>, ModelError> {
        let tokenizer = &self.loaded.tokenizer;
        let pad = tokenizer
            .pad_token_id
            .or_else(|| tokenizer.eos_token_ids.first().copied())
            .ok_or("the tokenizer has neither a pad nor an end-of-sequence token to pad with")?;
        let mut ids = tokenizer.encode(text, true)?;
        ids.resize(length, pad);
        Ok(ids)
    }

    fn text_length(&self) -> Result<usize, ModelError> {
        let positions = self.loaded.model.config().max_position_embeddings;
        let room = positions.saturating_sub(SANITY_NEW_TOKENS);
        let length = self.max_length.map_or(room, |limit| limit.min(room));
        if length < 2 {
            return Err(
                format!("the model's {positions} positions leave no room for TEXT_LOSS").into(),
            );
        }
        Ok(length)
    }

    fn sequence_losses(&self, sequences: &[Vec<u32>]) -> Result<Vec<f64>, ModelError> {
        let scores = score_sequences(&self.loaded.model, sequences, self.limits, |_| {})?;
        Ok(scores
            .iter()
            .map(|s| {
                -s.logprobs.iter().map(|&x| f64::from(x)).sum::<f64>() / s.logprobs.len() as f64
            })
            .collect())
    }

    fn greedy_tokens(&self, prompt: &[u32], count: usize) -> Result<Vec<u32>, ModelError> {
        let model = &self.loaded.model;
        let banned = &self.loaded.tokenizer.eos_token_ids;
        let mut cache = KvCache::new(model.config().num_hidden_layers);
        cache.add_row(
            model.config(),
            prompt.len() + count,
            model.dtype(),
            model.device(),
        )?;
        let mut input = Tensor::new(prompt, model.device())?.unsqueeze(0)?;
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let logits = model.forward_cached(&input, &mut cache)?;
            let logits = logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            let next = argmax_except(&logits, banned).ok_or("the model's logits are all NaN")?;
            out.push(next);
            input = Tensor::new(&[next], model.device())?.unsqueeze(0)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_skips_banned_ids_and_prefers_the_lowest_index() {
        assert_eq!(argmax_except(&[1.0, 3.0, 3.0, 0.5], &[]), Some(1));
        assert_eq!(argmax_except(&[1.0, 3.0, 3.0, 0.5], &[1]), Some(2));
        assert_eq!(argmax_except(&[f32::NAN, -1.0], &[]), Some(1));
        assert_eq!(argmax_except(&[2.0], &[0]), None);
    }

    #[test]
    fn most_common_count_counts_the_top_token() {
        assert_eq!(most_common_count(&[5, 1, 5, 2, 5, 1]), 3);
        assert_eq!(most_common_count(&[]), 0);
    }
}
