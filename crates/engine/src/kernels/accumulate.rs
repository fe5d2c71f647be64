//! Gradient accumulation: [`scatter_add_rows`] (the backward of an embedding lookup or a row
//! gather) and [`add_prefix`] (blocked attention's key and value gradients).

#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

// Scatter-add of rows

/// `out[index[i]] += src[i]` into `rows` zero rows, accumulated in f32: the backward of an
/// embedding lookup or a row gather. `src` `[n, H]`, `index` `[n]` u32 (each `< rows`).
///
/// On the CPU rows are added in order (reproducible) and an index `>= rows` is an error; on CUDA
/// rows are added with atomic adds (order free, so not bit-reproducible) and a row whose index is
/// `>= rows` is skipped, since a kernel cannot report it without a read-back.
pub fn scatter_add_rows(src: &Tensor, index: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let (n, _) = src.dims2()?;
    if index.dims() != [n] || index.dtype() != DType::U32 {
        candle_core::bail!(
            "scatter_add_rows: index {:?} {:?} for {n} rows",
            index.shape(),
            index.dtype()
        );
    }
    src.contiguous()?
        .apply_op2_no_bwd(&index.contiguous()?, &ScatterAddRows(rows))
}

struct ScatterAddRows(usize);

impl CustomOp2 for ScatterAddRows {
    fn name(&self) -> &'static str {
        "fused-scatter-add-rows"
    }

    fn cpu_fwd(
        &self,
        src: &CpuStorage,
        ls: &Layout,
        index: &CpuStorage,
        li: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu::accumulate::scatter_add_rows(self.0, src, ls, index, li)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        src: &CudaStorage,
        ls: &Layout,
        index: &CudaStorage,
        li: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        cuda::accumulate::scatter_add_rows(self.0, src, ls, index, li)
    }
}

// Prefix accumulation

/// `acc[.., :t, :] += part` in place, for `acc` `[.., T, D]` f32 (contiguous) and `part`
/// `[.., t, D]` (any float dtype, `t ≤ T`, same leading dims): one pass instead of a narrow, an
/// add, a cast and a copy back.
pub fn add_prefix(acc: &Tensor, part: &Tensor) -> candle_core::Result<()> {
    let (ad, pd) = (acc.dims(), part.dims());
    let rank = ad.len();
    let ok = rank >= 2
        && pd.len() == rank
        && ad[..rank - 2] == pd[..rank - 2]
        && ad[rank - 1] == pd[rank - 1]
        && pd[rank - 2] <= ad[rank - 2];
    if !ok || acc.dtype() != DType::F32 || !acc.is_contiguous() {
        candle_core::bail!(
            "add_prefix: {:?} {:?} into {:?} {:?}",
            part.shape(),
            part.dtype(),
            acc.shape(),
            acc.dtype()
        );
    }
    let prefix = PrefixRows {
        part_row: pd[rank - 2] * pd[rank - 1],
        acc_row: ad[rank - 2] * ad[rank - 1],
    };
    acc.inplace_op2(&part.contiguous()?, &prefix)
}

/// Row lengths of [`add_prefix`]: each of `part`'s rows adds into the start of one of `acc`'s.
struct PrefixRows {
    part_row: usize,
    acc_row: usize,
}

impl candle_core::InplaceOp2 for PrefixRows {
    fn name(&self) -> &'static str {
        "fused-add-prefix"
    }

    fn cpu_fwd(
        &self,
        acc: &mut CpuStorage,
        la: &Layout,
        part: &CpuStorage,
        lp: &Layout,
    ) -> candle_core::Result<()> {
        cpu::accumulate::add_prefix(self.part_row, self.acc_row, acc, la, part, lp)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        acc: &mut CudaStorage,
        la: &Layout,
        part: &CudaStorage,
        lp: &Layout,
    ) -> candle_core::Result<()> {
        cuda::accumulate::add_prefix(self.part_row, self.acc_row, acc, la, part, lp)
    }
}
