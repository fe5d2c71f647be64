//! The decoder-only transformer of the Llama and Qwen2 families, top to bottom in one file.
//!
//! token ids ─► embedding ─► N × [ RMSNorm ─► attention (rope, GQA) ─► + ─► RMSNorm ─► SwiGLU MLP ─► + ] ─► RMSNorm ─► logits
//!
//! The same layers serve two passes. [`Pass::Inference`] uses fused kernels, candle's and ours (they have no
//! backward) and a per-sequence KV cache; [`Pass::Training`] uses composed ops that autograd can
//! differentiate. Logits and every softmax are computed in f32 whatever the weights' dtype.

use candle_core::{D, DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{EngineError, Result};
use crate::formats::config::ModelConfig;
use crate::formats::safetensors::WeightMap;
use crate::kernels::attention::{
    AttentionMask, causal_attention, causal_attention_blocks, masked_softmax,
};
use crate::kernels::elementwise::{add, silu_mul};
use crate::kernels::heads::{Rotation, merge_heads, merge_heads_grouped, split_heads_grouped};
use crate::kernels::matmul::frozen_matmul;
pub use crate::models::kv_cache::KvCache;

/// Which kernels a forward pass may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Fused kernels, no gradients.
    Inference,
    /// Differentiable ops only.
    Training,
}

/// A low-rank adapter on a linear projection: `y += scale · B (A dropout(x))`, as PEFT's LoRA.
#[derive(Debug)]
pub struct LoraAdapter {
    /// `[rank, in_features]`, PEFT's `lora_A.weight`.
    pub a: Var,
    /// `[out_features, rank]`, PEFT's `lora_B.weight` (zero at initialisation).
    pub b: Var,
    /// `alpha / rank`, or `alpha / sqrt(rank)` with rsLoRA.
    pub scale: f64,
    /// Dropout probability on the adapter's input during training.
    pub dropout: f32,
    /// Seeded stream of dropout masks, so training is reproducible.
    rng: std::sync::Mutex<ChaCha8Rng>,
}

impl LoraAdapter {
    /// An adapter from its two matrices.
    pub fn new(a: Var, b: Var, scale: f64, dropout: f32, seed: u64) -> Self {
        Self {
            a,
            b,
            scale,
            dropout,
            rng: std::sync::Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let x = if pass == Pass::Training && self.dropout > 0.0 {
            self.dropout_mask(x)?
        } else {
            x.clone()
        };
        // The adapter's matrices are kept (and updated) in f32 but applied in the activations'
        // dtype: casting the two small matrices is cheap, while casting activations to f32 would
        // double the memory every adapted projection keeps for backward.
        let a = self.a.as_tensor().to_dtype(x.dtype())?;
        let b = self.b.as_tensor().to_dtype(x.dtype())?;
        let low = x.matmul(&a.t()?)?;
        Ok((low.matmul(&b.t()?)? * self.scale)?)
    }

    /// `x` times a fresh dropout mask from the adapter's seeded stream.
    fn dropout_mask(&self, x: &Tensor) -> Result<Tensor> {
        Ok((x * self.draw_dropout_mask(x)?)?)
    }

    /// A fresh dropout mask shaped like `x`: `1 / keep` where kept, 0 where dropped. Draws come
    /// from the adapter's seeded stream, one per value, so every pass that draws the same shapes
    /// in the same order drops the same values.
    pub(crate) fn draw_dropout_mask(&self, x: &Tensor) -> Result<Tensor> {
        let keep = 1.0 - self.dropout;
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f32>() < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?)
    }
}

/// A linear projection `y = x Wᵀ (+ b)` with the weight stored as `[out, in]`, as in PyTorch,
/// and an optional LoRA adapter.
#[derive(Debug)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if the projection has a bias.
    pub bias: Option<Tensor>,
    /// A trainable low-rank update, if attached.
    pub lora: Option<LoraAdapter>,
}

impl Linear {
    fn load(
        w: &WeightMap,
        prefix: &str,
        out_dim: usize,
        in_dim: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = w.get(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = if bias {
            Some(w.get(&format!("{prefix}.bias"), &[out_dim])?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            lora: None,
        })
    }

    /// Applies the projection to `x` of shape `[..., in]`.
    ///
    /// In a training pass a frozen weight (not a `Var`) goes through [`frozen_matmul`], so backward
    /// computes no gradient for it.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = *dims
            .last()
            .expect("linear input has at least one dimension");
        let rows = x.elem_count() / in_dim.max(1);
        let y = self.forward_rows(&x.reshape((rows, in_dim))?, pass, true)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty") = self.weight.dim(0)?;
        Ok(y.reshape(out_dims)?)
    }

    /// The projection of rows `x` `[rows, in]`, leaving the bias out when `with_bias` is false
    /// (for a caller that adds it in a fused op).
    fn forward_rows(&self, x: &Tensor, pass: Pass, with_bias: bool) -> Result<Tensor> {
        let mut y = if pass == Pass::Training && !self.weight.is_variable() {
            frozen_matmul(x, &self.weight)?
        } else {
            x.matmul(&self.weight.t()?)?
        };
        if let (true, Some(b)) = (with_bias, &self.bias) {
            y = y.broadcast_add(b)?;
        }
        if let Some(lora) = &self.lora {
            y = (y + lora.forward(x, pass)?)?;
        }
        Ok(y)
    }
}

/// Root-mean-square layer norm with a learned scale.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// `[hidden]`.
    pub weight: Tensor,
    pub(crate) eps: f64,
}

impl RmsNorm {
    fn load(w: &WeightMap, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.get(name, &[dim])?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        match pass {
            Pass::Inference => Ok(candle_nn::ops::rms_norm(
                &x.contiguous()?,
                &self.weight,
                self.eps as f32,
            )?),
            Pass::Training => {
                // As transformers does: normalise in f32, cast back, then scale.
                let dtype = x.dtype();
                let xf = x.to_dtype(DType::F32)?;
                let var = xf.sqr()?.mean_keepdim(D::Minus1)?;
                let normed = xf
                    .broadcast_div(&(var + self.eps)?.sqrt()?)?
                    .to_dtype(dtype)?;
                Ok(normed.broadcast_mul(&self.weight)?)
            }
        }
    }
}

pub(crate) struct Attention {
    pub(crate) q_proj: Linear,
    pub(crate) k_proj: Linear,
    pub(crate) v_proj: Linear,
    pub(crate) o_proj: Linear,
    pub(crate) n_heads: usize,
    pub(crate) n_kv_heads: usize,
    pub(crate) head_dim: usize,
}

impl Attention {
    /// `[B, T, H]` → `[B, heads, T, head_dim]` with rope applied when `rope` is given, in
    /// differentiable ops (the training pass).
    fn project(
        &self,
        proj: &Linear,
        x: &Tensor,
        heads: usize,
        rope: Option<&Rope>,
        pass: Pass,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let y = proj
            .forward(x, pass)?
            .reshape((b, t, heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        match rope {
            Some(r) => r.apply(&y),
            None => Ok(y),
        }
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        ctx: &mut AttnContext,
        pass: Pass,
    ) -> Result<Tensor> {
        if pass == Pass::Inference {
            return self.forward_inference(x, rope, ctx);
        }
        let (b, t, _) = x.dims3()?;
        let q = self.project(&self.q_proj, x, self.n_heads, Some(rope), pass)?;
        let k = self.project(&self.k_proj, x, self.n_kv_heads, Some(rope), pass)?;
        let v = self.project(&self.v_proj, x, self.n_kv_heads, None, pass)?;
        let out = match ctx {
            AttnContext::Batch { pad } => self.attend(&q, &k, &v, pad, 0, pass)?,
            AttnContext::Cached { cache, layer, pad } => {
                let past = cache.len;
                let (k_all, v_all) = cache.append(*layer, &k, &v)?;
                self.attend(&q, &k_all, &v_all, pad, past, pass)?
            }
        };
        let out = out
            .transpose(1, 2)?
            .reshape((b, t, self.n_heads * self.head_dim))?;
        self.o_proj.forward(&out, pass)
    }

    /// Inference: each projection's bias, head layout and rope in one fused pass over its output;
    /// without a cache (right-padded rows at positions 0..T) blocked causal attention over
    /// position-major query groups, which skips the scores above the diagonal.
    fn forward_inference(&self, x: &Tensor, rope: &Rope, ctx: &mut AttnContext) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let rows = x.reshape((b * t, h))?;
        let rot = Some(&rope.rotation);
        let kv = self.n_kv_heads;
        let heads = |proj: &Linear, n: usize, kv: usize, rot| -> Result<Tensor> {
            let lin = proj.forward_rows(&rows, Pass::Inference, false)?;
            Ok(split_heads_grouped(
                &lin,
                proj.bias.as_ref(),
                rot,
                b,
                n,
                kv,
            )?)
        };
        let k = heads(&self.k_proj, kv, kv, rot)?;
        let v = heads(&self.v_proj, kv, kv, None)?;
        let out = match ctx {
            AttnContext::Batch { .. } => {
                let q = heads(&self.q_proj, self.n_heads, kv, rot)?;
                let scale = 1.0 / (self.head_dim as f32).sqrt();
                let out = causal_attention_blocks(&q, &k, &v, self.n_heads / kv, scale)?;
                merge_heads_grouped(&out, self.n_heads, None)?
            }
            AttnContext::Cached { cache, layer, pad } => {
                let q = heads(&self.q_proj, self.n_heads, self.n_heads, rot)?;
                let past = cache.len;
                let (k_all, v_all) = cache.append(*layer, &k, &v)?;
                let out = self.attend(&q, &k_all, &v_all, pad, past, Pass::Inference)?;
                merge_heads(&out, None)?
            }
        };
        let out = out.reshape((b, t, self.n_heads * self.head_dim))?;
        self.o_proj.forward(&out, Pass::Inference)
    }

    /// Scaled dot-product attention of `q` `[B, heads, T, d]` over `k`, `v` `[B, kv_heads, S, d]`
    /// whose first `past` slots precede the queries; `pad` `[B]` hides each row's left padding.
    ///
    /// The query heads that share a key/value head are stacked as rows of one matrix
    /// (`[B, kv, groups·T, d]`), so keys and values are never repeated per head.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        pad: &Tensor,
        past: usize,
        pass: Pass,
    ) -> Result<Tensor> {
        let (b, _, t, d) = q.dims4()?;
        let groups = self.n_heads / self.n_kv_heads;
        let q = q.reshape((b, self.n_kv_heads, groups * t, d))?;
        let mask = AttentionMask {
            queries: t,
            past,
            rows_per_batch: self.n_kv_heads * groups * t,
            scale: 1.0 / (self.head_dim as f32).sqrt(),
            rows_per_query: 1,
        };
        let out = if pass == Pass::Training && past == 0 {
            // One op that keeps no scores for backward (see kernels::attention::causal_attention).
            causal_attention(&q, k, v, mask)?
        } else {
            masked_softmax(&q.matmul(&k.t()?)?, pad, mask)?.matmul(v)?
        };
        Ok(out.reshape((b, self.n_heads, t, d))?)
    }
}

pub(crate) struct Mlp {
    pub(crate) gate_proj: Linear,
    pub(crate) up_proj: Linear,
    pub(crate) down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let gated = silu_mul(
            &self.gate_proj.forward(x, pass)?,
            &self.up_proj.forward(x, pass)?,
        )?;
        self.down_proj.forward(&gated, pass)
    }
}

pub(crate) struct Block {
    pub(crate) input_layernorm: RmsNorm,
    pub(crate) self_attn: Attention,
    pub(crate) post_attention_layernorm: RmsNorm,
    pub(crate) mlp: Mlp,
}

/// The seven projections of a block in [`PROJECTIONS`] order, paired with their fields: the one
/// place that ties a Hugging Face module path to a field. `$m` is empty or `mut`.
macro_rules! block_projections {
    ($b:expr $(, $m:tt)?) => {{
        let b = $b;
        let (a, m) = (&$($m)? b.self_attn, &$($m)? b.mlp);
        [
            &$($m)? a.q_proj,
            &$($m)? a.k_proj,
            &$($m)? a.v_proj,
            &$($m)? a.o_proj,
            &$($m)? m.gate_proj,
            &$($m)? m.up_proj,
            &$($m)? m.down_proj,
        ]
    }};
}

/// The parameter walk: calls `$visit(name, tensor)?` for every parameter with its Hugging Face
/// name, in the order transformers lists them (embedding; per layer the two norms, then each
/// projection's weight and bias; final norm; the output head unless tied). `$m` is empty or `mut`.
/// [`Model::visit_parameters`] and [`Model::visit_parameters_mut`] are its two instances; every
/// list of parameter names (saving, full training, random initialisation) follows it.
macro_rules! walk_parameters {
    ($model:expr, $visit:ident $(, $m:tt)?) => {{
        let model = $model;
        $visit("model.embed_tokens.weight".to_string(), &$($m)? model.embed_tokens)?;
        for (i, b) in (&$($m)? model.layers).into_iter().enumerate() {
            let p = format!("model.layers.{i}");
            $visit(format!("{p}.input_layernorm.weight"), &$($m)? b.input_layernorm.weight)?;
            $visit(
                format!("{p}.post_attention_layernorm.weight"),
                &$($m)? b.post_attention_layernorm.weight,
            )?;
            let projections = block_projections!(b $(, $m)?);
            for ((module, name), lin) in PROJECTIONS.iter().zip(projections) {
                $visit(format!("{p}.{module}.{name}.weight"), &$($m)? lin.weight)?;
                if let Some(bias) = &$($m)? lin.bias {
                    $visit(format!("{p}.{module}.{name}.bias"), bias)?;
                }
            }
        }
        $visit("model.norm.weight".to_string(), &$($m)? model.norm.weight)?;
        if !model.config.tie_word_embeddings {
            $visit("lm_head.weight".to_string(), &$($m)? model.lm_head)?;
        }
        Ok(())
    }};
}

/// The projections of a transformer block by module and name, in Hugging Face order: the one list
/// that loading, the parameter walk, LoRA (`train::lora::PROJECTIONS`) and PEFT export follow.
pub const PROJECTIONS: [(&str, &str); 7] = [
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "o_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
    ("mlp", "down_proj"),
];

/// `(out_features, in_features, has_bias)` of each of [`PROJECTIONS`] under `c`.
fn projection_dims(c: &ModelConfig) -> [(usize, usize, bool); 7] {
    let (h, i, bias) = (c.hidden_size, c.intermediate_size, c.attention_bias);
    let (q, kv) = (
        c.num_attention_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
    );
    [
        (q, h, bias),
        (kv, h, bias),
        (kv, h, bias),
        (h, q, false),
        (i, h, false),
        (i, h, false),
        (h, i, false),
    ]
}

impl Block {
    fn linears_mut(&mut self) -> [&mut Linear; 7] {
        block_projections!(self, mut)
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        ctx: &mut AttnContext,
        pass: Pass,
    ) -> Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.input_layernorm.forward(x, pass)?, rope, ctx, pass)?;
        let x = add(x, &h)?;
        let h = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x, pass)?, pass)?;
        Ok(add(&x, &h)?)
    }
}

/// How attention finds its keys: a whole batch at once, or through the KV cache; `pad` `[B]` u32
/// is each row's left padding.
enum AttnContext<'a> {
    Batch {
        pad: Tensor,
    },
    Cached {
        cache: &'a mut KvCache,
        layer: usize,
        pad: Tensor,
    },
}

/// Rotary position embedding for a batch of positions (rotate-half layout, as transformers).
pub(crate) struct Rope {
    /// `[B, T, D/2]` in the model's dtype, for the composed (differentiable) rotation.
    cos: Tensor,
    sin: Tensor,
    /// The same as one table, for the fused head kernels.
    pub(crate) rotation: Rotation,
}

impl Rope {
    /// `positions` is `[B, T]` of f32.
    pub(crate) fn new(inv_freq: &Tensor, positions: &Tensor, dtype: DType) -> Result<Self> {
        let freqs = positions
            .unsqueeze(2)?
            .broadcast_mul(&inv_freq.reshape((1, 1, ()))?)?; // [B, T, D/2]
        let (cos, sin) = (freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?);
        let rotation = Rotation::new(&cos, &sin)?;
        Ok(Self { cos, sin, rotation })
    }

    /// Rotates `x` `[B, heads, T, D]` in differentiable ops (inference rotates inside
    /// [`split_heads`]).
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(D::Minus1)?;
        let cos = Tensor::cat(&[&self.cos, &self.cos], 2)?.unsqueeze(1)?;
        let sin = Tensor::cat(&[&self.sin, &self.sin], 2)?.unsqueeze(1)?;
        let x1 = x.narrow(D::Minus1, 0, d / 2)?;
        let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        Ok((x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?)
    }
}

/// A loaded causal language model of the Llama/Qwen2 family.
pub struct Model {
    pub(crate) config: ModelConfig,
    pub(crate) embed_tokens: Tensor,
    pub(crate) layers: Vec<Block>,
    pub(crate) norm: RmsNorm,
    pub(crate) lm_head: Tensor,
    pub(crate) inv_freq: Tensor,
    dtype: DType,
    device: Device,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl Model {
    /// Builds the model from Hugging Face-named weights, checking every shape against `config`.
    pub fn new(config: ModelConfig, weights: &WeightMap) -> Result<Self> {
        config.validate()?;
        let (v, h) = (config.vocab_size, config.hidden_size);
        let embed_tokens = weights.get("model.embed_tokens.weight", &[v, h])?;
        let dtype = embed_tokens.dtype();
        let device = embed_tokens.device().clone();
        let layers = (0..config.num_hidden_layers)
            .map(|i| load_block(weights, i, &config))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(weights, "model.norm.weight", h, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings || !weights.contains("lm_head.weight") {
            embed_tokens.clone()
        } else {
            weights.get("lm_head.weight", &[v, h])?
        };
        let inv_freq = Tensor::new(config.rope_inv_freq(), &device)?;
        Ok(Self {
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq,
            dtype,
            device,
        })
    }

    /// A model of `config` with random weights: normal(0, `std`) matrices and unit norm scales, as
    /// transformers initialises a new model; deterministic in `seed`.
    pub fn random(
        config: ModelConfig,
        std: f32,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut weights = WeightMap::new();
        let origin = std::path::Path::new("<random init>");
        for (name, shape) in parameter_shapes(&config) {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = match Init::of(&name) {
                Init::Ones => vec![1.0; n],
                Init::Zeros => vec![0.0; n],
                Init::Normal => (0..n).map(|_| std * standard_normal(&mut rng)).collect(),
            };
            let t = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
            weights.insert(name, t, origin);
        }
        Self::new(config, &weights)
    }

    /// A model of `config` with random weights drawn on `device` itself (normal(0, `std`) matrices,
    /// unit norm scales): fast for billion-parameter shapes, reproducible for a seed on one kind of
    /// device only. Benchmarks use it; [`Model::random`] is the portable, deterministic one.
    pub fn random_on_device(
        config: ModelConfig,
        std: f32,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if device.is_cpu() {
            return Self::random(config, std, seed, dtype, device);
        }
        config.validate()?;
        device.set_seed(seed)?;
        let mut weights = WeightMap::new();
        let origin = std::path::Path::new("<random init on device>");
        for (name, shape) in parameter_shapes(&config) {
            let t = match Init::of(&name) {
                Init::Ones => Tensor::ones(shape, dtype, device)?,
                Init::Zeros => Tensor::zeros(shape, dtype, device)?,
                Init::Normal => Tensor::randn(0f32, std, shape, device)?.to_dtype(dtype)?,
            };
            weights.insert(name, t, origin);
        }
        Self::new(config, &weights)
    }

    /// Calls `visit` with every parameter and its Hugging Face name, in transformers' order (a
    /// tied output head is not visited twice); stops at the first error `visit` returns.
    pub fn visit_parameters(
        &self,
        mut visit: impl FnMut(String, &Tensor) -> Result<()>,
    ) -> Result<()> {
        walk_parameters!(self, visit)
    }

    /// [`Model::visit_parameters`] with each parameter mutable, to replace it in place.
    pub fn visit_parameters_mut(
        &mut self,
        mut visit: impl FnMut(String, &mut Tensor) -> Result<()>,
    ) -> Result<()> {
        walk_parameters!(self, visit, mut)
    }

    /// Every parameter with its Hugging Face name (a tied output head is not listed twice).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let walked = self.visit_parameters(|name, t| {
            out.push((name, t.clone()));
            Ok(())
        });
        debug_assert!(walked.is_ok(), "the collecting visitor never fails");
        out
    }

    /// The projections of every block with their module paths (`model.layers.3.mlp.up_proj`).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (i, b) in self.layers.iter_mut().enumerate() {
            for ((module, name), lin) in PROJECTIONS.iter().zip(b.linears_mut()) {
                out.push((format!("model.layers.{i}.{module}.{name}"), lin));
            }
        }
        out
    }

    /// Turns every parameter into a trainable `Var` (full fine-tuning or training from scratch);
    /// returns them by Hugging Face name. A tied output head shares the embedding's `Var`.
    pub fn make_trainable(&mut self) -> Result<Vec<(String, Var)>> {
        let mut vars = Vec::new();
        self.visit_parameters_mut(|name, t| {
            let v = Var::from_tensor(t)?;
            *t = v.as_tensor().clone();
            vars.push((name, v));
            Ok(())
        })?;
        if self.config.tie_word_embeddings {
            self.lm_head = self.embed_tokens.clone();
        }
        Ok(vars)
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The weights' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Final hidden states `[B, T, H]` for right-padded `ids` `[B, T]` at positions `0..T`.
    ///
    /// Right padding needs no padding mask: the causal mask already keeps every real token from
    /// seeing the pads that follow it, and outputs at pad positions are ignored by callers.
    pub fn hidden_states(&self, ids: &Tensor, pass: Pass) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let positions = Tensor::arange(0f32, t as f32, &self.device)?
            .unsqueeze(0)?
            .broadcast_as((b, t))?
            .contiguous()?;
        let pad = Tensor::zeros(b, DType::U32, &self.device)?;
        self.run_layers(ids, &positions, AttnContext::Batch { pad }, pass)
    }

    /// f32 logits `[B, T, V]` for right-padded `ids` (see [`Model::hidden_states`]).
    pub fn forward(&self, ids: &Tensor, pass: Pass) -> Result<Tensor> {
        self.logits(&self.hidden_states(ids, pass)?)
    }

    /// Runs `ids` `[B, T]` through the cache, row `r` of `ids` extending cache row `r`; returns the
    /// f32 logits of the last new token of each row, `[B, V]`.
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        Ok(self.forward_cached_raw(ids, cache)?.to_dtype(DType::F32)?)
    }

    /// As [`Model::forward_cached`], with the logits left in the model's dtype (for sampling on the
    /// device, which reads them in f32 anyway).
    pub fn forward_cached_raw(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if b != cache.rows() {
            return Err(EngineError::Request(format!(
                "{b} rows of tokens for a cache of {} rows",
                cache.rows()
            )));
        }
        let (pad, pad_f32) = cache.pad_on(&self.device)?;
        // Row r's token at slot s sits at position s − pad[r].
        let slots = Tensor::arange(cache.len as f32, (cache.len + t) as f32, &self.device)?;
        let positions = slots.unsqueeze(0)?.broadcast_sub(&pad_f32.unsqueeze(1)?)?;
        let mut hidden = self.embed(ids)?;
        let rope = Rope::new(&self.inv_freq, &positions, self.dtype)?;
        for (layer, block) in self.layers.iter().enumerate() {
            let mut ctx = AttnContext::Cached {
                cache,
                layer,
                pad: pad.clone(),
            };
            hidden = block.forward(&hidden, &rope, &mut ctx, Pass::Inference)?;
        }
        cache.len += t;
        let last = self
            .norm
            .forward(&hidden.narrow(1, t - 1, 1)?, Pass::Inference)?;
        self.raw_logits(&last)?.squeeze(1).map_err(Into::into)
    }

    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat = ids.flatten_all()?;
        Ok(self
            .embed_tokens
            .index_select(&flat, 0)?
            .reshape((b, t, self.config.hidden_size))?)
    }

    fn run_layers(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        mut ctx: AttnContext,
        pass: Pass,
    ) -> Result<Tensor> {
        let mut hidden = self.embed(ids)?;
        let rope = Rope::new(&self.inv_freq, positions, self.dtype)?;
        for block in &self.layers {
            hidden = block.forward(&hidden, &rope, &mut ctx, pass)?;
        }
        self.norm.forward(&hidden, pass)
    }

    /// f32 logits of normalised hidden states `[B, T, H]`. A frozen output head gets no gradient.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.raw_logits(hidden)?.to_dtype(DType::F32)?)
    }

    /// Logits `[B, T, V]` in the model's dtype.
    pub fn raw_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let (b, t, h) = hidden.dims3()?;
        let flat = hidden.reshape((b * t, h))?;
        let logits = if self.lm_head.is_variable() {
            flat.matmul(&self.lm_head.t()?)?
        } else {
            frozen_matmul(&flat, &self.lm_head)?
        };
        Ok(logits.reshape((b, t, self.config.vocab_size))?)
    }
}

fn load_block(w: &WeightMap, i: usize, c: &ModelConfig) -> Result<Block> {
    let p = format!("model.layers.{i}");
    let (h, eps) = (c.hidden_size, c.rms_norm_eps);
    let mut linears = Vec::with_capacity(PROJECTIONS.len());
    for ((module, name), (out_dim, in_dim, bias)) in PROJECTIONS.iter().zip(projection_dims(c)) {
        let prefix = format!("{p}.{module}.{name}");
        linears.push(Linear::load(w, &prefix, out_dim, in_dim, bias)?);
    }
    let [
        q_proj,
        k_proj,
        v_proj,
        o_proj,
        gate_proj,
        up_proj,
        down_proj,
    ]: [Linear; 7] = linears
        .try_into()
        .map_err(|_| EngineError::Config("a block has seven projections".into()))?;
    Ok(Block {
        input_layernorm: RmsNorm::load(w, &format!("{p}.input_layernorm.weight"), h, eps)?,
        self_attn: Attention {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            n_heads: c.num_attention_heads,
            n_kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
        },
        post_attention_layernorm: RmsNorm::load(
            w,
            &format!("{p}.post_attention_layernorm.weight"),
            h,
            eps,
        )?,
        mlp: Mlp {
            gate_proj,
            up_proj,
            down_proj,
        },
    })
}

/// How a new model initialises a parameter, as transformers does: norm scales to one, biases to
/// zero, matrices from a normal distribution.
enum Init {
    Ones,
    Zeros,
    Normal,
}

impl Init {
    fn of(name: &str) -> Self {
        if name.ends_with("norm.weight") {
            Init::Ones
        } else if name.ends_with(".bias") {
            Init::Zeros
        } else {
            Init::Normal
        }
    }
}

/// The Hugging Face name and shape of every parameter a configuration implies, in the order of
/// [`Model::visit_parameters`] (a test holds the two together).
pub fn parameter_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (h, v) = (c.hidden_size, c.vocab_size);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
    for l in 0..c.num_hidden_layers {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), vec![h]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        for ((module, name), (rows, cols, bias)) in PROJECTIONS.iter().zip(projection_dims(c)) {
            out.push((format!("{p}.{module}.{name}.weight"), vec![rows, cols]));
            if bias {
                out.push((format!("{p}.{module}.{name}.bias"), vec![rows]));
            }
        }
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !c.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    out
}

/// A standard normal draw (Box-Muller), so initialisation depends only on our seeded stream.
pub fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::config::Arch;

    fn config(arch: Arch, tied: bool, bias: bool) -> ModelConfig {
        ModelConfig {
            arch,
            vocab_size: 11,
            hidden_size: 8,
            intermediate_size: 12,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 2,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 32,
            tie_word_embeddings: tied,
            attention_bias: bias,
            bos_token_id: None,
            eos_token_ids: vec![0],
        }
    }

    #[test]
    fn the_walk_names_what_the_config_implies_and_the_loader_reads() {
        for (arch, tied, bias) in [(Arch::Llama, true, false), (Arch::Qwen2, false, true)] {
            let c = config(arch, tied, bias);
            let model = Model::random(c.clone(), 0.02, 1, DType::F32, &Device::Cpu).unwrap();
            let walked: Vec<(String, Vec<usize>)> = model
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.dims().to_vec()))
                .collect();
            assert_eq!(walked, parameter_shapes(&c), "{arch:?}");
            let biases = walked.iter().filter(|(n, _)| n.ends_with(".bias")).count();
            assert_eq!(biases, if bias { 3 * 2 } else { 0 });
            assert_eq!(walked.iter().any(|(n, _)| n == "lm_head.weight"), !tied);
            // Every walked name is a weight the loader looks up: a model rebuilt from the walk's
            // output is the same model.
            let mut w = WeightMap::new();
            for (n, t) in model.named_parameters() {
                w.insert(n, t, std::path::Path::new("<walk>"));
            }
            let again = Model::new(c.clone(), &w).unwrap();
            assert_eq!(again.named_parameters().len(), walked.len());
        }
    }

    #[test]
    fn the_mutable_walk_visits_the_same_parameters_and_can_stop() {
        let c = config(Arch::Qwen2, false, true);
        let mut model = Model::random(c.clone(), 0.02, 2, DType::F32, &Device::Cpu).unwrap();
        let mut names = Vec::new();
        model
            .visit_parameters_mut(|n, _| {
                names.push(n);
                Ok(())
            })
            .unwrap();
        let want: Vec<String> = parameter_shapes(&c).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, want);
        let mut seen = 0;
        let stopped = model.visit_parameters(|_, _| {
            seen += 1;
            if seen == 3 {
                Err(EngineError::Request("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(stopped.is_err());
        assert_eq!(seen, 3);
        let lin = model.linears_mut();
        assert_eq!(lin.len(), 2 * PROJECTIONS.len());
        assert_eq!(lin[4].0, "model.layers.0.mlp.gate_proj");
        assert_eq!(
            crate::train::lora::PROJECTIONS.to_vec(),
            PROJECTIONS.map(|(_, n)| n).to_vec()
        );
    }
}
