//! The elementwise ops on the CPU: `silu(g) · u` with its backward, and `a + b` (see
//! `kernels::elementwise`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape};

use super::{cpu_from_f32, cpu_rows_f32};

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

/// `silu(g) · u` for the gate `a` and the up projection `b`.
pub(crate) fn silu_mul(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    cpu_elementwise2(a, la, b, lb, |g, u| g / (1.0 + (-g).exp()) * u)
}

/// `[dg; du]` (shape `[2, ...]`) of `silu(g) · u` for the output gradient `d`.
pub(crate) fn silu_mul_backward(
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

/// `a + b` value by value.
pub(crate) fn fast_add(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    cpu_elementwise2(a, la, b, lb, |p, q| p + q)
}
