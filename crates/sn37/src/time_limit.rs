//! The wall-clock limit on one model's evaluation (SN37 scores each model in a subprocess with a
//! 720 s TTL and gives a model that runs past it +inf).
//!
//! Here the limit is cooperative: [`TimedModel`] hands the model its requests in small chunks and
//! refuses the next chunk once the deadline has passed, so a slow model is stopped within one
//! chunk instead of hanging the round, and the round reports why.

use std::time::{Duration, Instant};

use assay_eval::runner::{LanguageModel, ModelError};
use assay_eval::sn37::text_loss::TokenLm;
use assay_eval::task_def::GenParams;

/// SN37's per-model evaluation TTL, in seconds (neurons/validator.py, `ttl=720`).
pub const SN37_EVAL_TIME_LIMIT_S: f64 = 720.0;

/// Requests handed to the model at once between two deadline checks.
const CHUNK: usize = 8;

/// A model whose calls stop being served once its evaluation time is spent.
pub struct TimedModel<'a> {
    inner: &'a dyn LanguageModel,
    started: Instant,
    limit: Duration,
}

impl<'a> TimedModel<'a> {
    /// Starts the clock on `inner` with `limit_s` seconds (a non-finite or negative limit
    /// means none is left).
    pub fn new(inner: &'a dyn LanguageModel, limit_s: f64) -> Self {
        let limit = Duration::try_from_secs_f64(limit_s).unwrap_or(Duration::ZERO);
        Self {
            inner,
            started: Instant::now(),
            limit,
        }
    }

    /// Whether the evaluation has run past its limit.
    pub fn expired(&self) -> bool {
        self.started.elapsed() > self.limit
    }

    /// The reason given to a model stopped by the limit.
    pub fn reason(&self) -> String {
        format!(
            "evaluation stopped after {:.1} s: the competition allows {:.1} s per model (SN37's per-model TTL), so the model scores +inf",
            self.started.elapsed().as_secs_f64(),
            self.limit.as_secs_f64()
        )
    }

    fn check(&self) -> Result<(), ModelError> {
        if self.expired() {
            return Err(self.reason().into());
        }
        Ok(())
    }

    /// Runs `call` on chunks of `requests`, checking the deadline before each chunk.
    fn chunked<R, T>(
        &self,
        requests: &[R],
        call: impl Fn(&[R]) -> Result<Vec<T>, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        let mut out = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(CHUNK) {
            self.check()?;
            out.extend(call(chunk)?);
        }
        Ok(out)
    }

    fn tokens(&self) -> Result<&'a dyn TokenLm, ModelError> {
        self.inner
            .token_lm()
            .ok_or_else(|| "this model has no token-level interface for TEXT_LOSS".into())
    }
}

impl LanguageModel for TimedModel<'_> {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        self.chunked(requests, |chunk| self.inner.loglikelihood(chunk))
    }

    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        self.chunked(requests, |chunk| self.inner.generate_until(chunk))
    }

    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        self.chunked(requests, |chunk| self.inner.reference_loss(chunk))
    }

    fn token_lm(&self) -> Option<&dyn TokenLm> {
        self.inner.token_lm().map(|_| self as &dyn TokenLm)
    }
}

impl TokenLm for TimedModel<'_> {
    fn encode_padded(&self, text: &str, length: usize) -> Result<Vec<u32>, ModelError> {
        self.tokens()?.encode_padded(text, length)
    }

    fn text_length(&self) -> Result<usize, ModelError> {
        self.tokens()?.text_length()
    }

    fn sequence_losses(&self, sequences: &[Vec<u32>]) -> Result<Vec<f64>, ModelError> {
        let tokens = self.tokens()?;
        self.chunked(sequences, |chunk| tokens.sequence_losses(chunk))
    }

    fn greedy_tokens(&self, prompt: &[u32], count: usize) -> Result<Vec<u32>, ModelError> {
        self.check()?;
        self.tokens()?.greedy_tokens(prompt, count)
    }
}
