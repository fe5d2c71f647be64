//! The assay engine: load Llama/Qwen2-family models (Hugging Face folders, the HF cache, GGUF), tokenise
//! and render chat templates, score text, generate, and fine-tune (LoRA, full, from scratch).
//!
//! Where things live:
//! - [`formats`]: the files a model is made of (safetensors weight map, GGUF, `config.json`);
//!   [`assets`]: the embedded default model's fetching; [`source`]: where a model comes from and
//!   [`load`].
//! - [`text`]: the tokenizer and chat templates.
//! - [`models`]: the Llama/Qwen2 decoder, its KV cache, and BERT.
//! - [`kernels`]: the custom ops, by family, with their CPU and CUDA code.
//! - [`generate()`], [`score`], [`train`]: what is done with a model.
//!
//! The modules `config`, `gguf`, `weights`, `tokenizer`, `chat`, `model`, `bert`, `ops` and
//! `fused` are the stable paths from before this layout; they re-export the new modules and stay.
#![warn(missing_docs)]

pub mod assets;
pub mod device;
pub mod error;
pub mod formats;
pub mod generate;
pub mod kernels;
pub mod memory;
pub mod models;
pub mod score;
pub mod source;
pub mod text;
pub mod train;

/// Stable path of [`formats::config`].
pub use formats::config;
/// Stable path of [`formats::gguf`].
pub use formats::gguf;
/// Stable path of [`formats::safetensors`] (the weight map).
pub use formats::safetensors as weights;
/// Stable path of [`models::bert`].
pub use models::bert;
/// Stable path of [`models::llama`] (the decoder and, re-exported there, its KV cache).
pub use models::llama as model;
/// Stable path of [`text::chat`].
pub use text::chat;
/// Stable path of [`text::tokenizer`].
pub use text::tokenizer;

pub mod fused;
pub mod ops;

pub use candle_core;
pub use chat::{ChatMessage, ChatTemplate};
pub use config::{Arch, ModelConfig};
pub use device::{DeviceSpec, Placement, Precision, open_device};
pub use error::{EngineError, Result};
pub use generate::{
    Completion, FinishReason, GenerateOptions, SamplingParams, generate, generate_with_keys,
    prompt_key, request_key,
};
pub use memory::PeakMemory;
pub use model::{KvCache, Model, Pass};
pub use score::{BatchLimits, CompletionScore, TokenScores, score_completions, score_sequences};
pub use source::{LoadOptions, LoadedModel, ModelSource, load};
pub use tokenizer::TextTokenizer;
