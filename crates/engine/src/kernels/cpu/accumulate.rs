//! Gradient accumulation on the CPU, in order (reproducible): scatter-add of rows and prefix
//! accumulation (see `kernels::accumulate`).

use candle_core::{CpuStorage, Layout, Shape};

use super::{cpu_rows_f32, cpu_u32};
use crate::kernels::rows_of;

/// `out[index[i]] += src[i]` into `rows` zero f32 rows; an index `>= rows` is an error.
pub(crate) fn scatter_add_rows(
    rows: usize,
    src: &CpuStorage,
    ls: &Layout,
    index: &CpuStorage,
    li: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (_, h) = rows_of(ls);
    let (values, index) = (cpu_rows_f32(src, ls)?, cpu_u32(index, li)?);
    let mut out = vec![0f32; rows * h];
    for (row, &to) in values.chunks(h).zip(&index) {
        let to = to as usize;
        if to >= rows {
            candle_core::bail!("scatter_add_rows: index {to} out of {rows} rows");
        }
        for (o, v) in out[to * h..(to + 1) * h].iter_mut().zip(row) {
            *o += v;
        }
    }
    Ok((CpuStorage::F32(out), Shape::from((rows, h))))
}

/// Adds each `part_row`-long row of `part` into the start of the matching `acc_row`-long row of
/// the f32 `acc`, in place.
pub(crate) fn add_prefix(
    part_row: usize,
    acc_row: usize,
    acc: &mut CpuStorage,
    la: &Layout,
    part: &CpuStorage,
    lp: &Layout,
) -> candle_core::Result<()> {
    let values = cpu_rows_f32(part, lp)?;
    let (start, end) = la
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("add_prefix: contiguous f32 expected".into()))?;
    let CpuStorage::F32(acc) = acc else {
        candle_core::bail!("add_prefix: f32 accumulator expected");
    };
    let acc = &mut acc[start..end];
    for (row, chunk) in values.chunks(part_row.max(1)).enumerate() {
        let dst = &mut acc[row * acc_row..row * acc_row + chunk.len()];
        for (d, v) in dst.iter_mut().zip(chunk) {
            *d += v;
        }
    }
    Ok(())
}
