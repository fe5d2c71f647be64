//! Gumbel-max sampling of logit rows on the CPU, with the host's [`gumbel_choice`] per row (see
//! `kernels::sampling`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape};

use super::cpu_rows_f32;
use crate::kernels::last_dim;
use crate::kernels::sampling::gumbel_choice;

/// One token per row of logits `x` `[N, V]` from row keys `k` (i64 `[N]`, read as u64) at `step`,
/// with `inv_temp` 0 for greedy.
pub(crate) fn gumbel_argmax(
    step: u32,
    inv_temp: f32,
    x: &CpuStorage,
    lx: &Layout,
    k: &CpuStorage,
    lk: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (rows, cols) = last_dim(lx)?;
    let values = cpu_rows_f32(x, lx)?;
    let keys = match k {
        CpuStorage::I64(v) => {
            let (a, b) = lk.contiguous_offsets().ok_or_else(|| {
                candle_core::Error::Msg("gumbel argmax: keys must be contiguous".into())
            })?;
            v[a..b].to_vec()
        }
        other => {
            candle_core::bail!("gumbel argmax: i64 keys expected, got {:?}", other.dtype())
        }
    };
    let out: Vec<u32> = values
        .chunks(cols)
        .zip(&keys)
        .map(|(row, &key)| {
            let scores = row.iter().enumerate().map(|(j, &v)| (j as u32, v));
            gumbel_choice(scores, key as u64, step, inv_temp)
        })
        .collect();
    Ok((CpuStorage::U32(out), Shape::from(rows)))
}
