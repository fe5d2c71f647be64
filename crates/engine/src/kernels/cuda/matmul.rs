//! `frozen_matmul` on the GPU: candle's own CUDA GEMM (see `kernels::matmul`).

use candle_core::backend::BackendStorage;
use candle_core::{CudaStorage, Layout, Shape};

/// `x Wᵀ` for `(m, n, k)` = (rows, outputs, inputs), checked by the caller.
pub(crate) fn frozen_matmul(
    (m, n, k): (usize, usize, usize),
    x: &CudaStorage,
    lx: &Layout,
    w: &CudaStorage,
    lw: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let out = x.matmul(w, (1, m, n, k), lx, &lw.transpose(0, 1)?)?;
    Ok((out, Shape::from((m, n))))
}
