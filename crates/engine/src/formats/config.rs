//! Model configuration: one plain struct for the Llama and Qwen2 families, read from a Hugging Face
//! `config.json` or from GGUF metadata.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::formats::gguf::GgufFile;

/// Which family the weights belong to. The two differ only in small switches of [`ModelConfig`]
/// (q/k/v bias, rope theta, tied embeddings), so they share one model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// `LlamaForCausalLM` (SmolLM2, Llama 2/3.x, TinyLlama, ...).
    Llama,
    /// `Qwen2ForCausalLM` (Qwen2, Qwen2.5).
    Qwen2,
}

/// Llama 3's frequency-dependent rope scaling (`rope_type = "llama3"`), or plain linear scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RopeScaling {
    /// Llama 3.1's scaling of long wavelengths.
    Llama3 {
        /// Scale applied to the longest wavelengths.
        factor: f64,
        /// Wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled fully.
        low_freq_factor: f64,
        /// Wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context the model was first trained with.
        original_max_position_embeddings: f64,
    },
    /// Positions divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
}

/// Everything the model code needs to know about the architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The family.
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rope base frequency.
    pub rope_theta: f64,
    /// Optional rope scaling.
    pub rope_scaling: Option<RopeScaling>,
    /// Longest context the model supports.
    pub max_position_embeddings: usize,
    /// Whether the output projection reuses the input embedding.
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections carry a bias (Qwen2).
    pub attention_bias: bool,
    /// Beginning-of-sequence token id, if any.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids.
    pub eos_token_ids: Vec<u32>,
}

/// The subset of a Hugging Face `config.json` we read.
#[derive(Debug, Deserialize)]
struct HfConfig {
    #[serde(default)]
    architectures: Vec<String>,
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<serde_json::Value>,
    /// transformers ≥ 5 writes `rope_theta` and the scaling fields together here.
    rope_parameters: Option<serde_json::Value>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    attention_bias: Option<bool>,
    bos_token_id: Option<serde_json::Value>,
    eos_token_id: Option<serde_json::Value>,
    hidden_act: Option<String>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    2048
}

/// Token ids in HF configs are an integer, a list, or null.
fn token_ids(v: &Option<serde_json::Value>) -> Vec<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().map(|x| vec![x as u32]).unwrap_or_default()
        }
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64().map(|x| x as u32))
            .collect(),
        _ => vec![],
    }
}

impl ModelConfig {
    /// Parses a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self> {
        let hf: HfConfig = serde_json::from_str(text).map_err(|e| {
            EngineError::Config(format!("config.json is not a valid model config: {e}"))
        })?;
        let arch = hf_arch(&hf)?;
        if let Some(act) = &hf.hidden_act
            && act != "silu"
        {
            return Err(EngineError::Config(format!(
                "hidden_act `{act}` is not supported (Llama/Qwen2 use `silu`)"
            )));
        }
        let heads = hf.num_attention_heads;
        let config = ModelConfig {
            arch,
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: hf.num_key_value_heads.unwrap_or(heads),
            head_dim: hf.head_dim.unwrap_or(hf.hidden_size / heads.max(1)),
            rms_norm_eps: hf.rms_norm_eps,
            rope_theta: hf
                .rope_theta
                .or_else(|| hf.rope_parameters.as_ref()?.get("rope_theta")?.as_f64())
                .unwrap_or(10_000.0),
            rope_scaling: parse_rope_scaling(
                hf.rope_scaling.as_ref().or(hf.rope_parameters.as_ref()),
            )?,
            max_position_embeddings: hf.max_position_embeddings,
            tie_word_embeddings: hf.tie_word_embeddings,
            attention_bias: hf.attention_bias.unwrap_or(arch == Arch::Qwen2),
            bos_token_id: token_ids(&hf.bos_token_id).first().copied(),
            eos_token_ids: token_ids(&hf.eos_token_id),
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads the configuration of a `llama`- or `qwen2`-architecture GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch_name = file.meta_str("general.architecture")?;
        let arch = match arch_name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => {
                return Err(EngineError::bad_file(
                    file.path(),
                    format!("GGUF architecture `{other}` is not supported (llama and qwen2 are)"),
                ));
            }
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let hidden = file.meta_u64(&key("embedding_length"))? as usize;
        let heads = file.meta_u64(&key("attention.head_count"))? as usize;
        let vocab_size = match file.meta_u64(&key("vocab_size")) {
            Ok(v) => v as usize,
            Err(_) => file
                .meta("tokenizer.ggml.tokens")?
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0),
        };
        let tied = !file.tensors.contains_key("output.weight");
        let opt_id = |k: &str| file.meta_u64(k).ok().map(|v| v as u32);
        let config = ModelConfig {
            arch,
            vocab_size,
            hidden_size: hidden,
            intermediate_size: file.meta_u64(&key("feed_forward_length"))? as usize,
            num_hidden_layers: file.meta_u64(&key("block_count"))? as usize,
            num_attention_heads: heads,
            num_key_value_heads: file
                .meta_u64(&key("attention.head_count_kv"))
                .map(|v| v as usize)
                .unwrap_or(heads),
            head_dim: file
                .meta_u64(&key("attention.key_length"))
                .map(|v| v as usize)
                .unwrap_or(hidden / heads.max(1)),
            rms_norm_eps: file.meta_f64(&key("attention.layer_norm_rms_epsilon"))?,
            rope_theta: file.meta_f64(&key("rope.freq_base")).unwrap_or(10_000.0),
            rope_scaling: None,
            max_position_embeddings: file
                .meta_u64(&key("context_length"))
                .map(|v| v as usize)
                .unwrap_or(2048),
            tie_word_embeddings: tied,
            attention_bias: arch == Arch::Qwen2,
            bos_token_id: opt_id("tokenizer.ggml.bos_token_id"),
            eos_token_ids: opt_id("tokenizer.ggml.eos_token_id").into_iter().collect(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the numbers are consistent, so that the model code can rely on them.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::Config(m));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad("vocab_size, hidden_size and num_hidden_layers must be positive".into());
        }
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return bad("head counts must be positive".into());
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even and positive",
                self.head_dim
            ));
        }
        if self.max_position_embeddings == 0 {
            return bad("max_position_embeddings must be positive".into());
        }
        Ok(())
    }

    /// The rope inverse frequencies, one per pair of head dimensions, with any scaling applied.
    /// Computed in f32 as transformers computes them, so that positions far into the context rotate
    /// by the same angles.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim as f32;
        let base = self.rope_theta as f32;
        (0..self.head_dim / 2)
            .map(|i| self.scale_frequency(1.0 / base.powf((2 * i) as f32 / d)))
            .collect()
    }

    fn scale_frequency(&self, freq: f32) -> f32 {
        match self.rope_scaling {
            None => freq,
            Some(RopeScaling::Linear { factor }) => freq / factor as f32,
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old_ctx,
            }) => {
                let (factor, low, high, old_ctx) = (
                    factor as f32,
                    low_freq_factor as f32,
                    high_freq_factor as f32,
                    old_ctx as f32,
                );
                let wavelen = 2.0 * std::f32::consts::PI / freq;
                if wavelen < old_ctx / high {
                    freq
                } else if wavelen > old_ctx / low {
                    freq / factor
                } else {
                    let smooth = (old_ctx / wavelen - low) / (high - low);
                    (1.0 - smooth) * freq / factor + smooth * freq
                }
            }
        }
    }

    /// Number of parameters the weights of this configuration hold.
    pub fn parameter_count(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let bias = if self.attention_bias { q + 2 * kv } else { 0 };
        let layer = h * q + 2 * h * kv + q * h + bias + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * layer + h + head
    }
}

fn hf_arch(hf: &HfConfig) -> Result<Arch> {
    let names: Vec<&str> = hf
        .architectures
        .iter()
        .map(String::as_str)
        .chain(hf.model_type.as_deref())
        .collect();
    for name in &names {
        match *name {
            "LlamaForCausalLM" | "llama" | "MistralForCausalLM" | "mistral" => {
                return Ok(Arch::Llama);
            }
            "Qwen2ForCausalLM" | "qwen2" => return Ok(Arch::Qwen2),
            _ => {}
        }
    }
    Err(EngineError::Config(format!(
        "unknown architecture {names:?}: assay runs LlamaForCausalLM and Qwen2ForCausalLM models"
    )))
}

fn parse_rope_scaling(v: Option<&serde_json::Value>) -> Result<Option<RopeScaling>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let kind = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("default");
    let num = |k: &str| {
        v.get(k).and_then(|x| x.as_f64()).ok_or_else(|| {
            EngineError::Config(format!("rope_scaling.{k} is missing or not a number"))
        })
    };
    match kind {
        "default" => Ok(None),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        })),
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: num("factor")?,
        })),
        other => Err(EngineError::Config(format!(
            "rope_scaling type `{other}` is not supported (llama3 and linear are)"
        ))),
    }
}
