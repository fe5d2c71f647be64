//! Gradient accumulation: [`scatter_add_rows`] (the backward of an embedding lookup or a row
//! gather) and [`add_prefix`] (blocked attention's key and value gradients).

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

#[cfg(feature = "cuda")]
use candle_core::backend::BackendStorage;

use super::plumbing::{cpu_rows_f32, cpu_u32, rows_of};
#[cfg(feature = "cuda")]
use super::plumbing::{cuda, kernel_dtype, load_kernel};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::WrapErr;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};

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
        let (_, h) = rows_of(ls);
        let (values, index) = (cpu_rows_f32(src, ls)?, cpu_u32(index, li)?);
        let mut out = vec![0f32; self.0 * h];
        for (row, &to) in values.chunks(h).zip(&index) {
            let to = to as usize;
            if to >= self.0 {
                candle_core::bail!("scatter_add_rows: index {to} out of {} rows", self.0);
            }
            for (o, v) in out[to * h..(to + 1) * h].iter_mut().zip(row) {
                *o += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((self.0, h))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        src: &CudaStorage,
        ls: &Layout,
        index: &CudaStorage,
        li: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (n, h) = rows_of(ls);
        let dev = src.device();
        let f = load_kernel!(dev, "scatter_add_rows", src.dtype());
        let out = dev.alloc_zeros::<f32>(self.0 * h)?;
        let iv = cuda::view::<u32>(index, li)?;
        let (h32, rows32) = (h as u32, self.0 as u32);
        macro_rules! launch {
            ($ty:ty) => {{
                let sv = cuda::view::<$ty>(src, ls)?;
                let mut b = f.builder();
                b.arg(&sv).arg(&iv).arg(&out).arg(&h32).arg(&rows32);
                // SAFETY: arguments match the kernel's signature; one block per source row,
                // rows past `self.0` skipped in the kernel.
                unsafe { b.launch(cuda::rows(n)) }.w()?;
            }};
        }
        if n > 0 && h > 0 {
            kernel_dtype!(src.dtype(), "scatter_add_rows", launch)
        }
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from((self.0, h)),
        ))
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
        let values = cpu_rows_f32(part, lp)?;
        let (start, end) = la
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("add_prefix: contiguous f32 expected".into()))?;
        let CpuStorage::F32(acc) = acc else {
            candle_core::bail!("add_prefix: f32 accumulator expected");
        };
        let acc = &mut acc[start..end];
        for (row, chunk) in values.chunks(self.part_row.max(1)).enumerate() {
            let dst = &mut acc[row * self.acc_row..row * self.acc_row + chunk.len()];
            for (d, v) in dst.iter_mut().zip(chunk) {
                *d += v;
            }
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        acc: &mut CudaStorage,
        la: &Layout,
        part: &CudaStorage,
        lp: &Layout,
    ) -> candle_core::Result<()> {
        let n = lp.shape().elem_count();
        if n == 0 {
            return Ok(());
        }
        let dev = acc.device().clone();
        let f = load_kernel!(dev, "add_prefix", part.dtype());
        let (l, m) = (self.part_row as u32, self.acc_row as u32);
        let mut dst = cuda::view_mut::<f32>(acc, la)?;
        let rows = n / self.part_row.max(1);
        let cfg = LaunchConfig {
            grid_dim: (l.div_ceil(cuda::BLOCK), rows.min(65535) as u32, 1),
            block_dim: (cuda::BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        macro_rules! launch {
            ($ty:ty) => {{
                let pv = cuda::view::<$ty>(part, lp)?;
                let mut b = f.builder();
                b.arg(&mut dst).arg(&pv).arg(&rows).arg(&l).arg(&m);
                // SAFETY: arguments match the kernel's signature; every part index maps into acc.
                unsafe { b.launch(cfg) }.w()?;
            }};
        }
        kernel_dtype!(part.dtype(), "add_prefix", launch);
        Ok(())
    }
}
