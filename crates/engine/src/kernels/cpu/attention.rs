//! Attention on the CPU: the masked softmax and its backward, in f32 (see `kernels::attention`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape};

use super::{cpu_from_f32, cpu_rows_f32, cpu_u32};
use crate::kernels::attention::AttentionMask;
use crate::kernels::last_dim;

/// The keys `[lo, hi]` that `row` may see under mask `m` with left padding `pad`.
fn visible(m: AttentionMask, row: usize, pad: &[u32]) -> (usize, usize) {
    let lo = pad[row / m.rows_per_batch] as usize;
    (lo, m.past + (row / m.rows_per_query.max(1)) % m.queries)
}

/// `softmax(scale · x)` over the keys each row may see under `mask`, exact zeros elsewhere; `pad`
/// `[batch]` u32 hides each batch entry's first `pad[b]` keys.
pub(crate) fn masked_softmax(
    mask: AttentionMask,
    x: &CpuStorage,
    lx: &Layout,
    pad: &CpuStorage,
    lp: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (rows, cols) = last_dim(lx)?;
    let values = cpu_rows_f32(x, lx)?;
    let pad = cpu_u32(pad, lp)?;
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        let (lo, hi) = visible(mask, r, &pad);
        let row = &values[r * cols..(r + 1) * cols];
        let seen = lo..=hi.min(cols.saturating_sub(1));
        let max = seen
            .clone()
            .map(|j| row[j] * mask.scale)
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = seen
            .clone()
            .map(|j| (row[j] * mask.scale - max).exp())
            .sum();
        let inv = if sum > 0.0 { 1.0 / sum } else { 0.0 };
        for j in seen {
            out[r * cols + j] = (row[j] * mask.scale - max).exp() * inv;
        }
    }
    Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
}

/// The masked softmax of causal attention over queries `lq` `[B, ...]`: `mask` with no left
/// padding, for the scores between its two matmuls.
pub(crate) fn unpadded_softmax(
    mask: AttentionMask,
    lq: &Layout,
) -> impl Fn(&CpuStorage, &Layout) -> candle_core::Result<CpuStorage> {
    let pad = CpuStorage::U32(vec![0; lq.shape().dims()[0]]);
    let lp = Layout::contiguous(lq.shape().dims()[0]);
    move |s: &CpuStorage, l: &Layout| Ok(masked_softmax(mask, s, l, &pad, &lp)?.0)
}

/// `dx = scale · y · (g − Σ g·y)` for `y` a softmax output and `g` its gradient.
pub(crate) fn softmax_backward(
    scale: f32,
    y: &CpuStorage,
    ly: &Layout,
    g: &CpuStorage,
    lg: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (_, cols) = last_dim(ly)?;
    let (y32, g32) = (cpu_rows_f32(y, ly)?, cpu_rows_f32(g, lg)?);
    let mut out = vec![0f32; y32.len()];
    for ((yr, gr), o) in y32
        .chunks(cols)
        .zip(g32.chunks(cols))
        .zip(out.chunks_mut(cols))
    {
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for ((o, &yy), &gg) in o.iter_mut().zip(yr).zip(gr) {
            *o = scale * yy * (gg - dot);
        }
    }
    Ok((cpu_from_f32(out, y.dtype())?, ly.shape().clone()))
}
