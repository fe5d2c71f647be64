//! The assay engine: load Llama/Qwen2-family models (Hugging Face folders, the HF cache, GGUF), tokenise
//! and render chat templates, score text, generate, and fine-tune (LoRA, full, from scratch).
#![warn(missing_docs)]

pub mod assets;
pub mod bert;
pub mod chat;
pub mod config;
pub mod device;
pub mod error;
pub mod fused;
pub mod generate;
pub mod gguf;
pub mod model;
pub mod ops;
pub mod score;
pub mod source;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use candle_core;
pub use chat::{ChatMessage, ChatTemplate};
pub use config::{Arch, ModelConfig};
pub use device::{DeviceSpec, Placement, Precision, open_device};
pub use error::{EngineError, Result};
pub use generate::{Completion, FinishReason, GenerateOptions, SamplingParams, generate};
pub use model::{KvCache, Model, Pass};
pub use score::{BatchLimits, CompletionScore, TokenScores, score_completions, score_sequences};
pub use source::{LoadOptions, LoadedModel, ModelSource, load};
pub use tokenizer::TextTokenizer;
