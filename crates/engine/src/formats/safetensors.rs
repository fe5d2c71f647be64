//! Named weight tensors, Hugging Face naming, loaded from safetensors (one file or shards) or GGUF.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{EngineError, Result};
use crate::formats::config::{Arch, ModelConfig};
use crate::formats::gguf::GgufFile;

/// Weights by Hugging Face parameter name (`model.layers.0.self_attn.q_proj.weight`, ...).
#[derive(Debug, Default)]
pub struct WeightMap {
    tensors: HashMap<String, Tensor>,
    origin: HashMap<String, PathBuf>,
}

impl WeightMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor, origin: &Path) {
        let name = name.into();
        self.origin.insert(name.clone(), origin.to_path_buf());
        self.tensors.insert(name, tensor);
    }

    /// Removes and returns a tensor.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        self.tensors.remove(name)
    }

    /// The tensor `name` whatever its shape, if present.
    pub fn get_any(&self, name: &str) -> Option<Tensor> {
        self.tensors.get(name).cloned()
    }

    /// Whether a tensor is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| EngineError::Weight {
            name: name.into(),
            message: "missing from the checkpoint (is this the right model family?)".into(),
        })?;
        if t.dims() != shape {
            let file = self
                .origin
                .get(name)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return Err(EngineError::Weight {
                name: name.into(),
                message: format!(
                    "has shape {:?} in {file}, the config implies {shape:?}",
                    t.dims()
                ),
            });
        }
        Ok(t.clone())
    }

    /// All names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tensors.keys().cloned().collect();
        v.sort();
        v
    }

    /// Loads every tensor of the safetensors files `paths`, converted to `dtype` on `device`.
    pub fn from_safetensors(paths: &[PathBuf], dtype: DType, device: &Device) -> Result<Self> {
        let mut map = Self::new();
        for path in paths {
            map.load_safetensors_file(path, dtype, device)?;
        }
        Ok(map)
    }

    fn load_safetensors_file(&mut self, path: &Path, dtype: DType, device: &Device) -> Result<()> {
        let file = std::fs::File::open(path).map_err(|e| EngineError::read(path, e))?;
        // SAFETY: read-only map; the safetensors parser validates every offset against its length.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| EngineError::read(path, e))?;
        let st = ::safetensors::SafeTensors::deserialize(&mmap).map_err(|e| {
            EngineError::bad_file(
                path,
                format!("not a valid safetensors file ({e}); re-download it"),
            )
        })?;
        for (name, view) in st.tensors() {
            let t = tensor_from_view(&view)
                .map_err(|m| EngineError::bad_file(path, format!("tensor `{name}`: {m}")))?;
            let t = t.to_dtype(dtype)?.to_device(device)?;
            self.insert(name, t, path);
        }
        Ok(())
    }

    /// Dequantises every tensor of a GGUF file to `dtype` on `device`, renamed to Hugging Face names.
    pub fn from_gguf(
        file: &GgufFile,
        config: &ModelConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut map = Self::new();
        for name in file.tensors.keys() {
            let Some(hf_name) = gguf_to_hf_name(name) else {
                continue; // e.g. rope_freqs: recomputed from the config
            };
            let (values, shape) = file.dequantize(name)?;
            let values = if config.arch == Arch::Llama {
                undo_llama_qk_permutation(&hf_name, values, &shape, config)
            } else {
                values
            };
            let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
            map.insert(hf_name, t.to_dtype(dtype)?.to_device(device)?, file.path());
        }
        Ok(map)
    }
}

fn tensor_from_view(
    view: &::safetensors::tensor::TensorView,
) -> std::result::Result<Tensor, String> {
    use ::safetensors::Dtype as S;
    let shape = view.shape().to_vec();
    let data = view.data();
    let t = match view.dtype() {
        S::F32 => Tensor::from_vec(le_values(data, f32::from_le_bytes), shape, &Device::Cpu),
        S::F16 => Tensor::from_vec(
            le_values(data, half::f16::from_le_bytes),
            shape,
            &Device::Cpu,
        ),
        S::BF16 => Tensor::from_vec(
            le_values(data, half::bf16::from_le_bytes),
            shape,
            &Device::Cpu,
        ),
        S::F64 => Tensor::from_vec(le_values(data, f64::from_le_bytes), shape, &Device::Cpu),
        other => {
            return Err(format!(
                "dtype {other:?} is not supported for weights (F32/F16/BF16/F64 are)"
            ));
        }
    };
    t.map_err(|e| e.to_string())
}

/// Copies little-endian values out of possibly unaligned bytes.
fn le_values<T, const N: usize>(bytes: &[u8], read: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            read(a)
        })
        .collect()
}

/// Maps llama.cpp tensor names to Hugging Face names.
pub fn gguf_to_hf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    let hf_module = match module {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_module}.{kind}"))
}

/// llama.cpp stores Llama's q/k rows interleaved for its rope; put them back in the order of the
/// Hugging Face checkpoint (two halves per head), which our rotate-half rope expects.
fn undo_llama_qk_permutation(
    hf_name: &str,
    values: Vec<f32>,
    shape: &[usize],
    c: &ModelConfig,
) -> Vec<f32> {
    let heads = if hf_name.ends_with("q_proj.weight") || hf_name.ends_with("q_proj.bias") {
        c.num_attention_heads
    } else if hf_name.ends_with("k_proj.weight") || hf_name.ends_with("k_proj.bias") {
        c.num_key_value_heads
    } else {
        return values;
    };
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return values;
    }
    let half = rows / heads / 2;
    let mut out = vec![0f32; values.len()];
    for h in 0..heads {
        for i in 0..half {
            for pair in 0..2 {
                // GGUF row h*2*half + 2*i + pair holds HF row h*2*half + pair*half + i.
                let src = h * 2 * half + 2 * i + pair;
                let dst = h * 2 * half + pair * half + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Writes named tensors to a safetensors file, atomically (see [`crate::formats::write_atomic`]);
/// a name given twice keeps its last tensor.
pub fn save_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let by_name: std::collections::BTreeMap<&str, &Tensor> =
        tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    crate::formats::write_atomic(path, |tmp| {
        ::safetensors::tensor::serialize_to_file(by_name, None, tmp).map_err(|e| match e {
            ::safetensors::SafeTensorError::IoError(e) => e,
            other => std::io::Error::other(other),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_llama_cpp_names() {
        assert_eq!(
            gguf_to_hf_name("blk.12.attn_output.weight").as_deref(),
            Some("model.layers.12.self_attn.o_proj.weight")
        );
        assert_eq!(gguf_to_hf_name("rope_freqs.weight"), None);
    }
}
