//! Elementwise ops: [`silu_mul`] (SwiGLU's gate) with its backward, and [`add`].

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

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
        cpu::elementwise::silu_mul(a, la, b, lb)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        la: &Layout,
        b: &candle_core::CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::elementwise::silu_mul(a, la, b, lb)
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
        cpu::elementwise::silu_mul_backward(g, lg, u, lu, d, ld)
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
        cuda::elementwise::silu_mul_backward(g, lg, u, lu, d, ld)
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
        cpu::elementwise::fast_add(a, la, b, lb)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        la: &Layout,
        b: &candle_core::CudaStorage,
        lb: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::elementwise::fast_add(a, la, b, lb)
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
