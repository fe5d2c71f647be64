//! RMSNorm for the hand-written training pass: forward ([`rms_norm`]), input gradient
//! ([`rms_norm_backward`]) and weight gradient ([`rms_norm_weight_grad`]).

#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

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
        cpu::norm::rms_norm(self.0, x, lx, w, lw)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda::norm::rms_norm(self.0, x, lx, w, lw)
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
        cpu::norm::rms_norm_backward(self.0, x, lx, w, lw, dy, ld)
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
        cuda::norm::rms_norm_backward(self.0, x, lx, w, lw, dy, ld)
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
        cpu::norm::rms_norm_weight_grad(self.0, x, lx, dy, ld)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        dy: &CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda::norm::rms_norm_weight_grad(self.0, x, lx, dy, ld)
    }
}
