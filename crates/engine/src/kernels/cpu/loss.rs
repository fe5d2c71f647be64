//! The language-model loss on the CPU: per-row `[nll, argmax]` and its logit gradient (see
//! `kernels::loss`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape};

use super::{cpu_from_f32, cpu_rows_f32, cpu_u32};
use crate::kernels::last_dim;

fn argmax_lowest(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// `token_nll`'s forward: per-row `[nll, argmax]` (f32) of logits against u32 targets.
pub(crate) fn token_nll(
    x: &CpuStorage,
    lx: &Layout,
    t: &CpuStorage,
    lt: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (rows, cols) = last_dim(lx)?;
    let values = cpu_rows_f32(x, lx)?;
    let targets = cpu_u32(t, lt)?;
    let mut out = Vec::with_capacity(rows * 2);
    for (row, &target) in values.chunks(cols).zip(&targets) {
        let best = argmax_lowest(row);
        let max = row[best];
        // The exponentials are summed in f64: an f32 sum drops every term below half an ulp
        // of the running total (the max's own term is 1), which biases each loss low by up to
        // the whole tail's mass (1e-4 nats at a 49k vocabulary with the tail at −20).
        let sum: f64 = row.iter().map(|&v| f64::from((v - max).exp())).sum();
        let xt = row.get(target as usize).copied().unwrap_or(f32::NAN);
        out.push((f64::from(max) - f64::from(xt) + sum.ln()) as f32);
        out.push(best as f32);
    }
    Ok((CpuStorage::F32(out), Shape::from((rows, 2))))
}

/// `token_nll_backward`: `g · (softmax(x) − onehot(target))` from logits, targets and per-row
/// `[nll, g]`.
pub(crate) fn token_nll_backward(
    x: &CpuStorage,
    lx: &Layout,
    t: &CpuStorage,
    lt: &Layout,
    ng: &CpuStorage,
    lng: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (_, cols) = last_dim(lx)?;
    let values = cpu_rows_f32(x, lx)?;
    let targets = cpu_u32(t, lt)?;
    let ng = cpu_rows_f32(ng, lng)?;
    let mut out = vec![0f32; values.len()];
    for (r, (row, o)) in values.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
        let target = targets[r] as usize;
        let lse = ng[2 * r] + row[target];
        let g = ng[2 * r + 1];
        for (j, (o, &v)) in o.iter_mut().zip(row).enumerate() {
            let onehot = if j == target { 1.0 } else { 0.0 };
            *o = g * ((v - lse).exp() - onehot);
        }
    }
    Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
}
