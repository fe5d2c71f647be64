//! The assay engine: load Llama/Qwen2-family models (Hugging Face folders, the HF cache, GGUF), tokenise
//! and render chat templates, score text, generate, and (see `train`) fine-tune.
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod gguf;
pub mod model;
pub mod ops;
pub mod weights;

pub use candle_core;
pub use config::{Arch, ModelConfig};
pub use error::{EngineError, Result};
pub use model::{KvCache, Model, Pass};
pub mod chat;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate};
pub use tokenizer::TextTokenizer;
pub mod generate;
pub mod score;

pub use generate::{Completion, FinishReason, GenerateOptions, SamplingParams, generate};
pub use score::{BatchLimits, CompletionScore, TokenScores, score_completions, score_sequences};
pub mod assets;
pub mod source;

pub use source::{LoadOptions, LoadedModel, ModelSource, load};
