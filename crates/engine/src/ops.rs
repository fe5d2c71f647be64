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

pub(crate) fn cpu_rows_f32(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<f32>> {
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

pub(crate) fn cpu_u32(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<u32>> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("assay op: index input must be contiguous".into())
    })?;
    match s {
        CpuStorage::U32(v) => Ok(v[start..end].to_vec()),
        other => candle_core::bail!("assay op: u32 input expected, got {:?}", other.dtype()),
    }
}

pub(crate) fn cpu_from_f32(values: Vec<f32>, dtype: DType) -> candle_core::Result<CpuStorage> {
    Ok(match dtype {
        DType::F32 => CpuStorage::F32(values),
        DType::BF16 => CpuStorage::BF16(values.into_iter().map(half::bf16::from_f32).collect()),
        DType::F16 => CpuStorage::F16(values.into_iter().map(half::f16::from_f32).collect()),
        other => candle_core::bail!("assay op: cannot write {other:?}"),
    })
}

pub(crate) fn last_dim(l: &Layout) -> candle_core::Result<(usize, usize)> {
    let dims = l.shape().dims();
    let cols = *dims
        .last()
        .ok_or_else(|| candle_core::Error::Msg("assay op: scalar input".into()))?;
    Ok((l.shape().elem_count() / cols.max(1), cols))
}

/// The function of kernel `name` for `dtype` from our PTX module (loaded once per device).
#[cfg(feature = "cuda")]
macro_rules! load_kernel {
    ($dev:expr, $name:expr, $dtype:expr) => {
        $dev.get_or_load_custom_func(&cuda::kernel($name, $dtype)?, "assay", cuda::PTX)?
    };
}
#[cfg(feature = "cuda")]
pub(crate) use load_kernel;

/// Runs `$launch!(f32)` or `$launch!(half::bf16)` for `$dtype`, the two storage types every kernel
/// is built for; any other dtype is an error naming the op `$what`.
#[cfg(feature = "cuda")]
macro_rules! kernel_dtype {
    ($dtype:expr, $what:expr, $launch:ident) => {
        match $dtype {
            DType::F32 => $launch!(f32),
            DType::BF16 => $launch!(half::bf16),
            other => {
                candle_core::bail!("{}: {other:?} values (the kernels take f32 or bf16)", $what)
            }
        }
    };
}
#[cfg(feature = "cuda")]
pub(crate) use kernel_dtype;

#[cfg(feature = "cuda")]
pub(crate) mod cuda {
    //! Launching the kernels of `kernels/assay.cu`.
    use candle_core::cuda_backend::cudarc::driver::{
        CudaSlice, CudaView, CudaViewMut, LaunchConfig,
    };
    use candle_core::{CudaDevice, CudaStorage, DType, Layout};

    /// The PTX of `kernels/assay.cu`, built by build.rs.
    pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/assay.ptx"));
    /// Threads per block, as `BLOCK` in the kernels.
    pub const BLOCK: u32 = 256;

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

    /// The contiguous mutable view of a storage of type `T` at its layout's offset, for the
    /// in-place kernels.
    pub fn view_mut<'a, T: candle_core::cuda_backend::CudaDType>(
        s: &'a mut CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<CudaViewMut<'a, T>> {
        let (start, end) = l.contiguous_offsets().ok_or_else(|| {
            candle_core::Error::Msg("assay op: in-place tensor must be contiguous".into())
        })?;
        Ok(s.as_cuda_slice_mut::<T>()?.slice_mut(start..end))
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

impl MaskedSoftmax {
    fn visible(&self, row: usize, pad: &[u32]) -> (usize, usize) {
        let m = self.0;
        let lo = pad[row / m.rows_per_batch] as usize;
        (lo, m.past + (row / m.rows_per_query.max(1)) % m.queries)
    }
}

/// The longest row the warp-per-row softmax kernels take (32 lanes × 32 values).
#[cfg(feature = "cuda")]
const WARP_ROW: usize = 1024;

/// Row kernel `name` (a block per row) or, for rows of at most [`WARP_ROW`] values, its twin
/// `name_warp` (a warp per row, eight rows a block, the row count as an extra argument after the
/// output); returns the kernel's name, whether it is the warp twin, and its launch shape.
#[cfg(feature = "cuda")]
fn row_kernel(
    name: &str,
    rows: usize,
    cols: usize,
) -> (
    String,
    bool,
    candle_core::cuda_backend::cudarc::driver::LaunchConfig,
) {
    if cols > WARP_ROW {
        return (name.to_string(), false, cuda::rows(rows));
    }
    let cfg = candle_core::cuda_backend::cudarc::driver::LaunchConfig {
        grid_dim: (rows.div_ceil(8).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    (format!("{name}_warp"), true, cfg)
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
        let (name, warp, cfg) = row_kernel("masked_softmax", rows, cols);
        let f = load_kernel!(dev, &name, x.dtype());
        let n = rows as u32;
        let pad = cuda::view::<u32>(pad, lp)?;
        let (s, t, past, rpb) = (
            cols as u32,
            self.0.queries as u32,
            self.0.past as u32,
            self.0.rows_per_batch as u32,
        );
        let scale = self.0.scale;
        let per_query = self.0.rows_per_query.max(1) as u32;
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let out = cuda::alloc::<$ty>(dev, rows * cols)?;
                let mut b = f.builder();
                b.arg(&input).arg(&out);
                if warp {
                    b.arg(&n);
                }
                b.arg(&s).arg(&t).arg(&past).arg(&rpb);
                b.arg(&pad).arg(&scale).arg(&per_query);
                // SAFETY: arguments match the kernel's signature (rows only for the warp twin);
                // a warp or a block per row.
                unsafe { b.launch(cfg) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = kernel_dtype!(x.dtype(), "masked softmax", launch);
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
        let (name, warp, cfg) = row_kernel("softmax_backward", rows, cols);
        let f = load_kernel!(dev, &name, y.dtype());
        let (n, s, scale) = (rows as u32, cols as u32, self.0);
        macro_rules! launch {
            ($ty:ty) => {{
                let (yv, gv) = (cuda::view::<$ty>(y, ly)?, cuda::view::<$ty>(g, lg)?);
                let out = cuda::alloc::<$ty>(dev, rows * cols)?;
                let mut b = f.builder();
                b.arg(&yv).arg(&gv).arg(&out);
                if warp {
                    b.arg(&n);
                }
                b.arg(&s).arg(&scale);
                // SAFETY: arguments match the kernel's signature (rows only for the warp twin);
                // a warp or a block per row.
                unsafe { b.launch(cfg) }.w()?;
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
        let f = load_kernel!(dev, "token_nll", x.dtype());
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
        kernel_dtype!(x.dtype(), "token nll", launch);
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
        let dx = token_nll_backward(x, t, res, &grad.narrow(1, 0, 1)?)?;
        Ok((Some(dx), None))
    }
}

/// The gradient of the logits for per-row loss gradients `grad` `[N, 1]` f32, given the logits,
/// targets and the `[N, 2]` result of [`token_nll`]: `grad · (softmax(x) − onehot(target))`, in the
/// logits' dtype.
pub fn token_nll_backward(
    logits: &Tensor,
    targets: &Tensor,
    nll: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<Tensor> {
    let ng = Tensor::cat(&[&nll.narrow(1, 0, 1)?, grad], 1)?.contiguous()?;
    logits
        .contiguous()?
        .apply_op3_no_bwd(&targets.contiguous()?, &ng, &TokenNllBackward)
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
        let f = load_kernel!(dev, "token_nll_backward", x.dtype());
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
        let out = kernel_dtype!(x.dtype(), "token nll backward", launch);
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
        let f = load_kernel!(dev, "gumbel_argmax", x.dtype());
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
        kernel_dtype!(x.dtype(), "gumbel argmax", launch);
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

// ---------------------------------------------------------------------------------------------

/// Launches an elementwise kernel of `kernels/assay.cu` (8 values a thread) over `n` values.
#[cfg(feature = "cuda")]
pub(crate) fn elementwise_config(
    n: usize,
) -> candle_core::cuda_backend::cudarc::driver::LaunchConfig {
    let threads = n.div_ceil(8).max(1) as u32;
    candle_core::cuda_backend::cudarc::driver::LaunchConfig {
        grid_dim: (threads.div_ceil(256), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `f(a, b)` value by value for two tensors of one shape, in f32, written in `a`'s dtype.
fn cpu_elementwise2(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
    f: impl Fn(f32, f32) -> f32,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (x, y) = (cpu_rows_f32(a, la)?, cpu_rows_f32(b, lb)?);
    let out = x.iter().zip(&y).map(|(&p, &q)| f(p, q)).collect();
    Ok((cpu_from_f32(out, a.dtype())?, la.shape().clone()))
}

/// Runs the elementwise kernel `name` (`(a, b, out, n)`) over two tensors of one shape.
#[cfg(feature = "cuda")]
fn cuda_elementwise2(
    name: &str,
    a: &candle_core::CudaStorage,
    la: &Layout,
    b: &candle_core::CudaStorage,
    lb: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    let n = la.shape().elem_count();
    let dev = a.device();
    let f = load_kernel!(dev, name, a.dtype());
    macro_rules! launch {
        ($ty:ty) => {{
            let (av, bv) = (cuda::view::<$ty>(a, la)?, cuda::view::<$ty>(b, lb)?);
            let out = cuda::alloc::<$ty>(dev, n)?;
            let mut builder = f.builder();
            builder.arg(&av).arg(&bv).arg(&out).arg(&n);
            // SAFETY: arguments match the kernel's signature.
            unsafe { builder.launch(elementwise_config(n)) }.w()?;
            candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
        }};
    }
    let out = match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) => launch!(f32),
        (DType::BF16, DType::BF16) => launch!(half::bf16),
        (x, y) => candle_core::bail!("{name}: {x:?} and {y:?} inputs"),
    };
    Ok((out, la.shape().clone()))
}

/// `silu(g) · u`, the SwiGLU gate, in one pass; differentiable in both.
struct SiluMul;

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_elementwise2(a, la, b, lb, |g, u| g / (1.0 + (-g).exp()) * u)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        la: &Layout,
        b: &candle_core::CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda_elementwise2("silu_mul", a, la, b, lb)
    }

    fn bwd(
        &self,
        g: &Tensor,
        u: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let both = g.apply_op3_no_bwd(u, &grad.contiguous()?, &SiluMulBackward)?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

/// `[dg; du]` (shape `[2, ...]`) of `silu(g) · u` for the output gradient `d`.
struct SiluMulBackward;

impl candle_core::CustomOp3 for SiluMulBackward {
    fn name(&self) -> &'static str {
        "silu-mul-backward"
    }

    fn cpu_fwd(
        &self,
        g: &CpuStorage,
        lg: &Layout,
        u: &CpuStorage,
        lu: &Layout,
        d: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g32, u32_, d32) = (
            cpu_rows_f32(g, lg)?,
            cpu_rows_f32(u, lu)?,
            cpu_rows_f32(d, ld)?,
        );
        let n = g32.len();
        let mut out = vec![0f32; 2 * n];
        for i in 0..n {
            let sg = 1.0 / (1.0 + (-g32[i]).exp());
            out[i] = d32[i] * u32_[i] * sg * (1.0 + g32[i] * (1.0 - sg));
            out[n + i] = d32[i] * g32[i] * sg;
        }
        let mut dims = vec![2];
        dims.extend_from_slice(lg.shape().dims());
        Ok((cpu_from_f32(out, g.dtype())?, Shape::from(dims)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        g: &candle_core::CudaStorage,
        lg: &Layout,
        u: &candle_core::CudaStorage,
        lu: &Layout,
        d: &candle_core::CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let n = lg.shape().elem_count();
        let dev = g.device();
        let f = load_kernel!(dev, "silu_mul_backward", g.dtype());
        macro_rules! launch {
            ($ty:ty) => {{
                let (gv, uv, dv) = (
                    cuda::view::<$ty>(g, lg)?,
                    cuda::view::<$ty>(u, lu)?,
                    cuda::view::<$ty>(d, ld)?,
                );
                let out = cuda::alloc::<$ty>(dev, 2 * n)?;
                let mut b = f.builder();
                b.arg(&gv).arg(&uv).arg(&dv).arg(&out).arg(&n);
                // SAFETY: arguments match the kernel's signature; out holds 2n values.
                unsafe { b.launch(elementwise_config(n)) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = kernel_dtype!(g.dtype(), "silu-mul backward", launch);
        let mut dims = vec![2];
        dims.extend_from_slice(lg.shape().dims());
        Ok((out, Shape::from(dims)))
    }
}

/// `silu(gate) · up` in one pass (one kernel forward, one backward), as SwiGLU needs.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if gate.shape() != up.shape() || gate.dtype() != up.dtype() {
        candle_core::bail!("silu_mul: {:?} gate and {:?} up", gate.shape(), up.shape());
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SiluMul)
}

/// `[dgate; dup]` (shape `[2, ...]`) of [`silu_mul`] for the output gradient `grad`.
pub fn silu_mul_backward(gate: &Tensor, up: &Tensor, grad: &Tensor) -> candle_core::Result<Tensor> {
    if gate.shape() != up.shape() || gate.shape() != grad.shape() {
        candle_core::bail!(
            "silu_mul_backward: {:?} gate, {:?} up, {:?} grad",
            gate.shape(),
            up.shape(),
            grad.shape()
        );
    }
    gate.contiguous()?
        .apply_op3_no_bwd(&up.contiguous()?, &grad.contiguous()?, &SiluMulBackward)
}

/// `a + b` for tensors of one shape and dtype, in one vectorised pass on the GPU.
struct FastAdd;

impl CustomOp2 for FastAdd {
    fn name(&self) -> &'static str {
        "fast-add"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu_elementwise2(a, la, b, lb, |p, q| p + q)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        la: &Layout,
        b: &candle_core::CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda_elementwise2("add", a, la, b, lb)
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(grad.clone())))
    }
}

/// `a + b` (same shape and dtype): one vectorised kernel on the GPU, candle's add elsewhere.
pub fn add(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() || a.device().is_cpu() {
        return a + b;
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, FastAdd)
}

// ---------------------------------------------------------------------------------------------

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
        let pad = CpuStorage::U32(vec![0; lq.shape().dims()[0]]);
        let lp = Layout::contiguous(lq.shape().dims()[0]);
        self.run((q, lq), (k, lk), (v, lv), |s, l| {
            Ok(MaskedSoftmax(self.0).cpu_fwd(s, l, &pad, &lp)?.0)
        })
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
        let b = lq.shape().dims()[0];
        let dev = q.device();
        let zeros = dev.alloc_zeros::<u32>(b)?;
        let pad = candle_core::CudaStorage::wrap_cuda_slice(zeros, dev.clone());
        let lp = Layout::contiguous(b);
        self.run((q, lq), (k, lk), (v, lv), |s, l| {
            Ok(MaskedSoftmax(self.0).cuda_fwd(s, l, &pad, &lp)?.0)
        })
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
/// `[B, kv, T, d]` (see [`CausalAttention`]); `mask.past` must be 0. Differentiable in all three.
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
        crate::fused::add_prefix(&dv, &probs.t()?.matmul(&g)?)?;
        let dp = g.matmul(&v.narrow(2, 0, t1)?.t()?)?;
        let ds = probs.apply_op2_no_bwd(&dp, &SoftmaxBackward(scale))?;
        dqs.push(ds.matmul(&k.narrow(2, 0, t1)?)?);
        crate::fused::add_prefix(&dk, &ds.t()?.matmul(&q.narrow(2, rows.0, rows.1)?)?)?;
    }
    Ok((
        Tensor::cat(&dqs, 2)?,
        dk.to_dtype(k.dtype())?,
        dv.to_dtype(v.dtype())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Composed reference of causal attention with an additive mask, differentiable by candle.
    fn reference_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, t: usize) -> Tensor {
        let rows = q.dim(2).unwrap();
        let mask: Vec<f32> = (0..rows)
            .flat_map(|r| (0..t).map(move |j| if j > r % t { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (rows, t), &Device::Cpu).unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
        let probs =
            candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        probs.matmul(v).unwrap()
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_softmax_and_blocked_attention_match_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        let on = |t: &Tensor| t.to_device(&dev).unwrap();
        let back = |t: &Tensor| t.to_device(&Device::Cpu).unwrap();
        // Short rows take the warp-per-row kernels, long rows the block-per-row ones.
        for cols in [300usize, 1024, 1500] {
            for dtype in [DType::F32, DType::BF16] {
                let x = randn(&[2, 24, cols], 21).to_dtype(dtype).unwrap();
                let g = randn(&[2, 24, cols], 22).to_dtype(dtype).unwrap();
                let pad = Tensor::new(&[3u32, 0], &Device::Cpu).unwrap();
                let mask = AttentionMask {
                    queries: 8,
                    past: cols - 8,
                    rows_per_batch: 24,
                    scale: 0.7,
                    rows_per_query: 3,
                };
                let cpu = masked_softmax(&x, &pad, mask).unwrap();
                let gpu = back(&masked_softmax(&on(&x), &on(&pad), mask).unwrap());
                let tol = if dtype == DType::F32 { 1e-6 } else { 1e-2 };
                let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
                assert!(
                    max_diff(&f32(&gpu), &f32(&cpu)) < tol,
                    "softmax {cols} {dtype:?}"
                );
                let op = SoftmaxBackward(0.7);
                let cpu = cpu.apply_op2_no_bwd(&g, &op).unwrap();
                let gpu = back(&on(&gpu).apply_op2_no_bwd(&on(&g), &op).unwrap());
                assert!(
                    max_diff(&f32(&gpu), &f32(&cpu)) < tol,
                    "backward {cols} {dtype:?}"
                );
            }
        }
        let (b, kv, groups, t, d) = (2, 2, 3, 300, 8);
        let q = randn(&[b, kv, groups * t, d], 23);
        let k = randn(&[b, kv, t, d], 24);
        let v = randn(&[b, kv, t, d], 25);
        let w = randn(&[b, kv, groups * t, d], 26);
        let cpu = causal_attention_blocks(&q, &k, &v, groups, 0.4).unwrap();
        let gpu = causal_attention_blocks(&on(&q), &on(&k), &on(&v), groups, 0.4).unwrap();
        assert!(max_diff(&back(&gpu), &cpu) < 1e-4);
        let cpu = causal_attention_blocks_backward(&q, &k, &v, &w, groups, 0.4).unwrap();
        let gpu = causal_attention_blocks_backward(&on(&q), &on(&k), &on(&v), &on(&w), groups, 0.4)
            .unwrap();
        assert!(max_diff(&back(&gpu.0), &cpu.0) < 1e-4);
        assert!(max_diff(&back(&gpu.1), &cpu.1) < 1e-4);
        assert!(max_diff(&back(&gpu.2), &cpu.2) < 1e-4);
    }

    /// `[B, kv, g·T, d]` head-major rows to position-major `[B, kv, T·g, d]`.
    fn position_major(x: &Tensor, groups: usize) -> Tensor {
        let (b, kv, rows, d) = x.dims4().unwrap();
        x.reshape((b, kv, groups, rows / groups, d))
            .unwrap()
            .transpose(2, 3)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, kv, rows, d))
            .unwrap()
    }

    /// Random head-major q `[B, kv, g·T, d]`, k, v `[B, kv, T, d]` as variables, and their causal
    /// mask with scale 0.5.
    fn attention_inputs(
        (b, kv, groups, t, d): (usize, usize, usize, usize, usize),
        seed: u64,
    ) -> (Var, Var, Var, AttentionMask) {
        let var = |shape: &[usize], s: u64| Var::from_tensor(&randn(shape, s)).unwrap();
        let mask = AttentionMask {
            queries: t,
            past: 0,
            rows_per_batch: kv * groups * t,
            scale: 0.5,
            rows_per_query: 1,
        };
        (
            var(&[b, kv, groups * t, d], seed),
            var(&[b, kv, t, d], seed + 1),
            var(&[b, kv, t, d], seed + 2),
            mask,
        )
    }

    #[test]
    fn blocked_attention_matches_the_whole_matrix_forward_and_backward() {
        // 300 positions: three chunks, the last one shorter.
        let (b, kv, groups, t, d) = (2, 2, 3, 300, 4);
        let (q, k, v, mask) = attention_inputs((b, kv, groups, t, d), 11);
        let scale = mask.scale;
        let whole = causal_attention(&q, &k, &v, mask).unwrap();
        let qp = position_major(&q, groups);
        let ours = causal_attention_blocks(&qp, &k, &v, groups, scale).unwrap();
        assert!(max_diff(&ours, &position_major(&whole, groups)) < 1e-5);
        let w = randn(&[b, kv, groups * t, d], 14);
        let store = (whole * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (dq, dk, dv) = causal_attention_blocks_backward(
            &qp,
            &k,
            &v,
            &position_major(&w, groups),
            groups,
            scale,
        )
        .unwrap();
        let dq_whole = position_major(store.get(&q).unwrap(), groups);
        assert!(max_diff(&dq, &dq_whole) < 1e-4);
        assert!(max_diff(&dk, store.get(&k).unwrap()) < 1e-4);
        assert!(max_diff(&dv, store.get(&v).unwrap()) < 1e-4);
        assert!(causal_attention_blocks(&qp, &k, &v, 2, scale).is_err());
    }

    #[test]
    fn causal_attention_matches_composed_ops_forward_and_backward() {
        let (b, kv, groups, t, d) = (2, 2, 3, 5, 4);
        let (q, k, v, mask) = attention_inputs((b, kv, groups, t, d), 1);
        let scale = mask.scale;
        let ours = causal_attention(&q, &k, &v, mask).unwrap();
        let theirs = reference_attention(&q, &k, &v, scale as f64, t);
        assert!(max_diff(&ours, &theirs) < 1e-5);
        let w = randn(&[b, kv, groups * t, d], 4);
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for var in [&q, &k, &v] {
            let (a, b) = (g1.get(var).unwrap(), g2.get(var).unwrap());
            assert!(
                max_diff(a, b) < 1e-4,
                "gradient differs by {}",
                max_diff(a, b)
            );
        }
    }

    #[test]
    fn masked_softmax_hides_left_padding_and_future_keys() {
        let x = randn(&[2, 3, 6], 5); // 2 batch entries, 3 queries, 6 keys, 3 cached before
        let pad = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let mask = AttentionMask {
            queries: 3,
            past: 3,
            rows_per_batch: 3,
            scale: 1.0,
            rows_per_query: 1,
        };
        let p = masked_softmax(&x, &pad, mask)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        for (b, rows) in p.iter().enumerate() {
            for (q, row) in rows.iter().enumerate() {
                let lo = if b == 0 { 0 } else { 2 };
                for (j, &v) in row.iter().enumerate() {
                    assert_eq!(v == 0.0, j < lo || j > 3 + q, "b{b} q{q} key {j}: {v}");
                }
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn silu_mul_and_token_nll_match_composed_ops_with_gradients() {
        let g = Var::from_tensor(&randn(&[3, 7], 6)).unwrap();
        let u = Var::from_tensor(&randn(&[3, 7], 7)).unwrap();
        let ours = silu_mul(&g, &u).unwrap();
        let theirs = (g.silu().unwrap() * u.as_tensor()).unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-6);
        let a = ours.sum_all().unwrap().backward().unwrap();
        let b = theirs.sum_all().unwrap().backward().unwrap();
        assert!(max_diff(a.get(&g).unwrap(), b.get(&g).unwrap()) < 1e-5);
        assert!(max_diff(a.get(&u).unwrap(), b.get(&u).unwrap()) < 1e-5);

        let logits = Var::from_tensor(&randn(&[4, 9], 8)).unwrap();
        let targets = Tensor::new(&[1u32, 8, 0, 4], &Device::Cpu).unwrap();
        let nll = token_nll(&logits, &targets)
            .unwrap()
            .narrow(1, 0, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let want = lsm
            .gather(&targets.unsqueeze(1).unwrap(), 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .neg()
            .unwrap();
        assert!(max_diff(&nll, &want) < 1e-5);
        let a = nll.sum_all().unwrap().backward().unwrap();
        let b = want.sum_all().unwrap().backward().unwrap();
        assert!(max_diff(a.get(&logits).unwrap(), b.get(&logits).unwrap()) < 1e-5);
    }

    #[test]
    fn device_sampler_draws_what_the_host_sampler_draws() {
        let logits = randn(&[3, 50], 9);
        let keys = Tensor::new(&[11i64, -5, 42], &Device::Cpu).unwrap();
        let rows = logits.to_vec2::<f32>().unwrap();
        for (temperature, step) in [(0.0f32, 0u32), (0.7, 3), (1.3, 9)] {
            let drawn = sample_rows(&logits, &keys, step, temperature)
                .unwrap()
                .to_vec1::<u32>()
                .unwrap();
            for (r, key) in [11u64, (-5i64) as u64, 42].into_iter().enumerate() {
                let inv = if temperature > 0.0 {
                    1.0 / temperature
                } else {
                    0.0
                };
                let all = rows[r].iter().enumerate().map(|(i, &l)| (i as u32, l));
                assert_eq!(drawn[r], gumbel_choice(all, key, step, inv));
            }
        }
    }
}
