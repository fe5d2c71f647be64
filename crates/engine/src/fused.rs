//! Fused operations for the hand-written training pass (`train::backprop`) and the optimizer.
//!
//! Unlike [`crate::ops`], nothing here takes part in candle's autograd: each function is one
//! kernel launch (on CUDA) that the caller sequences itself, forward and backward. That is the
//! point: candle's backward accumulates every gradient as `zeros + grad` and keeps every
//! intermediate of a composed op alive, which made training 2–4× slower than PyTorch (see
//! `docs/gpu-notes.md`).
//!
//! Each op has a CPU implementation here, in f32 whatever the storage dtype and in a fixed order
//! (so CPU training is bit-for-bit reproducible), and a CUDA kernel in `kernels/assay.cu` with the
//! same arithmetic. Shapes are checked up front and reported as errors, never as panics.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};

use candle_core::backend::BackendStorage;

use crate::ops::{cpu_from_f32, cpu_rows_f32, cpu_u32};
#[cfg(feature = "cuda")]
use crate::ops::{cuda, elementwise_config, kernel_dtype, load_kernel};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::WrapErr;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};

// ---------------------------------------------------------------------------------------------
// RMSNorm

/// `y = w · round(x · rstd)` with `rstd = 1 / sqrt(mean(x²) + eps)` per row, as transformers'
/// Llama/Qwen2 RMSNorm: normalised in f32, rounded to the input dtype, then scaled.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    check_norm(x, w, "rms_norm")?;
    x.contiguous()?
        .apply_op2_no_bwd(&w.contiguous()?, &RmsNorm(eps as f32))
}

/// The input gradient of [`rms_norm`]: `dx = rstd · (g − x̂ · mean(g · x̂))` with `g = dy · w` and
/// `x̂ = x · rstd`, in `x`'s dtype.
pub fn rms_norm_backward(
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    check_norm(x, w, "rms_norm_backward")?;
    same_shape(x, dy, "rms_norm_backward")?;
    x.contiguous()?.apply_op3_no_bwd(
        &w.contiguous()?,
        &dy.contiguous()?,
        &RmsNormBackward(eps as f32),
    )
}

/// The weight gradient of [`rms_norm`]: `dw = Σ_rows dy · round(x̂)`, `[H]` in f32.
pub fn rms_norm_weight_grad(x: &Tensor, dy: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    same_shape(x, dy, "rms_norm_weight_grad")?;
    x.contiguous()?
        .apply_op2_no_bwd(&dy.contiguous()?, &RmsNormWeightGrad(eps as f32))
}

fn check_norm(x: &Tensor, w: &Tensor, what: &str) -> candle_core::Result<()> {
    let h = x.dim(candle_core::D::Minus1)?;
    if w.dims() != [h] || w.dtype() != x.dtype() {
        candle_core::bail!(
            "{what}: weight {:?} {:?} for rows of {h} {:?}",
            w.shape(),
            w.dtype(),
            x.dtype()
        );
    }
    Ok(())
}

fn same_shape(a: &Tensor, b: &Tensor, what: &str) -> candle_core::Result<()> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        candle_core::bail!(
            "{what}: {:?} {:?} and {:?} {:?} differ",
            a.shape(),
            a.dtype(),
            b.shape(),
            b.dtype()
        );
    }
    Ok(())
}

fn rows_of(l: &Layout) -> (usize, usize) {
    let dims = l.shape().dims();
    let cols = dims.last().copied().unwrap_or(1).max(1);
    (l.shape().elem_count() / cols, cols)
}

/// Rounds `v` to `dtype` and back, as a kernel does when it stores an intermediate.
fn round_to(v: f32, dtype: DType) -> f32 {
    match dtype {
        DType::BF16 => half::bf16::from_f32(v).to_f32(),
        DType::F16 => half::f16::from_f32(v).to_f32(),
        _ => v,
    }
}

fn rstd(row: &[f32], eps: f32) -> f32 {
    let sum: f32 = row.iter().map(|v| v * v).sum();
    1.0 / (sum / row.len() as f32 + eps).sqrt()
}

struct RmsNorm(f32);

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(lx);
        let (xs, ws) = (cpu_rows_f32(x, lx)?, cpu_rows_f32(w, lw)?);
        let dtype = x.dtype();
        let mut out = Vec::with_capacity(xs.len());
        for row in xs.chunks(h) {
            let r = rstd(row, self.0);
            out.extend(
                row.iter()
                    .zip(&ws)
                    .map(|(&v, &wj)| wj * round_to(v * r, dtype)),
            );
        }
        Ok((cpu_from_f32(out, dtype)?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (rows, h) = rows_of(lx);
        let dev = x.device();
        let f = load_kernel!(dev, "rms_norm", x.dtype());
        let (h32, eps) = (h as u32, self.0);
        macro_rules! launch {
            ($ty:ty) => {{
                let (xv, wv) = (cuda::view::<$ty>(x, lx)?, cuda::view::<$ty>(w, lw)?);
                let out = cuda::alloc::<$ty>(dev, rows * h)?;
                if rows > 0 {
                    let mut b = f.builder();
                    b.arg(&xv).arg(&wv).arg(&out).arg(&h32).arg(&eps);
                    // SAFETY: arguments match the kernel's signature; one block per row.
                    unsafe { b.launch(cuda::rows(rows)) }.w()?;
                }
                CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match (x.dtype(), w.dtype()) {
            (DType::F32, DType::F32) => launch!(f32),
            (DType::BF16, DType::BF16) => launch!(half::bf16),
            (a, b) => candle_core::bail!("rms_norm: {a:?} rows with {b:?} weight"),
        };
        Ok((out, lx.shape().clone()))
    }
}

struct RmsNormBackward(f32);

impl CustomOp3 for RmsNormBackward {
    fn name(&self) -> &'static str {
        "fused-rms-norm-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        dy: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(lx);
        let (xs, ws, ds) = (
            cpu_rows_f32(x, lx)?,
            cpu_rows_f32(w, lw)?,
            cpu_rows_f32(dy, ld)?,
        );
        let mut out = Vec::with_capacity(xs.len());
        for (row, drow) in xs.chunks(h).zip(ds.chunks(h)) {
            let r = rstd(row, self.0);
            let dot: f32 = row
                .iter()
                .zip(drow)
                .zip(&ws)
                .map(|((&v, &d), &wj)| d * wj * v * r)
                .sum();
            let mean = dot / h as f32;
            out.extend(
                row.iter()
                    .zip(drow)
                    .zip(&ws)
                    .map(|((&v, &d), &wj)| r * (d * wj - v * r * mean)),
            );
        }
        Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
        dy: &CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (rows, h) = rows_of(lx);
        let dev = x.device();
        let f = load_kernel!(dev, "rms_norm_backward", x.dtype());
        let (h32, eps) = (h as u32, self.0);
        macro_rules! launch {
            ($ty:ty) => {{
                let (xv, wv, dv) = (
                    cuda::view::<$ty>(x, lx)?,
                    cuda::view::<$ty>(w, lw)?,
                    cuda::view::<$ty>(dy, ld)?,
                );
                let out = cuda::alloc::<$ty>(dev, rows * h)?;
                if rows > 0 {
                    let mut b = f.builder();
                    b.arg(&xv).arg(&wv).arg(&dv).arg(&out).arg(&h32).arg(&eps);
                    // SAFETY: arguments match the kernel's signature; one block per row.
                    unsafe { b.launch(cuda::rows(rows)) }.w()?;
                }
                CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match (x.dtype(), w.dtype(), dy.dtype()) {
            (DType::F32, DType::F32, DType::F32) => launch!(f32),
            (DType::BF16, DType::BF16, DType::BF16) => launch!(half::bf16),
            (a, b, c) => {
                candle_core::bail!("rms_norm_backward: {a:?} rows, {b:?} weight, {c:?} grad")
            }
        };
        Ok((out, lx.shape().clone()))
    }
}

/// Row strips of the weight gradient's first stage: enough blocks to fill an H100 (132 SMs) a
/// few times over, few enough that the `[strips, H]` f32 partials stay small next to the input.
#[cfg(feature = "cuda")]
const WGRAD_STRIPS: usize = 1024;
/// Rows up to this wide take the weight gradient's narrow kernel (one group of 8 values a
/// thread, one chunk); wider ones the wide kernel, in chunks of `4 ·` this many columns.
#[cfg(feature = "cuda")]
const WGRAD_NARROW: usize = 8 * cuda::BLOCK as usize;

struct RmsNormWeightGrad(f32);

impl CustomOp2 for RmsNormWeightGrad {
    fn name(&self) -> &'static str {
        "fused-rms-norm-weight-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        dy: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(lx);
        let (xs, ds) = (cpu_rows_f32(x, lx)?, cpu_rows_f32(dy, ld)?);
        let dtype = x.dtype();
        let mut dw = vec![0f32; h];
        for (row, drow) in xs.chunks(h).zip(ds.chunks(h)) {
            let r = rstd(row, self.0);
            for ((acc, &v), &d) in dw.iter_mut().zip(row).zip(drow) {
                *acc += d * round_to(v * r, dtype);
            }
        }
        Ok((CpuStorage::F32(dw), Shape::from(h)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        dy: &CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (rows, h) = rows_of(lx);
        let dev = x.device();
        if rows == 0 {
            let dw = dev.alloc_zeros::<f32>(h)?;
            return Ok((
                CudaStorage::wrap_cuda_slice(dw, dev.clone()),
                Shape::from(h),
            ));
        }
        let per_strip = rows.div_ceil(WGRAD_STRIPS);
        let strips = rows.div_ceil(per_strip);
        let partial = cuda::alloc::<f32>(dev, strips * h)?;
        let (name, chunk) = if h <= WGRAD_NARROW {
            ("rms_norm_wgrad_partial_narrow", WGRAD_NARROW)
        } else {
            ("rms_norm_wgrad_partial_wide", 4 * WGRAD_NARROW)
        };
        let partial_cfg = LaunchConfig {
            grid_dim: (strips as u32, h.div_ceil(chunk) as u32, 1),
            block_dim: (cuda::BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let f = load_kernel!(dev, name, x.dtype());
        let (n32, h32, per32, eps) = (rows as u32, h as u32, per_strip as u32, self.0);
        macro_rules! launch {
            ($ty:ty) => {{
                let (xv, dv) = (cuda::view::<$ty>(x, lx)?, cuda::view::<$ty>(dy, ld)?);
                let mut b = f.builder();
                b.arg(&xv)
                    .arg(&dv)
                    .arg(&partial)
                    .arg(&n32)
                    .arg(&h32)
                    .arg(&per32);
                b.arg(&eps);
                // SAFETY: arguments match the kernel's signature; the (strip, chunk) blocks
                // write every value of `partial`.
                unsafe { b.launch(partial_cfg) }.w()?;
            }};
        }
        match (x.dtype(), dy.dtype()) {
            (DType::F32, DType::F32) => launch!(f32),
            (DType::BF16, DType::BF16) => launch!(half::bf16),
            (a, b) => candle_core::bail!("rms_norm_weight_grad: {a:?} rows with {b:?} grad"),
        }
        let dw = cuda::alloc::<f32>(dev, h)?;
        let reduce = load_kernel!(dev, "rms_norm_wgrad_reduce", DType::F32);
        let strips32 = strips as u32;
        let mut b = reduce.builder();
        b.arg(&partial).arg(&dw).arg(&strips32).arg(&h32);
        let cfg = LaunchConfig {
            grid_dim: (h.div_ceil(8) as u32, 1, 1),
            block_dim: (cuda::BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: arguments match the kernel's signature; 8 columns a block cover all of dw.
        unsafe { b.launch(cfg) }.w()?;
        Ok((
            CudaStorage::wrap_cuda_slice(dw, dev.clone()),
            Shape::from(h),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Heads and rotary position embedding

/// The rotation of [`split_heads`] and [`merge_heads`] (rotate-half layout, as transformers): one
/// table `[B, T, D]` holding `cos` then `sin` for each position, built once per pass and read by
/// every projection of every layer.
#[derive(Debug, Clone)]
pub struct Rotation {
    table: Tensor,
}

impl Rotation {
    /// From `cos`, `sin` `[B, T, D/2]` in the activations' dtype.
    pub fn new(cos: &Tensor, sin: &Tensor) -> candle_core::Result<Self> {
        if cos.rank() != 3 || cos.shape() != sin.shape() || cos.dtype() != sin.dtype() {
            candle_core::bail!(
                "rotation: cos {:?} {:?} and sin {:?} {:?} must be one [B, T, D/2] shape and dtype",
                cos.shape(),
                cos.dtype(),
                sin.shape(),
                sin.dtype()
            );
        }
        Ok(Self {
            table: Tensor::cat(&[cos, sin], 2)?.contiguous()?,
        })
    }
}

/// A projection's output `lin` `[B·T, heads·D]` (+ `bias` `[heads·D]`) as heads `[B, heads, T, D]`,
/// rotated by `rope` when given: one pass instead of a bias add, a transpose copy and a rope.
pub fn split_heads(
    lin: &Tensor,
    bias: Option<&Tensor>,
    rope: Option<&Rotation>,
    batch: usize,
    heads: usize,
) -> candle_core::Result<Tensor> {
    split_heads_grouped(lin, bias, rope, batch, heads, heads)
}

/// As [`split_heads`], into position-major groups `[B, kv, T·g, D]` for `kv` key heads of
/// `g = heads / kv` query heads each (row `t·g + i` is head `kv·g + i` at position `t`): the
/// layout of [`crate::ops::causal_attention_blocks`]. With `kv == heads` it is `split_heads`.
pub fn split_heads_grouped(
    lin: &Tensor,
    bias: Option<&Tensor>,
    rope: Option<&Rotation>,
    batch: usize,
    heads: usize,
    kv: usize,
) -> candle_core::Result<Tensor> {
    let (n, width) = lin.dims2()?;
    if batch == 0 || n % batch != 0 || heads == 0 || width % heads != 0 {
        candle_core::bail!("split_heads: [{n}, {width}] is not {batch} sequences of {heads} heads");
    }
    if kv == 0 || !heads.is_multiple_of(kv) {
        candle_core::bail!("split_heads: {heads} heads do not form groups over {kv} key heads");
    }
    let op = Heads {
        batch,
        time: n / batch,
        heads,
        dim: width / heads,
        to_heads: true,
        groups: heads / kv,
    };
    op.check_rope(rope)?;
    let zeros;
    let bias = match bias {
        Some(b) => {
            if b.dims() != [width] || b.dtype() != lin.dtype() {
                candle_core::bail!("split_heads: bias {:?} for width {width}", b.shape());
            }
            b.contiguous()?
        }
        None => {
            zeros = Tensor::zeros(width, lin.dtype(), lin.device())?;
            zeros
        }
    };
    op.apply(&lin.contiguous()?, &bias, rope)
}

/// Heads `x` `[B, heads, T, D]` back to rows `[B·T, heads·D]`, rotated by the inverse of `rope`
/// when given. With a rotation this is the backward of [`split_heads`] (a rotation's adjoint is
/// its inverse); without, it is the layout change after attention.
pub fn merge_heads(x: &Tensor, rope: Option<&Rotation>) -> candle_core::Result<Tensor> {
    let heads = x.dim(1)?;
    merge_heads_grouped(x, heads, rope)
}

/// The inverse of [`split_heads_grouped`]: position-major groups `x` `[B, kv, T·g, D]` of
/// `heads` query heads back to rows `[B·T, heads·D]`, rotated by the inverse of `rope` when given.
pub fn merge_heads_grouped(
    x: &Tensor,
    heads: usize,
    rope: Option<&Rotation>,
) -> candle_core::Result<Tensor> {
    let (batch, kv, rows, dim) = x.dims4()?;
    if kv == 0 || !heads.is_multiple_of(kv) || !rows.is_multiple_of(heads / kv) {
        candle_core::bail!(
            "merge_heads: {:?} is not groups of {heads} heads",
            x.shape()
        );
    }
    let groups = heads / kv;
    let op = Heads {
        batch,
        time: rows / groups,
        heads,
        dim,
        to_heads: false,
        groups,
    };
    op.check_rope(rope)?;
    let no_bias = Tensor::zeros(heads * dim, x.dtype(), x.device())?;
    op.apply(&x.contiguous()?, &no_bias, rope)
}

/// The layout change (and rotation) between `[B, T, heads, D]` rows and `[B, heads, T, D]` heads.
#[derive(Debug, Clone, Copy)]
struct Heads {
    batch: usize,
    time: usize,
    heads: usize,
    dim: usize,
    /// Rows to heads (rotating by +θ), or heads to rows (rotating by −θ).
    to_heads: bool,
    /// Query heads per key head on the heads side, `[B, heads / groups, T, groups, D]`; 1 for
    /// the plain `[B, heads, T, D]`.
    groups: usize,
}

impl Heads {
    fn check_rope(&self, rope: Option<&Rotation>) -> candle_core::Result<()> {
        if let Some(r) = rope {
            let want = [self.batch, self.time, self.dim];
            if !self.dim.is_multiple_of(2) || r.table.dims() != want {
                candle_core::bail!(
                    "rotation table {:?} for {} sequences of {} tokens, head dim {}",
                    r.table.shape(),
                    self.batch,
                    self.time,
                    self.dim
                );
            }
        }
        Ok(())
    }

    fn out_shape(&self) -> Shape {
        if self.to_heads {
            let kv = self.heads / self.groups;
            Shape::from((self.batch, kv, self.time * self.groups, self.dim))
        } else {
            Shape::from((self.batch * self.time, self.heads * self.dim))
        }
    }

    fn apply(
        self,
        x: &Tensor,
        bias: &Tensor,
        rope: Option<&Rotation>,
    ) -> candle_core::Result<Tensor> {
        match rope {
            Some(r) => x.apply_op3_no_bwd(bias, &r.table, &HeadsRope(self)),
            None => x.apply_op2_no_bwd(bias, &HeadsPlain(self)),
        }
    }

    /// Index in the rows layout `[B, T, heads, D]` of element (b, h, t, d).
    fn row_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        ((b * self.time + t) * self.heads + h) * self.dim + d
    }

    /// Index in the heads layout `[B, kv, T, groups, D]` (`[B, heads, T, D]` for one group).
    fn head_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        let (g, kv) = (self.groups, self.heads / self.groups);
        (((b * kv + h / g) * self.time + t) * g + h % g) * self.dim + d
    }

    /// The CPU twin of the kernel: `table` `[B, T, D]` holds cos then sin halves, or None.
    fn cpu(&self, x: &[f32], bias: &[f32], table: Option<&[f32]>, dtype: DType) -> Vec<f32> {
        let (half, dim) = (self.dim / 2, self.dim);
        let mut out = vec![0f32; x.len()];
        let mut pair = vec![0f32; dim];
        for b in 0..self.batch {
            for t in 0..self.time {
                for h in 0..self.heads {
                    let (src, dst) = if self.to_heads {
                        (self.row_index(b, h, t, 0), self.head_index(b, h, t, 0))
                    } else {
                        (self.head_index(b, h, t, 0), self.row_index(b, h, t, 0))
                    };
                    for d in 0..dim {
                        // The bias is added (and rounded, as a separate add would) first.
                        pair[d] = round_to(x[src + d] + bias[h * dim + d], dtype);
                    }
                    let Some(table) = table else {
                        out[dst..dst + dim].copy_from_slice(&pair);
                        continue;
                    };
                    let row = (b * self.time + t) * dim;
                    let sign = if self.to_heads { 1.0 } else { -1.0 };
                    for i in 0..half {
                        let (c, s) = (table[row + i], sign * table[row + half + i]);
                        let (lo, hi) = (pair[i], pair[half + i]);
                        out[dst + i] = lo * c - hi * s;
                        out[dst + half + i] = hi * c + lo * s;
                    }
                }
            }
        }
        out
    }

    /// Blocks (token tile, head, sequence) of threads (unit, token), each thread taking
    /// `per_thread` values of a token's head: the kernels index without dividing.
    #[cfg(feature = "cuda")]
    fn launch_config(&self, per_thread: usize) -> candle_core::Result<LaunchConfig> {
        let units = self.dim.div_ceil(per_thread).max(1);
        let x = units.min(cuda::BLOCK as usize);
        let y = (cuda::BLOCK as usize / x).max(1);
        if self.heads > 65535 || self.batch > 65535 {
            candle_core::bail!(
                "heads kernel: {} sequences of {} heads",
                self.batch,
                self.heads
            );
        }
        Ok(LaunchConfig {
            grid_dim: (
                self.time.div_ceil(y) as u32,
                self.heads as u32,
                self.batch as u32,
            ),
            block_dim: (x as u32, y as u32, 1),
            shared_mem_bytes: 0,
        })
    }

    /// Runs `heads_plain` (no table) or `heads_rope` on the GPU.
    #[cfg(feature = "cuda")]
    fn cuda(
        &self,
        (x, lx): (&CudaStorage, &Layout),
        (bias, lb): (&CudaStorage, &Layout),
        table: Option<(&CudaStorage, &Layout)>,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let dev = x.device();
        let n = self.batch * self.time * self.heads * self.dim;
        // 8 values of a head a thread without rotation, 8 rotation pairs (16 values) with.
        let (name, cfg) = match table {
            Some(_) => ("heads_rope", self.launch_config(16)?),
            None => ("heads_plain", self.launch_config(8)?),
        };
        let f = load_kernel!(dev, name, x.dtype());
        let dims = (
            self.time as u32,
            self.heads as u32,
            self.dim as u32,
            self.to_heads as u32,
            self.groups as u32,
        );
        macro_rules! launch {
            ($ty:ty) => {{
                let (xv, bv) = (cuda::view::<$ty>(x, lx)?, cuda::view::<$ty>(bias, lb)?);
                let tv = match table {
                    Some((t, lt)) => {
                        if t.dtype() != x.dtype() {
                            candle_core::bail!(
                                "rotation tables {:?} for {:?} heads",
                                t.dtype(),
                                x.dtype()
                            );
                        }
                        Some(cuda::view::<$ty>(t, lt)?)
                    }
                    None => None,
                };
                let out = cuda::alloc::<$ty>(dev, n)?;
                if n > 0 {
                    let mut b = f.builder();
                    b.arg(&xv).arg(&bv);
                    if let Some(tv) = &tv {
                        b.arg(tv);
                    }
                    b.arg(&out)
                        .arg(&dims.0)
                        .arg(&dims.1)
                        .arg(&dims.2)
                        .arg(&dims.3)
                        .arg(&dims.4);
                    // SAFETY: arguments match the kernel's signature (the table only for
                    // heads_rope); the grid covers every (b, h, t) and the threads all of D.
                    unsafe { b.launch(cfg) }.w()?;
                }
                CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match (x.dtype(), bias.dtype()) {
            (DType::F32, DType::F32) => launch!(f32),
            (DType::BF16, DType::BF16) => launch!(half::bf16),
            (a, b) => candle_core::bail!("heads: {a:?} values with {b:?} bias"),
        };
        Ok((out, self.out_shape()))
    }
}

struct HeadsPlain(Heads);

impl CustomOp2 for HeadsPlain {
    fn name(&self) -> &'static str {
        "fused-heads"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        bias: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = self.0.cpu(
            &cpu_rows_f32(x, lx)?,
            &cpu_rows_f32(bias, lb)?,
            None,
            x.dtype(),
        );
        Ok((cpu_from_f32(out, x.dtype())?, self.0.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        bias: &CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        self.0.cuda((x, lx), (bias, lb), None)
    }
}

struct HeadsRope(Heads);

impl CustomOp3 for HeadsRope {
    fn name(&self) -> &'static str {
        "fused-heads-rope"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        bias: &CpuStorage,
        lb: &Layout,
        table: &CpuStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = self.0.cpu(
            &cpu_rows_f32(x, lx)?,
            &cpu_rows_f32(bias, lb)?,
            Some(&cpu_rows_f32(table, lt)?),
            x.dtype(),
        );
        Ok((cpu_from_f32(out, x.dtype())?, self.0.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        bias: &CudaStorage,
        lb: &Layout,
        table: &CudaStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        self.0.cuda((x, lx), (bias, lb), Some((table, lt)))
    }
}

// ---------------------------------------------------------------------------------------------
// Scatter-add of rows (embedding and row-gather backward)

/// `out[index[i]] += src[i]` into `rows` zero rows, accumulated in f32: the backward of an
/// embedding lookup or a row gather. `src` `[n, H]`, `index` `[n]` u32 (each `< rows`).
///
/// On the CPU rows are added in order (reproducible) and an index `>= rows` is an error; on CUDA
/// rows are added with atomic adds (order free, so not bit-reproducible) and a row whose index is
/// `>= rows` is skipped, since a kernel cannot report it without a read-back.
pub fn scatter_add_rows(src: &Tensor, index: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let (n, _) = src.dims2()?;
    if index.dims() != [n] || index.dtype() != DType::U32 {
        candle_core::bail!(
            "scatter_add_rows: index {:?} {:?} for {n} rows",
            index.shape(),
            index.dtype()
        );
    }
    src.contiguous()?
        .apply_op2_no_bwd(&index.contiguous()?, &ScatterAddRows(rows))
}

struct ScatterAddRows(usize);

impl CustomOp2 for ScatterAddRows {
    fn name(&self) -> &'static str {
        "fused-scatter-add-rows"
    }

    fn cpu_fwd(
        &self,
        src: &CpuStorage,
        ls: &Layout,
        index: &CpuStorage,
        li: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(ls);
        let (values, index) = (cpu_rows_f32(src, ls)?, cpu_u32(index, li)?);
        let mut out = vec![0f32; self.0 * h];
        for (row, &to) in values.chunks(h).zip(&index) {
            let to = to as usize;
            if to >= self.0 {
                candle_core::bail!("scatter_add_rows: index {to} out of {} rows", self.0);
            }
            for (o, v) in out[to * h..(to + 1) * h].iter_mut().zip(row) {
                *o += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((self.0, h))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        src: &CudaStorage,
        ls: &Layout,
        index: &CudaStorage,
        li: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (n, h) = rows_of(ls);
        let dev = src.device();
        let f = load_kernel!(dev, "scatter_add_rows", src.dtype());
        let out = dev.alloc_zeros::<f32>(self.0 * h)?;
        let iv = cuda::view::<u32>(index, li)?;
        let (h32, rows32) = (h as u32, self.0 as u32);
        macro_rules! launch {
            ($ty:ty) => {{
                let sv = cuda::view::<$ty>(src, ls)?;
                let mut b = f.builder();
                b.arg(&sv).arg(&iv).arg(&out).arg(&h32).arg(&rows32);
                // SAFETY: arguments match the kernel's signature; one block per source row,
                // rows past `self.0` skipped in the kernel.
                unsafe { b.launch(cuda::rows(n)) }.w()?;
            }};
        }
        if n > 0 && h > 0 {
            kernel_dtype!(src.dtype(), "scatter_add_rows", launch)
        }
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from((self.0, h)),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Prefix accumulation (blocked attention's key gradients)

/// `acc[.., :t, :] += part` in place, for `acc` `[.., T, D]` f32 (contiguous) and `part`
/// `[.., t, D]` (any float dtype, `t ≤ T`, same leading dims): one pass instead of a narrow, an
/// add, a cast and a copy back.
pub fn add_prefix(acc: &Tensor, part: &Tensor) -> candle_core::Result<()> {
    let (ad, pd) = (acc.dims(), part.dims());
    let rank = ad.len();
    let ok = rank >= 2
        && pd.len() == rank
        && ad[..rank - 2] == pd[..rank - 2]
        && ad[rank - 1] == pd[rank - 1]
        && pd[rank - 2] <= ad[rank - 2];
    if !ok || acc.dtype() != DType::F32 || !acc.is_contiguous() {
        candle_core::bail!(
            "add_prefix: {:?} {:?} into {:?} {:?}",
            part.shape(),
            part.dtype(),
            acc.shape(),
            acc.dtype()
        );
    }
    let prefix = PrefixRows {
        part_row: pd[rank - 2] * pd[rank - 1],
        acc_row: ad[rank - 2] * ad[rank - 1],
    };
    acc.inplace_op2(&part.contiguous()?, &prefix)
}

/// Row lengths of [`add_prefix`]: each of `part`'s rows adds into the start of one of `acc`'s.
struct PrefixRows {
    part_row: usize,
    acc_row: usize,
}

impl candle_core::InplaceOp2 for PrefixRows {
    fn name(&self) -> &'static str {
        "fused-add-prefix"
    }

    fn cpu_fwd(
        &self,
        acc: &mut CpuStorage,
        la: &Layout,
        part: &CpuStorage,
        lp: &Layout,
    ) -> candle_core::Result<()> {
        let values = cpu_rows_f32(part, lp)?;
        let (start, end) = la
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("add_prefix: contiguous f32 expected".into()))?;
        let CpuStorage::F32(acc) = acc else {
            candle_core::bail!("add_prefix: f32 accumulator expected");
        };
        let acc = &mut acc[start..end];
        for (row, chunk) in values.chunks(self.part_row.max(1)).enumerate() {
            let dst = &mut acc[row * self.acc_row..row * self.acc_row + chunk.len()];
            for (d, v) in dst.iter_mut().zip(chunk) {
                *d += v;
            }
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        acc: &mut CudaStorage,
        la: &Layout,
        part: &CudaStorage,
        lp: &Layout,
    ) -> candle_core::Result<()> {
        let n = lp.shape().elem_count();
        if n == 0 {
            return Ok(());
        }
        let dev = acc.device().clone();
        let f = load_kernel!(dev, "add_prefix", part.dtype());
        let (l, m) = (self.part_row as u32, self.acc_row as u32);
        let mut dst = cuda::view_mut::<f32>(acc, la)?;
        let rows = n / self.part_row.max(1);
        let cfg = LaunchConfig {
            grid_dim: (l.div_ceil(cuda::BLOCK), rows.min(65535) as u32, 1),
            block_dim: (cuda::BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        macro_rules! launch {
            ($ty:ty) => {{
                let pv = cuda::view::<$ty>(part, lp)?;
                let mut b = f.builder();
                b.arg(&mut dst).arg(&pv).arg(&rows).arg(&l).arg(&m);
                // SAFETY: arguments match the kernel's signature; every part index maps into acc.
                unsafe { b.launch(cfg) }.w()?;
            }};
        }
        kernel_dtype!(part.dtype(), "add_prefix", launch);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// AdamW

/// One AdamW step's constants (torch's single-tensor AdamW; see `train::optim`).
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// The 1-based step, for bias correction.
    pub step: u64,
}

/// Updates in place the moments `mv` `[2, n]` f32 (row 0: m, row 1: v) with `grad` (any float
/// dtype, `n` values): `m += (1 − β₁)(g − m)`, `v = β₂ v + (1 − β₂) g²`.
pub fn adamw_moments(mv: &Tensor, grad: &Tensor, step: AdamWStep) -> candle_core::Result<()> {
    let n = grad.elem_count();
    if mv.dims() != [2, n] || mv.dtype() != DType::F32 || !mv.is_contiguous() {
        candle_core::bail!("adamw_moments: state {:?} for {n} values", mv.shape());
    }
    mv.inplace_op2(&grad.contiguous()?, &Moments(step))
}

/// Applies the update in place to `param` (any float dtype) from its moments `mv` `[2, n]`:
/// `θ ← θ(1 − lr·wd) − lr/(1 − β₁ᵗ) · m / (sqrt(v)/sqrt(1 − β₂ᵗ) + ε)`, in f32, then rounded.
pub fn adamw_apply(param: &Tensor, mv: &Tensor, step: AdamWStep) -> candle_core::Result<()> {
    let n = param.elem_count();
    if mv.dims() != [2, n] || mv.dtype() != DType::F32 || !param.is_contiguous() {
        candle_core::bail!("adamw_apply: state {:?} for {n} values", mv.shape());
    }
    param.inplace_op2(mv, &Apply(step))
}

/// Weight decay alone, for a parameter without a gradient this step.
pub fn decay_only(param: &Tensor, step: AdamWStep) -> candle_core::Result<()> {
    param.inplace_op1(&Decay(step))
}

struct Moments(AdamWStep);
struct Apply(AdamWStep);
struct Decay(AdamWStep);

impl Apply {
    /// The constants in the order and precision of the composed f32 ops this replaces.
    /// (decay factor, 1 / sqrt(1 − β₂ᵗ), ε, lr / (1 − β₁ᵗ)): candle divides a tensor by a
    /// scalar as a multiplication by its inverse, and the kernels keep that arithmetic.
    fn constants(&self) -> (f32, f32, f32, f32) {
        let c = self.0;
        let t = c.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        (
            (1.0 - c.lr * c.weight_decay) as f32,
            (1.0 / bias2_sqrt) as f32,
            c.eps as f32,
            (c.lr / bias1) as f32,
        )
    }
}

fn cpu_write_f32(
    dst: &mut CpuStorage,
    l: &Layout,
    f: impl Fn(usize, f32) -> f32,
) -> candle_core::Result<()> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("in-place op: contiguous tensor expected".into()))?;
    match dst {
        CpuStorage::F32(v) => v[start..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = f(i, *x)),
        CpuStorage::BF16(v) => v[start..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = half::bf16::from_f32(f(i, x.to_f32()))),
        CpuStorage::F16(v) => v[start..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = half::f16::from_f32(f(i, x.to_f32()))),
        other => candle_core::bail!(
            "in-place op: float tensor expected, got {:?}",
            other.dtype()
        ),
    }
    Ok(())
}

impl candle_core::InplaceOp2 for Moments {
    fn name(&self) -> &'static str {
        "fused-adamw-moments"
    }

    fn cpu_fwd(
        &self,
        mv: &mut CpuStorage,
        lmv: &Layout,
        grad: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        let g = cpu_rows_f32(grad, lg)?;
        let n = g.len();
        let (b1, b2) = ((1.0 - self.0.beta1) as f32, self.0.beta2 as f32);
        let one_minus_b2 = (1.0 - self.0.beta2) as f32;
        cpu_write_f32(mv, lmv, |i, x| {
            if i < n {
                x + (g[i] - x) * b1
            } else {
                let gi = g[i - n];
                x * b2 + gi * gi * one_minus_b2
            }
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        mv: &mut CudaStorage,
        lmv: &Layout,
        grad: &CudaStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        let n = lg.shape().elem_count();
        if n == 0 {
            return Ok(());
        }
        let dev = mv.device().clone();
        let f = load_kernel!(dev, "adamw_moments", grad.dtype());
        let (b1, b2) = ((1.0 - self.0.beta1) as f32, self.0.beta2 as f32);
        let one_minus_b2 = (1.0 - self.0.beta2) as f32;
        let mut state = cuda::view_mut::<f32>(mv, lmv)?;
        macro_rules! launch {
            ($ty:ty) => {{
                let gv = cuda::view::<$ty>(grad, lg)?;
                let mut b = f.builder();
                b.arg(&mut state)
                    .arg(&gv)
                    .arg(&n)
                    .arg(&b1)
                    .arg(&b2)
                    .arg(&one_minus_b2);
                // SAFETY: arguments match the kernel's signature; the state holds 2n values.
                unsafe { b.launch(elementwise_config(n)) }.w()?;
            }};
        }
        kernel_dtype!(grad.dtype(), "adamw_moments", launch);
        Ok(())
    }
}

impl candle_core::InplaceOp2 for Apply {
    fn name(&self) -> &'static str {
        "fused-adamw-apply"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        lp: &Layout,
        mv: &CpuStorage,
        lmv: &Layout,
    ) -> candle_core::Result<()> {
        let mv = cpu_rows_f32(mv, lmv)?;
        let n = mv.len() / 2;
        let (decay, inv_bias2_sqrt, eps, step_size) = self.constants();
        cpu_write_f32(param, lp, |i, theta| {
            let denom = mv[n + i].sqrt() * inv_bias2_sqrt + eps;
            theta * decay - mv[i] / denom * step_size
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        param: &mut CudaStorage,
        lp: &Layout,
        mv: &CudaStorage,
        lmv: &Layout,
    ) -> candle_core::Result<()> {
        let n = lp.shape().elem_count();
        if n == 0 {
            return Ok(());
        }
        let dev = param.device().clone();
        let f = load_kernel!(dev, "adamw_apply", param.dtype());
        let (decay, inv_bias2_sqrt, eps, step_size) = self.constants();
        let state = cuda::view::<f32>(mv, lmv)?;
        macro_rules! launch {
            ($ty:ty) => {{
                let mut pv = cuda::view_mut::<$ty>(param, lp)?;
                let mut b = f.builder();
                b.arg(&mut pv)
                    .arg(&state)
                    .arg(&n)
                    .arg(&decay)
                    .arg(&inv_bias2_sqrt);
                b.arg(&eps).arg(&step_size);
                // SAFETY: arguments match the kernel's signature; the state holds 2n values.
                unsafe { b.launch(elementwise_config(n)) }.w()?;
            }};
        }
        kernel_dtype!(param.dtype(), "adamw_apply", launch);
        Ok(())
    }
}

impl candle_core::InplaceOp1 for Decay {
    fn name(&self) -> &'static str {
        "fused-adamw-decay"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, lp: &Layout) -> candle_core::Result<()> {
        let (decay, ..) = Apply(self.0).constants();
        cpu_write_f32(param, lp, |_, theta| theta * decay)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, param: &mut CudaStorage, lp: &Layout) -> candle_core::Result<()> {
        let n = lp.shape().elem_count();
        if n == 0 {
            return Ok(());
        }
        let dev = param.device().clone();
        let f = load_kernel!(dev, "adamw_decay", param.dtype());
        let (decay, ..) = Apply(self.0).constants();
        macro_rules! launch {
            ($ty:ty) => {{
                let mut pv = cuda::view_mut::<$ty>(param, lp)?;
                let mut b = f.builder();
                b.arg(&mut pv).arg(&n).arg(&decay);
                // SAFETY: arguments match the kernel's signature.
                unsafe { b.launch(elementwise_config(n)) }.w()?;
            }};
        }
        kernel_dtype!(param.dtype(), "decay_only", launch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};

    const EPS: f64 = 1e-6;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn rand_as(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
        rand(shape, seed).to_dtype(dtype).unwrap()
    }

    /// `max |a − b| / max |b|`, on the CPU in f32 whatever the devices and dtypes.
    fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        let f = |t: &Tensor| {
            t.to_device(&Device::Cpu)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
        };
        let (a, b) = (f(a), f(b));
        assert_eq!(a.dims(), b.dims());
        let scalar = |t: Tensor| t.to_scalar::<f32>().unwrap();
        let diff = scalar((&a - &b).unwrap().abs().unwrap().max_all().unwrap());
        let scale = scalar(b.abs().unwrap().max_all().unwrap());
        diff / scale.max(1e-12)
    }

    fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
        let d = rel_diff(a, b);
        assert!(d <= tol, "{what}: relative difference {d} > {tol}");
    }

    /// Tolerance for a comparison in `dtype`: about one bf16 rounding, or f32 noise.
    fn tol(dtype: DType) -> f32 {
        if dtype == DType::F32 { 1e-5 } else { 1e-2 }
    }

    /// Composed RMSNorm: normalised in f32, cast to `x`'s dtype, times `w` (differentiable).
    fn reference_norm(x: &Tensor, w: &Tensor, eps: f64) -> Tensor {
        let xf = x.to_dtype(DType::F32).unwrap();
        let ms = xf.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let xn = xf
            .broadcast_div(&(ms + eps).unwrap().sqrt().unwrap())
            .unwrap();
        xn.to_dtype(x.dtype()).unwrap().broadcast_mul(w).unwrap()
    }

    #[test]
    fn rms_norm_matches_composed_ops() {
        for dtype in [DType::F32, DType::BF16] {
            for (n, h) in [(5, 16), (3, 37)] {
                let x = rand_as(&[n, h], 1, dtype);
                let w = rand_as(&[h], 2, dtype);
                let ours = rms_norm(&x, &w, EPS).unwrap();
                assert_eq!(ours.dtype(), dtype);
                assert_close(&ours, &reference_norm(&x, &w, EPS), tol(dtype), "rms_norm");
            }
        }
    }

    #[test]
    fn rms_norm_gradients_match_autograd() {
        let (n, h) = (6, 24);
        let x = Var::from_tensor(&rand(&[n, h], 3)).unwrap();
        let w = Var::from_tensor(&rand(&[h], 4)).unwrap();
        let dy = rand(&[n, h], 5);
        let y = reference_norm(&x, &w, EPS);
        let grads = (y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
        let (gx, gw) = (grads.get(&x).unwrap(), grads.get(&w).unwrap());
        let dx = rms_norm_backward(&x, &w, &dy, EPS).unwrap();
        let dw = rms_norm_weight_grad(&x, &dy, EPS).unwrap();
        assert_close(&dx, gx, 1e-5, "rms_norm_backward f32");
        assert_close(&dw, gw, 1e-5, "rms_norm_weight_grad f32");
        assert_eq!(dw.dtype(), DType::F32);

        // bf16 storage: the same gradients up to bf16 rounding of inputs and output.
        let bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
        let (xb, wb, db) = (bf(&x), bf(&w), bf(&dy));
        let up = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let x32 = Var::from_tensor(&up(&xb)).unwrap();
        let w32 = Var::from_tensor(&up(&wb)).unwrap();
        let y = reference_norm(&x32, &w32, EPS);
        let grads = (y * up(&db))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dx = rms_norm_backward(&xb, &wb, &db, EPS).unwrap();
        assert_eq!(dx.dtype(), DType::BF16);
        assert_close(
            &dx,
            grads.get(&x32).unwrap(),
            2e-2,
            "rms_norm_backward bf16",
        );
        let dw = rms_norm_weight_grad(&xb, &db, EPS).unwrap();
        assert_close(
            &dw,
            grads.get(&w32).unwrap(),
            2e-2,
            "rms_norm_weight_grad bf16",
        );
    }

    #[test]
    fn rms_norm_shape_errors() {
        let x = rand(&[3, 8], 6);
        assert!(rms_norm(&x, &rand(&[9], 7), EPS).is_err());
        assert!(rms_norm(&x, &rand_as(&[8], 7, DType::BF16), EPS).is_err());
        let w = rand(&[8], 7);
        assert!(rms_norm_backward(&x, &w, &rand(&[3, 9], 8), EPS).is_err());
        assert!(rms_norm_backward(&x, &w, &rand_as(&[3, 8], 8, DType::BF16), EPS).is_err());
        assert!(rms_norm_weight_grad(&x, &rand(&[4, 8], 8), EPS).is_err());
    }

    /// Rotation tables `[b, t, d/2]` of real angles (so a rotation and its inverse cancel).
    fn rope_tables(b: usize, t: usize, d: usize, dtype: DType) -> (Tensor, Tensor) {
        let half = d / 2;
        let mut angles = Vec::with_capacity(b * t * half);
        for seq in 0..b {
            for pos in 0..t {
                for i in 0..half {
                    let inv_freq = 10000f32.powf(-((2 * i) as f32) / d as f32);
                    angles.push((pos + 3 * seq) as f32 * inv_freq);
                }
            }
        }
        let a = Tensor::from_vec(angles, (b, t, half), &Device::Cpu).unwrap();
        (
            a.cos().unwrap().to_dtype(dtype).unwrap(),
            a.sin().unwrap().to_dtype(dtype).unwrap(),
        )
    }

    /// `cat(−x₂, x₁)` over the last dimension.
    fn rotate_half(x: &Tensor) -> Tensor {
        let d = x.dim(D::Minus1).unwrap();
        let x1 = x.narrow(D::Minus1, 0, d / 2).unwrap();
        let x2 = x.narrow(D::Minus1, d / 2, d / 2).unwrap();
        Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap()
    }

    /// Composed split_heads: bias add (rounded in the dtype), reshape, transpose, then the
    /// rotate-half rope in f32 and one rounding at the end.
    fn reference_split(
        lin: &Tensor,
        bias: Option<&Tensor>,
        rope: Option<(&Tensor, &Tensor)>,
        b: usize,
        heads: usize,
    ) -> Tensor {
        let (n, width) = lin.dims2().unwrap();
        let (t, d) = (n / b, width / heads);
        let x = match bias {
            Some(bias) => lin.broadcast_add(bias).unwrap(),
            None => lin.clone(),
        };
        let x = x
            .reshape((b, t, heads, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap();
        let Some((cos, sin)) = rope else {
            return x;
        };
        let full = |c: &Tensor| {
            Tensor::cat(&[c, c], D::Minus1)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .unsqueeze(1)
                .unwrap()
        };
        let xf = x.to_dtype(DType::F32).unwrap();
        let out = (xf.broadcast_mul(&full(cos)).unwrap()
            + rotate_half(&xf).broadcast_mul(&full(sin)).unwrap())
        .unwrap();
        out.to_dtype(lin.dtype()).unwrap()
    }

    #[test]
    fn split_heads_matches_composed_ops() {
        let (b, t, heads, d) = (2, 5, 3, 8);
        for dtype in [DType::F32, DType::BF16] {
            let lin = rand_as(&[b * t, heads * d], 10, dtype);
            let bias = rand_as(&[heads * d], 11, dtype);
            let (cos, sin) = rope_tables(b, t, d, dtype);
            let rope = Rotation::new(&cos, &sin).unwrap();
            for with_bias in [false, true] {
                let bias = with_bias.then_some(&bias);
                let plain = split_heads(&lin, bias, None, b, heads).unwrap();
                assert_eq!(plain.dims(), [b, heads, t, d]);
                let want = reference_split(&lin, bias, None, b, heads);
                assert_eq!(rel_diff(&plain, &want), 0.0, "split_heads without rope");
                let rotated = split_heads(&lin, bias, Some(&rope), b, heads).unwrap();
                let want = reference_split(&lin, bias, Some((&cos, &sin)), b, heads);
                assert_close(&rotated, &want, tol(dtype), "split_heads with rope");
            }
        }
    }

    #[test]
    fn merge_heads_inverts_split_heads() {
        let (b, t, heads, d) = (2, 4, 3, 6);
        let lin = rand(&[b * t, heads * d], 12);
        let (cos, sin) = rope_tables(b, t, d, DType::F32);
        let rope = Rotation::new(&cos, &sin).unwrap();
        let split = split_heads(&lin, None, Some(&rope), b, heads).unwrap();
        let back = merge_heads(&split, Some(&rope)).unwrap();
        assert_close(&back, &lin, 1e-5, "merge_heads(split_heads(x))");
        // Without rotation it is the plain layout change.
        let x = rand(&[b, heads, t, d], 13);
        let merged = merge_heads(&x, None).unwrap();
        let want = x
            .transpose(1, 2)
            .unwrap()
            .reshape((b * t, heads * d))
            .unwrap();
        assert_eq!(rel_diff(&merged, &want), 0.0);
    }

    #[test]
    fn grouped_heads_are_position_major_groups() {
        let (b, t, heads, kv, d) = (2, 5, 6, 2, 4);
        let groups = heads / kv;
        let lin = rand(&[b * t, heads * d], 16);
        let bias = rand(&[heads * d], 17);
        let (cos, sin) = rope_tables(b, t, d, DType::F32);
        let rope = Rotation::new(&cos, &sin).unwrap();
        let plain = split_heads(&lin, Some(&bias), Some(&rope), b, heads).unwrap();
        let want = plain
            .reshape((b, kv, groups, t, d))
            .unwrap()
            .transpose(2, 3)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, kv, t * groups, d))
            .unwrap();
        let grouped = split_heads_grouped(&lin, Some(&bias), Some(&rope), b, heads, kv).unwrap();
        assert_eq!(rel_diff(&grouped, &want), 0.0);
        let back = merge_heads_grouped(&grouped, heads, Some(&rope)).unwrap();
        let unbiased = lin.broadcast_add(&bias).unwrap();
        assert_close(
            &back,
            &unbiased,
            1e-5,
            "merge_heads_grouped(split_heads_grouped(x))",
        );
        assert!(split_heads_grouped(&lin, None, None, b, heads, 4).is_err());
        assert!(merge_heads_grouped(&grouped, 5, None).is_err());
    }

    #[test]
    fn add_prefix_accumulates_into_the_leading_rows() {
        let acc = rand(&[2, 3, 5, 4], 30);
        let before = acc.copy().unwrap();
        let part = rand(&[2, 3, 2, 4], 31);
        add_prefix(&acc, &part).unwrap();
        let head = (before.narrow(2, 0, 2).unwrap() + &part).unwrap();
        let want = Tensor::cat(&[&head, &before.narrow(2, 2, 3).unwrap()], 2).unwrap();
        assert_eq!(rel_diff(&acc, &want), 0.0);
        assert!(add_prefix(&acc, &rand(&[2, 3, 6, 4], 32)).is_err());
        assert!(add_prefix(&acc, &rand(&[2, 2, 2, 4], 33)).is_err());
    }

    #[test]
    fn heads_shape_errors() {
        let lin = rand(&[6, 12], 14);
        assert!(split_heads(&lin, None, None, 4, 3).is_err()); // 6 rows are not 4 sequences
        assert!(split_heads(&lin, None, None, 2, 5).is_err()); // 12 is not 5 heads
        assert!(split_heads(&lin, Some(&rand(&[11], 15)), None, 2, 3).is_err());
        let (cos, sin) = rope_tables(2, 3, 2, DType::F32); // head dim 2, not 4
        let rope = Rotation::new(&cos, &sin).unwrap();
        assert!(split_heads(&lin, None, Some(&rope), 2, 3).is_err());
        assert!(merge_heads(&lin, None).is_err()); // not [B, heads, T, D]
        let (cos, sin) = rope_tables(2, 3, 3, DType::F32); // odd head dim
        let x = rand(&[2, 1, 3, 3], 16);
        let rope = Rotation::new(&cos, &sin).unwrap();
        assert!(merge_heads(&x, Some(&rope)).is_err());
    }

    #[test]
    fn scatter_add_rows_matches_index_add() {
        let index = Tensor::new(&[3u32, 0, 3, 1, 3, 0], &Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::BF16] {
            let src = rand_as(&[6, 7], 17, dtype);
            let ours = scatter_add_rows(&src, &index, 5).unwrap();
            assert_eq!((ours.dims(), ours.dtype()), (&[5, 7][..], DType::F32));
            let want = Tensor::zeros((5, 7), DType::F32, &Device::Cpu)
                .unwrap()
                .index_add(&index, &src.to_dtype(DType::F32).unwrap(), 0)
                .unwrap();
            assert_close(&ours, &want, 1e-6, "scatter_add_rows");
        }
        let src = rand(&[6, 7], 18);
        assert!(scatter_add_rows(&src, &index, 3).is_err()); // index 3 of 3 rows
        assert!(scatter_add_rows(&src, &index.to_dtype(DType::I64).unwrap(), 5).is_err());
        assert!(scatter_add_rows(&src, &index.narrow(0, 0, 5).unwrap(), 5).is_err());
    }

    fn adamw_step(step: u64) -> AdamWStep {
        AdamWStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            step,
        }
    }

    /// The composed AdamW step the fused ops replace (`train::optim` before them).
    fn reference_adamw(
        param: &Tensor,
        m: &Tensor,
        v: &Tensor,
        grad: Option<&Tensor>,
        c: AdamWStep,
    ) -> (Tensor, Tensor, Tensor) {
        let t = c.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let theta = (param.to_dtype(DType::F32).unwrap() * (1.0 - c.lr * c.weight_decay)).unwrap();
        let Some(g) = grad else {
            return (theta.to_dtype(param.dtype()).unwrap(), m.clone(), v.clone());
        };
        let g = g.to_dtype(DType::F32).unwrap();
        let m = (m + ((&g - m).unwrap() * (1.0 - c.beta1)).unwrap()).unwrap();
        let v = ((v * c.beta2).unwrap() + (g.sqr().unwrap() * (1.0 - c.beta2)).unwrap()).unwrap();
        let denom = ((v.sqrt().unwrap() / bias2_sqrt).unwrap() + c.eps).unwrap();
        let update = ((&m / denom).unwrap() * (c.lr / bias1)).unwrap();
        let param = (theta - update).unwrap().to_dtype(param.dtype()).unwrap();
        (param, m, v)
    }

    #[test]
    fn adamw_matches_composed_ops() {
        let n = 37;
        for dtype in [DType::F32, DType::BF16] {
            let param = rand_as(&[n], 20, dtype);
            let mv = Tensor::zeros((2, n), DType::F32, &Device::Cpu).unwrap();
            let (mut p_ref, mut m_ref, mut v_ref) = (
                param.copy().unwrap(),
                Tensor::zeros(n, DType::F32, &Device::Cpu).unwrap(),
                Tensor::zeros(n, DType::F32, &Device::Cpu).unwrap(),
            );
            for step in 1..=3u64 {
                let c = adamw_step(step);
                let grad = rand_as(&[n], 20 + step, dtype);
                if step == 2 {
                    decay_only(&param, c).unwrap();
                    (p_ref, m_ref, v_ref) = reference_adamw(&p_ref, &m_ref, &v_ref, None, c);
                } else {
                    adamw_moments(&mv, &grad, c).unwrap();
                    adamw_apply(&param, &mv, c).unwrap();
                    (p_ref, m_ref, v_ref) = reference_adamw(&p_ref, &m_ref, &v_ref, Some(&grad), c);
                }
                assert_close(&mv.get(0).unwrap(), &m_ref, 1e-6, "adamw m");
                assert_close(&mv.get(1).unwrap(), &v_ref, 1e-6, "adamw v");
                assert_close(&param, &p_ref, 1e-6, "adamw param");
            }
        }
    }

    #[test]
    fn adamw_shape_errors() {
        let c = adamw_step(1);
        let param = rand(&[4, 3], 30);
        let grad = rand(&[4, 3], 31);
        let zeros = |shape: &[usize], dtype| Tensor::zeros(shape, dtype, &Device::Cpu).unwrap();
        assert!(adamw_moments(&zeros(&[2, 11], DType::F32), &grad, c).is_err());
        assert!(adamw_moments(&zeros(&[2, 12], DType::BF16), &grad, c).is_err());
        assert!(adamw_moments(&zeros(&[12, 2], DType::F32).t().unwrap(), &grad, c).is_err());
        assert!(adamw_apply(&param, &zeros(&[2, 13], DType::F32), c).is_err());
        assert!(adamw_apply(&param.t().unwrap(), &zeros(&[2, 12], DType::F32), c).is_err());
        assert!(adamw_moments(&zeros(&[2, 12], DType::F32), &grad, c).is_ok());
    }

    // -----------------------------------------------------------------------------------------
    // CUDA kernels against the CPU ops on the same inputs.

    #[cfg(feature = "cuda")]
    fn on(t: &Tensor, dev: &Device) -> Tensor {
        t.to_device(dev).unwrap()
    }

    /// Row shapes: vectorised (H a multiple of 8), a ragged tail, rows wider than one chunk of
    /// the weight gradient, and more rows than weight-gradient strips.
    #[cfg(feature = "cuda")]
    const NORM_SHAPES: [(usize, usize); 5] = [(64, 1536), (7, 100), (3, 8200), (1100, 64), (2, 3)];

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_rms_norm_matches_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        for dtype in [DType::F32, DType::BF16] {
            for (i, &(n, h)) in NORM_SHAPES.iter().enumerate() {
                let seed = 100 + 10 * i as u64;
                // One row more than needed, cut off the front: a view at an offset, unaligned
                // when H is not a multiple of 8.
                let x = rand_as(&[n + 1, h], seed, dtype).narrow(0, 1, n).unwrap();
                let w = rand_as(&[h], seed + 1, dtype);
                let dy = rand_as(&[n, h], seed + 2, dtype);
                let what = format!("{dtype:?} [{n}, {h}]");
                let (gx, gw, gd) = (on(&x, &dev), on(&w, &dev), on(&dy, &dev));
                let cpu = rms_norm(&x, &w, EPS).unwrap();
                let gpu = rms_norm(&gx, &gw, EPS).unwrap();
                assert_close(&gpu, &cpu, tol(dtype), &format!("rms_norm {what}"));
                let cpu = rms_norm_backward(&x, &w, &dy, EPS).unwrap();
                let gpu = rms_norm_backward(&gx, &gw, &gd, EPS).unwrap();
                assert_close(&gpu, &cpu, tol(dtype), &format!("rms_norm_backward {what}"));
                let cpu = rms_norm_weight_grad(&x, &dy, EPS).unwrap();
                let gpu = rms_norm_weight_grad(&gx, &gd, EPS).unwrap();
                let wtol = if dtype == DType::F32 { 2e-5 } else { 1e-2 };
                assert_close(&gpu, &cpu, wtol, &format!("rms_norm_weight_grad {what}"));
            }
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_add_prefix_matches_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        for dtype in [DType::F32, DType::BF16] {
            let acc = rand(&[2, 3, 37, 8], 40);
            let part = rand_as(&[2, 3, 21, 8], 41, dtype);
            let gacc = on(&acc, &dev);
            add_prefix(&acc, &part).unwrap();
            add_prefix(&gacc, &on(&part, &dev)).unwrap();
            assert_eq!(rel_diff(&gacc.to_device(&Device::Cpu).unwrap(), &acc), 0.0);
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_heads_match_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        // (batch, time, heads, dim): vectorised, odd pair count, and an odd dim without rope.
        let shapes = [(2, 33, 4, 64), (2, 5, 3, 8), (1, 7, 2, 6), (3, 2, 2, 5)];
        for dtype in [DType::F32, DType::BF16] {
            for (i, &(b, t, heads, d)) in shapes.iter().enumerate() {
                let seed = 200 + 10 * i as u64;
                let lin = rand_as(&[b * t, heads * d], seed, dtype);
                let bias = rand_as(&[heads * d], seed + 1, dtype);
                let x = rand_as(&[b, heads, t, d], seed + 2, dtype);
                let (cos, sin) = rope_tables(b, t, d, dtype);
                let (gcos, gsin) = (on(&cos, &dev), on(&sin, &dev));
                let (glin, gbias, gx) = (on(&lin, &dev), on(&bias, &dev), on(&x, &dev));
                let what = format!("{dtype:?} {:?}", (b, t, heads, d));
                for with_bias in [false, true] {
                    let (bias, gbias) = (with_bias.then_some(&bias), with_bias.then_some(&gbias));
                    let cpu = split_heads(&lin, bias, None, b, heads).unwrap();
                    let gpu = split_heads(&glin, gbias, None, b, heads).unwrap();
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "split_heads {what}");
                    if d % 2 == 0 {
                        let rope = Rotation::new(&cos, &sin).unwrap();
                        let grope = Rotation::new(&gcos, &gsin).unwrap();
                        let cpu = split_heads(&lin, bias, Some(&rope), b, heads).unwrap();
                        let gpu = split_heads(&glin, gbias, Some(&grope), b, heads).unwrap();
                        assert_eq!(rel_diff(&gpu, &cpu), 0.0, "split_heads rope {what}");
                    }
                }
                let cpu = merge_heads(&x, None).unwrap();
                let gpu = merge_heads(&gx, None).unwrap();
                assert_eq!(rel_diff(&gpu, &cpu), 0.0, "merge_heads {what}");
                if heads % 2 == 0 && d % 2 == 0 {
                    // Two key heads: position-major groups both ways.
                    let rope = Rotation::new(&cos, &sin).unwrap();
                    let grope = Rotation::new(&gcos, &gsin).unwrap();
                    let kv = heads / 2;
                    let cpu = split_heads_grouped(&lin, Some(&bias), Some(&rope), b, heads, kv);
                    let gpu = split_heads_grouped(&glin, Some(&gbias), Some(&grope), b, heads, kv);
                    let (cpu, gpu) = (cpu.unwrap(), gpu.unwrap());
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "split_heads_grouped {what}");
                    let cpu = merge_heads_grouped(&cpu, heads, Some(&rope)).unwrap();
                    let gpu = merge_heads_grouped(&gpu, heads, Some(&grope)).unwrap();
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "merge_heads_grouped {what}");
                }
                if d % 2 == 0 {
                    let rope = Rotation::new(&cos, &sin).unwrap();
                    let grope = Rotation::new(&gcos, &gsin).unwrap();
                    let cpu = merge_heads(&x, Some(&rope)).unwrap();
                    let gpu = merge_heads(&gx, Some(&grope)).unwrap();
                    assert_eq!(rel_diff(&gpu, &cpu), 0.0, "merge_heads rope {what}");
                }
            }
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_scatter_add_rows_matches_cpu() {
        use rand::{Rng, SeedableRng};
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(300);
        for dtype in [DType::F32, DType::BF16] {
            for (n, h, rows) in [(500, 1536, 37), (50, 37, 10), (9, 3, 2)] {
                let src = rand_as(&[n, h], 301, dtype);
                let index: Vec<u32> = (0..n).map(|_| rng.random_range(0..rows as u32)).collect();
                let index = Tensor::new(index.as_slice(), &Device::Cpu).unwrap();
                let cpu = scatter_add_rows(&src, &index, rows).unwrap();
                let gpu = scatter_add_rows(&on(&src, &dev), &on(&index, &dev), rows).unwrap();
                // Atomic adds sum in any order: f32 rounding noise only.
                assert_close(
                    &gpu,
                    &cpu,
                    1e-5,
                    &format!("scatter_add_rows {dtype:?} {n}x{h}"),
                );
            }
        }
        // The GPU skips a row whose index is out of range (the CPU reports it).
        let src = rand(&[3, 16], 302);
        let index = Tensor::new(&[1u32, 7, 0], &Device::Cpu).unwrap();
        let gpu = scatter_add_rows(&on(&src, &dev), &on(&index, &dev), 2).unwrap();
        let kept = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let want = scatter_add_rows(
            &src.index_select(&kept, 0).unwrap(),
            &Tensor::new(&[1u32, 0], &Device::Cpu).unwrap(),
            2,
        )
        .unwrap();
        assert_eq!(rel_diff(&gpu, &want), 0.0);
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_adamw_matches_cpu() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        // n = 1003 puts the v row off 16-byte alignment (the kernels' scalar path).
        for n in [4096, 1003] {
            for (pdtype, gdtype) in [
                (DType::F32, DType::F32),
                (DType::BF16, DType::BF16),
                (DType::F32, DType::BF16),
            ] {
                let param = rand_as(&[n], 400, pdtype);
                let gparam = on(&param, &dev);
                let mv = Tensor::zeros((2, n), DType::F32, &Device::Cpu).unwrap();
                let gmv = on(&mv, &dev);
                for step in 1..=3u64 {
                    let c = adamw_step(step);
                    if step == 2 {
                        decay_only(&param, c).unwrap();
                        decay_only(&gparam, c).unwrap();
                    } else {
                        let grad = rand_as(&[n], 400 + step, gdtype);
                        adamw_moments(&mv, &grad, c).unwrap();
                        adamw_moments(&gmv, &on(&grad, &dev), c).unwrap();
                        adamw_apply(&param, &mv, c).unwrap();
                        adamw_apply(&gparam, &gmv, c).unwrap();
                    }
                    // The kernels do the CPU's f32 operations in its order: equal values.
                    let what = format!("adamw {pdtype:?}/{gdtype:?} n={n} step {step}");
                    assert_eq!(rel_diff(&gmv, &mv), 0.0, "{what}: moments");
                    assert_eq!(rel_diff(&gparam, &param), 0.0, "{what}: parameter");
                }
            }
        }
    }

    /// Effective bandwidth of each kernel at training shapes ([32768, 1536] bf16, 12 heads of
    /// 128), next to a plain device copy of the same tensor as the ceiling. Run on a GPU with
    /// `--ignored --nocapture cuda_fused_bandwidth`.
    #[cfg(feature = "cuda")]
    #[test]
    #[ignore]
    fn cuda_fused_bandwidth() {
        let Some(dev) = crate::device::test_gpu() else {
            return;
        };
        let (b, t, heads, d) = (16, 2048, 12, 128);
        let (n, h) = (b * t, heads * d);
        let bf = DType::BF16;
        let randg = |shape: &[usize]| {
            Tensor::rand(-2f32, 2f32, shape, &dev)
                .unwrap()
                .to_dtype(bf)
                .unwrap()
        };
        let (x, dy, w) = (randg(&[n, h]), randg(&[n, h]), randg(&[h]));
        let (cos, sin) = (randg(&[b, t, d / 2]), randg(&[b, t, d / 2]));
        let rope = Rotation::new(&cos, &sin).unwrap();
        let heads_x = split_heads(&x, None, None, b, heads).unwrap();
        let index = Tensor::arange(0u32, n as u32, &dev).unwrap();
        let params = n * h;
        let param = randg(&[params]);
        let grad = randg(&[params]);
        let mv = Tensor::zeros((2, params), DType::F32, &dev).unwrap();
        let elems = (n * h) as f64;
        let time = |what: &str, bytes: f64, f: &dyn Fn()| {
            f();
            dev.synchronize().unwrap();
            let reps = 20;
            let start = std::time::Instant::now();
            for _ in 0..reps {
                f();
            }
            dev.synchronize().unwrap();
            let s = start.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{what:<24} {:>8.1} us {:>8.1} GB/s",
                s * 1e6,
                bytes / s / 1e9
            );
        };
        time("copy (ceiling)", 4.0 * elems, &|| {
            x.copy().unwrap();
        });
        time("rms_norm", 4.0 * elems, &|| {
            rms_norm(&x, &w, EPS).unwrap();
        });
        time("rms_norm_backward", 6.0 * elems, &|| {
            rms_norm_backward(&x, &w, &dy, EPS).unwrap();
        });
        time("rms_norm_weight_grad", 4.0 * elems, &|| {
            rms_norm_weight_grad(&x, &dy, EPS).unwrap();
        });
        time("split_heads", 4.0 * elems, &|| {
            split_heads(&x, Some(&w), None, b, heads).unwrap();
        });
        time("split_heads rope", 4.0 * elems, &|| {
            split_heads(&x, Some(&w), Some(&rope), b, heads).unwrap();
        });
        // The rotation tables' concatenation, which split_heads and merge_heads pay each call.
        time("cat rope tables", 4.0 * (b * t * d) as f64, &|| {
            Tensor::cat(&[&cos, &sin], 2).unwrap();
        });
        time("merge_heads rope", 4.0 * elems, &|| {
            merge_heads(&heads_x, Some(&rope)).unwrap();
        });
        // Read bf16, read and write f32 (the zero fill is a further write).
        time("scatter_add_rows", 14.0 * elems, &|| {
            scatter_add_rows(&x, &index, n).unwrap();
        });
        let c = adamw_step(1);
        time("adamw_moments", 18.0 * elems, &|| {
            adamw_moments(&mv, &grad, c).unwrap();
        });
        time("adamw_apply", 12.0 * elems, &|| {
            adamw_apply(&param, &mv, c).unwrap();
        });
        time("decay_only", 4.0 * elems, &|| {
            decay_only(&param, c).unwrap();
        });
    }
}
