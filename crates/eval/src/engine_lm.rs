//! [`EngineLm`]: an `assay_engine` model behind the runner's [`LanguageModel`] trait, shared by
//! every pipeline.
//!
//! - `loglikelihood`: the plain context (no chat template, the tokenizer's special tokens
//!   added) followed by the continuation, scored with `assay_engine::score_completions`.
//! - `reference_loss`: the context rendered as one user turn of the model's chat template with
//!   the generation prompt (plain text when the model has no template), then the reference
//!   encoded on its own with the tokenizer's default special tokens, as SN37 does; the value is
//!   the mean NLL of the reference tokens. Contexts too long for `max_length` are cut from the
//!   left.
//! - `generate_until`: greedy decoding (`assay_engine::generate`) after the chat-templated
//!   context, stopped by the request's stop strings or the token budget.

use assay_engine::{
    BatchLimits, ChatMessage, GenerateOptions, LoadedModel, SamplingParams, generate,
    score_completions,
};

use crate::runner::{LanguageModel, ModelError};
use crate::task_def::GenParams;

/// A loaded engine model usable by the task runner.
#[derive(Debug)]
pub struct EngineLm {
    /// The model and its tokenizer.
    pub loaded: LoadedModel,
    /// Longest sequence fed to the model (context + reference); `None`: the model's context.
    pub max_length: Option<usize>,
    /// Batch size limits for scoring.
    pub limits: BatchLimits,
}

impl EngineLm {
    /// Wraps a loaded model with default limits.
    pub fn new(loaded: LoadedModel) -> Self {
        Self {
            loaded,
            max_length: None,
            limits: BatchLimits::default(),
        }
    }

    /// Caps the scored sequence length (SN37's competition `sequence_length`).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = Some(max_length);
        self
    }

    /// The longest sequence allowed: `max_length`, never beyond the model's positions.
    fn length_limit(&self) -> usize {
        let positions = self.loaded.model.config().max_position_embeddings;
        self.max_length
            .map_or(positions, |limit| limit.min(positions))
    }

    /// `user` as one chat turn with the generation prompt; plain text without a template.
    pub fn chat_prompt(&self, user: &str) -> Result<String, ModelError> {
        let tokenizer = &self.loaded.tokenizer;
        if tokenizer.chat_template.is_none() {
            return Ok(user.to_owned());
        }
        Ok(tokenizer.apply_chat_template(&[ChatMessage::new("user", user)], true)?)
    }

    /// Token ids of the chat-templated `user` turn (the template already holds special tokens).
    fn chat_ids(&self, user: &str) -> Result<Vec<u32>, ModelError> {
        let has_template = self.loaded.tokenizer.chat_template.is_some();
        let prompt = self.chat_prompt(user)?;
        Ok(self.loaded.tokenizer.encode(&prompt, !has_template)?)
    }
}

/// Keeps the last tokens of `context` so that `context + continuation` fits `limit` (at least
/// one context token stays; an over-long continuation is left for the engine to reject).
fn cut_left(mut context: Vec<u32>, continuation: usize, limit: usize) -> Vec<u32> {
    let room = limit.saturating_sub(continuation).max(1);
    if context.len() > room {
        context.drain(..context.len() - room);
    }
    context
}

impl LanguageModel for EngineLm {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        let tokenizer = &self.loaded.tokenizer;
        let mut pairs = Vec::with_capacity(requests.len());
        for (context, continuation) in requests {
            let continuation = tokenizer.encode(continuation, false)?;
            let context = tokenizer.encode(context, true)?;
            pairs.push((
                cut_left(context, continuation.len(), self.length_limit()),
                continuation,
            ));
        }
        let scores = score_completions(&self.loaded.model, &pairs, self.limits, |_| {})?;
        Ok(scores
            .into_iter()
            .map(|s| (s.sum_logprob, s.is_greedy))
            .collect())
    }

    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        let mut outputs = Vec::with_capacity(requests.len());
        // One call per request: requests may differ in stop strings and budget.
        for (context, params) in requests {
            let budget = params.max_new_tokens;
            let prompt = cut_left(self.chat_ids(context)?, budget, self.length_limit());
            let sampling = SamplingParams {
                temperature: 0.0,
                max_new_tokens: budget,
                stop_strings: params.until.clone(),
                ..SamplingParams::default()
            };
            let loaded = &self.loaded;
            let mut done = generate(
                &loaded.model,
                &loaded.tokenizer,
                &[prompt],
                &sampling,
                GenerateOptions::default(),
                |_| {},
            )?;
            let text = done
                .pop()
                .and_then(|mut samples| samples.pop())
                .map(|c| c.text);
            outputs.push(text.unwrap_or_default());
        }
        Ok(outputs)
    }

    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        let mut pairs = Vec::with_capacity(requests.len());
        for (context, reference) in requests {
            let reference = self.loaded.tokenizer.encode(reference, true)?;
            let context = cut_left(
                self.chat_ids(context)?,
                reference.len(),
                self.length_limit(),
            );
            pairs.push((context, reference));
        }
        let scores = score_completions(&self.loaded.model, &pairs, self.limits, |_| {})?;
        Ok(scores.into_iter().map(|s| s.mean_nll).collect())
    }

    fn token_lm(&self) -> Option<&dyn crate::sn37::text_loss::TokenLm> {
        Some(self)
    }
}
