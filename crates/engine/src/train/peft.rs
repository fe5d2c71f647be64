//! LoRA adapters in PEFT's on-disk format (`adapter_config.json` + `adapter_model.safetensors`),
//! both ways, and merging an adapter into the base weights.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::assets;
use crate::error::{EngineError, Result};
use crate::formats::safetensors::WeightMap;
use crate::formats::write_bytes_atomic;
use crate::models::llama::{LoraAdapter, Model};
use crate::train::lora::{LoraConfig, PROJECTIONS};

const CONFIG_FILE: &str = "adapter_config.json";
const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Where PEFT finds an adapter's base model: `base_model_name_or_path` (and `revision`) of
/// `adapter_config.json`, as `AutoPeftModelForCausalLM.from_pretrained` passes them to
/// transformers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeftBase {
    /// A hub id (`org/name`) or an absolute path to a model folder.
    pub name_or_path: String,
    /// A hub revision other than `main`, if one was named.
    pub revision: Option<String>,
}

/// The [`PeftBase`] of a model named as `--model` names it: a model folder becomes its absolute
/// path; `org/name[@revision]` becomes the hub id and revision; nothing (empty), the embedded
/// default's GGUF or its label [`assets::DEFAULT_MODEL_LABEL`] becomes
/// [`assets::DEFAULT_MODEL_HUB_ID`]. Anything else (another GGUF file, a name that is none of
/// these) is kept as given, absolute if it is a path: transformers cannot load it as a base.
pub fn peft_base(model: &str) -> PeftBase {
    let spec = model.trim();
    let plain = |name_or_path: String| PeftBase {
        name_or_path,
        revision: None,
    };
    if spec.is_empty() || spec == assets::DEFAULT_MODEL_LABEL {
        return plain(assets::DEFAULT_MODEL_HUB_ID.into());
    }
    let path = Path::new(spec);
    if path.exists() {
        let absolute = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        let default_gguf = Path::new(assets::SMOLLM2_135M_INSTRUCT.member).file_name();
        if path.is_file() && path.file_name() == default_gguf {
            return plain(assets::DEFAULT_MODEL_HUB_ID.into());
        }
        return plain(absolute.to_string_lossy().into_owned());
    }
    if let Some((repo, revision)) = crate::source::parse_repo_id(spec) {
        return PeftBase {
            name_or_path: repo.to_string(),
            revision: (revision != "main").then(|| revision.to_string()),
        };
    }
    plain(spec.to_string())
}

/// Writes the model's adapters to `dir` in PEFT's format (F32 tensors, PEFT key names), each file
/// atomically. `base_model` is the model as `--model` names it (see [`peft_base`]): the config
/// records it so that PEFT's `AutoPeftModelForCausalLM` can load the adapter on its own.
pub fn save_adapter(
    model: &mut Model,
    config: &LoraConfig,
    base_model: &str,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::write(dir, e))?;
    let base = peft_base(base_model);
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    for (path, linear) in model.linears_mut() {
        if let Some(l) = &linear.lora {
            tensors.push((
                format!("base_model.model.{path}.lora_A.weight"),
                l.a.as_tensor().to_dtype(DType::F32)?,
            ));
            tensors.push((
                format!("base_model.model.{path}.lora_B.weight"),
                l.b.as_tensor().to_dtype(DType::F32)?,
            ));
        }
    }
    if tensors.is_empty() {
        return Err(EngineError::Request(
            "the model has no adapters to save".into(),
        ));
    }
    let cfg = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base.name_or_path,
        "revision": base.revision,
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "use_rslora": config.use_rslora,
        "target_modules": config.target_modules,
        "layers_to_transform": config.layers,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "modules_to_save": null,
    });
    let cfg_path = dir.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&cfg).expect("json serialises");
    write_bytes_atomic(&cfg_path, text.as_bytes())?;
    save_safetensors(&tensors, &dir.join(WEIGHTS_FILE))
}

/// Writes named tensors to a safetensors file (the stable path of
/// [`crate::formats::safetensors::save_safetensors`]).
pub use crate::formats::safetensors::save_safetensors;

/// The parts of a PEFT `adapter_config.json` that change the math.
#[derive(Debug, Deserialize, Serialize)]
struct PeftConfig {
    peft_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f32,
    #[serde(default)]
    use_rslora: bool,
    target_modules: serde_json::Value,
    #[serde(default)]
    layers_to_transform: Option<serde_json::Value>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    rank_pattern: Option<serde_json::Value>,
    #[serde(default)]
    alpha_pattern: Option<serde_json::Value>,
    #[serde(default)]
    use_dora: bool,
}

/// Reads a PEFT adapter folder's configuration.
pub fn read_adapter_config(dir: &Path) -> Result<LoraConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::read(&path, e))?;
    let bad = |m: String| EngineError::bad_file(&path, m);
    let c: PeftConfig =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a PEFT LoRA config: {e}")))?;
    if c.peft_type.as_deref().is_some_and(|t| t != "LORA") {
        return Err(bad(format!(
            "peft_type {:?} is not supported (LORA is)",
            c.peft_type
        )));
    }
    let nonempty = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .is_some_and(|x| x.as_object().is_some_and(|o| !o.is_empty()))
    };
    if c.fan_in_fan_out || c.use_dora || nonempty(&c.rank_pattern) || nonempty(&c.alpha_pattern) {
        return Err(bad(
            "fan_in_fan_out, DoRA, rank_pattern and alpha_pattern are not supported".into(),
        ));
    }
    let target_modules = match &c.target_modules {
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        serde_json::Value::String(s) if s == "all-linear" => {
            PROJECTIONS.iter().map(|s| s.to_string()).collect()
        }
        serde_json::Value::String(s) => PROJECTIONS
            .iter()
            .filter(|p| s.contains(*p))
            .map(|s| s.to_string())
            .collect(),
        other => {
            return Err(bad(format!(
                "target_modules {other} is neither a list nor a string"
            )));
        }
    };
    let layers = match &c.layers_to_transform {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|l| vec![l as usize]),
        Some(serde_json::Value::Array(a)) => Some(
            a.iter()
                .filter_map(|v| v.as_u64().map(|l| l as usize))
                .collect(),
        ),
        Some(other) => {
            return Err(bad(format!(
                "layers_to_transform {other} is not understood"
            )));
        }
    };
    let config = LoraConfig {
        rank: c.r,
        alpha: c.lora_alpha,
        dropout: c.lora_dropout,
        use_rslora: c.use_rslora,
        target_modules,
        layers,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
}

/// Loads a PEFT adapter folder onto `model` (its matrices become trainable `Var`s); returns its config.
pub fn load_adapter(model: &mut Model, dir: &Path, seed: u64) -> Result<LoraConfig> {
    let config = read_adapter_config(dir)?;
    let file = dir.join(WEIGHTS_FILE);
    let mut weights =
        WeightMap::from_safetensors(std::slice::from_ref(&file), DType::F32, &Device::Cpu)?;
    let device = model.device().clone();
    let mut used = 0;
    for (i, (path, linear)) in model.linears_mut().into_iter().enumerate() {
        let key = |m: &str| format!("base_model.model.{path}.{m}.weight");
        let (a, b) = match (weights.take(&key("lora_A")), weights.take(&key("lora_B"))) {
            (Some(a), Some(b)) => (a, b),
            (None, None) => continue,
            _ => {
                return Err(EngineError::bad_file(
                    &file,
                    format!("{path}: lora_A and lora_B must come together"),
                ));
            }
        };
        let (out_dim, in_dim) = linear.weight.dims2()?;
        if a.dims() != [config.rank, in_dim] || b.dims() != [out_dim, config.rank] {
            return Err(EngineError::bad_file(
                &file,
                format!(
                    "{path}: lora_A {:?} / lora_B {:?} do not fit a [{out_dim}, {in_dim}] projection at rank {}",
                    a.dims(),
                    b.dims(),
                    config.rank
                ),
            ));
        }
        let a = Var::from_tensor(&a.to_device(&device)?)?;
        let b = Var::from_tensor(&b.to_device(&device)?)?;
        linear.lora = Some(LoraAdapter::new(
            a,
            b,
            config.scale(),
            config.dropout,
            seed ^ (i as u64 + 1),
        ));
        used += 1;
    }
    let left = weights.names();
    if !left.is_empty() {
        return Err(EngineError::bad_file(
            &file,
            format!("tensors for modules this model lacks: {left:?}"),
        ));
    }
    if used == 0 {
        return Err(EngineError::bad_file(&file, "holds no LoRA tensors"));
    }
    Ok(config)
}

/// Folds every adapter into its base weight (`W += scale · B A`) and removes the adapters.
pub fn merge_adapters(model: &mut Model) -> Result<usize> {
    let mut merged = 0;
    for (_, linear) in model.linears_mut() {
        if let Some(l) = linear.lora.take() {
            let delta = (l.b.as_tensor().matmul(l.a.as_tensor())? * l.scale)?;
            let w = linear.weight.to_dtype(DType::F32)?;
            linear.weight = (w + delta)?.to_dtype(linear.weight.dtype())?;
            merged += 1;
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peft_base_names_what_transformers_can_load() {
        let default = PeftBase {
            name_or_path: assets::DEFAULT_MODEL_HUB_ID.into(),
            revision: None,
        };
        assert_eq!(peft_base(""), default);
        assert_eq!(peft_base(assets::DEFAULT_MODEL_LABEL), default);
        assert_eq!(
            peft_base("Qwen/Qwen2.5-0.5B@abc123"),
            PeftBase {
                name_or_path: "Qwen/Qwen2.5-0.5B".into(),
                revision: Some("abc123".into())
            }
        );
        assert_eq!(peft_base("Qwen/Qwen2.5-0.5B").revision, None);

        // A folder, named relatively, becomes the absolute path transformers opens from anywhere.
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("my-model");
        std::fs::create_dir(&model).unwrap();
        let got = peft_base(model.to_str().unwrap());
        assert!(Path::new(&got.name_or_path).is_absolute());
        assert_eq!(
            std::fs::canonicalize(&got.name_or_path).unwrap(),
            std::fs::canonicalize(&model).unwrap()
        );
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tiny-llama");
        let here = std::env::current_dir().unwrap();
        let relative = Path::new(fixtures)
            .strip_prefix(&here)
            .unwrap_or(Path::new(fixtures));
        let got = peft_base(relative.to_str().unwrap());
        assert_eq!(
            Path::new(&got.name_or_path),
            std::fs::canonicalize(fixtures).unwrap()
        );
        assert!(Path::new(&got.name_or_path).join("config.json").is_file());
    }
}
