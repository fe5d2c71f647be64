//! Splitting into heads and merging back on the CPU, with the rotation, as the kernels do (see
//! `kernels::heads`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Shape};

use super::{cpu_from_f32, cpu_rows_f32, round_to};
use crate::kernels::heads::Heads;

impl Heads {
    /// Index in the rows layout `[B, T, heads, D]` of element (b, h, t, d).
    fn row_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        ((b * self.time + t) * self.heads + h) * self.dim + d
    }

    /// Index in the heads layout `[B, kv, T, groups, D]` (`[B, heads, T, D]` for one group).
    fn head_index(&self, b: usize, h: usize, t: usize, d: usize) -> usize {
        let (g, kv) = (self.groups, self.heads / self.groups);
        (((b * kv + h / g) * self.time + t) * g + h % g) * self.dim + d
    }

    /// The CPU twin of the kernel: `table` `[B, T, D]` holds cos then sin halves, or None.
    fn cpu(&self, x: &[f32], bias: &[f32], table: Option<&[f32]>, dtype: DType) -> Vec<f32> {
        let (half, dim) = (self.dim / 2, self.dim);
        let mut out = vec![0f32; x.len()];
        let mut pair = vec![0f32; dim];
        for b in 0..self.batch {
            for t in 0..self.time {
                for h in 0..self.heads {
                    let (src, dst) = if self.to_heads {
                        (self.row_index(b, h, t, 0), self.head_index(b, h, t, 0))
                    } else {
                        (self.head_index(b, h, t, 0), self.row_index(b, h, t, 0))
                    };
                    for d in 0..dim {
                        // The bias is added (and rounded, as a separate add would) first.
                        pair[d] = round_to(x[src + d] + bias[h * dim + d], dtype);
                    }
                    let Some(table) = table else {
                        out[dst..dst + dim].copy_from_slice(&pair);
                        continue;
                    };
                    let row = (b * self.time + t) * dim;
                    let sign = if self.to_heads { 1.0 } else { -1.0 };
                    for i in 0..half {
                        let (c, s) = (table[row + i], sign * table[row + half + i]);
                        let (lo, hi) = (pair[i], pair[half + i]);
                        out[dst + i] = lo * c - hi * s;
                        out[dst + half + i] = hi * c + lo * s;
                    }
                }
            }
        }
        out
    }
}

/// The layout change `op` with a bias and no rotation.
pub(crate) fn heads_plain(
    op: &Heads,
    x: &CpuStorage,
    lx: &Layout,
    bias: &CpuStorage,
    lb: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let out = op.cpu(
        &cpu_rows_f32(x, lx)?,
        &cpu_rows_f32(bias, lb)?,
        None,
        x.dtype(),
    );
    Ok((cpu_from_f32(out, x.dtype())?, op.out_shape()))
}

/// The layout change `op` with a bias and the rotation of `table` `[B, T, D]` (cos then sin).
pub(crate) fn heads_rope(
    op: &Heads,
    x: &CpuStorage,
    lx: &Layout,
    bias: &CpuStorage,
    lb: &Layout,
    table: &CpuStorage,
    lt: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let out = op.cpu(
        &cpu_rows_f32(x, lx)?,
        &cpu_rows_f32(bias, lb)?,
        Some(&cpu_rows_f32(table, lt)?),
        x.dtype(),
    );
    Ok((cpu_from_f32(out, x.dtype())?, op.out_shape()))
}
