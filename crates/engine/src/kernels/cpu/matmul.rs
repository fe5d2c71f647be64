//! `frozen_matmul` on the CPU: candle's own CPU GEMM (see `kernels::matmul`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape};

/// `x Wᵀ` for `(m, n, k)` = (rows, outputs, inputs), checked by the caller.
pub(crate) fn frozen_matmul(
    (m, n, k): (usize, usize, usize),
    x: &CpuStorage,
    lx: &Layout,
    w: &CpuStorage,
    lw: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let out = x.matmul(w, (1, m, n, k), lx, &lw.transpose(0, 1)?)?;
    Ok((out, Shape::from((m, n))))
}
