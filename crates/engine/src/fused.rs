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
}

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
}

// ---------------------------------------------------------------------------------------------
// Heads and rotary position embedding

/// The rotation of [`split_heads`] and [`merge_heads`]: `cos`, `sin` `[B, T, D/2]` in the
/// activations' dtype (rotate-half layout, as transformers).
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// `cos(position · inv_freq)`.
    pub cos: &'a Tensor,
    /// `sin(position · inv_freq)`.
    pub sin: &'a Tensor,
}

/// A projection's output `lin` `[B·T, heads·D]` (+ `bias` `[heads·D]`) as heads `[B, heads, T, D]`,
/// rotated by `rope` when given: one pass instead of a bias add, a transpose copy and a rope.
pub fn split_heads(
    lin: &Tensor,
    bias: Option<&Tensor>,
    rope: Option<Rotation>,
    batch: usize,
    heads: usize,
) -> candle_core::Result<Tensor> {
    let (n, width) = lin.dims2()?;
    if batch == 0 || n % batch != 0 || heads == 0 || width % heads != 0 {
        candle_core::bail!("split_heads: [{n}, {width}] is not {batch} sequences of {heads} heads");
    }
    let op = Heads {
        batch,
        time: n / batch,
        heads,
        dim: width / heads,
        to_heads: true,
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
pub fn merge_heads(x: &Tensor, rope: Option<Rotation>) -> candle_core::Result<Tensor> {
    let (batch, heads, time, dim) = x.dims4()?;
    let op = Heads {
        batch,
        time,
        heads,
        dim,
        to_heads: false,
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
}

impl Heads {
    fn check_rope(&self, rope: Option<Rotation>) -> candle_core::Result<()> {
        if let Some(r) = rope {
            let want = [self.batch, self.time, self.dim / 2];
            if self.dim % 2 != 0 || r.cos.dims() != want || r.sin.dims() != want {
                candle_core::bail!(
                    "rotation tables {:?} for {} sequences of {} tokens, head dim {}",
                    r.cos.shape(),
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
            Shape::from((self.batch, self.heads, self.time, self.dim))
        } else {
            Shape::from((self.batch * self.time, self.heads * self.dim))
        }
    }

    fn apply(
        self,
        x: &Tensor,
        bias: &Tensor,
        rope: Option<Rotation>,
    ) -> candle_core::Result<Tensor> {
        match rope {
            Some(r) => x.apply_op3_no_bwd(
                bias,
                &Tensor::cat(&[r.cos, r.sin], 2)?.contiguous()?,
                &HeadsRope(self),
            ),
            None => x.apply_op2_no_bwd(bias, &HeadsPlain(self)),
        }
    }

    /// Index in the rows layout `[B, T, heads, D]` of element (b, h, t, d).
    fn row_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        ((b * self.time + t) * self.heads + h) * self.dim + d
    }

    /// Index in the heads layout `[B, heads, T, D]`.
    fn head_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        ((b * self.heads + h) * self.time + t) * self.dim + d
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
}

// ---------------------------------------------------------------------------------------------
// Scatter-add of rows (embedding and row-gather backward)

/// `out[index[i]] += src[i]` into `rows` zero rows, accumulated in f32: the backward of an
/// embedding lookup or a row gather. `src` `[n, H]`, `index` `[n]` u32 (each `< rows`).
///
/// On the CPU rows are added in order (reproducible); on CUDA with atomic adds (order free).
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
}

impl candle_core::InplaceOp1 for Decay {
    fn name(&self) -> &'static str {
        "fused-adamw-decay"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, lp: &Layout) -> candle_core::Result<()> {
        let (decay, ..) = Apply(self.0).constants();
        cpu_write_f32(param, lp, |_, theta| theta * decay)
    }
}
