//! Attention: [`masked_softmax`] (the causal / left-padding mask built in, a backward that needs
//! only its output), and [`causal_attention`] / [`causal_attention_blocks`], which keep only q, k,
//! v and the output for backward. The CPU loops are in `cpu/attention.rs`, the CUDA launches of
//! `kernels/assay.cu` in `cuda/attention.rs`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

/// Which keys each query row of an attention-score tensor may see.
#[derive(Debug, Clone, Copy)]
pub struct AttentionMask {
    /// Queries per (batch, head) block (see `rows_per_query` for which row is which query).
    pub queries: usize,
    /// Keys cached before the first query: query `q` sees keys `..= past + q`.
    pub past: usize,
    /// Rows per batch entry, to find the entry's left padding.
    pub rows_per_batch: usize,
    /// Scale applied to the scores before the softmax.
    pub scale: f32,
    /// Consecutive rows that share a query position: 1 when rows are head-major
    /// (`[heads, T]`), the group size when they are position-major (`[T, heads]`, see
    /// [`causal_attention_blocks`]). Row `r` is query `(r / rows_per_query) % queries`.
    pub rows_per_query: usize,
}

/// `softmax(scale · x)` over the keys each row may see (see [`AttentionMask`]) with exact zeros
/// elsewhere; `pad` `[batch]` u32 hides each batch entry's first `pad[b]` keys (left padding).
struct MaskedSoftmax(AttentionMask);

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        pad: &CpuStorage,
        lp: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu::attention::masked_softmax(self.0, x, lx, pad, lp)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        pad: &candle_core::CudaStorage,
        lp: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::attention::masked_softmax(self.0, x, lx, pad, lp)
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _pad: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward(self.0.scale))?;
        Ok((Some(dx), None))
    }
}

/// `dx = scale · y · (g − Σ g·y)` for `y` a softmax output and `g` its gradient.
pub(crate) struct SoftmaxBackward(pub(crate) f32);

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax-backward"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        ly: &Layout,
        g: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu::attention::softmax_backward(self.0, y, ly, g, lg)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        y: &candle_core::CudaStorage,
        ly: &Layout,
        g: &candle_core::CudaStorage,
        lg: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::attention::softmax_backward(self.0, y, ly, g, lg)
    }
}

/// Attention probabilities from raw scores `[..., keys]` (see [`AttentionMask`]); `pad` is a u32
/// tensor `[batch]` of left-padding lengths (zeros for none). Differentiable in `scores`.
pub fn masked_softmax(
    scores: &Tensor,
    pad: &Tensor,
    mask: AttentionMask,
) -> candle_core::Result<Tensor> {
    scores
        .contiguous()?
        .apply_op2(&pad.contiguous()?, MaskedSoftmax(mask))
}

/// Causal attention `softmax(scale · q kᵀ + causal) v` as one differentiable op on grouped queries
/// `q` `[B, kv, groups·T, d]` and `k`, `v` `[B, kv, T, d]`. Only q, k, v and the output are kept
/// for backward, which recomputes the probabilities: the `[B, heads, T, T]` scores never stay
/// alive across the forward pass (the memory that dominates training at long sequences).
struct CausalAttention(AttentionMask);

impl CausalAttention {
    /// `(batch, rows, keys, d)` of the matmuls.
    fn dims(lq: &Layout, lk: &Layout) -> candle_core::Result<(usize, usize, usize, usize)> {
        let (b, h, rows, d) = lq.shape().dims4()?;
        let (_, _, keys, _) = lk.shape().dims4()?;
        Ok((b * h, rows, keys, d))
    }

    /// The forward on either backend: its own GEMMs around `softmax`, the backend's masked softmax
    /// (see `unpadded_softmax` in `cpu/attention.rs` and `cuda/attention.rs`).
    fn run<S: BackendStorage>(
        &self,
        (q, lq): (&S, &Layout),
        (k, lk): (&S, &Layout),
        (v, lv): (&S, &Layout),
        softmax: impl Fn(&S, &Layout) -> candle_core::Result<S>,
    ) -> candle_core::Result<(S, Shape)> {
        let (batch, rows, keys, d) = Self::dims(lq, lk)?;
        let scores = q.matmul(k, (batch, rows, keys, d), lq, &lk.transpose(2, 3)?)?;
        let (b, h, _, _) = lq.shape().dims4()?;
        let scores_layout = Layout::contiguous((b, h, rows, keys));
        let probs = softmax(&scores, &scores_layout)?;
        let out = probs.matmul(v, (batch, rows, d, keys), &scores_layout, lv)?;
        Ok((out, Shape::from((b, h, rows, d))))
    }
}

impl candle_core::CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        lq: &Layout,
        k: &CpuStorage,
        lk: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run(
            (q, lq),
            (k, lk),
            (v, lv),
            cpu::attention::unpadded_softmax(self.0, lq),
        )
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        q: &candle_core::CudaStorage,
        lq: &Layout,
        k: &candle_core::CudaStorage,
        lk: &Layout,
        v: &candle_core::CudaStorage,
        lv: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        self.run(
            (q, lq),
            (k, lk),
            (v, lv),
            cuda::attention::unpadded_softmax(self.0, q, lq)?,
        )
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Recomputes the probabilities from q and k: they were not kept.
        let (q, k, v) = (q.detach(), k.detach(), v.detach());
        let grad = grad.contiguous()?;
        let pad = Tensor::zeros(q.dim(0)?, DType::U32, q.device())?;
        let scores = q.matmul(&k.t()?)?;
        let probs = scores.apply_op2_no_bwd(&pad, &MaskedSoftmax(self.0))?;
        let dv = probs.t()?.matmul(&grad)?;
        let dp = grad.matmul(&v.t()?)?;
        let ds = probs.apply_op2_no_bwd(&dp, &SoftmaxBackward(self.0.scale))?;
        let dq = ds.matmul(&k)?;
        let dk = ds.t()?.matmul(&q)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// Causal self-attention of grouped queries `q` `[B, kv, groups·T, d]` over `k`, `v`
/// `[B, kv, T, d]` (see `CausalAttention`); `mask.past` must be 0. Differentiable in all three.
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: AttentionMask,
) -> candle_core::Result<Tensor> {
    q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, CausalAttention(mask))
}

/// Position chunks `[t0, t1)` for blocked causal attention over `t` positions: about one per
/// 128 positions, at most 8, so that little of the score matrix above the diagonal is computed.
fn query_chunks(t: usize) -> Vec<(usize, usize)> {
    let count = (t / 128).clamp(1, 8);
    let size = t.div_ceil(count).max(1);
    (0..t)
        .step_by(size)
        .map(|t0| (t0, (t0 + size).min(t)))
        .collect()
}

/// The attention probabilities of the queries at positions `[t0, t1)` over keys `[0, t1)`.
fn chunk_probs(
    q: &Tensor,
    k: &Tensor,
    pad: &Tensor,
    (t0, t1): (usize, usize),
    groups: usize,
    scale: f32,
) -> candle_core::Result<Tensor> {
    let kv = q.dim(1)?;
    let queries = q.narrow(2, t0 * groups, (t1 - t0) * groups)?;
    let scores = queries.matmul(&k.narrow(2, 0, t1)?.t()?)?;
    let mask = AttentionMask {
        queries: t1 - t0,
        past: t0,
        rows_per_batch: kv * (t1 - t0) * groups,
        scale,
        rows_per_query: groups,
    };
    scores.apply_op2_no_bwd(pad, &MaskedSoftmax(mask))
}

fn check_blocks(q: &Tensor, k: &Tensor, v: &Tensor, groups: usize) -> candle_core::Result<usize> {
    let (b, kv, rows, d) = q.dims4()?;
    let t = k.dim(2)?;
    if groups == 0 || rows != t * groups || k.dims() != [b, kv, t, d] || v.dims() != k.dims() {
        candle_core::bail!(
            "blocked attention: q {:?}, k {:?}, v {:?} with {groups} queries per key head",
            q.shape(),
            k.shape(),
            v.shape()
        );
    }
    Ok(t)
}

/// Causal self-attention over position-major grouped queries: `q` `[B, kv, T·g, d]` whose row
/// `t·g + i` is the `i`-th query head sharing key head `kv` at position `t`; `k`, `v`
/// `[B, kv, T, d]`. Queries are taken a chunk of positions at a time against only the keys up to
/// the chunk's last position, so about `(c + 1) / 2c` of the `[T, T]` scores are computed, written
/// and read (c chunks). No autograd: [`causal_attention_blocks_backward`] is its backward.
pub fn causal_attention_blocks(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    groups: usize,
    scale: f32,
) -> candle_core::Result<Tensor> {
    let t = check_blocks(q, k, v, groups)?;
    let pad = Tensor::zeros(q.dim(0)?, DType::U32, q.device())?;
    let outs = query_chunks(t)
        .into_iter()
        .map(|chunk| {
            chunk_probs(q, k, &pad, chunk, groups, scale)?.matmul(&v.narrow(2, 0, chunk.1)?)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&outs, 2)
}

/// `(dq, dk, dv)` of [`causal_attention_blocks`] for the output gradient `grad`, recomputing the
/// probabilities chunk by chunk; key gradients are summed over chunks in f32.
pub fn causal_attention_blocks_backward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    grad: &Tensor,
    groups: usize,
    scale: f32,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let t = check_blocks(q, k, v, groups)?;
    let pad = Tensor::zeros(q.dim(0)?, DType::U32, q.device())?;
    let dk = Tensor::zeros(k.shape(), DType::F32, k.device())?;
    let dv = Tensor::zeros(v.shape(), DType::F32, v.device())?;
    let mut dqs = Vec::new();
    for chunk in query_chunks(t) {
        let (t0, t1) = chunk;
        let rows = (t0 * groups, (t1 - t0) * groups);
        let probs = chunk_probs(q, k, &pad, chunk, groups, scale)?;
        let g = grad.narrow(2, rows.0, rows.1)?.contiguous()?;
        super::accumulate::add_prefix(&dv, &probs.t()?.matmul(&g)?)?;
        let dp = g.matmul(&v.narrow(2, 0, t1)?.t()?)?;
        let ds = probs.apply_op2_no_bwd(&dp, &SoftmaxBackward(scale))?;
        dqs.push(ds.matmul(&k.narrow(2, 0, t1)?)?);
        super::accumulate::add_prefix(&dk, &ds.t()?.matmul(&q.narrow(2, rows.0, rows.1)?)?)?;
    }
    Ok((
        Tensor::cat(&dqs, 2)?,
        dk.to_dtype(k.dtype())?,
        dv.to_dtype(v.dtype())?,
    ))
}
