//! Custom ops that candle lacks: each has a CPU implementation here and a CUDA kernel in
//! `kernels/assay.cu` with the same arithmetic (reductions in f32 whatever the storage dtype).
//!
//! - [`frozen_matmul`]: `x Wᵀ` whose backward computes no weight gradient.
//! - [`masked_softmax`]: attention softmax with the causal / left-padding mask built in, and a
//!   backward that needs only its output (so the f32 scores and mask never exist).
//! - [`token_nll`]: per-row negative log-likelihood and arg-max straight from the logits, never
//!   materialising the log-softmax over the vocabulary; differentiable.
//! - [`gumbel_argmax`]: sampling (or greedy) on the device, seeded per row.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

/// `y = x Wᵀ` for a frozen `W` `[out, in]` and `x` `[rows, in]`. Its backward returns only `dL/dx`:
/// candle's own matmul backward would also compute and keep `dL/dW`, a weight-sized buffer and a
/// second large matmul per layer, which LoRA training must not pay for.
struct FrozenMatmul;

fn dims(lx: &Layout, lw: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (m, k) = lx.shape().dims2()?;
    let (n, k2) = lw.shape().dims2()?;
    if k != k2 {
        candle_core::bail!("frozen matmul: input width {k} but weight width {k2}");
    }
    Ok((m, n, k))
}

impl CustomOp2 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, n, k) = dims(lx, lw)?;
        let out = x.matmul(w, (1, m, n, k), lx, &lw.transpose(0, 1)?)?;
        Ok((out, Shape::from((m, n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        w: &candle_core::CudaStorage,
        lw: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (m, n, k) = dims(lx, lw)?;
        let out = x.matmul(w, (1, m, n, k), lx, &lw.transpose(0, 1)?)?;
        Ok((out, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(w)?), None))
    }
}

/// `x Wᵀ` for `x` `[rows, in]` where `W` gets no gradient (see [`FrozenMatmul`]).
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, FrozenMatmul)
}

// ---------------------------------------------------------------------------------------------
// Row access on the CPU: every float dtype is read as f32 and written back in its own dtype.

fn cpu_rows_f32(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<f32>> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("assay op: input must be contiguous".into()))?;
    Ok(match s {
        CpuStorage::F32(v) => v[start..end].to_vec(),
        CpuStorage::BF16(v) => v[start..end].iter().map(|x| x.to_f32()).collect(),
        CpuStorage::F16(v) => v[start..end].iter().map(|x| x.to_f32()).collect(),
        other => candle_core::bail!("assay op: float input expected, got {:?}", other.dtype()),
    })
}

fn cpu_u32(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<u32>> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("assay op: index input must be contiguous".into())
    })?;
    match s {
        CpuStorage::U32(v) => Ok(v[start..end].to_vec()),
        other => candle_core::bail!("assay op: u32 input expected, got {:?}", other.dtype()),
    }
}

fn cpu_from_f32(values: Vec<f32>, dtype: DType) -> candle_core::Result<CpuStorage> {
    Ok(match dtype {
        DType::F32 => CpuStorage::F32(values),
        DType::BF16 => CpuStorage::BF16(values.into_iter().map(half::bf16::from_f32).collect()),
        DType::F16 => CpuStorage::F16(values.into_iter().map(half::f16::from_f32).collect()),
        other => candle_core::bail!("assay op: cannot write {other:?}"),
    })
}

fn last_dim(l: &Layout) -> candle_core::Result<(usize, usize)> {
    let dims = l.shape().dims();
    let cols = *dims
        .last()
        .ok_or_else(|| candle_core::Error::Msg("assay op: scalar input".into()))?;
    Ok((l.shape().elem_count() / cols.max(1), cols))
}

#[cfg(feature = "cuda")]
mod cuda {
    //! Launching the kernels of `kernels/assay.cu`.
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig};
    use candle_core::{CudaDevice, CudaStorage, DType, Layout};

    /// The PTX of `kernels/assay.cu`, built by build.rs.
    pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/assay.ptx"));
    /// Threads per block, as `BLOCK` in the kernels.
    const BLOCK: u32 = 256;

    /// The name of kernel `name` for `dtype` (`name_f32`, `name_bf16`).
    pub fn kernel(name: &str, dtype: DType) -> candle_core::Result<String> {
        let suffix = match dtype {
            DType::F32 => "f32",
            DType::BF16 => "bf16",
            other => candle_core::bail!("assay kernels take f32 or bf16, not {other:?}"),
        };
        Ok(format!("{name}_{suffix}"))
    }

    /// One block per row.
    pub fn rows(n: usize) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (n as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    /// The contiguous view of a storage of type `T` at its layout's offset.
    pub fn view<'a, T: candle_core::cuda_backend::CudaDType>(
        s: &'a CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<CudaView<'a, T>> {
        let (start, end) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("assay op: input must be contiguous".into()))?;
        Ok(s.as_cuda_slice::<T>()?.slice(start..end))
    }

    /// Uninitialised device memory for `n` values (every kernel writes all of its output).
    pub fn alloc<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr>(
        dev: &CudaDevice,
        n: usize,
    ) -> candle_core::Result<CudaSlice<T>> {
        // SAFETY: the kernel launched next writes every element.
        unsafe { dev.alloc::<T>(n) }
    }
}

// ---------------------------------------------------------------------------------------------

/// Which keys each query row of an attention-score tensor may see.
#[derive(Debug, Clone, Copy)]
pub struct AttentionMask {
    /// Queries per (batch, head) block: row `r` is query `r % queries`.
    pub queries: usize,
    /// Keys cached before the first query: query `q` sees keys `..= past + q`.
    pub past: usize,
    /// Rows per batch entry, to find the entry's left padding.
    pub rows_per_batch: usize,
    /// Scale applied to the scores before the softmax.
    pub scale: f32,
}

/// `softmax(scale · x)` over the keys each row may see (see [`AttentionMask`]) with exact zeros
/// elsewhere; `pad` `[batch]` u32 hides each batch entry's first `pad[b]` keys (left padding).
struct MaskedSoftmax(AttentionMask);

impl MaskedSoftmax {
    fn visible(&self, row: usize, pad: &[u32]) -> (usize, usize) {
        let m = self.0;
        let lo = pad[row / m.rows_per_batch] as usize;
        (lo, m.past + row % m.queries)
    }
}

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
        let (rows, cols) = last_dim(lx)?;
        let values = cpu_rows_f32(x, lx)?;
        let pad = cpu_u32(pad, lp)?;
        let mut out = vec![0f32; values.len()];
        for r in 0..rows {
            let (lo, hi) = self.visible(r, &pad);
            let row = &values[r * cols..(r + 1) * cols];
            let seen = lo..=hi.min(cols.saturating_sub(1));
            let max = seen
                .clone()
                .map(|j| row[j] * self.0.scale)
                .fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = seen
                .clone()
                .map(|j| (row[j] * self.0.scale - max).exp())
                .sum();
            let inv = if sum > 0.0 { 1.0 / sum } else { 0.0 };
            for j in seen {
                out[r * cols + j] = (row[j] * self.0.scale - max).exp() * inv;
            }
        }
        Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        pad: &candle_core::CudaStorage,
        lp: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(lx)?;
        let dev = x.device();
        let f = dev.get_or_load_custom_func(
            &cuda::kernel("masked_softmax", x.dtype())?,
            "assay",
            cuda::PTX,
        )?;
        let pad = cuda::view::<u32>(pad, lp)?;
        let (s, t, past, rpb) = (
            cols as u32,
            self.0.queries as u32,
            self.0.past as u32,
            self.0.rows_per_batch as u32,
        );
        let scale = self.0.scale;
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let out = cuda::alloc::<$ty>(dev, rows * cols)?;
                let mut b = f.builder();
                b.arg(&input).arg(&out).arg(&s).arg(&t).arg(&past).arg(&rpb);
                b.arg(&pad).arg(&scale);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match x.dtype() {
            DType::F32 => launch!(f32),
            DType::BF16 => launch!(half::bf16),
            other => candle_core::bail!("masked softmax: {other:?} scores"),
        };
        Ok((out, lx.shape().clone()))
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
struct SoftmaxBackward(f32);

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
        let (_, cols) = last_dim(ly)?;
        let (y32, g32) = (cpu_rows_f32(y, ly)?, cpu_rows_f32(g, lg)?);
        let mut out = vec![0f32; y32.len()];
        for ((yr, gr), o) in y32
            .chunks(cols)
            .zip(g32.chunks(cols))
            .zip(out.chunks_mut(cols))
        {
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for ((o, &yy), &gg) in o.iter_mut().zip(yr).zip(gr) {
                *o = self.0 * yy * (gg - dot);
            }
        }
        Ok((cpu_from_f32(out, y.dtype())?, ly.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        y: &candle_core::CudaStorage,
        ly: &Layout,
        g: &candle_core::CudaStorage,
        lg: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(ly)?;
        let dev = y.device();
        let f = dev.get_or_load_custom_func(
            &cuda::kernel("softmax_backward", y.dtype())?,
            "assay",
            cuda::PTX,
        )?;
        let (s, scale) = (cols as u32, self.0);
        macro_rules! launch {
            ($ty:ty) => {{
                let (yv, gv) = (cuda::view::<$ty>(y, ly)?, cuda::view::<$ty>(g, lg)?);
                let out = cuda::alloc::<$ty>(dev, rows * cols)?;
                let mut b = f.builder();
                b.arg(&yv).arg(&gv).arg(&out).arg(&s).arg(&scale);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match (y.dtype(), g.dtype()) {
            (DType::F32, DType::F32) => launch!(f32),
            (DType::BF16, DType::BF16) => launch!(half::bf16),
            (a, b) => candle_core::bail!("softmax backward: {a:?} output with {b:?} gradient"),
        };
        Ok((out, ly.shape().clone()))
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

// ---------------------------------------------------------------------------------------------

/// Per-row `[nll, argmax]` (f32) of logits `[N, V]` against u32 targets `[N]`.
struct TokenNll;

fn argmax_lowest(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

impl CustomOp2 for TokenNll {
    fn name(&self) -> &'static str {
        "token-nll"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        t: &CpuStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, cols) = last_dim(lx)?;
        let values = cpu_rows_f32(x, lx)?;
        let targets = cpu_u32(t, lt)?;
        let mut out = Vec::with_capacity(rows * 2);
        for (row, &target) in values.chunks(cols).zip(&targets) {
            let best = argmax_lowest(row);
            let max = row[best];
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            let xt = row.get(target as usize).copied().unwrap_or(f32::NAN);
            out.push(max + sum.ln() - xt);
            out.push(best as f32);
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, 2))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        t: &candle_core::CudaStorage,
        lt: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(lx)?;
        let dev = x.device();
        let f = dev.get_or_load_custom_func(
            &cuda::kernel("token_nll", x.dtype())?,
            "assay",
            cuda::PTX,
        )?;
        let targets = cuda::view::<u32>(t, lt)?;
        let out = cuda::alloc::<f32>(dev, rows * 2)?;
        let v = cols as u32;
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let mut b = f.builder();
                b.arg(&input).arg(&targets).arg(&out).arg(&v);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
            }};
        }
        match x.dtype() {
            DType::F32 => launch!(f32),
            DType::BF16 => launch!(half::bf16),
            other => candle_core::bail!("token nll: {other:?} logits"),
        }
        let out = candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone());
        Ok((out, Shape::from((rows, 2))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        t: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let nll = res.narrow(1, 0, 1)?;
        let g = grad.narrow(1, 0, 1)?;
        let ng = Tensor::cat(&[&nll, &g], 1)?.contiguous()?;
        let dx = x.apply_op3_no_bwd(t, &ng, &TokenNllBackward)?;
        Ok((Some(dx), None))
    }
}

/// `dx = g · (softmax(x) − onehot(target))` from logits, targets and per-row `[nll, g]`.
struct TokenNllBackward;

impl candle_core::CustomOp3 for TokenNllBackward {
    fn name(&self) -> &'static str {
        "token-nll-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        t: &CpuStorage,
        lt: &Layout,
        ng: &CpuStorage,
        lng: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, cols) = last_dim(lx)?;
        let values = cpu_rows_f32(x, lx)?;
        let targets = cpu_u32(t, lt)?;
        let ng = cpu_rows_f32(ng, lng)?;
        let mut out = vec![0f32; values.len()];
        for (r, (row, o)) in values.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
            let target = targets[r] as usize;
            let lse = ng[2 * r] + row[target];
            let g = ng[2 * r + 1];
            for (j, (o, &v)) in o.iter_mut().zip(row).enumerate() {
                let onehot = if j == target { 1.0 } else { 0.0 };
                *o = g * ((v - lse).exp() - onehot);
            }
        }
        Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        t: &candle_core::CudaStorage,
        lt: &Layout,
        ng: &candle_core::CudaStorage,
        lng: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(lx)?;
        let dev = x.device();
        let f = dev.get_or_load_custom_func(
            &cuda::kernel("token_nll_backward", x.dtype())?,
            "assay",
            cuda::PTX,
        )?;
        let targets = cuda::view::<u32>(t, lt)?;
        let ng = cuda::view::<f32>(ng, lng)?;
        let v = cols as u32;
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let out = cuda::alloc::<$ty>(dev, rows * cols)?;
                let mut b = f.builder();
                b.arg(&input).arg(&targets).arg(&ng).arg(&out).arg(&v);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match x.dtype() {
            DType::F32 => launch!(f32),
            DType::BF16 => launch!(half::bf16),
            other => candle_core::bail!("token nll backward: {other:?} logits"),
        };
        Ok((out, lx.shape().clone()))
    }
}

/// Per-row `[nll, argmax]` (f32, `[N, 2]`) of `logits` `[N, V]` (any float dtype) for u32
/// `targets` `[N]`: the loss of each target token and the model's greedy choice, computed in f32
/// without a `[N, V]` log-softmax. Differentiable in `logits` through the nll column.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, TokenNll)
}

// ---------------------------------------------------------------------------------------------

/// The uniform draw in (0, 1) of `token` at `step` of the stream `key`: a counter-based hash, so a
/// row's draws never depend on the other rows of its batch (the CUDA kernel computes the same).
pub fn uniform01(key: u64, step: u32, token: u32) -> f32 {
    let h = mix64(key ^ mix64((u64::from(step) << 32) | u64::from(token)));
    ((h >> 40) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The Gumbel-max choice over `scores`: `argmax(score · inv_temp − ln(−ln u))`, or the plain
/// arg-max (lowest id on ties) when `inv_temp` is 0. Tokens whose score is −∞ are never chosen
/// unless every score is.
pub fn gumbel_choice(
    scores: impl Iterator<Item = (u32, f32)>,
    key: u64,
    step: u32,
    inv_temp: f32,
) -> u32 {
    let mut best = (f32::NEG_INFINITY, u32::MAX);
    for (token, score) in scores {
        let v = if inv_temp > 0.0 {
            score * inv_temp - (-uniform01(key, step, token).ln()).ln()
        } else {
            score
        };
        if v > best.0 || (v == best.0 && token < best.1) {
            best = (v, token);
        }
    }
    if best.1 == u32::MAX { 0 } else { best.1 }
}

/// Samples one token per row of `logits` `[N, V]` with row keys `keys` (i64 `[N]`, read as u64).
struct GumbelArgmax {
    step: u32,
    inv_temp: f32,
}

impl CustomOp2 for GumbelArgmax {
    fn name(&self) -> &'static str {
        "gumbel-argmax"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        k: &CpuStorage,
        lk: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, cols) = last_dim(lx)?;
        let values = cpu_rows_f32(x, lx)?;
        let keys = match k {
            CpuStorage::I64(v) => {
                let (a, b) = lk.contiguous_offsets().ok_or_else(|| {
                    candle_core::Error::Msg("gumbel argmax: keys must be contiguous".into())
                })?;
                v[a..b].to_vec()
            }
            other => {
                candle_core::bail!("gumbel argmax: i64 keys expected, got {:?}", other.dtype())
            }
        };
        let out: Vec<u32> = values
            .chunks(cols)
            .zip(&keys)
            .map(|(row, &key)| {
                let scores = row.iter().enumerate().map(|(j, &v)| (j as u32, v));
                gumbel_choice(scores, key as u64, self.step, self.inv_temp)
            })
            .collect();
        Ok((CpuStorage::U32(out), Shape::from(rows)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        k: &candle_core::CudaStorage,
        lk: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(lx)?;
        let dev = x.device();
        let f = dev.get_or_load_custom_func(
            &cuda::kernel("gumbel_argmax", x.dtype())?,
            "assay",
            cuda::PTX,
        )?;
        let keys = cuda::view::<i64>(k, lk)?;
        let out = cuda::alloc::<u32>(dev, rows)?;
        let (step, inv_temp, v) = (self.step, self.inv_temp, cols as u32);
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let mut b = f.builder();
                b.arg(&input)
                    .arg(&keys)
                    .arg(&step)
                    .arg(&inv_temp)
                    .arg(&out)
                    .arg(&v);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
            }};
        }
        match x.dtype() {
            DType::F32 => launch!(f32),
            DType::BF16 => launch!(half::bf16),
            other => candle_core::bail!("gumbel argmax: {other:?} logits"),
        }
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from(rows),
        ))
    }
}

/// One token per row of `logits` `[N, V]`: greedy when `temperature` is 0, else a sample from
/// `softmax(logits / temperature)` drawn from row `r`'s stream `keys[r]` (i64 `[N]`) at `step`.
pub fn sample_rows(
    logits: &Tensor,
    keys: &Tensor,
    step: u32,
    temperature: f32,
) -> candle_core::Result<Tensor> {
    let inv_temp = if temperature > 0.0 {
        1.0 / temperature
    } else {
        0.0
    };
    logits
        .contiguous()?
        .apply_op2_no_bwd(&keys.contiguous()?, &GumbelArgmax { step, inv_temp })
}
