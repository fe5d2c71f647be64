//! RMSNorm on the CPU: forward, input gradient and weight gradient (see `kernels::norm`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape};

use super::{cpu_from_f32, cpu_rows_f32, round_to};
use crate::kernels::rows_of;

fn rstd(row: &[f32], eps: f32) -> f32 {
    let sum: f32 = row.iter().map(|v| v * v).sum();
    1.0 / (sum / row.len() as f32 + eps).sqrt()
}

/// `rms_norm`'s forward with epsilon `eps`.
pub(crate) fn rms_norm(
    eps: f32,
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
        let r = rstd(row, eps);
        out.extend(
            row.iter()
                .zip(&ws)
                .map(|(&v, &wj)| wj * round_to(v * r, dtype)),
        );
    }
    Ok((cpu_from_f32(out, dtype)?, lx.shape().clone()))
}

/// `rms_norm_backward` (the input gradient) with epsilon `eps`.
pub(crate) fn rms_norm_backward(
    eps: f32,
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
        let r = rstd(row, eps);
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

/// `rms_norm_weight_grad` with epsilon `eps`: `[H]` in f32, rows summed in order.
pub(crate) fn rms_norm_weight_grad(
    eps: f32,
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
        let r = rstd(row, eps);
        for ((acc, &v), &d) in dw.iter_mut().zip(row).zip(drow) {
            *acc += d * round_to(v * r, dtype);
        }
    }
    Ok((CpuStorage::F32(dw), Shape::from(h)))
}
