//! LoRA adapters in PEFT's on-disk format (`adapter_config.json` + `adapter_model.safetensors`),
//! both ways, and merging an adapter into the base weights.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{EngineError, Result};
use crate::model::{LoraAdapter, Model};
use crate::train::lora::{LoraConfig, PROJECTIONS};
use crate::weights::WeightMap;

const CONFIG_FILE: &str = "adapter_config.json";
const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Writes the model's adapters to `dir` in PEFT's format (F32 tensors, PEFT key names).
pub fn save_adapter(
    model: &mut Model,
    config: &LoraConfig,
    base_model: &str,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
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
        "base_model_name_or_path": base_model,
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
    std::fs::write(&cfg_path, text).map_err(|e| EngineError::io(&cfg_path, e))?;
    save_safetensors(&tensors, &dir.join(WEIGHTS_FILE))
}

/// Writes named tensors to a safetensors file.
pub fn save_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let map: HashMap<String, Tensor> = tensors.iter().cloned().collect();
    candle_core::safetensors::save(&map, path)
        .map_err(|e| EngineError::bad_file(path, format!("cannot write: {e}")))
}

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
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
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
