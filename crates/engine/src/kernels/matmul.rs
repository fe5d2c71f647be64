//! Matrix products: [`frozen_matmul`], `x Wᵀ` whose backward computes no weight gradient (CPU and
//! CUDA both call the backend's own GEMM).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

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
        cpu::matmul::frozen_matmul(dims(lx, lw)?, x, lx, w, lw)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        w: &candle_core::CudaStorage,
        lw: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::matmul::frozen_matmul(dims(lx, lw)?, x, lx, w, lw)
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

/// `x Wᵀ` for `x` `[rows, in]` where `W` gets no gradient (see `FrozenMatmul`).
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, FrozenMatmul)
}
