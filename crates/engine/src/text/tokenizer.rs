//! Tokenizers: Hugging Face `tokenizer.json` files, or byte-level BPE rebuilt from GGUF metadata, with
//! the special tokens and chat template that belong to the model.

use std::path::Path;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::error::{EngineError, Result};
use crate::formats::gguf::{GgufFile, MetaValue};
use crate::text::chat::{ChatMessage, ChatTemplate};

/// A model's tokenizer, its special tokens and its chat template.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// The beginning-of-sequence token text, if the model has one.
    pub bos_token: Option<String>,
    /// The end-of-sequence token text, if the model has one.
    pub eos_token: Option<String>,
    /// Token ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// The padding token id (falls back to the first end-of-sequence id).
    pub pad_token_id: Option<u32>,
    /// The model's own chat template, if it ships one.
    pub chat_template: Option<ChatTemplate>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

/// The special-token part of a `tokenizer_config.json`.
#[derive(Debug, Default)]
struct TokenizerConfig {
    bos_token: Option<String>,
    eos_token: Option<String>,
    pad_token: Option<String>,
    chat_template: Option<String>,
}

impl TokenizerConfig {
    fn read(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::read(path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| EngineError::bad_file(path, format!("not valid JSON: {e}")))?;
        Ok(Self {
            bos_token: token_text(v.get("bos_token")),
            eos_token: token_text(v.get("eos_token")),
            pad_token: token_text(v.get("pad_token")),
            chat_template: default_template(v.get("chat_template")),
        })
    }
}

/// Special tokens are written either as a string or as an AddedToken object with `content`.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// `chat_template` is a string, or a list of named templates of which `default` is the one used.
fn default_template(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

impl TextTokenizer {
    /// A tokenizer with no special tokens and no chat template around `inner` (for synthetic
    /// benchmarks and tests; real models load theirs with [`TextTokenizer::from_hf_folder`]).
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        Self {
            inner,
            bos_token: None,
            eos_token: None,
            eos_token_ids: Vec::new(),
            pad_token_id: None,
            chat_template: None,
        }
    }

    /// Loads `tokenizer.json`, `tokenizer_config.json` and (optionally) `generation_config.json` eos ids
    /// from a model folder. `config_eos` are the eos ids of the model's `config.json`.
    pub fn from_hf_folder(dir: &Path, config_eos: &[u32]) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| {
            if path.exists() {
                EngineError::bad_file(&path, format!("not a valid tokenizer.json: {e}"))
            } else {
                EngineError::NotFound(format!("{} (every model folder needs one)", path.display()))
            }
        })?;
        let mut cfg = TokenizerConfig::read(&dir.join("tokenizer_config.json"))?;
        // transformers ≥ 4.43 may keep the template in its own file, which then takes precedence.
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            cfg.chat_template =
                Some(std::fs::read_to_string(&jinja).map_err(|e| EngineError::read(&jinja, e))?);
        }
        let generation_eos = read_generation_eos(&dir.join("generation_config.json"))?;
        let mut tok = Self::assemble(inner, cfg.bos_token, cfg.eos_token, cfg.chat_template)?;
        tok.pad_token_id = cfg.pad_token.as_deref().and_then(|p| tok.token_id(p));
        tok.add_eos_ids(config_eos.iter().chain(&generation_eos).copied());
        tok.pad_token_id = tok.pad_token_id.or(tok.eos_token_ids.first().copied());
        Ok(tok)
    }

    /// Rebuilds the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let json = gguf_tokenizer_json(file)?;
        let inner = tokenizers::Tokenizer::from_str(&json.to_string()).map_err(|e| {
            EngineError::bad_file(
                file.path(),
                format!("cannot build a tokenizer from its metadata: {e}"),
            )
        })?;
        let tokens = file
            .meta("tokenizer.ggml.tokens")?
            .as_array()
            .unwrap_or(&[]);
        let text_of = |key: &str| {
            let id = file.meta_u64(key).ok()? as usize;
            tokens.get(id)?.as_str().map(str::to_string)
        };
        let template = file
            .meta_str("tokenizer.chat_template")
            .ok()
            .map(str::to_string);
        let mut tok = Self::assemble(
            inner,
            text_of("tokenizer.ggml.bos_token_id"),
            text_of("tokenizer.ggml.eos_token_id"),
            template,
        )?;
        tok.pad_token_id = file
            .meta_u64("tokenizer.ggml.padding_token_id")
            .ok()
            .map(|v| v as u32)
            .or(tok.eos_token_ids.first().copied());
        Ok(tok)
    }

    fn assemble(
        inner: tokenizers::Tokenizer,
        bos_token: Option<String>,
        eos_token: Option<String>,
        template: Option<String>,
    ) -> Result<Self> {
        let chat_template = template.map(|t| ChatTemplate::new(&t)).transpose()?;
        let mut tok = Self {
            inner,
            bos_token,
            eos_token,
            eos_token_ids: vec![],
            pad_token_id: None,
            chat_template,
        };
        let eos = tok.eos_token.as_deref().and_then(|e| tok.token_id(e));
        tok.add_eos_ids(eos);
        Ok(tok)
    }

    fn add_eos_ids(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            if !self.eos_token_ids.contains(&id) {
                self.eos_token_ids.push(id);
            }
        }
    }

    /// Renders `messages` with the model's own chat template, passing `bos_token` and `eos_token`
    /// as transformers' `apply_chat_template` does.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            EngineError::ChatTemplate(
                "this model has no chat template (tokenizer_config.json, chat_template.jinja or GGUF metadata)".into(),
            )
        })?;
        let mut extra = serde_json::Map::new();
        for (key, value) in [
            ("bos_token", &self.bos_token),
            ("eos_token", &self.eos_token),
        ] {
            if let Some(v) = value {
                extra.insert(key.into(), v.clone().into());
            }
        }
        template.render(messages, add_generation_prompt, &extra)
    }

    /// Token ids of `text`; `add_special_tokens` applies the tokenizer's post-processor (e.g. a BOS).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| EngineError::Tokenizer(format!("cannot encode text: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; special tokens are dropped when `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| EngineError::Tokenizer(format!("cannot decode ids: {e}")))
    }

    /// The id of a token's exact text, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

fn read_generation_eos(path: &Path) -> Result<Vec<u32>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::read(path, e))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| EngineError::bad_file(path, format!("not valid JSON: {e}")))?;
    Ok(match v.get("eos_token_id") {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64().map(|x| x as u32))
            .collect(),
        _ => vec![],
    })
}

const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer llama.cpp associates with `tokenizer.ggml.pre`, written as tokenizer.json.
fn pre_tokenizer_for(pre: &str) -> Value {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    match pre {
        "smollm" | "starcoder" | "refact" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "qwen2" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]})
        }
        "llama3" | "llama-bpe" | "smaug-bpe" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]})
        }
        _ => byte_level(true),
    }
}

/// Builds a `tokenizer.json` document for a GGUF byte-level BPE vocabulary.
fn gguf_tokenizer_json(file: &GgufFile) -> Result<Value> {
    let model = file.meta_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(EngineError::bad_file(
            file.path(),
            format!("tokenizer model `{model}` is not supported (byte-level BPE `gpt2` is)"),
        ));
    }
    let tokens = string_array(file, "tokenizer.ggml.tokens")?;
    let merges = string_array(file, "tokenizer.ggml.merges")?;
    let types: Vec<u64> = file
        .meta("tokenizer.ggml.token_type")
        .ok()
        .and_then(MetaValue::as_array)
        .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
        .unwrap_or_default();
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    // llama.cpp token types: 3 = control (special), 4 = user-defined (added, not special).
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(3) | Some(4)))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": types.get(i) == Some(&3)})
        })
        .collect();
    let pre = file.meta_str("tokenizer.ggml.pre").unwrap_or("default");
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer_for(pre),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    }))
}

fn string_array<'a>(file: &'a GgufFile, key: &str) -> Result<Vec<&'a str>> {
    let arr = file.meta(key)?.as_array().ok_or_else(|| {
        EngineError::bad_file(file.path(), format!("metadata `{key}` is not an array"))
    })?;
    arr.iter()
        .map(|v| {
            v.as_str().ok_or_else(|| {
                EngineError::bad_file(file.path(), format!("metadata `{key}` holds a non-string"))
            })
        })
        .collect()
}
