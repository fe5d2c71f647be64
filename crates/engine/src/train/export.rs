//! Saving a model as a Hugging Face folder that transformers (and assay) load; every file is
//! written atomically.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{EngineError, Result};
use crate::formats::config::{Arch, ModelConfig, RopeScaling};
use crate::formats::safetensors::save_safetensors;
use crate::formats::{write_atomic, write_bytes_atomic};
use crate::models::llama::Model;
use crate::text::tokenizer::TextTokenizer;

/// Writes `config.json`, `model.safetensors`, `generation_config.json`, `tokenizer.json` and
/// `tokenizer_config.json` (with the chat template) to `dir`. Adapters must be merged first.
pub fn save_hf_folder(model: &mut Model, tokenizer: &TextTokenizer, dir: &Path) -> Result<()> {
    if model.linears_mut().iter().any(|(_, l)| l.lora.is_some()) {
        return Err(EngineError::Request(
            "merge the adapters before saving the model".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| EngineError::write(dir, e))?;
    let write_json = |name: &str, v: &Value| {
        let text = serde_json::to_string_pretty(v).expect("json serialises");
        write_bytes_atomic(&dir.join(name), text.as_bytes())
    };
    write_json(
        "config.json",
        &hf_config_json(model.config(), model.dtype()),
    )?;
    save_safetensors(&model.named_parameters(), &dir.join("model.safetensors"))?;
    write_json(
        "generation_config.json",
        &json!({"eos_token_id": tokenizer.eos_token_ids}),
    )?;
    let tok_path = dir.join("tokenizer.json");
    write_atomic(&tok_path, |tmp| {
        tokenizer
            .inner()
            .save(tmp, false)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })?;
    let pad = tokenizer
        .pad_token_id
        .and_then(|id| tokenizer.inner().id_to_token(id));
    write_json(
        "tokenizer_config.json",
        &json!({
            "bos_token": tokenizer.bos_token,
            "eos_token": tokenizer.eos_token,
            "pad_token": pad,
            "chat_template": tokenizer.chat_template.as_ref().map(|t| t.source()),
            "tokenizer_class": "PreTrainedTokenizerFast",
        }),
    )
}

/// A `config.json` document for `config`.
pub fn hf_config_json(c: &ModelConfig, dtype: candle_core::DType) -> Value {
    let (arch, model_type) = match c.arch {
        Arch::Llama => ("LlamaForCausalLM", "llama"),
        Arch::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
    };
    let rope_scaling = match &c.rope_scaling {
        None => Value::Null,
        Some(RopeScaling::Linear { factor }) => json!({"rope_type": "linear", "factor": factor}),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => json!({
            "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor, "original_max_position_embeddings": original_max_position_embeddings,
        }),
    };
    json!({
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": rope_scaling,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tie_word_embeddings,
        "attention_bias": c.attention_bias,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_ids.first(),
        "torch_dtype": match dtype {
            candle_core::DType::BF16 => "bfloat16",
            candle_core::DType::F16 => "float16",
            _ => "float32",
        },
    })
}
