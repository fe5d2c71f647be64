//! The AdamW update in place, in three kernels: [`adamw_moments`], [`adamw_apply`] and
//! [`decay_only`] (torch's single-tensor AdamW; see `train::optim`).

use candle_core::{CpuStorage, DType, Layout, Tensor};

use candle_core::backend::BackendStorage;

use super::plumbing::cpu_rows_f32;
#[cfg(feature = "cuda")]
use super::plumbing::{cuda, elementwise_config, kernel_dtype, load_kernel};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::WrapErr;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};

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
