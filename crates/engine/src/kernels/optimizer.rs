//! The AdamW update in place, in three kernels: [`adamw_moments`], [`adamw_apply`] and
//! [`decay_only`] (torch's single-tensor AdamW; see `train::optim`).

#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, DType, Layout, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

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
        cpu::optimizer::adamw_moments(self.0, mv, lmv, grad, lg)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        mv: &mut CudaStorage,
        lmv: &Layout,
        grad: &CudaStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        cuda::optimizer::adamw_moments(self.0, mv, lmv, grad, lg)
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
        cpu::optimizer::adamw_apply(self.constants(), param, lp, mv, lmv)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        param: &mut CudaStorage,
        lp: &Layout,
        mv: &CudaStorage,
        lmv: &Layout,
    ) -> candle_core::Result<()> {
        cuda::optimizer::adamw_apply(self.constants(), param, lp, mv, lmv)
    }
}

impl candle_core::InplaceOp1 for Decay {
    fn name(&self) -> &'static str {
        "fused-adamw-decay"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, lp: &Layout) -> candle_core::Result<()> {
        cpu::optimizer::adamw_decay(Apply(self.0).constants(), param, lp)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, param: &mut CudaStorage, lp: &Layout) -> candle_core::Result<()> {
        cuda::optimizer::adamw_decay(Apply(self.0).constants(), param, lp)
    }
}
